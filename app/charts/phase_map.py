"""Figures of the phase-map lesson (lesson 11): the at-initialisation map of random nets over
sigma_w^2 x depth with the mean-field theory drawn over it, measured chi_1 and correlations
beside theory, and the trainability map with the 6 xi_c curve of Schoenholz et al. (2017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from app.charts.style import BLUE, GREEN, GREY, ORANGE, RED, TEXT, style_figure

if TYPE_CHECKING:
    from core.experiments.phase_results import PhaseMap, TrainabilityMap

#: log10 of the squared gain, clipped to this range: blue vanishing, white 1, red exploding.
GAIN_RANGE = 8.0
GAIN_COLORSCALE = [[0.0, "#08306b"], [0.25, BLUE], [0.45, "#d1e5f0"], [0.5, "#f7f7f7"],
                   [0.55, "#fddbc7"], [0.75, RED], [1.0, "#67000d"]]
ACCURACY_COLORSCALE = [[0.0, "#f7f7f7"], [0.12, "#f0f0f0"], [0.4, "#a1d99b"],
                       [0.7, "#41ab5d"], [1.0, "#00441b"]]
XI_COLOR = "#111111"
GUESS_COLOR = "#6a3d9a"


def _depth_curve(sw2: np.ndarray, depth: np.ndarray, top: float) -> tuple[list, list]:
    """(x, y) of a depth-scale curve, cut where it leaves the plot (inf and > top: gaps)."""
    y = np.where(np.isfinite(depth) & (depth <= top * 1.02), depth, np.nan)
    return list(sw2), [None if not np.isfinite(v) else float(v) for v in y]


def _theory_lines(fig: go.Figure, sw2: np.ndarray, xi_c: np.ndarray, top: float,
                  critical: float, xi_grad: np.ndarray | None = None,
                  twice: bool = False) -> None:
    """The overlays: chi_1 = 1, 6 xi_c (solid), xi_c (dashed), xi_grad (dotted), 12 xi_c."""
    if np.isfinite(critical):
        fig.add_scatter(x=[critical, critical], y=[0, top], mode="lines",
                        name=f"χ₁ = 1 (theory, σ_w² = {critical:.3g})",
                        line=dict(color=GREEN, width=3, dash="dash"))
    x, y = _depth_curve(sw2, 6.0 * xi_c, top)
    fig.add_scatter(x=x, y=y, mode="lines", name="6 ξ_c (theory)",
                    line=dict(color=XI_COLOR, width=4))
    if twice:
        x, y = _depth_curve(sw2, 12.0 * xi_c, top)
        fig.add_scatter(x=x, y=y, mode="lines", name="2 × 6 ξ_c",
                        line=dict(color=XI_COLOR, width=2, dash="dot"))
    else:
        x, y = _depth_curve(sw2, xi_c, top)
        fig.add_scatter(x=x, y=y, mode="lines", name="ξ_c (theory)",
                        line=dict(color=XI_COLOR, width=2, dash="dash"))
    if xi_grad is not None:
        x, y = _depth_curve(sw2, xi_grad, top)
        fig.add_scatter(x=x, y=y, mode="lines", name="ξ_∇ = 1/|ln χ₁| (theory)",
                        line=dict(color=ORANGE, width=2.5, dash="dot"))


def init_map_figure(m: PhaseMap) -> go.Figure:
    """Heatmap of log10 of the Jacobian's mean squared singular value from the input to
    layer l (x: sigma_w^2, y: depth l), with the theory over it."""
    z = np.clip(m.log_gain.T / np.log(10.0), -GAIN_RANGE, GAIN_RANGE)       # (L, S)
    top = float(m.depths[-1])
    fig = go.Figure()
    fig.add_heatmap(x=m.sigma_w2, y=m.depths, z=z, zmin=-GAIN_RANGE, zmax=GAIN_RANGE,
                    colorscale=GAIN_COLORSCALE, showscale=True, name="measured",
                    colorbar=dict(title=dict(text="log₁₀ gain", side="right"),
                                  tickvals=[-8, -4, 0, 4, 8],
                                  ticktext=["10⁻⁸", "10⁻⁴", "1", "10⁴", "10⁸"], x=1.0),
                    hovertemplate="σ_w² %{x:.3g}, depth %{y}: gain 10^%{z:.2f}<extra></extra>")
    th = m.theory
    _theory_lines(fig, th.sigma_w2, th.xi_c, top, th.critical_sigma_w2, th.xi_grad)
    ok = np.isfinite(m.xi_c_measured) & (m.xi_c_measured <= top)
    if ok.any():
        fig.add_scatter(x=m.sigma_w2[ok], y=m.xi_c_measured[ok], mode="markers",
                        name="ξ_c measured (fit of |c_l − c*|)",
                        marker=dict(color="white", size=10, line=dict(color=TEXT, width=2)))
    fig.update_xaxes(range=[float(m.sigma_w2[0]), float(m.sigma_w2[-1])])
    fig.update_yaxes(range=[0, top])
    return style_figure(
        fig, height=560, margin=(80, 20, 70, 170), legend_at="below", legend_y=-0.2,
        title=f"{m.activation}, σ_b² = {m.sigma_b2:g}: gradient gain through depth "
              f"(width {m.width}, {m.nets} nets per σ_w²)",
        xtitle="σ_w²  (weight variance × fan-in)", ytitle="depth l")


def chi1_figure(m: PhaseMap) -> go.Figure:
    """Measured chi_1 (markers) and the theory (line) against sigma_w^2, with chi_1 = 1."""
    th = m.theory
    fig = go.Figure()
    fig.add_hline(y=1.0, line=dict(color=GREY, width=1.5, dash="dash"))
    fig.add_scatter(x=th.sigma_w2, y=th.chi_1, mode="lines", name="theory",
                    line=dict(color=BLUE, width=3))
    fig.add_scatter(x=m.sigma_w2, y=m.chi1_measured, mode="markers", name="measured",
                    marker=dict(color=ORANGE, size=9, symbol="circle"))
    for x, name, dash in ((th.critical_sigma_w2, "theory", "dash"),
                          (m.critical_sigma_w2_measured, "measured", "dot")):
        if np.isfinite(x):
            fig.add_vline(x=x, line=dict(color=GREEN, width=2, dash=dash))
            fig.add_annotation(x=x, y=1.0, yshift=-28 if name == "theory" else 28,
                               text=f"{name}: {x:.3g}", showarrow=False,
                               xanchor="left", xshift=6, font=dict(size=16, color=GREEN))
    return style_figure(fig, height=400, margin=(80, 20, 60, 110), legend_at="below",
                        legend_y=-0.3, title="χ₁: the per-layer factor of the squared gradient",
                        xtitle="σ_w²", ytitle="χ₁")


def correlation_figure(m: PhaseMap, picks: Sequence[int]) -> go.Figure:
    """c_l against depth for a few sigma_w^2 (measured: lines; theory c*: dotted levels)."""
    colors = [BLUE, GREEN, ORANGE, RED, "#5e3c99", GREY]
    fig = go.Figure()
    top = int(m.depths[-1])
    for k, i in enumerate(picks):
        c = colors[k % len(colors)]
        fig.add_scatter(x=np.arange(0, top + 1), y=m.corr[i], mode="lines",
                        name=f"σ_w² = {m.sigma_w2[i]:.2f}", legendgroup=str(i),
                        line=dict(color=c, width=3))
        fig.add_scatter(x=[0, top], y=[m.theory.c_star[i]] * 2, mode="lines",
                        name=f"c* theory = {m.theory.c_star[i]:.2f}", legendgroup=str(i),
                        line=dict(color=c, width=2, dash="dot"))
    fig.update_yaxes(range=[-0.05, 1.05])
    return style_figure(fig, height=420, margin=(80, 20, 60, 60),
                        title=f"Two inputs with correlation c₀ = {m.c0:g}: where does it go?",
                        xtitle="depth l", ytitle="correlation c_l")


def trainability_figure(t: TrainabilityMap | None, sw2: np.ndarray, depths: np.ndarray,
                        theory_sw2: np.ndarray, xi_c: np.ndarray, critical: float,
                        guess: Sequence[tuple[float, float]] = ()) -> go.Figure:
    """Test accuracy per (sigma_w^2, depth) cell; cells not yet trained are blank, diverged
    ones marked x. The 6 xi_c curve (and 2 x 6 xi_c) on top; ``guess``: the student's
    (sigma_w^2, depth) outline of the trainable region, if any."""
    acc = np.full((len(sw2), len(depths)), np.nan)
    if t is not None:
        for j, d in enumerate(depths):
            hit = np.nonzero(t.depths == d)[0]
            if hit.size:
                acc[:, j] = t.test_accuracy[:, hit[0]]
    top = float(depths[-1]) * 1.08
    fig = go.Figure()
    fig.add_heatmap(x=sw2, y=depths, z=acc.T, zmin=0.0, zmax=1.0,
                    colorscale=ACCURACY_COLORSCALE, showscale=True,
                    colorbar=dict(title=dict(text="test accuracy", side="right"),
                                  tickvals=[0.1, 0.5, 0.9], ticktext=["0.1 (chance)", "0.5",
                                                                      "0.9"]),
                    hovertemplate="σ_w² %{x:.3g}, depth %{y}: accuracy %{z:.2f}<extra></extra>")
    if t is not None and t.diverged.any():
        si, dj = np.nonzero(t.diverged)
        fig.add_scatter(x=t.sigma_w2[si], y=t.depths[dj], mode="markers", name="diverged",
                        marker=dict(symbol="x", size=12, color=RED))
    _theory_lines(fig, theory_sw2, xi_c, top, critical, twice=True)
    if guess:
        fig.add_scatter(x=[g[0] for g in guess], y=[g[1] for g in guess],
                        mode="lines+markers", name="your guess",
                        line=dict(color=GUESS_COLOR, width=3, dash="dash"),
                        marker=dict(size=10, color=GUESS_COLOR))
    fig.update_xaxes(range=[float(sw2[0]) - 0.2, float(sw2[-1]) + 0.2])
    fig.update_yaxes(range=[0, top])
    return style_figure(fig, height=540, margin=(80, 20, 70, 150), legend_at="below",
                        legend_y=-0.22, title="Trainability: test accuracy after SGD on MNIST",
                        xtitle="σ_w²", ytitle="depth")
