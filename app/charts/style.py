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


# ---- following the page's theme (the lessons' st.plotly_chart figures) ----------------------

#: Streamlit's chart-theme placeholders (``streamlit.elements.lib.streamlit_plotly_theme``):
#: in a ``st.plotly_chart(..., theme="streamlit")`` figure the browser swaps each for the
#: colour of the theme on screen, and again when the viewer switches theme, with no rerun.
ST_TEXT = "#000037"      # GRAY_90: gray90 (near black) on light, gray10 (near white) on dark
ST_MUTED = "#000036"     # GRAY_70: gray70 on light, gray30 on dark
ST_BG = "#000038"        # BG_COLOR: the page's background
ST_BLUE = "#000001"      # CATEGORY_0: chartCategoricalColors[0] of [theme.light] / [theme.dark]
#: BLUE where it draws a line or text: BLUE on a light page, a light blue on a dark one
#: (.streamlit/config.toml sets chartCategoricalColors per theme; the bars keep BLUE: their
#: patterns and labels carry the band, as in the playground's app/stream_chart).
ON_DARK_BLUE = "#8c9ef0"
#: Text in a palette colour (a label beside its line, a coloured axis title) through
#: Streamlit's categorical placeholders, so that it reads on either page: config.toml gives
#: [theme.light] darker shades of GREEN and ORANGE (contrast >= 3 on white) and
#: [theme.dark] lighter ones of BLUE and RED (contrast >= 3 on Streamlit's dark background).
ST_PALETTE_TEXT: dict[str, str] = {BLUE: ST_BLUE, GREEN: "#000002", ORANGE: "#000003",
                                   RED: "#000004"}
#: The chartCategoricalColors of .streamlit/config.toml, in placeholder order.
TEXT_ON_LIGHT: tuple[str, ...] = (BLUE, "#2a8a5c", "#a86800", RED)
TEXT_ON_DARK: tuple[str, ...] = (ON_DARK_BLUE, GREEN, ORANGE, "#f0743c")
#: On a dark page, a line or marker darker than this relative luminance is lightened
#: (Plasma's first layers, the dark violet of the phase map's sixth line).
DARK_LINE_LUMINANCE = 0.08

_LIGHT_ONLY_TEXT = frozenset({TEXT, "#2f2d2b"})
_LIGHT_BACKGROUNDS = frozenset({"white", "#fff", "#ffffff"})
_DATA_KEYS = frozenset({"x", "y", "z", "customdata", "text", "hovertext", "ids", "bdata",
                        "source", "labels", "values"})


def themed_for_page(fig: go.Figure | dict[str, Any], dark: bool | None = None
                    ) -> dict[str, Any]:
    """The figure (as a plotly dict, the caller's figure untouched) in colours that read on
    the page's theme, light or dark, for ``st.plotly_chart(..., theme="streamlit")``.

    The chart style is light-only (:data:`TEXT` on white, the :data:`GRID` grey), and
    Streamlit's theme fills only what a figure leaves unset. So: the white backgrounds and
    the light grid are dropped (Streamlit's theme gives the page's background and grid),
    :data:`TEXT` becomes :data:`ST_TEXT` and :data:`GREY` :data:`ST_MUTED` (the browser
    swaps both for the theme's text greys, following a theme switch live), white legend and
    label boxes become transparent or the page's colour, and BLUE in lines and text becomes
    :data:`ST_BLUE`. Data colours, colour scales, fonts and sizes stay as they are (the
    CVD-safe palette, the back-row sizes). ``dark`` (``st.context.theme.type == "dark"``
    when known) also lightens the few line colours too dark for a dark page (Plasma's first
    layers); it cannot follow a live switch, which the rest does."""
    d = fig.to_plotly_json() if isinstance(fig, go.Figure) else dict(fig)
    d = {k: _themed(v, k, "", bool(dark)) for k, v in d.items()}
    for trace in d.get("data") or ():
        _scatter_markers(trace, bool(dark))
    layout = d.setdefault("layout", {})
    for key in ("paper_bgcolor", "plot_bgcolor"):
        if str(layout.get(key, "")).lower() in _LIGHT_BACKGROUNDS:
            layout.pop(key)
    font = layout.setdefault("font", {})
    font.setdefault("color", ST_TEXT)
    # Streamlit's theme hides the x grid and greys ticks, axis titles and legends (its
    # template is more specific than layout.font): the chart style shows both grids and
    # draws all text in the text colour
    for name, ax in list(layout.items()):
        if (name.startswith("xaxis") or name.startswith("yaxis")) and isinstance(ax, dict):
            ax.setdefault("showgrid", True)
            ax.setdefault("tickfont", {}).setdefault("color", ST_TEXT)
            title = ax.setdefault("title", {})
            if isinstance(title, dict):
                title.setdefault("font", {}).setdefault("color", ST_TEXT)
    legend = layout.setdefault("legend", {})
    legend.setdefault("font", {}).setdefault("color", ST_TEXT)
    if isinstance(legend.get("title"), dict):
        legend["title"].setdefault("font", {}).setdefault("color", ST_TEXT)
    return d


