"""Figures of lesson 3's Shapeset part (Glorot & Bengio at the paper's own conditions):
per-layer curves over training (Figures 2-3: means, 98th percentiles), the test error of
the four nets (Table 1's comparison), and the sample grid's upscaling. Numbers in, figures
out; no streamlit, no torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app.charts.style import (
    BLUE,
    FONT_SIZE,
    GREEN,
    GREY,
    ORANGE,
    RED,
    TEXT,
    layer_colors,
    style_figure,
)

#: One colour per net of Table 1's comparison (the same in every lesson-3 figure).
NET_COLORS = {"sigmoid": RED, "tanh": BLUE, "tanh, normalised init": GREEN, "softsign": ORANGE}


def layer_curves(steps: Sequence[int], vals: np.ndarray, *, title: str, ytitle: str,
                 level: float | None = None, level_text: str = "",
                 y_range: tuple[float, float] = (0.0, 1.02)) -> go.Figure:
    """One line per hidden layer (``vals`` (K, L) against ``steps`` (K,)), layer 1 dark
    violet to layer L orange, with an optional dashed ``level`` (e.g. "saturated")."""
    fig = go.Figure()
    for j, color in enumerate(layer_colors(vals.shape[1])):
        fig.add_scatter(x=list(steps), y=vals[:, j], mode="lines", name=f"layer {j + 1}",
                        line=dict(color=color, width=3))
    if level is not None:
        fig.add_hline(y=level, line=dict(color=TEXT, dash="dash", width=1),
                      annotation_text=level_text or f"{level:g}", annotation_position="top left",
                      annotation_font=dict(size=FONT_SIZE, color=TEXT))
    fig.update_yaxes(range=list(y_range))
    return style_figure(fig, height=420, margin=(80, 20, 80, 60), xtitle="training step",
                        ytitle=ytitle, title=title)


def error_figure(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                 chance: float) -> go.Figure:
    """Test error (%) against the step, one line per net (``curves[name] = (steps, err)``),
    with chance level (always guessing one class) dotted."""
    fig = go.Figure()
    for name, (x, y) in curves.items():
        fig.add_scatter(x=list(x), y=list(y), mode="lines+markers", name=name,
                        line=dict(width=3, color=NET_COLORS.get(name, GREY)), marker=dict(size=7))
    fig.add_hline(y=chance, line=dict(color=GREY, dash="dot", width=2),
                  annotation_text=f"chance ({chance:.1f} %)", annotation_position="bottom left",
                  annotation_font=dict(size=FONT_SIZE, color=GREY))
    fig.update_yaxes(range=[0, 100])
    return style_figure(fig, height=420, margin=(80, 20, 80, 60), xtitle="training step",
                        ytitle="test error (%)",
                        title="Test error on 1000 fixed Shapeset images (Table 1's quantity)")


def upscale(img: np.ndarray, factor: int = 4) -> np.ndarray:
    """A (H, W) grey image in [0, 1] enlarged ``factor`` times with square pixels (no
    blurring: a 32 x 32 Shapeset image shown as it is), as uint8."""
    big = np.kron(np.clip(img, 0.0, 1.0), np.ones((factor, factor), dtype=np.float32))
    return (255 * big + 0.5).astype(np.uint8)


def sample_grid(imgs: list, labels: list[str], cols: int = 8, gap: int = 4) -> go.Figure:
    """The samples as ONE Plotly image (``cols`` per row, grey gaps), each labelled with its
    class under it: drawn in the page like every chart, not as per-worker media files
    (which 404 when another web worker answers the browser's request)."""
    tiles = [upscale(np.asarray(im)) for im in imgs]
    h, w = tiles[0].shape
    rows = -(-len(tiles) // cols)
    grid = np.full((rows * (h + gap + 18), cols * (w + gap)), 255, dtype=np.uint8)
    annotations = []
    for i, (tile, label) in enumerate(zip(tiles, labels, strict=True)):
        r, c = divmod(i, cols)
        y0, x0 = r * (h + gap + 18), c * (w + gap)
        grid[y0:y0 + h, x0:x0 + w] = tile
        annotations.append({"x": x0 + w / 2, "y": y0 + h + 10, "text": label,
                            "showarrow": False, "font": {"size": 15}, "xref": "x",
                            "yref": "y"})
    # gaps and label strips transparent: the labels (in the page's text colour) sit on the
    # page's background, light or dark
    rgba = np.concatenate([np.repeat(grid[:, :, None], 3, axis=2),
                           np.zeros(grid.shape + (1,), dtype=np.uint8)], axis=2)
    for i in range(len(tiles)):
        r, c = divmod(i, cols)
        y0, x0 = r * (h + gap + 18), c * (w + gap)
        rgba[y0:y0 + h, x0:x0 + w, 3] = 1
    fig = go.Figure(go.Image(z=rgba, colormodel="rgba", zmax=[255, 255, 255, 1],
                             hoverinfo="skip"))
    fig.update_layout(annotations=annotations, margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      height=int(grid.shape[0] * 1.0) + 10,
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig
