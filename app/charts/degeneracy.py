"""Figures of the degeneracy lessons: Orhan's deep linear nets over many seeds (lesson 5:
mean ± spread bands) and Saxe's products of random matrices (lesson 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.base import LOG10
from app.charts.style import BLUE, FONT_SIZE, GREEN, GREY, RED, rgba, style_figure

if TYPE_CHECKING:   # the core module imports torch; the chart layer does not
    from core.experiments.deep_linear import SeedsResult

#: Lesson 5's three initialisations of the same net.
FOLD_COLORS = {"Fold 0": BLUE, "Fold 1": RED, "Ortho": GREEN}
#: Lesson 6's two kinds of random factor.
KIND_COLORS = {"gaussian": BLUE, "orthogonal": GREEN}
KIND_LABEL = {"gaussian": "Gaussian, N(0, 1/n)", "orthogonal": "orthogonal (Haar)"}


# ---- lesson 5: Orhan, many seeds --------------------------------------------------------------


def geo_band(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric mean over ``axis`` and the ×/÷ one geometric-std band (for log axes);
    values <= 0 are left out."""
    lx = np.log(np.where(x > 0, x, np.nan))
    m, s = np.nanmean(lx, axis), np.nanstd(lx, axis)
    return np.exp(m), np.exp(m - s), np.exp(m + s)


def _seeds_style(fig: go.Figure, title: str, xtitle: str, ytitle: str,
                 log_y: bool = False) -> go.Figure:
    """The seed figures: legend in a row below, one hover box for every line."""
    fig.update_layout(hovermode="x unified")
    return style_figure(fig, height=400, title=title, xtitle=xtitle, ytitle=ytitle,
                        margin=(90, 20, 70, 70), legend_at="below", log_y=log_y)


def _band(fig: go.Figure, x: np.ndarray, mid: np.ndarray, lo: np.ndarray, hi: np.ndarray,
          name: str) -> None:
    c = FOLD_COLORS[name]
    fig.add_scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]),
                    fill="toself", fillcolor=rgba(c, 0.18), line=dict(width=0),
                    hoverinfo="skip", showlegend=False)
    fig.add_scatter(x=x, y=mid, mode="lines", name=name, line=dict(color=c, width=3))


def all_layers(r: SeedsResult) -> np.ndarray:
    """(S, K): the gradient w.r.t. the activations, summed in quadrature over all layers."""
    return np.sqrt((r.act_grad_norm ** 2).sum(2))


def loss_figure(results: Mapping[str, SeedsResult], log_y: bool) -> go.Figure:
    """Test loss against the step: mean ± 1 std over seeds."""
    fig = go.Figure()
    for name, r in results.items():
        m, s = np.nanmean(r.test_loss, 0), np.nanstd(r.test_loss, 0)
        lo = np.maximum(m - s, m * 0.05) if log_y else m - s
        _band(fig, r.steps, m, lo, m + s, name)
    return _seeds_style(fig, "Learning curves (mean ± 1 std over seeds)", "training step",
                        "test loss  ½‖y − ŷ‖²" + ("  (log scale)" if log_y else ""), log_y)


def grad_time_figure(results: Mapping[str, SeedsResult]) -> go.Figure:
    """The gradient over all layers against the step (geometric mean and band)."""
    fig = go.Figure()
    for name, r in results.items():
        m, lo, hi = geo_band(all_layers(r))
        _band(fig, r.steps, m, lo, hi, name)
    return _seeds_style(fig, "Gradient w.r.t. the activations, all layers",
                        "training step", "‖∂C/∂h‖  (log scale)", log_y=True)


def grad_layer_figure(results: Mapping[str, SeedsResult], which: int) -> go.Figure:
    """The gradient per hidden layer at snapshot ``which`` (geometric mean and band)."""
    fig = go.Figure()
    for name, r in results.items():
        m, lo, hi = geo_band(r.act_grad_norm[:, which, :])            # (L,)
        x = np.arange(1, m.shape[0] + 1)
        _band(fig, x, m, lo, hi, name)
    step = int(next(iter(results.values())).steps[which])
    return _seeds_style(fig, f"Per layer, at step {step}", "hidden layer l (1 = next to the input)",
                        "‖∂C/∂hₗ‖  (log scale)", log_y=True)