def _themed(node: Any, key: str, parent: str, dark: bool) -> Any:
    if isinstance(node, list):
        return [_themed(v, key, parent, dark) for v in node]
    if isinstance(node, dict):
        out = {k: (v if k in _DATA_KEYS else _themed(v, k, key, dark)) for k, v in node.items()}
        if out.get("gridcolor") == GRID:
            out.pop("gridcolor")
        bg = out.get("bgcolor")
        if isinstance(bg, str) and (bg.startswith("rgba(255,255,255") or bg.lower() in
                                    _LIGHT_BACKGROUNDS):
            out["bgcolor"] = "rgba(0,0,0,0)" if key == "legend" else ST_BG
        return out
    if not isinstance(node, str):
        return node
    low = node.lower()
    if low in _LIGHT_ONLY_TEXT:
        return ST_TEXT
    if low == GREY:
        return ST_MUTED
    if key == "color" and parent in ("font", "textfont") and low in ST_PALETTE_TEXT:
        return ST_PALETTE_TEXT[low]
    if key == "color" and parent == "line":
        if low == BLUE:
            return ST_BLUE
        if dark and parent == "line" and _luminance(low) < DARK_LINE_LUMINANCE:
            return _lighten(low)
    return node


def _scatter_markers(trace: dict[str, Any], dark: bool) -> None:
    """A line's markers in the line's colour: BLUE -> ST_BLUE, too dark -> lightened."""
    if trace.get("type", "scatter") not in ("scatter", "scattergl"):
        return
    marker = trace.get("marker")
    color = marker.get("color") if isinstance(marker, dict) else None
    if not isinstance(color, str):
        return
    if color.lower() == BLUE:
        marker["color"] = ST_BLUE
    elif dark and _luminance(color) < DARK_LINE_LUMINANCE:
        marker["color"] = _lighten(color)


def _rgb(color: str) -> tuple[float, float, float] | None:
    c = color.strip()
    if c.startswith("#") and len(c) == 7:
        return tuple(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]
    if c.startswith("rgb"):
        parts = c[c.index("(") + 1 : -1].split(",")
        try:
            r, g, b = (float(p) / 255 for p in parts[:3])
        except ValueError:
            return None
        return r, g, b
    return None


def _luminance(color: str) -> float:
    """WCAG relative luminance of '#rrggbb' / 'rgb(r, g, b)' (1.0: not a colour we parse)."""
    rgb = _rgb(color)
    if rgb is None:
        return 1.0
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _lighten(color: str, toward_white: float = 0.5) -> str:
    """The colour mixed halfway to white: same hue, readable on a dark page."""
    rgb = _rgb(color)
    if rgb is None:
        return color
    r, g, b = (round(255 * (c + (1 - c) * toward_white)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"
