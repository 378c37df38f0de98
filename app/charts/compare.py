"""Two runs in one picture (compare A/B), and one run over seeds (median and quartiles).

A/B: run A in purple, run B in orange, every legend naming what differs ("A: sigmoid",
"B: relu"): the gradient bars side by side per layer, the curves of both runs (the first,
middle and last hidden layers, told apart by dash), the spectra overlaid.
Seeds: the median as the line, the interquartile range (q1..q3) as a shaded band; the
bars show the median with whiskers from q1 to q3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.charts.base import (
    EXPLODE,
    KARPATHY,
    LOG10,
    TITLE_LINE_PX,
    VANISH,
    Data,
    clip_log,
    decades,
    empty_figure,
    figure,
    hidden_layers,
    hline,
    layer_label,
    log_label,
    pick,
    short_name,
)
from app.charts.style import (
    AXIS_TITLE_SIZE,
    BLUE,
    EXPLODE_FILL,
    FONT_SIZE,
    GREEN,
    GREY,
    RED,
    TEXT,
    TITLE_PAD_PX,
    TOP_LEGEND,
    VANISH_FILL,
    axis,
    legend,
    log_axis,
    rgba,
    title_lines,
    wrap_title,
)
from core.repeat import SeedSummary
from core.snapshot import Snapshot

A_COLOR = "#7b3294"     # run A: purple
B_COLOR = "#e08214"     # run B: orange
RUN_COLORS = (A_COLOR, B_COLOR)
DASHES = ("solid", "dash", "dot")          # first / middle / last hidden layer
CURVE_LAYERS = 3
LABEL_CHARS = 34        # a run's label in a half-width panel's title / legend (1280 px)

_BAR_TITLES = {"delta_norm": ("Gradient per layer ||dC/db||", "||dC/db||"),
               "weight_grad_norm": ("Gradient per layer ||dC/dW||", "||dC/dW||")}


def _zones(lo: float, hi: float) -> tuple[list[dict], list[dict]]:
    shapes = [
        dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=10.0 ** lo, y1=VANISH,
             fillcolor=VANISH_FILL, line=dict(width=0), layer="below"),
        dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=EXPLODE, y1=10.0 ** hi,
             fillcolor=EXPLODE_FILL, line=dict(width=0), layer="below"),
        hline(VANISH, BLUE), hline(EXPLODE, RED)]
    notes = [log_label("vanishing < 1e-6", math.log10(VANISH), BLUE, above=False),
             log_label("exploding > 1e3", math.log10(EXPLODE), RED, above=True)]
    return shapes, notes


def _layer_axis(layers: Sequence[Any]) -> dict[str, Any]:
    x = [la.index for la in layers]
    if len(layers) <= 12:
        return axis("layer (1 = next to the input)", tickmode="array", tickvals=x,
                    ticktext=[short_name(la) for la in layers])
    return axis(f"layer (1 = next to the input, {len(layers)} = output)", nticks=8)


def _bar_range(ys: Sequence[np.ndarray], fixed_range: tuple[float, float] | None
               ) -> tuple[float, float]:
    must = [math.log10(VANISH), math.log10(EXPLODE)]
    if fixed_range is not None:
        must += [math.log10(max(v, 1e-30)) for v in fixed_range]
    y = np.concatenate([np.asarray(v, dtype=np.float64) for v in ys]) if ys else np.zeros(0)
    return decades(y, must, pad=0.0 if fixed_range is not None else 0.5)


# ---- A / B ------------------------------------------------------------------------------------


def gradient_bars_ab(snap_a: Snapshot | None, snap_b: Snapshot | None,
                     labels: tuple[str, str], metric: str = "delta_norm",
                     fixed_range: tuple[float, float] | None = (1e-8, 1e4)) -> go.Figure:
    """Per layer, run A's bar next to run B's (log axis, the vanishing / exploding zones)."""
    panel = "gradient_bars"
    title, ytitle = _BAR_TITLES.get(metric, _BAR_TITLES["delta_norm"])
    snaps = [s for s in (snap_a, snap_b) if s is not None and s.layers]
    if not snaps:
        return empty_figure(panel, title)
    data: Data = []
    ys = []
    for run, snap, label, color in zip("AB", (snap_a, snap_b), labels, RUN_COLORS,
                                       strict=True):
        if snap is None or not snap.layers:
            continue
        y, _, _ = clip_log([getattr(la, metric) for la in snap.layers])
        ys.append(y)
        data.append(dict(type="bar", x=np.array([la.index for la in snap.layers]), y=y,
                         name=f"{run}: {short_label(label)} (step {snap.step})",
                         marker=dict(color=color, line=dict(width=0)),
                         hovertemplate=f"{run}: layer %{{x}}<br>%{{y:.3g}}<extra></extra>"))
    lo, hi = _bar_range(ys, fixed_range)
    shapes, notes = _zones(lo, hi)
    longest = max(snaps, key=lambda s: len(s.layers))
    return figure(panel, f"{title} · A vs B", data, dict(
        xaxis=_layer_axis(longest.layers), yaxis=log_axis(f"{ytitle}  (log scale)", lo, hi),
        barmode="group", bargap=0.2, bargroupgap=0.05, shapes=shapes, annotations=notes,
        legend=legend(**TOP_LEGEND), margin=dict(l=70, r=20, t=96, b=60, pad=2)))


def layer_curves_ab(hist_a: Sequence[Snapshot], hist_b: Sequence[Snapshot],
                    labels: tuple[str, str], attr: str = "delta_norm") -> go.Figure:
    """``attr`` of the first, middle and last hidden layer over the steps, both runs
    (colour = run, dash = layer), on a log axis."""
    panel = "speed_curves" if attr == "delta_norm" else "update_ratio"
    title = ("Speed of learning · A vs B" if attr == "delta_norm"
             else "Update : data ratio · A vs B")
    ytitle = "||dC/db||" if attr == "delta_norm" else "||ΔW|| / ||W||"
    data: Data = []
    ys = []
    for run, hist, label, color in zip("AB", (hist_a, hist_b), labels, RUN_COLORS,
                                       strict=True):
        if not hist or not hidden_layers(hist[-1]):
            continue
        hidden = hidden_layers(hist[-1])
        steps = np.array([s.step for s in hist], dtype=np.int64)
        per = [hidden_layers(s) for s in hist]
        for k, i in enumerate(pick(len(hidden), CURVE_LAYERS)):
            y, _, _ = clip_log([getattr(h[i], attr) if i < len(h) else float("nan")
                                for h in per])
            ys.append(y)
            dash = DASHES[min(k, len(DASHES) - 1)] if len(hidden) > 1 else "solid"
            data.append(dict(
                type="scatter", x=steps, y=y, mode="lines", line=dict(color=color, width=3,
                                                                      dash=dash),
                name=f"{run} {layer_label(hidden[i])}", legendgroup=run,
                legendgrouptitle=dict(text=f"{run}: {short_label(label)}") if k == 0 else None,
                hovertemplate=f"{run} {layer_label(hidden[i])}<br>step %{{x}}: %{{y:.3g}}"
                              "<extra></extra>"))
    if not data:
        return empty_figure(panel, title)
    for d in data:
        if d.get("legendgrouptitle") is None:
            d.pop("legendgrouptitle", None)
    must = (math.log10(KARPATHY),) if attr == "update_ratio" else ()
    lo, hi = decades(np.concatenate(ys), must, pad=0.3)
    layout: dict[str, Any] = dict(
        xaxis=axis("step"), yaxis=log_axis(f"{ytitle}  (log scale)", lo, hi),
        legend=legend(groupclick="toggleitem"))
    if attr == "update_ratio":
        layout["shapes"] = [hline(KARPATHY, GREY)]
        layout["annotations"] = [log_label("Karpathy's ~1e-3", math.log10(KARPATHY), GREY,
                                           above=True, x=0.01)]
    return figure(panel, title, data, layout)


def loss_curves_ab(hist_a: Sequence[Snapshot], hist_b: Sequence[Snapshot],
                   labels: tuple[str, str], log_y: bool = False) -> go.Figure:
    """Train loss (solid) and test accuracy (dotted, right axis) of both runs."""
    panel = "loss_curves"
    title = "Loss and accuracy · A vs B"
    data: Data = []
    has_acc = False
    for run, hist, label, color in zip("AB", (hist_a, hist_b), labels, RUN_COLORS,
                                       strict=True):
        if not hist:
            continue
        steps = np.array([s.step for s in hist], dtype=np.int64)
        y = np.array([s.loss for s in hist], dtype=np.float64)
        y = np.where(np.isfinite(y) & ((y > 0) | (not log_y)), y, np.nan)
        data.append(dict(type="scatter", x=steps, y=y, mode="lines",
                         name=f"{run}: {short_label(label)} · train loss",
                         line=dict(color=color, width=3),
                         hovertemplate=f"{run} step %{{x}}<br>train loss %{{y:.4g}}"
                                       "<extra></extra>"))
        acc = [s for s in hist if s.test_accuracy is not None]
        if acc:
            has_acc = True
            data.append(dict(
                type="scatter", x=np.array([s.step for s in acc], dtype=np.int64),
                y=np.array([s.test_accuracy for s in acc], dtype=np.float64), mode="lines",
                yaxis="y2", name=f"{run} · test acc.",
                line=dict(color=color, width=3, dash="dot"),
                hovertemplate=f"{run} step %{{x}}<br>test acc. %{{y:.3f}}<extra></extra>"))
    if not data:
        return empty_figure(panel, title)
    yaxis = axis("loss (log scale)" if log_y else "loss")
    yaxis.update(type="log", exponentformat="power") if log_y else yaxis.update(
        rangemode="tozero")
    layout: dict[str, Any] = dict(xaxis=axis("step"), yaxis=yaxis,
                                  legend=legend(**TOP_LEGEND),
                                  margin=dict(l=70, r=80 if has_acc else 20, t=110, b=60, pad=2))
    if has_acc:
        layout["yaxis2"] = axis("test accuracy (dotted)", overlaying="y", side="right",
                                range=[0, 1.02], showgrid=False,
                                tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    return figure(panel, title, data, layout)


def spectrum_ab(snap_a: Snapshot | None, snap_b: Snapshot | None,
                labels: tuple[str, str]) -> go.Figure:
    """The pooled weight singular values (log10) of both runs, overlaid histograms; for
    RNN / GRU the gradient reaching each time step, both runs."""
    panel = "spectrum"
    title = "Singular values (log10) · A vs B"
    pairs = [(r, s, lab, c) for r, s, lab, c in zip("AB", (snap_a, snap_b), labels, RUN_COLORS,
                                                    strict=True) if s is not None]
    if not pairs:
        return empty_figure(panel, title)
    if any(s.time_grad_norms is not None and len(s.time_grad_norms) for _, s, _, _ in pairs):
        data: Data = []
        ys = []
        for run, s, label, color in pairs:
            if s.time_grad_norms is None:
                continue
            g = np.asarray(s.time_grad_norms, dtype=np.float64)
            y, _, _ = clip_log(g)
            ys.append(y)
            data.append(dict(type="scatter", x=np.arange(1, g.size + 1), y=y, mode="lines",
                             name=f"{run}: {short_label(label)}", line=dict(color=color, width=3)))
        lo, hi = decades(np.concatenate(ys), pad=0.3)
        return figure(panel, "Gradient reaching each time step · A vs B", data, dict(
            xaxis=axis("time step t"), yaxis=log_axis("||dL/dh_t||  (log scale)", lo, hi),
            legend=legend(**TOP_LEGEND)))
    logs = []
    for _, s, _, _ in pairs:
        sv = [np.asarray(la.weight_singular_values, dtype=np.float64).ravel()
              for la in hidden_layers(s) if la.weight_singular_values is not None]
        w = np.concatenate(sv) if sv else np.zeros(0)
        logs.append(np.log10(w[np.isfinite(w) & (w > 0)]))
    if not any(v.size for v in logs):
        return empty_figure(panel, title, "No singular values in these snapshots")
    both = np.concatenate([*logs, [0.0]])
    lo, hi = float(both.min()), float(both.max())
    span = max(hi - lo, 1.0)
    edges = np.linspace(lo - 0.04 * span, hi + 0.04 * span, 41)
    centers = (edges[:-1] + edges[1:]) / 2
    data = []
    for (run, s, label, color), v in zip(pairs, logs, strict=True):
        if v.size:
            counts, _ = np.histogram(v, bins=edges)
            data.append(dict(type="bar", x=centers, y=counts / v.size,
                             width=float(edges[1] - edges[0]), opacity=0.55,
                             name=f"{run}: {short_label(label)} (step {s.spectrum_step or s.step})",
                             marker=dict(color=color, line=dict(width=0))))
    return figure(panel, title, data, dict(
        xaxis=axis("log10 singular value (weights)"),
        yaxis=axis("fraction of singular values", rangemode="tozero"),
        barmode="overlay", bargap=0.0, legend=legend(**TOP_LEGEND),
        shapes=[dict(type="line", xref="x", x0=0, x1=0, yref="paper", y0=0, y1=1,
                     line=dict(color=TEXT, width=2, dash="dash"))],
        margin=dict(l=70, r=20, t=96, b=60, pad=2)))


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: a run's label ("sigmoid, depth
    20, lr 0.5, ...") must fit a half-width panel's title and legend."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if " " in cut[limit // 2:]:                    # at a word boundary when there is one
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip(" ,;·:") + "…"


def retitle(fig: Any, prefix: str) -> Any:
    """Put ``prefix`` ("A: sigmoid") on a line of its own above a figure's title (a
    go.Figure or a raw dict), shortened to fit a half-width panel, the builder's title
    wrapped under it; the top margin and the title's pad grow by the lines added, so
    nothing is clipped."""
    head = short_label(prefix)
    if isinstance(fig, go.Figure):
        old = fig.layout.title.text or ""
        t = fig.layout.margin.t
    else:
        layout = fig.setdefault("layout", {})
        old = str(layout.setdefault("title", {}).get("text") or "")
        t = (layout.get("margin") or {}).get("t")
    text = f"{head}<br>{wrap_title(old)}" if old else head
    added = title_lines(text) - title_lines(old or " ")
    pad = TITLE_PAD_PX * (title_lines(text) - 1)
    margin_t = int(t if t is not None else 56) + TITLE_LINE_PX * added
    if isinstance(fig, go.Figure):
        fig.update_layout(title_text=text, title_pad_t=pad, margin_t=margin_t)
        return fig
    layout["title"]["text"] = text
    layout["title"]["pad"] = {**(layout["title"].get("pad") or {}), "t": pad}
    layout["margin"] = {**(layout.get("margin") or {}), "t": margin_t}
    return fig


# ---- seeds: median and quartiles -----------------------------------------------------------


def _fill(color: str, alpha: float = 0.22) -> str:
    """A translucent version of '#rrggbb' or 'rgb(r, g, b)' (the band under a line)."""
    if color.startswith("rgb("):
        return "rgba(" + color[4:-1] + f",{alpha})"
    return rgba(color, alpha)


def _band(x: np.ndarray, med: np.ndarray, q1: np.ndarray, q3: np.ndarray, color: str,
          name: str, group: str, log: bool = True, yaxis: str = "y") -> Data:
    """A shaded band from q1 to q3 and the median line over it."""
    def clean(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        return np.where(np.isfinite(a) & ((a > 0) | (not log)), a, np.nan)

    return [
        dict(type="scatter", x=x, y=clean(q3), mode="lines", line=dict(width=0),
             showlegend=False, legendgroup=group, hoverinfo="skip", yaxis=yaxis),
        dict(type="scatter", x=x, y=clean(q1), mode="lines", line=dict(width=0),
             fill="tonexty", fillcolor=_fill(color), showlegend=False,
             legendgroup=group, hoverinfo="skip", yaxis=yaxis),
        dict(type="scatter", x=x, y=clean(med), mode="lines", name=name, legendgroup=group,
             line=dict(color=color, width=3), yaxis=yaxis,
             hovertemplate=f"{name}<br>step %{{x}}: median %{{y:.3g}}<extra></extra>"),
    ]


def layer_curves_band(summary: SeedSummary, attr: str = "delta_norm", n_seeds: int = 0
                      ) -> go.Figure:
    """Median (line) and interquartile band across seeds of ``attr`` per hidden layer."""
    from app.charts.style import layer_colors

    panel = "speed_curves" if attr == "delta_norm" else "update_ratio"
    what = "Speed of learning" if attr == "delta_norm" else "Update : data ratio"
    title = f"{what} · {n_seeds} seeds"
    hidden = [la for la in summary.layers if la["name"] != "output"]
    if not len(summary.steps) or not hidden:
        return empty_figure(panel, title)
    idx = pick(len(hidden), 4)
    data: Data = []
    ys = []
    for i, color in zip(idx, layer_colors(len(idx)), strict=True):
        b = hidden[i][attr]
        ys += [b.q1, b.q3, b.median]
        data += _band(summary.steps, b.median, b.q1, b.q3, color, f"layer {hidden[i]['index']}",
                      f"l{i}")
    must = (math.log10(KARPATHY),) if attr == "update_ratio" else ()
    y = np.concatenate(ys)
    lo, hi = decades(np.where(y > 0, y, np.nan), must, pad=0.3)
    ytitle = "||dC/db||" if attr == "delta_norm" else "||ΔW|| / ||W||"
    return figure(panel, title, data, dict(
        xaxis=axis("step"), yaxis=log_axis(f"{ytitle}  (log; band q1–q3)", lo, hi),
        legend=legend(title=dict(text="hidden layer", font=dict(size=FONT_SIZE)))))


def loss_curves_band(summary: SeedSummary, n_seeds: int = 0) -> go.Figure:
    """Train loss and test accuracy across seeds: median line, interquartile band."""
    panel = "loss_curves"
    title = f"Loss and accuracy · {n_seeds} seeds"
    if not len(summary.steps):
        return empty_figure(panel, title)
    loss = summary.runs["loss"]
    data = _band(summary.steps, loss.median, loss.q1, loss.q3, BLUE, "train loss (median)",
                 "loss", log=False)
    acc = summary.runs.get("test_accuracy")
    has_acc = acc is not None and bool(np.isfinite(acc.median).any())
    if has_acc:
        ok = np.isfinite(acc.median)
        data += _band(summary.steps[ok], acc.median[ok], acc.q1[ok], acc.q3[ok], GREEN,
                      "test acc. (median)", "acc", log=False, yaxis="y2")
    layout: dict[str, Any] = dict(
        xaxis=axis("step"), yaxis=axis("loss (band q1–q3)", rangemode="tozero",
                                       title=dict(text="loss (band q1–q3)",
                                                  font=dict(size=AXIS_TITLE_SIZE, color=BLUE))),
        legend=legend(**TOP_LEGEND), margin=dict(l=70, r=80, t=84, b=60, pad=2))
    if has_acc:
        layout["yaxis2"] = axis("test accuracy", overlaying="y", side="right", range=[0, 1.02],
                                showgrid=False, tickvals=[0, 0.25, 0.5, 0.75, 1.0],
                                title=dict(text="test accuracy",
                                           font=dict(size=AXIS_TITLE_SIZE, color=GREEN)))
    return figure(panel, title, data, layout)


def gradient_bars_band(summary: SeedSummary, metric: str = "delta_norm", n_seeds: int = 0,
                       at: int = -1) -> go.Figure:
    """Per layer, the median across seeds at one step (the last by default) as a bar, with
    whiskers from q1 to q3."""
    panel = "gradient_bars"
    title, ytitle = _BAR_TITLES.get(metric, _BAR_TITLES["delta_norm"])
    if not len(summary.steps) or not summary.layers:
        return empty_figure(panel, title)
    step = int(summary.steps[at])
    x = np.array([la["index"] for la in summary.layers])
    med = np.array([la[metric].median[at] for la in summary.layers], dtype=np.float64)
    q1 = np.array([la[metric].q1[at] for la in summary.layers], dtype=np.float64)
    q3 = np.array([la[metric].q3[at] for la in summary.layers], dtype=np.float64)
    lo, hi = _bar_range([q1, q3, med], (1e-8, 1e4))
    shapes, notes = _zones(lo, hi)
    from app.charts.style import magnitude_colors

    data: Data = [dict(
        type="bar", x=x, y=med, name="median", showlegend=False,
        marker=dict(color=magnitude_colors(med), line=dict(width=0)),
        error_y=dict(type="data", symmetric=False, array=np.nan_to_num(q3 - med),
                     arrayminus=np.nan_to_num(med - q1), color=TEXT, thickness=2.5, width=8),
        customdata=np.stack([q1, q3], 1),
        hovertemplate="layer %{x}<br>median %{y:.3g}<br>q1 %{customdata[0]:.3g}, "
                      "q3 %{customdata[1]:.3g}<extra></extra>")]

    class _L:          # short_name / _layer_axis read .index and .name
        def __init__(self, d: dict) -> None:
            self.index, self.name = d["index"], d["name"]

    return figure(panel, f"{ytitle} per layer · {n_seeds} seeds, step {step}", data, dict(
        xaxis=_layer_axis([_L(d) for d in summary.layers]),
        yaxis=log_axis(f"{ytitle}  (median; q1–q3)", lo, hi),
        shapes=shapes, annotations=notes, showlegend=False,
        margin=dict(l=70, r=20, t=80, b=60, pad=2)))


__all__ = ["A_COLOR", "B_COLOR", "LOG10", "gradient_bars_ab", "gradient_bars_band",
           "layer_curves_ab", "layer_curves_band", "loss_curves_ab", "loss_curves_band",
           "retitle", "spectrum_ab"]
