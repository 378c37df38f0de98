"""The lessons' charts follow the page's theme (``app.charts.style.themed_for_page``): the
chart style's light-only colours become Streamlit's theme placeholders, which the browser
swaps for the theme's colours; data colours, colour scales and type sizes stay.

The browser side (a dark page gets dark chart backgrounds and light text on every lesson)
is tests/test_fit_screens.py::test_lesson_charts_follow_the_dark_theme.
"""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import tomllib
from plotly.subplots import make_subplots

from app.charts import style

CONFIG = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"


def _styled() -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("left", "right"))
    fig.add_scatter(x=[1, 2], y=[1, 2], line=dict(color=style.BLUE), name="blue line", row=1,
                    col=1)
    fig.add_scatter(x=[1, 2], y=[2, 1], mode="lines+markers", name="first layer",
                    line=dict(color="rgb(13, 8, 135)"), marker=dict(color="rgb(13, 8, 135)"),
                    row=1, col=1)
    fig.add_bar(x=[1, 2], y=[3, 4], marker_color=style.BLUE, name="vanished", row=1, col=2)
    fig.add_heatmap(z=[[1, 2], [3, 4]], colorscale=style.MAGNITUDE_COLORSCALE, row=1, col=2)
    fig.add_hline(y=1, line=dict(color=style.TEXT, dash="dash"), annotation_text="factor = 1",
                  annotation_font=dict(color=style.TEXT))
    fig.add_hline(y=2, line=dict(color=style.GREY, dash="dot"))
    fig.add_annotation(x=1, y=1, text="boxed", bgcolor="rgba(255,255,255,0.8)")
    style.style_figure(fig, height=400, title="A figure", legend_at="below")
    fig.update_layout(paper_bgcolor="white", plot_bgcolor="white",
                      legend_bgcolor="rgba(255,255,255,0.85)")
    return fig


def test_light_only_colours_become_the_themes() -> None:
    fig = _styled()
    before = fig.to_json()
    d = style.themed_for_page(fig)
    assert fig.to_json() == before, "the caller's figure must stay untouched"
    text = json.dumps(d)
    for light_only in (style.TEXT, style.GRID, style.GREY, '"white"', "rgba(255,255,255"):
        assert light_only not in text, light_only
    lay = d["layout"]
    assert "paper_bgcolor" not in lay and "plot_bgcolor" not in lay   # the theme's background
    assert lay["font"]["color"] == style.ST_TEXT
    assert lay["legend"]["bgcolor"] == "rgba(0,0,0,0)"
    assert lay["legend"]["font"]["color"] == style.ST_TEXT
    for name in ("xaxis", "xaxis2", "yaxis", "yaxis2"):
        ax = lay[name]
        assert ax["showgrid"] is True and "gridcolor" not in ax, name
        assert ax["tickfont"]["color"] == style.ST_TEXT, name
        assert ax["title"]["font"]["color"] == style.ST_TEXT, name
    assert {s["line"]["color"] for s in lay["shapes"]} == {style.ST_TEXT, style.ST_MUTED}
    boxed = next(a for a in lay["annotations"] if a["text"] == "boxed")
    assert boxed["bgcolor"] == style.ST_BG


def test_palette_scales_and_sizes_are_kept() -> None:
    fig = _styled()
    d = style.themed_for_page(fig)
    line, layer, bar, heat = d["data"]
    assert line["line"]["color"] == style.ST_BLUE          # BLUE as a line: lighter on dark
    assert bar["marker"]["color"] == style.BLUE            # the band colour of a bar stays
    assert layer["line"]["color"] == "rgb(13, 8, 135)"     # light page: as drawn
    assert heat["colorscale"] == [list(c) for c in fig.data[3].colorscale]
    lay, src = d["layout"], fig.layout
    assert lay["font"]["size"] == src.font.size == style.FONT_SIZE
    assert lay["title"]["font"]["size"] == style.TITLE_SIZE
    assert lay["xaxis"]["tickfont"]["size"] == style.FONT_SIZE
    assert lay["xaxis"]["title"]["font"].get("size") == src.xaxis.title.font.size
    assert [a["font"]["size"] for a in lay["annotations"]] == \
        [a.font.size for a in src.annotations]
    go.Figure(d)                                            # still a valid figure


def test_on_a_dark_page_too_dark_lines_are_lightened() -> None:
    d = style.themed_for_page(_styled(), dark=True)
    line, layer, bar, _ = d["data"]
    for color in (layer["line"]["color"], layer["marker"]["color"]):
        assert style._luminance(color) >= 0.15, color
    assert bar["marker"]["color"] == style.BLUE           # bars keep the band colour
    assert line["line"]["color"] == style.ST_BLUE


def test_the_theme_placeholders_are_streamlits_and_blue_is_configured_per_theme() -> None:
    from streamlit.elements.lib import streamlit_plotly_theme as t

    assert (style.ST_TEXT, style.ST_MUTED, style.ST_BG, style.ST_BLUE) == \
        (t.GRAY_90, t.GRAY_70, t.BG_COLOR, t.CATEGORY_0)
    theme = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["theme"]
    n = len(style.ST_PALETTE_TEXT)
    light = tuple(c.lower() for c in theme["light"]["chartCategoricalColors"][:n])
    dark = tuple(c.lower() for c in theme["dark"]["chartCategoricalColors"][:n])
    assert light == style.TEXT_ON_LIGHT and dark == style.TEXT_ON_DARK
    assert [int(v[1:], 16) - 1 for v in style.ST_PALETTE_TEXT.values()] == list(range(n))
    assert light[0] == style.BLUE and dark[0] == style.ON_DARK_BLUE   # BLUE lines too

    def contrast(a: str, b: str) -> float:
        la, lb = sorted((style._luminance(a), style._luminance(b)))
        return (lb + 0.05) / (la + 0.05)

    # text in a palette colour reads on white and on Streamlit's dark background (#0e1117)
    for color in light:
        assert contrast(color, "#ffffff") >= 3.0, color
    for color in dark:
        assert contrast(color, "#0e1117") >= 3.0, color


def test_palette_text_follows_the_theme() -> None:
    fig = go.Figure(go.Scatter(x=[1], y=[1], mode="text", text=["a"],
                               textfont=dict(color=style.RED)))
    fig.add_annotation(x=1, y=1, text="green label", font=dict(color=style.GREEN))
    fig.update_layout(yaxis_title=dict(text="accuracy", font=dict(color=style.ORANGE)))
    d = style.themed_for_page(style.style_figure(fig, height=300))
    assert d["data"][0]["textfont"]["color"] == style.ST_PALETTE_TEXT[style.RED]
    assert d["layout"]["annotations"][0]["font"]["color"] == style.ST_PALETTE_TEXT[style.GREEN]
    assert d["layout"]["yaxis"]["title"]["font"]["color"] == \
        style.ST_PALETTE_TEXT[style.ORANGE]
