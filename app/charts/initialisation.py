"""Figures of the initialisation lessons: Glorot & Bengio's saturation plots and costs
(lesson 3) and D2L's variance through depth and learning-rate sweep (lesson 4)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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

#: Lesson 4's initialisations; any other name (the student's own N(0, c/n)) is orange.
INIT_COLORS = {"N(0, 1)": RED, "Xavier": BLUE, "He": GREEN}


# ---- lesson 3: Glorot & Bengio --------------------------------------------------------------


def saturation_grid(series: Mapping[str, tuple[Sequence[int], np.ndarray, np.ndarray]],
                    bottom_label: str, bottom_title: str, unit_range: bool) -> go.Figure:
    """One column per net, ``series[name] = (steps, mean (K, L), bottom (K, L))``: every
    hidden layer's activation mean (top row) and another statistic (bottom row) against the
    step. ``unit_range``: the bottom statistic lies in [0, 1]."""
    fig = make_subplots(rows=2, cols=len(series), subplot_titles=list(series),
                        horizontal_spacing=0.1, vertical_spacing=0.12, shared_xaxes=True)
    for c, (steps, *rows) in enumerate(series.values(), start=1):
        for r, vals in enumerate(rows, start=1):
            for j, color in enumerate(layer_colors(vals.shape[1])):
                fig.add_scatter(x=list(steps), y=vals[:, j], mode="lines", name=f"layer {j + 1}",
                                line=dict(color=color, width=3), legendgroup=str(j),
                                showlegend=c == 1 and r == 1, row=r, col=c)
        fig.update_xaxes(title_text="step", row=2, col=c)
    fig.update_yaxes(title_text="mean", row=1, col=1)
    fig.update_yaxes(title_text=bottom_label, row=2, col=1)
    if unit_range:
        fig.update_yaxes(range=[0, 1.02], row=2)
    return style_figure(fig, height=640, margin=(80, 20, 80, 60), title=(
        f"Per hidden layer during training: mean (top), {bottom_title} (bottom)"))


def cascade_figure(steps: Sequence[int], p98: np.ndarray, level: float) -> go.Figure:
    """Glorot's Figure 3 statistic for one run: the 98th percentile of |a| (K, L) per hidden
    layer against the step, with the saturation ``level`` dashed."""
    fig = go.Figure()
    for j, color in enumerate(layer_colors(p98.shape[1])):
        fig.add_scatter(x=steps, y=p98[:, j], mode="lines+markers", name=f"layer {j + 1}",
                        line=dict(color=color, width=3))
    fig.add_hline(y=level, line=dict(color=TEXT, dash="dash", width=1),
                  annotation_text=f"{level:g}: saturated", annotation_position="top left",
                  annotation_font=dict(size=FONT_SIZE, color=TEXT))
    fig.update_yaxes(range=[0, 1.02])
    return style_figure(fig, height=440, margin=(80, 20, 80, 60), xtitle="step",
                        ytitle="98th pct of |tanh|",
                        title="98th percentile of |activation| per layer (Glorot's Figure 3)")


def cost_figure(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> go.Figure:
    """Test accuracy (%) against the step for the two costs, ``curves[name] = (steps, acc)``
    (cross-entropy blue, quadratic red)."""
    fig = go.Figure()
    for (name, (x, y)), color in zip(curves.items(), (BLUE, RED), strict=True):
        fig.add_scatter(x=list(x), y=list(y), mode="lines", name=name,
                        line=dict(width=3, color=color))
    fig.update_yaxes(range=[0, 100])
    return style_figure(fig, height=380, margin=(80, 20, 80, 60), xtitle="step",
                        ytitle="test accuracy (%)", title="Test accuracy, same net, two costs")


# ---- lesson 4: variance through depth, NaN / inf --------------------------------------------


def _clean(v: Sequence[float]) -> list[float | None]:
    """Variances for a log axis: inf, NaN and 0 become gaps."""
    return [x if (x is not None and np.isfinite(x) and x > 0) else None for x in v]


def variance_figure(results: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                    title: str) -> go.Figure:
    """Per initialisation, ``results[name] = (forward, backward)``: the variance of each
    hidden layer's activations (left) and of the gradient w.r.t. them (right), log y."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "forward: Var(h<sup>l</sup>)", "backward: Var(∂ℓ/∂h<sup>l</sup>)"))
    for name, pair in results.items():
        for c, values in enumerate(pair, start=1):
            layers = list(range(1, len(values) + 1))
            fig.add_scatter(x=layers, y=_clean(values), mode="lines+markers", name=name,
                            line=dict(width=3, color=INIT_COLORS.get(name, ORANGE)),
                            marker=dict(size=7), legendgroup=name, showlegend=c == 1,
                            row=1, col=c)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    depth = len(next(iter(results.values()))[0])
    fig.update_xaxes(title_text="hidden layer (1 = next to the input)",
                     dtick=1 if depth <= 12 else None)
    return style_figure(fig, height=440, margin=(80, 20, 90, 60), title=title)


def sweep_figure(points: Mapping[str, Sequence[Any]], lrs: Sequence[float]) -> go.Figure:
    """Final loss per learning rate (log-log), one line per setting (``points[name]``: the
    sweep's points, each with ``lr``, ``final_loss`` and ``diverged_at``); runs that hit
    NaN/inf as crosses on a dotted line above the rest."""
    fig = go.Figure()
    finite = [p.final_loss for pts in points.values() for p in pts
              if p.diverged_at is None and np.isfinite(p.final_loss)]
    lo = math.floor(math.log10(min(finite + [0.1]))) - 0.3
    top = max(finite + [10.0]) * 10
    styles = ((RED, "circle", 14, "dash"), (BLUE, "square", 9, "solid"))
    for (name, pts), (color, symbol, size, dash) in zip(points.items(), styles, strict=True):
        ok = [p for p in pts if p.diverged_at is None]
        bad = [p for p in pts if p.diverged_at is not None]
        fig.add_scatter(x=[p.lr for p in ok], y=[p.final_loss for p in ok],
                        mode="lines+markers", name=name,
                        line=dict(width=3, color=color, dash=dash),
                        marker=dict(size=size, symbol=symbol),
                        hovertemplate="lr %{x:g}: loss %{y:.3g}<extra>" + name + "</extra>")
        if bad:
            fig.add_scatter(x=[p.lr for p in bad], y=[top] * len(bad), mode="markers",
                            name=f"{name}: NaN/inf", marker=dict(symbol="x", size=16, color=color),
                            customdata=[p.diverged_at for p in bad],
                            hovertemplate="lr %{x:g}: NaN/inf at step %{customdata}<extra></extra>")
    fig.add_hline(y=top, line=dict(color=GREY, width=1, dash="dot"))
    fig.update_xaxes(type="log", tickvals=list(lrs), ticktext=[f"{v:g}" for v in lrs])
    fig.update_yaxes(type="log", exponentformat="power", range=[lo, math.log10(top) + 0.5],
                     dtick=1)
    return style_figure(fig, height=440, xtitle="learning rate (log scale)",
                        ytitle="final training loss (log scale)",
                        title="Learning-rate sweep: where NaN/inf appears")
