"""The playground's curves over the run: each hidden layer's speed of learning and
update:data ratio, and the loss and accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.charts.base import (
    KARPATHY,
    MAX_LINES,
    Data,
    Layout,
    clip_log,
    decades,
    divergence_marks,
    empty_figure,
    figure,
    hidden_layers,
    hline,
    is_finite,
    layer_label,
    log_label,
    pick,
)
from app.charts.style import (
    AXIS_TITLE_SIZE,
    BLUE,
    FONT_SIZE,
    GREEN,
    GREY,
    TOP_LEGEND,
    axis,
    layer_colors,
    legend,
    log_axis,
)
from core.snapshot import Snapshot

# ---- 3. speed of learning over time ---------------------------------------------------------


def _line_figure(history: Sequence[Snapshot] | None, attr: str, panel: str, title: str,
                 ytitle: str, must: Sequence[float] = (),
                 extra: tuple[list[dict], list[dict]] = ([], [])) -> go.Figure:
    """Per hidden layer, ``attr`` against the step on a log axis (a subset if deep)."""
    if not history or not hidden_layers(history[-1]):
        return empty_figure(panel, title)
    steps = np.array([s.step for s in history], dtype=np.int64)
    hidden = hidden_layers(history[-1])
    idx = pick(len(hidden), MAX_LINES)
    colors = layer_colors(len(idx))
    data: Data = []
    ys = []
    mode = "lines+markers" if len(history) <= 40 else "lines"
    per_snap = [hidden_layers(s) for s in history]          # once per snapshot, not per line
    for i, color in zip(idx, colors, strict=True):
        vals = [getattr(h[i], attr) if i < len(h) else float("nan") for h in per_snap]
        y, zero, _ = clip_log(vals)
        ys.append(y)
        name = layer_label(hidden[i]) + (" (now 0)" if zero[-1] else "")
        data.append(dict(
            type="scatter", x=steps, y=y, mode=mode, name=name,
            line=dict(color=color, width=3), marker=dict(size=6, color=color),
            hovertemplate=f"{layer_label(hidden[i])}<br>step %{{x}}: %{{y:.3g}}"
                          "<extra></extra>"))
    lo, hi = decades(np.concatenate(ys), must, pad=0.3)
    legend_title = "hidden layer" if len(idx) == len(hidden) else \
        f"{len(idx)} of {len(hidden)} layers"
    shapes, annotations = divergence_marks(history)
    return figure(panel, title, data, dict(
        xaxis=axis("step"), yaxis=log_axis(f"{ytitle}  (log scale)", lo, hi),
        legend=legend(title=dict(text=legend_title, font=dict(size=FONT_SIZE))),
        shapes=shapes + extra[0], annotations=annotations + extra[1],
    ))


def speed_curves(history: Sequence[Snapshot] | None) -> go.Figure:
    """Nielsen's speed-of-learning plot: ||dC/db|| of each hidden layer vs step (log y).
    More than ``MAX_LINES`` layers: first, last and evenly spaced ones (legend title says)."""
    return _line_figure(history, "delta_norm", "speed_curves",
                        "Speed of learning per hidden layer", "||dC/db||")


# ---- 4. loss and accuracy ----------------------------------------------------------------


def loss_curves(history: Sequence[Snapshot] | None, log_y: bool = False) -> go.Figure:
    """Train loss, test loss (if measured) and train/test accuracy (right axis, 0..1)."""
    panel = "loss_curves"
    title = "Loss and accuracy"
    if not history:
        return empty_figure(panel, title)

    def series(attr: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) at the snapshots that measured ``attr``. Test metrics are measured
        only every ``eval_every`` steps (None in between): those snapshots are left out, not
        drawn as gaps, so the test line stays a line. A measured NaN/inf stays a gap."""
        measured = [s for s in history if getattr(s, attr) is not None]
        a = np.array([getattr(s, attr) if is_finite(getattr(s, attr)) else np.nan
                      for s in measured], dtype=np.float64)
        if log_y and "loss" in attr:
            a = np.where(a > 0, a, np.nan)
        return np.array([s.step for s in measured], dtype=np.int64), a

    mode = "lines+markers" if len(history) <= 40 else "lines"
    x, y = series("loss")
    data: Data = [dict(type="scatter", x=x, y=y, mode=mode, name="train loss",
                       line=dict(color=BLUE, width=3), marker=dict(size=6),
                       hovertemplate="step %{x}<br>train loss %{y:.4g}<extra></extra>")]
    if any(s.test_loss is not None for s in history):
        x, y = series("test_loss")
        data.append(dict(type="scatter", x=x, y=y, mode=mode,
                         name="test loss", line=dict(color=BLUE, width=3, dash="dash"),
                         marker=dict(size=6, symbol="square"),
                         hovertemplate="step %{x}<br>test loss %{y:.4g}<extra></extra>"))
    has_acc = False
    for attr, name, dash, sym in (("train_accuracy", "train acc.", "solid", "circle"),
                                  ("test_accuracy", "test acc.", "dash", "square")):
        if any(getattr(s, attr) is not None for s in history):
            has_acc = True
            x, y = series(attr)
            data.append(dict(
                type="scatter", x=x, y=y, mode=mode, name=name, yaxis="y2",
                line=dict(color=GREEN, width=3, dash=dash), marker=dict(size=6, symbol=sym),
                hovertemplate=f"step %{{x}}<br>{name} %{{y:.3f}}<extra></extra>"))
    yaxis = axis("loss (log scale)" if log_y else "loss",
                  title=dict(text="loss (log scale)" if log_y else "loss",
                             font=dict(size=AXIS_TITLE_SIZE, color=BLUE)))
    if log_y:
        yaxis.update(type="log", exponentformat="power")
    else:
        yaxis.update(rangemode="tozero")
    shapes, annotations = divergence_marks(history)
    layout: Layout = dict(
        xaxis=axis("step"), yaxis=yaxis, legend=legend(**TOP_LEGEND),
        shapes=shapes, annotations=annotations,
        margin=dict(l=70, r=80 if has_acc else 20, t=84, b=60, pad=2),
    )
    if has_acc:
        layout["yaxis2"] = axis(
            "accuracy", overlaying="y", side="right", range=[0, 1.02], showgrid=False,
            tickvals=[0, 0.25, 0.5, 0.75, 1.0],
            title=dict(text="accuracy", font=dict(size=AXIS_TITLE_SIZE, color=GREEN)))
    return figure(panel, title, data, layout)


# ---- 8. update:data ratio ------------------------------------------------------------------


def update_ratio(history: Sequence[Snapshot] | None) -> go.Figure:
    """Karpathy's update:data ratio ||lr * grad W|| / ||W|| per hidden layer over time
    (log y), with a dashed reference line at 1e-3."""
    k = math.log10(KARPATHY)
    return _line_figure(history, "update_ratio", "update_ratio", "Update : data ratio per layer",
                        "||ΔW|| / ||W||", must=(k,),
                        extra=([hline(KARPATHY, GREY)], [log_label("Karpathy's ~1e-3", k, GREY,
                                                          above=True, x=0.01)]))
