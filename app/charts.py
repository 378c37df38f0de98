"""Pure Plotly builders: Snapshot(s) in, ``go.Figure`` out. No streamlit, no torch.

Every figure uses ``template="none"`` plus the light, large-type style below (a teacher
projects these in a lecture hall), sets every axis title, and carries a stable
``uirevision`` per panel so that zoom and hover survive in-place updates
(``app.stream_chart``). NumPy arrays go in as-is: plotly base64-encodes them, which keeps
a depth-20 figure's JSON well under 20 KB. Histograms arrive pre-binned.

Each builder assembles plain dicts and builds the figure in one go WITHOUT plotly's
validation (1-10 ms instead of 10-50 ms; ``make_subplots`` / ``update_*`` cost more still),
because the page redraws several panels a second; validation is then switched back on, so a
caller's later ``fig.update_layout(...)`` behaves as usual. tests/test_charts.py validates
every builder's output.

Edge cases never raise: an empty history gives a "Press ▶ Play to start" figure;
NaN/inf (a diverged run) become gaps plus a red "NaN / inf" mark; exact zeros on a log
axis are clipped to ``ZERO_FLOOR`` (below every axis range, so the bar or line drops out
of sight) and marked "0".
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from core.snapshot import LayerStats, Snapshot

# ---- thresholds (D2L's healthy band) and style -------------------------------------------
VANISH = 1e-6            # below: "vanishing"
EXPLODE = 1e3            # above: "exploding"
KARPATHY = 1e-3          # Karpathy's rule-of-thumb update:data ratio
ZERO_FLOOR = 1e-30       # exact zeros are drawn here on log axes (and marked "0")
MAX_LINES = 8            # line charts show at most this many layers
MAX_HEAT_ROWS = 64       # heatmaps show at most this many layers (evenly spaced)
LINE_MODE_MAX_DEPTH = 6  # histograms: overlaid lines up to this depth, a heatmap above
SCATTER_ABOVE = 100      # gradient_bars: a line with markers instead of bars above this
#: Validate figures on construction? Off: plotly's validation costs 10-50 ms a figure (and
#: the page redraws several a second); tests/test_charts.py validates every builder instead.
#: Either way, later edits by callers (fig.update_layout ...) are validated as usual.
VALIDATE = False

FONT_SIZE = 16
TITLE_SIZE = 20
AXIS_TITLE_SIZE = 18
TEXT = "#1f1f1f"
GRID = "#e3e3e3"
AXIS_LINE = "#8a8a8a"
BLUE = "#2166ac"
GREEN = "#1a9850"
ORANGE = "#e08214"
RED = "#c62828"
GREY = "#6b6b6b"
VANISH_FILL = "rgba(33,102,172,0.10)"
EXPLODE_FILL = "rgba(198,40,40,0.10)"
_LOG10 = math.log(10.0)

#: gradient magnitude colour, on log10 of the value (cmin=C_MIN, cmax=C_MAX):
#: blue (vanishing, < 1e-6) -> green (healthy) -> red (exploding, > 1e3).
C_MIN, C_MAX = -10.0, 6.0


def _cpos(log10_value: float) -> float:
    return (log10_value - C_MIN) / (C_MAX - C_MIN)


MAGNITUDE_COLORSCALE: list[list[Any]] = [
    [0.0, BLUE], [_cpos(-6.0), BLUE], [_cpos(-4.5), "#66bd63"], [_cpos(-3.0), GREEN],
    [_cpos(1.0), GREEN], [_cpos(2.0), ORANGE], [_cpos(3.0), RED], [1.0, RED],
]


def magnitude_colors(values: Sequence[float] | np.ndarray) -> list[str]:
    """Hex colour of each gradient magnitude (blue < 1e-6, green healthy, red > 1e3);
    NaN (a gap) gets grey. Explicit colours, not numbers: plotly.js mishandles numeric bar
    colours on update (it logs "Invalid color specifier")."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v) & (v > 0)
    pos = np.clip((np.log10(np.where(ok, v, 1.0)) - C_MIN) / (C_MAX - C_MIN), 0.0, 1.0)
    out = []
    for c, good in zip(sample_colorscale(MAGNITUDE_COLORSCALE, list(pos)), ok, strict=True):
        r, g, b = (int(float(t)) for t in c[c.index("(") + 1 : -1].split(","))
        out.append(f"#{r:02x}{g:02x}{b:02x}" if good else "#9e9e9e")
    return out


CAPTIONS: dict[str, str] = {
    "gradient_bars": "Gradient size per layer on a log scale: blue bars have vanished "
                     "(< 1e-6), red ones explode (> 1e3), green ones can still learn.",
    "neuron_bars": "dC/db of the first six neurons of each hidden layer on one shared scale "
                   "(Nielsen): tiny bars near the input mean those neurons learn slowly.",
    "speed_curves": "Speed of learning ||dC/db|| of each hidden layer as training goes on "
                    "(log scale): the layers near the input sit lowest when gradients vanish.",
    "loss_curves": "Training and test loss (left axis) and accuracy (right axis, 0 to 1) "
                   "against the optimiser step.",
    "spectrum": "Singular values of the weights (and input-output Jacobian), log scale: mass "
                "far from sigma = 1 shrinks or blows up signals (the title says which step).",
    "activation_panel": "How each hidden layer's activations are distributed, and the fraction "
                        "of units stuck in the flat (saturated) part of the non-linearity.",
    "grad_hist_panel": "How the back-propagated gradients |dC/dz| are distributed in each layer "
                       "(log10): a histogram sliding left from layer to layer is vanishing.",
    "update_ratio": "Size of each update relative to the weights, per layer (log scale); "
                    "Karpathy's rule of thumb is about 1e-3: far below it nothing is learned.",
}

PLACEHOLDER_TEXT = "Press ▶ Play to start"

Data = list[dict[str, Any]]
Layout = dict[str, Any]


# ---- shared helpers -----------------------------------------------------------------------


def _axis(text: str, **kw: Any) -> dict[str, Any]:
    """A readable axis: title always set, light grid, visible axis line, big ticks."""
    d: dict[str, Any] = dict(
        title=dict(text=text, font=dict(size=AXIS_TITLE_SIZE)),
        tickfont=dict(size=FONT_SIZE), gridcolor=GRID, showgrid=True, zeroline=False,
        showline=True, linecolor=AXIS_LINE, ticks="outside", tickcolor=AXIS_LINE,
        automargin=True,
    )
    d.update(kw)
    return d


def _log_axis(title: str, lo: float, hi: float, **kw: Any) -> dict[str, Any]:
    """A log axis over [lo, hi] (log10 units, whole decades), labelled 10^n."""
    span = hi - lo
    dtick = 1 if span <= 8 else (2 if span <= 16 else (5 if span <= 40 else 10))
    return _axis(title, type="log", range=[lo, hi], dtick=dtick, exponentformat="power",
                 showexponent="all", **kw)


