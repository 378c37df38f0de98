"""Figures of the Jacobian lessons: Pennington's spectra of the input-output Jacobian
(lesson 7) and Duvenaud's warping of a 2-D input grid by a deep random net (lesson 8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.base import LOG10
from app.charts.style import BLUE, GREEN, ORANGE, RED, style_figure

if TYPE_CHECKING:   # the core modules import torch; the chart layer does not
    from core.experiments.spectra import JacobianSpectrum
    from core.experiments.warping import WarpResult

#: Lesson 7's nets, by "activation-init".
NET_COLORS = {"relu-gaussian": ORANGE, "relu-orthogonal": "#b35806",
              "tanh-gaussian": BLUE, "tanh-orthogonal": GREEN,
              "hardtanh-orthogonal": "#5e3c99"}
NEAR_ONE_FILL = "rgba(0,0,0,0.07)"     # the band s in [1/2, 2]


def _color(r: JacobianSpectrum) -> str:
    return NET_COLORS[f"{r.activation}-{r.init}"]


# ---- lesson 7: Pennington, dynamical isometry -----------------------------------------------


def jacobian_histograms(results: Sequence[JacobianSpectrum], depths: Sequence[int],
                        lo: float = -6.0, hi: float = 2.0) -> go.Figure:
    """One panel per depth: each net's fraction of singular values per bin of log10 s over
    [lo, hi] (smaller values and exact zeros piled at ``lo``), the band [½, 2] shaded."""
    fig = make_subplots(rows=1, cols=len(depths), shared_yaxes=True,
                        subplot_titles=[f"depth {d}" for d in depths],
                        horizontal_spacing=0.03)
    edges = np.linspace(lo, hi, 41)
    mids = 0.5 * (edges[1:] + edges[:-1])
    for j in range(len(depths)):
        for r in results:
            x = r.log_sv[j] / LOG10                        # log10 s, -inf for exact zeros
            x = np.clip(np.where(np.isfinite(x), x, lo), lo, hi)
            counts, _ = np.histogram(x, edges)
            frac = counts / max(len(r.log_sv[j]), 1)
            fig.add_scatter(x=mids, y=frac, mode="lines", line_shape="hvh",
                            name=r.label, legendgroup=r.label, showlegend=(j == 0),
                            line=dict(color=_color(r), width=2.5), row=1, col=j + 1)
        fig.add_vrect(x0=np.log10(0.5), x1=np.log10(2.0), fillcolor=NEAR_ONE_FILL,
                      line_width=0, row=1, col=j + 1)
        fig.update_xaxes(title_text="log₁₀ s", range=[lo, hi], row=1, col=j + 1)
    fig.update_yaxes(title_text="fraction of singular values", row=1, col=1)
    return style_figure(fig, height=460, margin=(80, 20, 80, 130), legend_at="below",
                        legend_y=-0.32, title="Singular values of the input-output Jacobian")


def near_one_figure(results: Sequence[JacobianSpectrum], depths: Sequence[int]) -> go.Figure:
    """Each net's fraction of singular values within a factor 2 of 1, against depth."""
    fig = go.Figure()
    for r in results:
        fig.add_scatter(x=list(depths), y=r.near_one, mode="lines+markers", name=r.label,
                        line=dict(color=_color(r), width=3), marker=dict(size=9))
    fig.update_xaxes(type="log", tickvals=list(depths))
    fig.update_yaxes(range=[0, 1.05])
    return style_figure(fig, height=420, margin=(80, 20, 80, 120), legend_at="below",
                        legend_y=-0.3, title="How concentrated near 1 is the spectrum?",
                        xtitle="depth L", ytitle="fraction of s in [½, 2]")


# ---- lesson 8: Duvenaud, input-space warping ------------------------------------------------


def _warp_style(fig: go.Figure, height: int, title: str) -> go.Figure:
    """Rows of small panels: smaller ticks, the legend in a row below."""
    return style_figure(fig, height=height, margin=(70, 20, 90, 60), legend_at="below",
                        legend_y=-0.2, dense=True, title=title)


