"""Figures of the Nielsen lessons (1 and 2): test accuracy against depth, the chain of
one-neuron layers, and the narrow window of inputs where a factor |w σ′(wa + b)| reaches 1.
The lessons compute the numbers (``core.theory``, runs of the core); these draw them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.style import BLUE, FONT_SIZE, GREEN, GREY, ORANGE, RED, TEXT, style_figure

#: The window of a factor >= 1, shaded on the factor plot.
WINDOW_FILL = "rgba(198,40,40,0.12)"


def accuracy_by_depth(curves: Mapping[int, tuple[Sequence[float], Sequence[float]]]
                      ) -> go.Figure:
    """Test accuracy (%) against the epoch, one line per number of hidden layers:
    ``curves[depth] = (epochs, accuracy)``."""
    fig = go.Figure()
    for d, (epochs, acc) in curves.items():
        fig.add_scatter(x=list(epochs), y=list(acc), mode="lines+markers", name=f"{d} hidden",
                        line=dict(width=3))
    return style_figure(fig, height=380, title="Test accuracy (512 held-out images)",
                        xtitle="epoch", ytitle="test accuracy (%)")


def chain_figure(factors: Sequence[float], grad_b: Sequence[float]) -> go.Figure:
    """The chain x -> a1 -> ... -> aL: each layer's factor |w σ′(z)| (red above 1, blue below
    ¼) and each bias gradient, on log axes."""
    f = np.abs(np.asarray(factors, dtype=np.float64))
    g = np.abs(np.asarray(grad_b, dtype=np.float64))
    n = len(f)
    layers = list(range(1, n + 1))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "factor |w<sub>j</sub> σ′(z<sub>j</sub>)| per layer",
        f"|∂C/∂b<sub>j</sub>| (relative to ∂C/∂a<sub>{n}</sub>)"))
    colors = [RED if v > 1 else (BLUE if v < 0.25 else GREEN) for v in f]
    fig.add_bar(x=layers, y=np.maximum(f, 1e-30), marker_color=colors, showlegend=False,
                opacity=0.7,
                hovertemplate="layer %{x}: %{y:.3g}<extra></extra>", row=1, col=1)
    fig.add_bar(x=layers, y=np.maximum(g, 1e-30), marker_color=GREY, showlegend=False,
                hovertemplate="layer %{x}: %{y:.3g}<extra></extra>", row=1, col=2)
    for y, text, color in ((1.0, "factor = 1", TEXT), (0.25, "max σ′ = ¼", BLUE)):
        fig.add_scatter(x=[0.5, n + 0.5], y=[y, y], mode="lines", name=text,
                        line=dict(color=color, dash="dash", width=3), hoverinfo="skip",
                        row=1, col=1)
    logs = np.log10(np.maximum(np.concatenate([f, g]), 1e-30))
    lo = float(np.floor(min(logs.min(), -1.0) - 0.3))
    hi = float(np.ceil(max(logs.max(), 0.5) + 0.3))
    fig.update_yaxes(type="log", range=[lo, hi], exponentformat="power")
    fig.update_yaxes(title_text="magnitude (log scale)", row=1, col=1)
    fig.update_xaxes(title_text="layer j", tickvals=layers, range=[0.5, n + 0.5])
    fig.update_layout(bargap=0.3)
    style_figure(fig, height=430, margin=(80, 20, 100, 60), legend_at="above", legend_y=1.2)
    fig.update_xaxes(showgrid=False)            # a few bars: no vertical grid between them
    return fig


def window_figure(ws: np.ndarray, widths: np.ndarray, widest: tuple[float, float],
                  w_now: float, width_now: float) -> go.Figure:
    """The width of the input window against |w| (log x), its maximum marked, and the
    student's |w|. ``widest`` = (|w|, width) of the widest window."""
    w_star, width_star = widest
    fig = go.Figure()
    fig.add_scatter(x=ws, y=widths, mode="lines", line=dict(width=3, color=BLUE),
                    name="window width", hovertemplate="|w| = %{x:.3g}: %{y:.3f}<extra></extra>")
    fig.add_scatter(x=[w_star], y=[width_star], mode="markers+text", showlegend=False,
                    marker=dict(size=14, color=RED),
                    text=[f"max {width_star:.3f} at |w| = {w_star:.2f}"], cliponaxis=False,
                    textposition="top right", textfont=dict(size=FONT_SIZE, color=RED))
    fig.add_scatter(x=[abs(w_now)], y=[width_now], mode="markers",
                    showlegend=False, marker=dict(size=12, color=ORANGE, symbol="diamond"),
                    hovertemplate="your |w|: %{y:.3f}<extra></extra>")
    fig.update_xaxes(type="log", tickvals=[4, 6.9, 10, 20, 50, 100, 200],
                     ticktext=["4", "6.9", "10", "20", "50", "100", "200"])
    fig.update_yaxes(range=[0, 0.55])
    fig.update_layout(showlegend=False)
    return style_figure(fig, height=380, title="Window width vs |w|", xtitle="|w| (log scale)",
                        ytitle="width of the input window")


def factor_figure(a: np.ndarray, factor: np.ndarray, width: float) -> go.Figure:
    """|w σ′(wa + b)| against the input a (b = −w/2: the window is centred on a = ½), the
    window where it is >= 1 shaded, and the level 1 dashed."""
    fig = go.Figure()
    fig.add_scatter(x=a, y=factor, mode="lines", line=dict(width=3, color=BLUE),
                    hovertemplate="a = %{x:.3f}: %{y:.3g}<extra></extra>")
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(showlegend=False)
    style_figure(fig, height=380, title="Factor vs input (b = −w/2)",
                 xtitle="input activation a", ytitle="|w σ′(wa + b)|")
    if width > 0:   # after the style: its label keeps the body size
        fig.add_vrect(x0=0.5 - width / 2, x1=0.5 + width / 2, fillcolor=WINDOW_FILL,
                      line_width=0, annotation_text=f"width {width:.3f}",
                      annotation_position="bottom", annotation_font=dict(size=FONT_SIZE))
    fig.add_hline(y=1.0, line=dict(color=RED, dash="dash", width=2))
    return fig