def _legend(**kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = dict(font=dict(size=FONT_SIZE), bgcolor="rgba(255,255,255,0.85)")
    d.update(kw)
    return d


_TOP_LEGEND = dict(orientation="h", x=0.0, y=1.0, xanchor="left", yanchor="bottom",
                   bgcolor="rgba(255,255,255,0)")


class RawFigure(dict):
    """A figure as the plain plotly dict ``{"data": [...], "layout": {...}}`` that a builder
    assembled, without plotly's Figure objects. Built only inside :func:`raw_figures`, for
    the live page, which never edits a figure and only serialises it (``app.stream_chart``):
    constructing a ``go.Figure``, even unvalidated, was a quarter of a redraw's Python time,
    and that Python shares the server's GIL with the training thread."""


_RAW = threading.local()


@contextlib.contextmanager
def raw_figures() -> Iterator[None]:
    """Within this block (on this thread) the builders return :class:`RawFigure` dicts.
    Their JSON is the same as the ``go.Figure``'s (tests/test_stream_chart.py checks it)."""
    prev = getattr(_RAW, "on", False)
    _RAW.on = True
    try:
        yield
    finally:
        _RAW.on = prev


def _figure(panel: str, title: str, data: Data, layout: Layout) -> go.Figure:
    """Our style, then the builder's layout on top, built without validation (VALIDATE);
    a :class:`RawFigure` inside :func:`raw_figures`."""
    full: Layout = dict(
        template="none",
        title=dict(text=title, font=dict(size=TITLE_SIZE), x=0.01, xanchor="left",
                   y=0.985, yanchor="top"),
        font=dict(size=FONT_SIZE, color=TEXT, family="Source Sans Pro, Arial, sans-serif"),
        paper_bgcolor="white", plot_bgcolor="white",
        margin=dict(l=70, r=20, t=56, b=60, pad=2),
        uirevision=panel,
        hoverlabel=dict(font=dict(size=FONT_SIZE)),
        legend=_legend(),
    )
    full.update(layout)
    if getattr(_RAW, "on", False):
        full["template"] = {}
        return RawFigure(data=data, layout=full)  # type: ignore[return-value]
    if VALIDATE:
        return go.Figure(dict(data=data, layout=full))
    full["template"] = {}  # what template="none" becomes, spelled so that it needs no validation
    fig = go.Figure(dict(data=data, layout=full), _validate=False)
    try:
        _validate_from_now_on(fig)
    except AttributeError:  # plotly's internals moved: pay for validation instead
        full["template"] = "none"
        return go.Figure(dict(data=data, layout=full))
    return fig


def _validate_from_now_on(fig: go.Figure) -> None:
    """Switch validation back on for the figure's whole object tree, so that a caller's
    ``fig.update_layout(title="...")`` etc. is checked and coerced as usual (plotly.js 3+
    ignores a bare-string title that an unvalidated figure would pass through)."""

    def walk(obj: Any) -> None:
        obj._validate = True
        for child in obj._compound_props.values():
            walk(child)
        for children in obj._compound_array_props.values():
            for child in children:
                walk(child)

    fig._validate = True
    walk(fig.layout)
    for trace in fig.data:
        walk(trace)


def empty_figure(panel: str, title: str = "", message: str = PLACEHOLDER_TEXT) -> go.Figure:
    """A blank panel with a centred message (before the first snapshot, or nothing to show)."""
    return _figure(panel, title, [], dict(
        xaxis=dict(visible=False), yaxis=dict(visible=False), showlegend=False,
        annotations=[dict(text=message, x=0.5, y=0.5, xref="paper", yref="paper",
                          showarrow=False, font=dict(size=22, color=GREY))],
    ))


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


def _clip_log(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a log axis: (y, is_zero, is_bad). Non-finite or negative -> NaN (a gap);
    |v| <= ZERO_FLOOR -> ZERO_FLOOR."""
    v = np.array([x if _finite(x) else np.nan for x in values], dtype=np.float64)
    bad = ~np.isfinite(v) | (v < 0)
    zero = ~bad & (v <= ZERO_FLOOR)
    y = v.copy()
    y[bad] = np.nan
    y[zero] = ZERO_FLOOR
    return y, zero, bad


def _decades(y: np.ndarray, must: Sequence[float] = (), pad: float = 0.25,
             default: tuple[float, float] = (-8.0, 4.0)) -> tuple[float, float]:
    """log10 range in whole decades covering the drawable values of ``y`` and ``must``
    (already log10). Whole decades keep the range still from frame to frame."""
    a = np.asarray(y, dtype=np.float64).ravel()
    a = a[np.isfinite(a) & (a > ZERO_FLOOR)]
    vals = list(np.log10(a)) + list(must)
    if not vals:
        return default
    lo, hi = math.floor(min(vals) - pad), math.ceil(max(vals) + pad)
    if hi - lo < 2:
        lo, hi = lo - 1, hi + 1
    return float(lo), float(hi)


def _hidden(snap: Snapshot) -> list[LayerStats]:
    return [layer for layer in snap.layers if layer.name != "output"]


def _pick(n: int, k: int) -> list[int]:
    """At most k indices of range(n), evenly spaced, always the first and the last."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, max(k, 2))})


def _layer_colors(n: int) -> list[str]:
    """Ordered colours, input side (dark blue-violet) to output side (orange)."""
    return list(_layer_colors_cached(n))


@functools.lru_cache(maxsize=256)
def _layer_colors_cached(n: int) -> tuple[str, ...]:
    return tuple(sample_colorscale("Plasma", list(np.linspace(0.0, 0.8, n)) if n > 1
                                   else [0.0]))


def _short(layer: LayerStats) -> str:
    return "out" if layer.name == "output" else str(layer.index)


def _layer_label(layer: LayerStats) -> str:
    if layer.name == "output":
        return "output"
    if layer.name.startswith("hidden"):
        return f"layer {layer.index}"
    return layer.name


def _marks(x: np.ndarray, zero: np.ndarray, bad: np.ndarray, lo: float, hi: float,
           xaxis: str = "x", yaxis: str = "y") -> Data:
    """Traces marking exact zeros ("0" near the bottom) and NaN/inf (a red x mid-height)."""
    out: Data = []
    if zero.any():
        n = int(zero.sum())
        out.append(dict(
            type="scatter", x=x[zero], y=np.full(n, 10 ** (lo + 0.12)), mode="markers+text",
            text=["0"] * n, textposition="top center", name="exactly 0",
            marker=dict(symbol="triangle-down", size=12, color=BLUE),
            textfont=dict(size=FONT_SIZE, color=BLUE), xaxis=xaxis, yaxis=yaxis,
            hovertemplate="%{x}: exactly 0<extra></extra>"))
    if bad.any():
        n = int(bad.sum())
        out.append(dict(
            type="scatter", x=x[bad], y=np.full(n, 10 ** ((lo + hi) / 2)), mode="markers",
            name="NaN / inf", marker=dict(symbol="x", size=14, color=RED), xaxis=xaxis,
            yaxis=yaxis, hovertemplate="%{x}: NaN / inf<extra></extra>"))
    return out


def _saturation_colors(sat: np.ndarray) -> list[str]:
    """Grey (none saturated) -> orange -> red (all saturated); explicit colours for bars."""
    pos = list(np.clip(np.nan_to_num(sat), 0.0, 1.0))
    return sample_colorscale([[0, "#9e9e9e"], [0.5, ORANGE], [1, RED]], pos)


def _hline(y: float, color: str, dash: str = "dash") -> dict[str, Any]:
    """A full-width horizontal line at data value ``y``. NB plotly.js >= 3: SHAPES on a log
    axis take data values, while ANNOTATIONS still take log10 values (see ``_label``)."""
    return dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                line=dict(color=color, width=2, dash=dash))


def _label(text: str, y_log: float, color: str, above: bool, x: float = 0.995) -> dict[str, Any]:
    """A label at log10 value ``y_log`` of a log y axis (annotations take logs)."""
    return dict(text=text, xref="paper", x=x, xanchor="right" if x > 0.5 else "left",
                yref="y", y=y_log, yanchor="bottom" if above else "top", showarrow=False,
                font=dict(size=FONT_SIZE, color=color), bgcolor="rgba(255,255,255,0.75)")


def _diverged_step(history: Sequence[Snapshot]) -> int | None:
    for s in history:
        if s.diverged:
            return s.step
    return None


def _divergence_marks(history: Sequence[Snapshot]) -> tuple[list[dict], list[dict]]:
    """(shapes, annotations): a dotted red line at the step where the run diverged."""
    step = _diverged_step(history)
    if step is None:
        return [], []
    return (
        [dict(type="line", xref="x", x0=step, x1=step, yref="paper", y0=0, y1=1,
              line=dict(color=RED, width=2, dash="dot"))],
        [dict(text=f"diverged at step {step}", xref="x", x=step, yref="paper", y=0.98,
              xanchor="right", yanchor="top", showarrow=False,
              font=dict(size=FONT_SIZE, color=RED), bgcolor="rgba(255,255,255,0.8)")],
    )


def _step_title(title: str, snap: Snapshot) -> str:
    text = f"{title} · step {snap.step}"
    return text + " (diverged)" if snap.diverged else text


# ---- 1. gradient bars ---------------------------------------------------------------------

_METRICS = {
    "delta_norm": ("Gradient per layer ||dC/db||", "||dC/db||"),
    "weight_grad_norm": ("Gradient per layer ||dC/dW||", "||dC/dW||"),
    "bias_grad_norm": ("Bias gradient per layer ||dC/db||", "||dC/db||"),
}


def gradient_bars(
    snap: Snapshot | None,
    metric: str = "delta_norm",
    fixed_range: tuple[float, float] | None = (1e-8, 1e4),
) -> go.Figure:
    """One bar per layer (hidden1..output) of ``metric`` on a log axis, coloured from
    vanishing (blue, < 1e-6) through healthy (green) to exploding (red, > 1e3), with the two
    zones shaded and labelled. ``fixed_range`` (values, not logs) keeps the axis still from
    frame to frame and grows to whole decades when data fall outside it; None follows the
    data. Above ``SCATTER_ABOVE`` layers, a line with coloured markers replaces the bars."""
    panel = "gradient_bars"
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {', '.join(_METRICS)}, got {metric!r}")
    title, ytitle = _METRICS[metric]
    if snap is None or not snap.layers:
        return empty_figure(panel, title)
    layers = snap.layers
    x = np.array([layer.index for layer in layers], dtype=np.int32)
    y, zero, bad = _clip_log([getattr(layer, metric) for layer in layers])
    must = [math.log10(VANISH), math.log10(EXPLODE)]
    if fixed_range is not None:
        must += [math.log10(max(v, ZERO_FLOOR)) for v in fixed_range]
        lo, hi = _decades(y, must, pad=0.0)
    else:
        lo, hi = _decades(y, must, pad=0.5)
    hover = "layer %{x}<br>%{y:.3g}<extra></extra>"
    if len(layers) > SCATTER_ABOVE:
        # numbers + colorscale: 1000 hex strings would be 10 KB of JSON
        color = np.log10(np.where(np.isfinite(y), y, 1.0)).astype(np.float32)
        main = dict(type="scatter", x=x, y=y, mode="lines+markers", name=ytitle,
                    showlegend=False,
                    line=dict(color="#a0a0a0", width=1.5),
                    marker=dict(size=5, color=color, colorscale=MAGNITUDE_COLORSCALE,
                                cmin=C_MIN, cmax=C_MAX, showscale=False),
                    hovertemplate=hover)
    else:
        main = dict(type="bar", x=x, y=y, name=ytitle, showlegend=False,
                    marker=dict(color=magnitude_colors(y), line=dict(width=0)),
                    hovertemplate=hover)
    v_log, e_log = math.log10(VANISH), math.log10(EXPLODE)
    shapes = [
        dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=10.0 ** lo, y1=VANISH,
             fillcolor=VANISH_FILL, line=dict(width=0), layer="below"),
        dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=EXPLODE, y1=10.0 ** hi,
             fillcolor=EXPLODE_FILL, line=dict(width=0), layer="below"),
        _hline(VANISH, BLUE), _hline(EXPLODE, RED),
    ]
    annotations = [_label("vanishing < 1e-6", v_log, BLUE, above=False),
                   _label("exploding > 1e3", e_log, RED, above=True)]
    if len(layers) <= 12:  # every layer labelled, the last one "out"
        xaxis = _axis("layer (1 = next to the input)", tickmode="array", tickvals=x,
                      ticktext=[_short(la) for la in layers])
    else:  # plotly's own ticks: they stay readable in a half-width column and when zoomed
        xaxis = _axis(f"layer (1 = next to the input, {len(layers)} = output)",
                      range=[0.4, float(x[-1]) + 0.6], nticks=8)
    return _figure(panel, _step_title(title, snap), [main, *_marks(x, zero, bad, lo, hi)], dict(
        xaxis=xaxis, yaxis=_log_axis(f"{ytitle}  (log scale)", lo, hi),
        shapes=shapes, annotations=annotations, showlegend=bool(zero.any() or bad.any()),
        bargap=0.15 if len(layers) <= 40 else 0.0, legend=_legend(**_TOP_LEGEND),
        margin=dict(l=70, r=20, t=80, b=60, pad=2),
    ))


