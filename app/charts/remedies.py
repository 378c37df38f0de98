"""Figures of the remedies lessons: skip connections and batch norm against a plain deep
sigmoid net (lesson 9), and the gradient through time of an RNN and two GRUs (lesson 10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts.base import hidden_layers
from app.charts.style import BLUE, FONT_SIZE, GREEN, GREY, RED, style_figure
from core.snapshot import RunResult, Snapshot

#: Lesson 9's nets and lesson 10's.
NET_COLORS = {"plain": RED, "residual": GREEN, "batch norm": BLUE,
              "tanh RNN": RED, "GRU, default init": BLUE, "GRU, keep-biased": GREEN}
FLOOR = 1e-30          # zeros on lesson 9's log axes
TIME_FLOOR = 1e-45     # ||dL/dh_t|| that underflowed to exactly 0 is drawn here


def _line(fig: go.Figure, x: Any, y: Any, name: str, **kw: Any) -> None:
    fig.add_scatter(x=x, y=y, name=name, line=dict(color=NET_COLORS[name], width=3), **kw)


def _style(fig: go.Figure, title: str, xtitle: str, ytitle: str, log_y: bool) -> go.Figure:
    """Lesson 9's line figures: the legend in a row below."""
    return style_figure(fig, height=400, title=title, xtitle=xtitle, ytitle=ytitle,
                        margin=(90, 20, 70, 70), legend_at="below", log_y=log_y)


# ---- lesson 9: skip connections and normalisation -------------------------------------------


def profile_figure(snaps: Mapping[str, Snapshot]) -> go.Figure:
    """||delta^l|| per hidden layer at initialisation, the nets on one log axis."""
    fig = go.Figure()
    for name, snap in snaps.items():
        hid = hidden_layers(snap)
        _line(fig, [la.index for la in hid], [max(la.delta_norm, FLOOR) for la in hid], name,
              mode="lines+markers", marker=dict(size=8))
    return _style(fig, "Gradient per layer at initialisation", "hidden layer (1 = next to "
                  "the input)", "‖δˡ‖ = ‖∂C/∂bˡ‖  (log scale)", log_y=True)


def curves_figure(runs: Mapping[str, RunResult], attr: str, ytitle: str, title: str,
                  log_y: bool) -> go.Figure:
    """A snapshot field ``attr`` against the step for each run (snapshots that did not
    measure it are left out)."""
    fig = go.Figure()
    for name, res in runs.items():
        measured = [s for s in res.snapshots if getattr(s, attr) is not None]
        _line(fig, [s.step for s in measured], [getattr(s, attr) for s in measured], name,
              mode="lines")
    return _style(fig, title, "training step", ytitle, log_y=log_y)


def first_layer_figure(runs: Mapping[str, RunResult]) -> go.Figure:
    """Hidden layer 1's speed of learning ||delta^1|| during training, log y."""
    fig = go.Figure()
    for name, res in runs.items():
        _line(fig, [s.step for s in res.snapshots],
              [max(hidden_layers(s)[0].delta_norm, FLOOR) for s in res.snapshots], name,
              mode="lines")
    return _style(fig, "Speed of learning of hidden layer 1", "training step",
                  "‖δ¹‖  (log scale)", log_y=True)


# ---- lesson 10: RNN vs GRU through time -------------------------------------------------------


def _time_style(fig: go.Figure, height: int = 420, **kw: Any) -> go.Figure:
    return style_figure(fig, height=height, margin=(90, 20, 80, 80), legend_at="below",
                        legend_y=-0.25, **kw)


def init_figure(snaps: Mapping[str, Snapshot]) -> go.Figure:
    """||dL/dh_t|| against t at initialisation, one line per net (log y)."""
    fig = go.Figure()
    for name, snap in snaps.items():
        v = np.asarray(snap.time_grad_norms, dtype=np.float64)
        _line(fig, np.arange(1, v.size + 1), np.maximum(v, TIME_FLOOR), name, mode="lines")
    return _time_style(fig, title="‖∂L/∂hₜ‖ at initialisation (the label is at t = 1)",
                       xtitle="time step t", ytitle="‖∂L/∂hₜ‖  (log scale)", log_y=True)


def training_figure(runs: Mapping[str, RunResult]) -> go.Figure:
    """One panel per net: ||dL/dh_t|| against t at every snapshot, light (early) to dark
    (late), on one shared log axis."""
    names = list(runs)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=names,
                        horizontal_spacing=0.03)
    for j, name in enumerate(names):
        snaps = runs[name].snapshots
        for k, s in enumerate(snaps):
            v = np.asarray(s.time_grad_norms, dtype=np.float64)
            shade = k / max(len(snaps) - 1, 1)
            color = f"rgba({int(230 - 200 * shade)},{int(200 - 140 * shade)},"\
                    f"{int(80 + 100 * shade)},0.95)"
            fig.add_scatter(x=np.arange(1, v.size + 1), y=np.maximum(v, TIME_FLOOR),
                            mode="lines", name=f"step {s.step}", legendgroup=f"s{s.step}",
                            showlegend=(j == 0), line=dict(color=color, width=2),
                            row=1, col=j + 1)
        fig.update_xaxes(title_text="time step t", row=1, col=j + 1)
    fig.update_yaxes(type="log", exponentformat="power")      # every panel (shared range)
    fig.update_yaxes(title_text="‖∂L/∂hₜ‖ (log)", row=1, col=1)
    return _time_style(fig, 460, title="Gradient through time as training goes on "
                                       "(light: early, dark: late)")


def accuracy_figure(runs: Mapping[str, RunResult]) -> go.Figure:
    """Test accuracy on the recall task against the step, with chance (1 in 4) dotted."""
    fig = go.Figure()
    for name, res in runs.items():
        evaluated = [s for s in res.snapshots if s.test_accuracy is not None]
        _line(fig, [s.step for s in evaluated], [s.test_accuracy for s in evaluated], name,
              mode="lines+markers")
    fig.add_hline(y=0.25, line=dict(color=GREY, dash="dot"),
                  annotation_text="chance (4 classes)", annotation_font=dict(size=FONT_SIZE))
    fig.update_yaxes(range=[0, 1.05])
    return _time_style(fig, title="Test accuracy on recall, T = 100",
                       xtitle="training step", ytitle="test accuracy")
