"""The one chart style of the app, for the playground's panels and the lessons' figures:
no Plotly template, large type (a teacher projects these in a lecture hall), a light grid,
visible axis lines, and the palette every figure draws from.

The palette survives colour-vision deficiency and a washed-out projector: the three gradient
bands (vanished / can learn / exploding) are a dark blue, a mid green and a vermillion that
differ in lightness as well as hue, so they stay apart under simulated deuteranopia,
protanopia and in greyscale (CIEDE2000 >= 15, ``tests/test_palette_cvd.py``); the bars also
carry a pattern per band (:data:`BAND_PATTERNS`), so no reading depends on hue alone.

Two entry points: :func:`axis` / :func:`legend` give the plain dicts the playground's
builders assemble (``app.charts.base.figure`` adds the page-level layout), and
:func:`style_figure` applies the same style to a ``go.Figure`` built with Plotly's API
(the lessons' figures, whose sizes and margins follow their labels).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

FONT_SIZE = 16
TITLE_SIZE = 20
AXIS_TITLE_SIZE = 18
DENSE_FONT_SIZE = 14          # ticks of small multiples (six panels in a row)
DENSE_AXIS_TITLE_SIZE = 16
FONT_FAMILY = "Source Sans Pro, Arial, sans-serif"
TEXT = "#1f1f1f"
GRID = "#e3e3e3"
AXIS_LINE = "#8a8a8a"
#: The palette (CVD-safe, see the module docstring). BLUE / GREEN / RED are also the three
#: gradient bands; ORANGE is Okabe & Ito's orange.
BLUE = "#253494"      # vanished (dark: lightness 27)
GREEN = "#46b983"     # can still learn (light: lightness 68)
ORANGE = "#e69f00"
RED = "#c74905"       # exploding (vermillion: lightness 48)
GREY = "#6b6b6b"
#: The categorical colours figures draw lines from (the band colours first).
PALETTE: tuple[str, ...] = (BLUE, GREEN, ORANGE, RED)
#: The gradient bands and their fill patterns (plotly ``marker.pattern.shape``).
BANDS: dict[str, str] = {"vanished": BLUE, "can learn": GREEN, "exploding": RED}
BAND_PATTERNS: dict[str, str] = {"vanished": "/", "can learn": "", "exploding": "x"}
VANISH_FILL = "rgba(37,52,148,0.10)"
EXPLODE_FILL = "rgba(199,73,5,0.10)"

#: gradient magnitude colour, on log10 of the value (cmin=C_MIN, cmax=C_MAX):
#: dark blue (vanishing, < 1e-6) -> green (healthy) -> vermillion (exploding, > 1e3).
C_MIN, C_MAX = -10.0, 6.0


def _cpos(log10_value: float) -> float:
    return (log10_value - C_MIN) / (C_MAX - C_MIN)


MAGNITUDE_COLORSCALE: list[list[Any]] = [
    [0.0, BLUE], [_cpos(-6.0), BLUE], [_cpos(-4.5), "#3577a0"], [_cpos(-3.0), GREEN],
    [_cpos(1.0), GREEN], [_cpos(2.0), ORANGE], [_cpos(3.0), RED], [1.0, RED],
]


def band_of(value: float) -> str:
    """'vanished' (< 1e-6), 'exploding' (> 1e3) or 'can learn': the band a gradient
    magnitude falls in (the same thresholds as the bars' zones)."""
    if not np.isfinite(value) or value < 1e-6:
        return "vanished" if np.isfinite(value) else "can learn"
    return "exploding" if value > 1e3 else "can learn"


def band_patterns(values: Sequence[float] | np.ndarray) -> list[str]:
    """The fill pattern of each magnitude's band: hatched = vanished, crossed = exploding,
    plain = can learn (NaN: plain; it is marked separately)."""
    return [BAND_PATTERNS[band_of(float(v))] for v in np.asarray(values, dtype=np.float64)]


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


def layer_colors(n: int) -> list[str]:
    """Ordered colours for n layers, input side (dark blue-violet) to output side (orange)."""
    return list(_layer_colors_cached(n))


@functools.lru_cache(maxsize=256)
def _layer_colors_cached(n: int) -> tuple[str, ...]:
    return tuple(sample_colorscale("Plasma", list(np.linspace(0.0, 0.8, n)) if n > 1
                                   else [0.0]))


def rgba(hex_color: str, alpha: float) -> str:
    """'#2166ac', 0.18 -> 'rgba(33,102,172,0.18)' (the shaded band around a line)."""
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


# ---- the dict style of the playground's builders --------------------------------------------


def axis(text: str, **kw: Any) -> dict[str, Any]:
    """A readable axis: title always set, light grid, visible axis line, big ticks."""
    d: dict[str, Any] = dict(
        title=dict(text=text, font=dict(size=AXIS_TITLE_SIZE)),
        tickfont=dict(size=FONT_SIZE), gridcolor=GRID, showgrid=True, zeroline=False,
        showline=True, linecolor=AXIS_LINE, ticks="outside", tickcolor=AXIS_LINE,
        automargin=True,
    )
    d.update(kw)
    return d


def log_axis(title: str, lo: float, hi: float, **kw: Any) -> dict[str, Any]:
    """A log axis over [lo, hi] (log10 units, whole decades), labelled 10^n."""
    span = hi - lo
    dtick = 1 if span <= 8 else (2 if span <= 16 else (5 if span <= 40 else 10))
    return axis(title, type="log", range=[lo, hi], dtick=dtick, exponentformat="power",
                showexponent="all", **kw)


def legend(**kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = dict(font=dict(size=FONT_SIZE), bgcolor="rgba(255,255,255,0.85)")
    d.update(kw)
    return d


#: A horizontal legend at the bottom of the figure, under the axis title, left-aligned
#: (panels with few traces). At the bottom it can wrap onto more rows in a narrow column
#: without ever reaching the title (a legend above the plot did, at step 0); plotly grows
#: the bottom margin to fit it.
BOTTOM_LEGEND = dict(orientation="h", x=0.0, xanchor="left", y=0.0, yref="container",
                     yanchor="bottom", bgcolor="rgba(255,255,255,0)")
TOP_LEGEND = BOTTOM_LEGEND    # the name the builders import (it used to sit on top)

#: A title longer than this many characters breaks before its " · step N" part.
TITLE_WRAP_CHARS = 30
TITLE_PAD_PX = 26          # how far down a two-line title must move to show its first line


def wrap_title(title: str, limit: int = TITLE_WRAP_CHARS) -> str:
    """'Back-propagated gradients per layer · step 0' -> two lines, '· step 0' on the second:
    a half-width column on a 1280-pixel projector holds about 35 characters of the title
    font. Short titles, and titles without a ' · ' part, are left alone."""
    if len(title) <= limit or "<br>" in title or " · " not in title:
        return title
    head, _, tail = title.partition(" · ")
    return f"{head}<br>· {tail}"


def title_lines(title: str) -> int:
    return title.count("<br>") + 1


def page_layout(panel: str, title: str) -> dict[str, Any]:
    """The layout every playground panel starts from (the builder's layout goes on top)."""
    text = wrap_title(title)
    return dict(
        template="none",
        # plotly.js anchors a multi-line title's FIRST line at y: the pad moves the lines down
        title=dict(text=text, font=dict(size=TITLE_SIZE), x=0.01, xanchor="left",
                   y=0.985, yanchor="top", pad=dict(t=TITLE_PAD_PX * (title_lines(text) - 1))),
        font=dict(size=FONT_SIZE, color=TEXT, family=FONT_FAMILY),
        paper_bgcolor="white", plot_bgcolor="white",
        margin=dict(l=70, r=20, t=56, b=60, pad=2),
        uirevision=panel,
        hoverlabel=dict(font=dict(size=FONT_SIZE)),
        legend=legend(),
    )


# ---- the same style on a go.Figure (the lessons' figures) -----------------------------------

Legend = Literal["side", "below", "above"]


def style_figure(fig: go.Figure, *, height: int, title: str | None = None,
                 xtitle: str | None = None, ytitle: str | None = None,
                 margin: tuple[int, int, int, int] = (80, 20, 60, 60),
                 legend_at: Legend = "side", legend_y: float = -0.25,
                 log_y: bool | None = None, dense: bool = False) -> go.Figure:
    """The style on a figure built with Plotly's API: no template, ``FONT_SIZE`` text,
    a ``TITLE_SIZE`` title at the top left, every axis with a line, the light grid and
    ``AXIS_TITLE_SIZE`` titles (subplot titles too). ``margin`` is (left, right, top,
    bottom) for the labels of this figure; the legend sits at the right (``side``), in rows
    at the bottom of the figure, under the axis title whatever the figure's height (``below``;
    plotly grows the bottom margin if the rows need it; ``legend_y`` is then unused) or in a
    row above the plot at ``legend_y`` (``above``). ``log_y``
    (when given): a log or a linear y axis, labelled 10^n. ``dense``: smaller ticks and axis
    titles for a row of small multiples. Axis titles given here are for single-panel
    figures; subplots set theirs before. Annotations that should keep their own size are
    added after this call."""
    tick = DENSE_FONT_SIZE if dense else FONT_SIZE
    axis_title = DENSE_AXIS_TITLE_SIZE if dense else AXIS_TITLE_SIZE
    left, right, top, bottom = margin
    leg: dict[str, Any] = dict(font=dict(size=FONT_SIZE))
    if legend_at == "below":
        # at the container's bottom: a paper y under the plot lands on the axis title when
        # the legend wraps onto a second row in a narrow column
        leg.update(orientation="h", x=0, xanchor="left", y=0, yref="container",
                   yanchor="bottom")
    elif legend_at == "above":
        leg.update(orientation="h", x=0, y=legend_y, xanchor="left", yanchor="bottom")
    fig.update_layout(template="none", height=height, font=dict(size=FONT_SIZE, color=TEXT),
                      margin=dict(l=left, r=right, t=top, b=bottom), legend=leg)
    if title is not None:
        fig.update_layout(title=dict(text=title, font=dict(size=TITLE_SIZE), x=0.01))
    fig.update_annotations(font_size=AXIS_TITLE_SIZE)
    for update in (fig.update_xaxes, fig.update_yaxes):
        update(showline=True, gridcolor=GRID, tickfont=dict(size=tick),
               title_font=dict(size=axis_title))
    if xtitle is not None:
        fig.update_xaxes(title_text=xtitle)
    if ytitle is not None:
        fig.update_yaxes(title_text=ytitle)
    if log_y is not None:
        fig.update_yaxes(type="log" if log_y else "linear", exponentformat="power")
    return fig