# ---- 2. Nielsen's neuron bars -------------------------------------------------------------


def neuron_bars(snap: Snapshot | None, max_layers: int = 6) -> go.Figure:
    """Nielsen's picture: dC/db of the first six neurons of each hidden layer, grouped by
    layer on ONE linear y scale, so the input side's tiny bars stand out next to the output
    side's. Each group is labelled with its layer's ||δ||. More than ``max_layers`` hidden
    layers: the first, the last and evenly spaced ones. (Grouped bars, not one subplot per
    layer: six subplots are unreadable in a half-width column.)"""
    panel = "neuron_bars"
    title = "dC/db per neuron"
    hidden = [la for la in _hidden(snap) if la.delta_top] if snap is not None else []
    if snap is None or not hidden:
        return empty_figure(panel, title)
    shown = [hidden[i] for i in _pick(len(hidden), max(1, max_layers))]
    n = len(shown)
    n_neurons = max(len(la.delta_top) for la in shown)
    v = np.full((n, n_neurons), np.nan)                      # (layers, neurons)
    for k, layer in enumerate(shown):
        v[k, : len(layer.delta_top)] = [x if _finite(x) else np.nan for x in layer.delta_top]
    pos = np.arange(n, dtype=np.int32)
    data: Data = []
    for j in range(n_neurons):
        col = v[:, j]
        data.append(dict(
            type="bar", x=pos, y=col, name=f"neuron {j + 1}", showlegend=False,
            marker=dict(color=[BLUE if x >= 0 else ORANGE for x in np.nan_to_num(col)],
                        line=dict(width=0)),
            customdata=[la.index for la in shown],
            hovertemplate=f"layer %{{customdata}}, neuron {j + 1}<br>dC/db = %{{y:.3g}}"
                          "<extra></extra>"))
    bad = [k for k, la in enumerate(shown) if not np.isfinite(v[k, : len(la.delta_top)]).all()]
    if bad:
        data.append(dict(
            type="scatter", x=np.array(bad, dtype=np.int32), y=np.zeros(len(bad)),
            mode="markers", name="NaN / inf", showlegend=False,
            marker=dict(symbol="x", size=16, color=RED), hovertemplate="NaN / inf<extra></extra>"))
    finite = np.abs(v[np.isfinite(v)])
    m = float(finite.max()) * 1.1 if finite.size and finite.max() > 0 else 1.0
    annotations = [dict(text="||δ||", xref="paper", x=0.0, xanchor="right", yref="paper", y=1.0,
                        yanchor="bottom", showarrow=False, font=dict(size=FONT_SIZE, color=GREY))]
    for k, layer in enumerate(shown):
        norm = _short_number(layer.delta_norm)
        annotations.append(dict(text=norm, xref="x", x=int(k), yref="paper", y=1.0,
                                yanchor="bottom", showarrow=False,
                                font=dict(size=FONT_SIZE, color=GREY)))
    xtitle = "hidden layer" if n == len(hidden) else f"hidden layer ({n} of {len(hidden)})"
    return _figure(panel, _step_title(title, snap), data, dict(
        xaxis=_axis(f"{xtitle}: neurons 1-{n_neurons}", tickmode="array", tickvals=pos,
                    ticktext=[str(la.index) for la in shown], showgrid=False,
                    range=[-0.5, n - 0.5]),
        yaxis=_axis("dC/db", range=[-m, m], zeroline=True, zerolinecolor=AXIS_LINE,
                    zerolinewidth=1.5, exponentformat="power"),
        annotations=annotations, barmode="group", bargap=0.25, bargroupgap=0.05,
        showlegend=False, margin=dict(l=80, r=20, t=84, b=60, pad=2),
    ))