def _rank(v: np.ndarray) -> np.ndarray:
    """Values -> their rank in [0, 1] (a monotone recolouring: only the order is kept)."""
    r = np.argsort(np.argsort(v.ravel(), kind="stable"), kind="stable").reshape(v.shape)
    return r / max(v.size - 1, 1)


def rgb_image(rep: np.ndarray) -> np.ndarray:
    """(G, G, 2) representation -> (G, G, 3) uint8 colours: red = rank of h1, blue = rank
    of h2, so a colour names a point of the 2-D representation. Row 0 = top (x2 = +1)."""
    a, b = _rank(rep[..., 0]), _rank(rep[..., 1])
    img = np.stack([a, 0.35 + 0.3 * (1.0 - np.abs(a - b)), b], -1)
    return (255 * img[::-1]).astype(np.uint8)


def colour_figure(w: WarpResult, depths: Sequence[int], title: str) -> go.Figure:
    """Input space, each point coloured by where the layer-l representation puts it."""
    idx = [int(d) for d in depths]
    fig = make_subplots(rows=1, cols=len(idx), subplot_titles=[f"layer {d}" for d in idx],
                        horizontal_spacing=0.015)
    for j, d in enumerate(idx):
        fig.add_trace(go.Image(z=rgb_image(w.reps[d]), hoverinfo="skip"), row=1, col=j + 1)
        fig.update_xaxes(showticklabels=False, showline=False, row=1, col=j + 1)
        fig.update_yaxes(showticklabels=False, showline=False, row=1, col=j + 1)
    fig.update_xaxes(title_text="x₁ →", row=1, col=1)
    fig.update_yaxes(title_text="x₂ →", row=1, col=1)
    return _warp_style(fig, 300, title)


def grid_figure(w: WarpResult, depths: Sequence[int]) -> go.Figure:
    """The image of the grid lines, h_l(grid), drawn in the 2-D representation space."""
    idx = [int(d) for d in depths]
    fig = make_subplots(rows=1, cols=len(idx), subplot_titles=[f"layer {d}" for d in idx],
                        horizontal_spacing=0.04)
    lines = range(0, w.grid.shape[0], 8)
    for j, d in enumerate(idx):
        r = w.reps[d]                                           # (G, G, 2)
        xs, ys = [], []
        for i in lines:
            xs += list(r[i, :, 0]) + [None] + list(r[:, i, 0]) + [None]
            ys += list(r[i, :, 1]) + [None] + list(r[:, i, 1]) + [None]
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(width=1, color=BLUE),
                        showlegend=False, hoverinfo="skip", row=1, col=j + 1)
        fig.update_xaxes(title_text="h₁", row=1, col=j + 1)
    fig.update_yaxes(title_text="h₂", row=1, col=1)
    return _warp_style(fig, 330, "The grid itself after l layers (every 8th grid line)")


def ratio_figure(plain: WarpResult, connected: WarpResult | None) -> go.Figure:
    """How flat each local patch is: the median over the grid of s2/s1 of dh_l/dx against
    the layer, for the plain composition and the input-connected one (when given)."""
    fig = go.Figure()
    for w, name, color in ((plain, "plain composition", RED),
                           (connected, "input-connected (each layer also sees x)", GREEN)):
        if w is None:
            continue
        y = np.maximum(w.ratio_median[1:], 1e-30)
        fig.add_scatter(x=w.depths[1:], y=y, mode="lines+markers", name=name,
                        line=dict(color=color, width=3), marker=dict(size=7))
    fig.update_xaxes(title_text="layer l")
    fig.update_yaxes(type="log", title_text="median s₂ / s₁ over the grid (log)",
                     exponentformat="power")
    _warp_style(fig, 400, "How flat is each local patch? s₂/s₁ of ∂hₗ/∂x")
    fig.update_layout(margin=dict(l=90, r=20, t=70, b=70))
    return fig

