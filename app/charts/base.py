"""What every playground builder shares: thresholds, figure assembly without Plotly's
validation (or as plain dicts for the live page), the empty placeholder, and the numeric
helpers that make log axes safe (NaN/inf as gaps, exact zeros on a floor, whole decades).

Each builder assembles plain dicts and builds the figure in one go WITHOUT plotly's
validation (1-10 ms instead of 10-50 ms; ``make_subplots`` / ``update_*`` cost more still),
because the page redraws several panels a second; validation is then switched back on, so a
caller's later ``fig.update_layout(...)`` behaves as usual. tests/test_chart_style.py validates
every builder's output.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from app.charts.style import BLUE, FONT_SIZE, GREY, ORANGE, RED, page_layout, title_lines
from core.snapshot import LayerStats, Snapshot

# ---- thresholds (D2L's healthy band) and limits --------------------------------------------
VANISH = 1e-6            # below: "vanishing"
EXPLODE = 1e3            # above: "exploding"
KARPATHY = 1e-3          # Karpathy's rule-of-thumb update:data ratio
ZERO_FLOOR = 1e-30       # exact zeros are drawn here on log axes (and marked "0")
MAX_LINES = 8            # line charts show at most this many layers
MAX_HEAT_ROWS = 64       # heatmaps show at most this many layers (evenly spaced)
LINE_MODE_MAX_DEPTH = 6  # histograms: overlaid lines up to this depth, a heatmap above
SCATTER_ABOVE = 100      # gradient_bars: a line with markers instead of bars above this
#: Validate figures on construction? Off: plotly's validation costs 10-50 ms a figure (and
#: the page redraws several a second); tests/test_chart_style.py validates every builder instead.
#: Either way, later edits by callers (fig.update_layout ...) are validated as usual.
VALIDATE = False
LOG10 = math.log(10.0)
TITLE_LINE_PX = 28       # height of one line of the title (TITLE_SIZE type), in pixels

PLACEHOLDER_TEXT = "Press ▶ Play to start"

Data = list[dict[str, Any]]
Layout = dict[str, Any]


# ---- figures --------------------------------------------------------------------------------


class RawFigure(dict):
    """A figure as the plain plotly dict ``{"data": [...], "layout": {...}}`` that a builder
    assembled, without plotly's Figure objects. Built only inside :func:`raw_figures`, for
    the live page, which never edits a figure and only serialises it (``app.stream_chart``):
    it skips the cost of constructing a ``go.Figure`` on every redraw."""


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


def figure(panel: str, title: str, data: Data, layout: Layout) -> go.Figure:
    """The page style (``style.page_layout``), then the builder's layout on top, built
    without validation (VALIDATE); a :class:`RawFigure` inside :func:`raw_figures`."""
    full: Layout = page_layout(panel, title)
    full.update(layout)
    _fit_top_margin(full)
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


def _fit_top_margin(layout: Layout) -> None:
    """Room above the plot for the title's lines (a long title wraps, ``style.wrap_title``):
    exactly that when the legend sits at the bottom and no label sits above the plot;
    otherwise the builder's margin (sized for a one-line title) plus the extra lines."""
    lines = title_lines(str((layout.get("title") or {}).get("text") or ""))
    margin = dict(layout.get("margin") or {})
    legend = layout.get("legend") or {}
    if legend.get("yref") == "container" and not _annotated_above(layout):
        margin["t"] = TITLE_LINE_PX * (lines + 1)
    else:
        margin["t"] = max(int(margin.get("t", 0)), 2 * TITLE_LINE_PX) \
            + TITLE_LINE_PX * (lines - 1)
    layout["margin"] = margin


def _annotated_above(layout: Layout) -> bool:
    """Does any annotation sit above the plot area (paper y >= 1)?"""
    return any(a.get("yref") == "paper" and float(a.get("y", 0)) >= 1.0
               for a in layout.get("annotations") or ())


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
    return figure(panel, title, [], dict(
        xaxis=dict(visible=False), yaxis=dict(visible=False), showlegend=False,
        annotations=[dict(text=message, x=0.5, y=0.5, xref="paper", yref="paper",
                          showarrow=False, font=dict(size=22, color=GREY))],
    ))


# ---- numeric helpers ------------------------------------------------------------------------


def is_finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


def clip_log(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a log axis: (y, is_zero, is_bad). Non-finite or negative -> NaN (a gap);
    |v| <= ZERO_FLOOR -> ZERO_FLOOR."""
    v = np.array([x if is_finite(x) else np.nan for x in values], dtype=np.float64)
    bad = ~np.isfinite(v) | (v < 0)
    zero = ~bad & (v <= ZERO_FLOOR)
    y = v.copy()
    y[bad] = np.nan
    y[zero] = ZERO_FLOOR
    return y, zero, bad


def decades(y: np.ndarray, must: Sequence[float] = (), pad: float = 0.25,
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


def hidden_layers(snap: Snapshot) -> list[LayerStats]:
    return [layer for layer in snap.layers if layer.name != "output"]


def pick(n: int, k: int) -> list[int]:
    """At most k indices of range(n), evenly spaced, always the first and the last."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, max(k, 2))})


def short_name(layer: LayerStats) -> str:
    return "out" if layer.name == "output" else str(layer.index)


def layer_label(layer: LayerStats) -> str:
    if layer.name == "output":
        return "output"
    if layer.name.startswith("hidden"):
        return f"layer {layer.index}"
    return layer.name


def marks(x: np.ndarray, zero: np.ndarray, bad: np.ndarray, lo: float, hi: float,
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


def saturation_colors(sat: np.ndarray) -> list[str]:
    """Grey (none saturated) -> orange -> red (all saturated); explicit colours for bars."""
    pos = list(np.clip(np.nan_to_num(sat), 0.0, 1.0))
    return sample_colorscale([[0, "#9e9e9e"], [0.5, ORANGE], [1, RED]], pos)


def hline(y: float, color: str, dash: str = "dash") -> dict[str, Any]:
    """A full-width horizontal line at data value ``y``. NB plotly.js >= 3: SHAPES on a log
    axis take data values, while ANNOTATIONS still take log10 values (see ``_label``)."""
    return dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                line=dict(color=color, width=2, dash=dash))


def log_label(text: str, y_log: float, color: str, above: bool, x: float = 0.995) -> dict[str, Any]:
    """A label at log10 value ``y_log`` of a log y axis (annotations take logs)."""
    return dict(text=text, xref="paper", x=x, xanchor="right" if x > 0.5 else "left",
                yref="y", y=y_log, yanchor="bottom" if above else "top", showarrow=False,
                font=dict(size=FONT_SIZE, color=color), bgcolor="rgba(255,255,255,0.75)")


def _diverged_step(history: Sequence[Snapshot]) -> int | None:
    for s in history:
        if s.diverged:
            return s.step
    return None


def divergence_marks(history: Sequence[Snapshot]) -> tuple[list[dict], list[dict]]:
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


def step_title(title: str, snap: Snapshot) -> str:
    text = f"{title} · step {snap.step}"
    return text + " (diverged)" if snap.diverged else text