def _short_number(x: Any) -> str:
    """3.6e-05 -> '3.6e-5', 0.087 -> '0.087', NaN -> 'NaN' (labels in narrow columns)."""
    if not _finite(x):
        return "NaN"
    x = float(x)
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.2g}"
    mant, exp = f"{x:.1e}".split("e")
    return f"{mant}e{int(exp)}"


# ---- 3. speed of learning over time ---------------------------------------------------------


def _line_figure(history: Sequence[Snapshot] | None, attr: str, panel: str, title: str,
                 ytitle: str, must: Sequence[float] = (),
                 extra: tuple[list[dict], list[dict]] = ([], [])) -> go.Figure:
    """Per hidden layer, ``attr`` against the step on a log axis (a subset if deep)."""
    if not history or not _hidden(history[-1]):
        return empty_figure(panel, title)
    steps = np.array([s.step for s in history], dtype=np.int64)
    hidden = _hidden(history[-1])
    idx = _pick(len(hidden), MAX_LINES)
    colors = _layer_colors(len(idx))
    data: Data = []
    ys = []
    mode = "lines+markers" if len(history) <= 40 else "lines"
    per_snap = [_hidden(s) for s in history]          # once per snapshot, not per line
    for i, color in zip(idx, colors, strict=True):
        vals = [getattr(h[i], attr) if i < len(h) else float("nan") for h in per_snap]
        y, zero, _ = _clip_log(vals)
        ys.append(y)
        name = _layer_label(hidden[i]) + (" (now 0)" if zero[-1] else "")
        data.append(dict(
            type="scatter", x=steps, y=y, mode=mode, name=name,
            line=dict(color=color, width=3), marker=dict(size=6, color=color),
            hovertemplate=f"{_layer_label(hidden[i])}<br>step %{{x}}: %{{y:.3g}}"
                          "<extra></extra>"))
    lo, hi = _decades(np.concatenate(ys), must, pad=0.3)
    legend_title = "hidden layer" if len(idx) == len(hidden) else \
        f"{len(idx)} of {len(hidden)} layers"
    shapes, annotations = _divergence_marks(history)
    return _figure(panel, title, data, dict(
        xaxis=_axis("step"), yaxis=_log_axis(f"{ytitle}  (log scale)", lo, hi),
        legend=_legend(title=dict(text=legend_title, font=dict(size=FONT_SIZE))),
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
        a = np.array([getattr(s, attr) if _finite(getattr(s, attr)) else np.nan
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
    yaxis = _axis("loss (log scale)" if log_y else "loss",
                  title=dict(text="loss (log scale)" if log_y else "loss",
                             font=dict(size=AXIS_TITLE_SIZE, color=BLUE)))
    if log_y:
        yaxis.update(type="log", exponentformat="power")
    else:
        yaxis.update(rangemode="tozero")
    shapes, annotations = _divergence_marks(history)
    layout: Layout = dict(
        xaxis=_axis("step"), yaxis=yaxis, legend=_legend(**_TOP_LEGEND),
        shapes=shapes, annotations=annotations,
        margin=dict(l=70, r=80 if has_acc else 20, t=84, b=60, pad=2),
    )
    if has_acc:
        layout["yaxis2"] = _axis(
            "accuracy", overlaying="y", side="right", range=[0, 1.02], showgrid=False,
            tickvals=[0, 0.25, 0.5, 0.75, 1.0],
            title=dict(text="accuracy", font=dict(size=AXIS_TITLE_SIZE, color=GREEN)))
    return _figure(panel, title, data, layout)


# ---- 5. singular-value spectrum (or the RNN's gradient through time) ---------------------


def spectrum(snap: Snapshot | None) -> go.Figure:
    """Histogram (pre-binned) of log10 singular values of all hidden weight matrices, pooled,
    and of the input-output Jacobian when present (its ``jacobian_log_singular_values`` are
    natural logs), with a line at sigma = 1. RNN/GRU snapshots (``time_grad_norms``) show
    ||dL/dh_t|| against t instead: "gradient reaching each time step"."""
    panel = "spectrum"
    if snap is None:
        return empty_figure(panel, "Singular values")
    if snap.time_grad_norms is not None and len(snap.time_grad_norms):
        return _time_grads(snap)
    title = "Singular values (log10)"
    pooled = [np.asarray(la.weight_singular_values, dtype=np.float64).ravel()
              for la in _hidden(snap) if la.weight_singular_values is not None]
    w = np.concatenate(pooled) if pooled else np.zeros(0)
    lw = np.log10(w[np.isfinite(w) & (w > 0)])
    if snap.jacobian_log_singular_values is not None:
        lj = np.asarray(snap.jacobian_log_singular_values, dtype=np.float64).ravel() / _LOG10
    elif snap.jacobian_singular_values is not None:
        j = np.asarray(snap.jacobian_singular_values, dtype=np.float64).ravel()
        lj = np.log10(j[np.isfinite(j) & (j > 0)])
    else:
        lj = np.zeros(0)
    lj = lj[np.isfinite(lj)]
    if lw.size == 0 and lj.size == 0:
        return empty_figure(panel, _step_title(title, snap), "No singular values in this snapshot")
    both = np.concatenate([lw, lj, [0.0]])
    lo, hi = float(both.min()), float(both.max())
    span = max(hi - lo, 1.0)
    lo, hi = lo - 0.04 * span, hi + 0.04 * span
    edges = np.linspace(lo, hi, 51)
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    width = float(edges[1] - edges[0])
    data: Data = []
    for values, name, color, short in ((lw, "weight matrices", BLUE, "weights"),
                                       (lj, "input-output Jacobian", ORANGE, "Jacobian")):
        if values.size:
            counts, _ = np.histogram(values, bins=edges)
            data.append(dict(
                type="bar", x=centers, y=(counts / values.size).astype(np.float32),
                width=width, name=f"{name} ({values.size})", opacity=0.75,
                marker=dict(color=color, line=dict(width=0)),
                hovertemplate=f"log10 σ ≈ %{{x:.2f}}<br>fraction %{{y:.3f}}<extra>{short}"
                              "</extra>"))
    return _figure(panel, _spectrum_title(title, snap), data, dict(
        xaxis=_axis("log10 singular value", range=[lo, hi]),
        yaxis=_axis("fraction of singular values", rangemode="tozero"),
        barmode="overlay", bargap=0.0, legend=_legend(**_TOP_LEGEND),
        shapes=[dict(type="line", xref="x", x0=0, x1=0, yref="paper", y0=0, y1=1,
                     line=dict(color=TEXT, width=2, dash="dash"))],
        annotations=[dict(text=" σ = 1", xref="x", x=0, yref="paper", y=0.98, xanchor="left",
                          yanchor="top", showarrow=False, font=dict(size=FONT_SIZE))],
        margin=dict(l=70, r=20, t=84, b=60, pad=2),
    ))


def _spectrum_title(title: str, snap: Snapshot) -> str:
    """Spectra are recomputed every ``spectrum_every`` steps and carried forward in between:
    the title names the step they were measured at (so the figure only changes with them)."""
    measured = snap.spectrum_step
    if measured is None:
        return _step_title(title, snap)
    text = f"{title} · from step {measured}"
    return text + " (diverged)" if snap.diverged else text


def _time_grads(snap: Snapshot) -> go.Figure:
    g = np.asarray(snap.time_grad_norms, dtype=np.float64).ravel()
    t = np.arange(1, g.size + 1, dtype=np.int32)
    y, zero, bad = _clip_log(g)
    lo, hi = _decades(y, pad=0.3)
    main = dict(type="scatter", x=t, y=y, mode="lines+markers" if g.size <= 60 else "lines",
                name="||dL/dh_t||", line=dict(color=BLUE, width=3),
                marker=dict(size=7, color=BLUE),
                hovertemplate="t = %{x}<br>||dL/dh_t|| = %{y:.3g}<extra></extra>")
    return _figure("spectrum", _step_title("Gradient reaching each time step", snap),
                   [main, *_marks(t, zero, bad, lo, hi)], dict(
        xaxis=_axis(f"time step t (the loss is read at t = {g.size})"),
        yaxis=_log_axis("||dL/dh_t||  (log scale)", lo, hi),
        showlegend=bool(zero.any() or bad.any()), legend=_legend(**_TOP_LEGEND),
    ))


# ---- 6./7. histograms per layer ------------------------------------------------------------


def _hist_figure(snap: Snapshot | None, panel: str, title: str, attr: str,
                 edges: np.ndarray | None, xtitle: str, with_saturation: bool,
                 vlines: Sequence[tuple[float, str, str]] = ()) -> go.Figure:
    hidden = [la for la in _hidden(snap) if getattr(la, attr) is not None] if snap else []
    if snap is None or not hidden or edges is None or len(edges) < 2:
        return empty_figure(panel, title)
    edges = np.asarray(edges, dtype=np.float64)
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    fracs = []
    for la in hidden:
        c = np.asarray(getattr(la, attr), dtype=np.float64)[: len(centers)]
        c = np.where(np.isfinite(c), c, 0.0)
        fracs.append(c / c.sum() if c.sum() > 0 else np.zeros_like(c))
    lines_mode = len(hidden) <= LINE_MODE_MAX_DEPTH
    layer_idx = np.array([la.index for la in hidden], dtype=np.int32)
    main_domain = [0.0, 0.72] if with_saturation else [0.0, 1.0]
    data: Data = []
    if lines_mode:
        for la, f, color in zip(hidden, fracs, _layer_colors(len(hidden)), strict=True):
            data.append(dict(
                type="scatter", x=centers, y=f.astype(np.float32), mode="lines",
                line=dict(color=color, width=3, shape="hvh"), name=_layer_label(la),
                hovertemplate=f"{_layer_label(la)}<br>%{{x:.2f}}: %{{y:.3f}}<extra></extra>"))
        yaxis = _axis("fraction of units", rangemode="tozero")
    else:
        rows = _pick(len(hidden), MAX_HEAT_ROWS)
        z = np.stack([fracs[i] for i in rows]).astype(np.float32)
        # colour range from the interior bins: the edge bins collect spikes (dead ReLUs
        # at 0, saturated tanh at +-1, clipped outliers) that would turn the rest dark;
        # they saturate to the top colour instead (the saturation bars tell that story)
        inner = z[:, 1:-1] if z.shape[1] > 2 else z
        zmax = float(inner.max()) if inner.size and inner.max() > 0 else float(z.max() or 1.0)
        data.append(dict(
            type="heatmap", x=centers, y=layer_idx[rows], z=z, zmin=0.0,
            zmax=max(zmax, 1e-6), colorscale="Viridis", name="fraction",
            colorbar=dict(title=dict(text="fraction", font=dict(size=FONT_SIZE)),
                          tickfont=dict(size=FONT_SIZE), len=1.0, thickness=12,
                          x=1.0 if not with_saturation else 1.02, xanchor="left",
                          nticks=5),
            hovertemplate="layer %{y}<br>%{x:.2f}: %{z:.3f}<extra></extra>"))
        yaxis = _axis("hidden layer", autorange="reversed")
    shapes = [dict(type="line", xref="x", x0=x, x1=x, yref="paper", y0=0, y1=1,
                   line=dict(color=color, width=2, dash="dash")) for x, _, color in vlines]
    annotations = [dict(text=text, xref="x", x=x, yref="paper", y=1.0, yanchor="bottom",
                        showarrow=False, font=dict(size=FONT_SIZE, color=color))
                   for x, text, color in vlines]
    layout: Layout = dict(
        xaxis=_axis(xtitle, domain=main_domain), yaxis=yaxis, shapes=shapes,
        annotations=annotations, showlegend=lines_mode,
        legend=_legend(x=0.01, y=0.99, xanchor="left", yanchor="top"),
        margin=dict(l=70, r=20 if lines_mode else 90, t=60, b=60, pad=2),
    )
    if with_saturation:
        sat = np.array([la.saturation if _finite(la.saturation) else np.nan for la in hidden],
                       dtype=np.float64)
        data.append(dict(
            type="bar", x=sat, y=layer_idx, orientation="h", name="saturated",
            showlegend=False, xaxis="x2", yaxis="y2",
            marker=dict(color=_saturation_colors(sat), line=dict(width=0)),
            hovertemplate="layer %{y}: %{x:.0%} saturated<extra></extra>"))
        layout["xaxis2"] = _axis("saturated", domain=[0.8, 1.0], anchor="y2", range=[0, 1],
                                 tickvals=[0, 0.5, 1], ticktext=["0", "½", "1"])
        y2: dict[str, Any] = dict(anchor="x2", autorange="reversed")
        if lines_mode:
            y2.update(tickmode="array", tickvals=layer_idx, title=dict(
                text="layer", font=dict(size=AXIS_TITLE_SIZE), standoff=4))
        else:
            y2.update(matches="y", showticklabels=False)
        layout["yaxis2"] = _axis("", **y2)
    return _figure(panel, _step_title(title, snap), data, layout)


def activation_panel(snap: Snapshot | None) -> go.Figure:
    """Glorot & Bengio's plots: per hidden layer the activation histogram (overlaid lines up
    to depth 6, above that a heatmap layer x value, colour = fraction) and, on the right,
    the fraction of saturated units per layer."""
    return _hist_figure(snap, "activation_panel", "Activations per hidden layer", "act_hist",
                        None if snap is None else snap.act_edges, "activation value", True)


def grad_hist_panel(snap: Snapshot | None) -> go.Figure:
    """Histograms of the back-propagated gradients log10|dC/dz| per hidden layer (lines up to
    depth 6, a heatmap above), with the 1e-6 / 1e3 marks."""
    return _hist_figure(snap, "grad_hist_panel", "Back-propagated gradients per layer",
                        "grad_hist", None if snap is None else snap.grad_edges,
                        "log10 |dC/dz|", False,
                        vlines=((math.log10(VANISH), "1e-6", BLUE),
                                (math.log10(EXPLODE), "1e3", RED)))


# ---- 8. update:data ratio ------------------------------------------------------------------


def update_ratio(history: Sequence[Snapshot] | None) -> go.Figure:
    """Karpathy's update:data ratio ||lr * grad W|| / ||W|| per hidden layer over time
    (log y), with a dashed reference line at 1e-3."""
    k = math.log10(KARPATHY)
    return _line_figure(history, "update_ratio", "update_ratio", "Update : data ratio per layer",
                        "||ΔW|| / ||W||", must=(k,),
                        extra=([_hline(KARPATHY, GREY)], [_label("Karpathy's ~1e-3", k, GREY,
                                                          above=True, x=0.01)]))


__all__ = [
    "AXIS_TITLE_SIZE", "BLUE", "CAPTIONS", "C_MAX", "C_MIN", "EXPLODE", "FONT_SIZE", "GREEN",
    "GREY", "KARPATHY", "MAGNITUDE_COLORSCALE", "ORANGE", "PLACEHOLDER_TEXT", "RED",
    "RawFigure", "TITLE_SIZE", "VANISH", "ZERO_FLOOR", "activation_panel", "empty_figure",
    "grad_hist_panel",
    "gradient_bars", "loss_curves", "magnitude_colors", "neuron_bars", "raw_figures",
    "speed_curves", "spectrum", "update_ratio",
]