def erank_figure(steps: Mapping[str, np.ndarray], eranks: Mapping[str, np.ndarray],
                 teacher: float | None) -> go.Figure:
    """Effective rank of the end-to-end map against the step, ``eranks[name]`` (S, K):
    mean ± 1 std over seeds, and the teacher's own as a dashed line."""
    fig = go.Figure()
    for name, er in eranks.items():
        m, s = np.nanmean(er, 0), np.nanstd(er, 0)
        _band(fig, steps[name], m, m - s, m + s, name)
    _seeds_style(fig, "Effective rank of the end-to-end map", "training step",
                 "effective rank of W_L⋯W_1")
    if teacher is not None:   # after the style: its label keeps the body size
        fig.add_hline(y=teacher, line=dict(color=GREY, dash="dash", width=2),
                      annotation_text=f"teacher T: {teacher:.1f}",
                      annotation_font=dict(size=FONT_SIZE))
    return fig


def sv_figure(results: Mapping[str, SeedsResult], which: int) -> go.Figure:
    """Seed 0's end-to-end singular values at snapshot ``which``, largest first, beside the
    teacher's (values below 1e-12 drawn at 1e-12)."""
    fig = go.Figure()
    for name, r in results.items():
        sv = r.e2e_sv[0, which]                                     # seed 0, descending
        fig.add_scatter(x=np.arange(1, sv.size + 1), y=np.maximum(sv, 1e-12),
                        mode="lines+markers", name=name,
                        line=dict(color=FOLD_COLORS[name], width=3))
    r0 = next(iter(results.values()))
    fig.add_scatter(x=np.arange(1, r0.teacher_sv.shape[1] + 1), y=r0.teacher_sv[0],
                    mode="lines", name="teacher T", line=dict(color=GREY, dash="dash",
                                                              width=2))
    step = int(r0.steps[which])
    return _seeds_style(fig, f"End-to-end singular values, step {step} (seed 0)",
                        "index (largest first)", "singular value  (log scale)", log_y=True)


# ---- lesson 6: Saxe, products of random matrices ----------------------------------------------


def product_histograms(gaussian: Mapping[int, np.ndarray], scale: str) -> go.Figure:
    """One panel per number of factors: the Gaussian product's singular values
    (``gaussian[depth]`` holds their natural logs) as a histogram, on a log10 (``scale`` =
    "log") or linear axis; the orthogonal product's (all exactly 1) as one marked line."""
    depths = list(gaussian)
    fig = make_subplots(rows=1, cols=len(depths), subplot_titles=[f"product of {d}"
                                                                  for d in depths],
                        horizontal_spacing=0.06)
    for j, d in enumerate(depths):
        ls = gaussian[d]
        x = ls / LOG10 if scale == "log" else np.exp(ls)
        lo, hi = (min(x.min(), -0.5), max(x.max(), 0.5)) if scale == "log" else \
            (0.0, max(x.max(), 1.5))
        edges = np.linspace(lo, hi, 31)
        counts, _ = np.histogram(x, edges)
        fig.add_bar(x=0.5 * (edges[1:] + edges[:-1]), y=counts, width=np.diff(edges),
                    name=KIND_LABEL["gaussian"], legendgroup="g", showlegend=(j == 0),
                    marker=dict(color=KIND_COLORS["gaussian"], line=dict(width=0)),
                    opacity=0.85, row=1, col=j + 1)
        one = 0.0 if scale == "log" else 1.0
        fig.add_scatter(x=[one, one], y=[0, max(counts.max(), 1) * 1.05], mode="lines",
                        name=f"{KIND_LABEL['orthogonal']}: all n values at s = 1",
                        legendgroup="o", showlegend=(j == 0),
                        line=dict(color=KIND_COLORS["orthogonal"], width=4), row=1, col=j + 1)
        fig.update_xaxes(title_text="log₁₀ singular value" if scale == "log"
                         else "singular value", row=1, col=j + 1)
    fig.update_yaxes(title_text="count (of n)", row=1, col=1)
    fig.update_layout(bargap=0)
    return style_figure(fig, height=440, margin=(80, 20, 80, 120), legend_at="below",
                        legend_y=-0.3,
                        title="Singular values of a product of random n×n matrices")


def spread_figure(depths: Sequence[int], spreads: Mapping[str, np.ndarray]) -> go.Figure:
    """The spread (std of ln s) of each kind's product against the number of factors,
    ``spreads[kind]`` (depths, seeds) averaged over the seeds."""
    fig = go.Figure()
    for kind, arr in spreads.items():
        fig.add_scatter(x=list(depths), y=arr.mean(1), mode="lines+markers",
                        name=KIND_LABEL[kind], line=dict(color=KIND_COLORS[kind], width=3),
                        marker=dict(size=9))
    fig.update_xaxes(rangemode="tozero")
    fig.update_yaxes(rangemode="tozero")
    return style_figure(fig, height=420, margin=(80, 20, 70, 120), legend_at="below",
                        legend_y=-0.3, title="Spread of the spectrum vs number of factors",
                        xtitle="number of factors (depth)",
                        ytitle="std of ln(singular values)")
