"""The playground's distributions in one snapshot: the singular-value spectrum (or, for an
RNN/GRU, the gradient reaching each time step) and the per-layer histograms of activations
and back-propagated gradients."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.charts.base import (
    EXPLODE,
    LINE_MODE_MAX_DEPTH,
    LOG10,
    MAX_HEAT_ROWS,
    VANISH,
    Data,
    Layout,
    clip_log,
    decades,
    empty_figure,
    figure,
    hidden_layers,
    is_finite,
    layer_label,
    marks,
    pick,
    saturation_colors,
    step_title,
)
from app.charts.style import (
    AXIS_TITLE_SIZE,
    BLUE,
    FONT_SIZE,
    ORANGE,
    RED,
    TEXT,
    TOP_LEGEND,
    axis,
    layer_colors,
    legend,
    log_axis,
)
from core.snapshot import Snapshot

# ---- 5. singular-value spectrum (or the RNN's gradient through time) ---------------------


def spectrum(snap: Snapshot | None) -> go.Figure:
    """Histogram (pre-binned) of log10 singular values of all hidden weight matrices, pooled,
    and of the input-output Jacobian when present (its ``jacobian_log_singular_values`` are
    natural logs), with a line at sigma = 1. RNN/GRU snapshots (``time_grad_norms``) show
    ||dL/dh_t|| against t instead: "gradient reaching each time step"."""
    panel = "spectrum"
    if snap is None:
        return empty_figure(panel, "Singular values")
    if snap.time_grad_norms is not None and len(snap.time_grad_norms):
        return _time_grads(snap)
    title = "Singular values (log10)"
    pooled = [np.asarray(la.weight_singular_values, dtype=np.float64).ravel()
              for la in hidden_layers(snap) if la.weight_singular_values is not None]
    w = np.concatenate(pooled) if pooled else np.zeros(0)
    lw = np.log10(w[np.isfinite(w) & (w > 0)])
    if snap.jacobian_log_singular_values is not None:
        lj = np.asarray(snap.jacobian_log_singular_values, dtype=np.float64).ravel() / LOG10
    elif snap.jacobian_singular_values is not None:
        j = np.asarray(snap.jacobian_singular_values, dtype=np.float64).ravel()
        lj = np.log10(j[np.isfinite(j) & (j > 0)])
    else:
        lj = np.zeros(0)
    lj = lj[np.isfinite(lj)]
    if lw.size == 0 and lj.size == 0:
        return empty_figure(panel, step_title(title, snap), "No singular values in this snapshot")
    both = np.concatenate([lw, lj, [0.0]])
    lo, hi = float(both.min()), float(both.max())
    span = max(hi - lo, 1.0)
    lo, hi = lo - 0.04 * span, hi + 0.04 * span
    edges = np.linspace(lo, hi, 51)
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    width = float(edges[1] - edges[0])
    data: Data = []
    for values, name, color, short in ((lw, "weight matrices", BLUE, "weights"),
                                       (lj, "input-output Jacobian", ORANGE, "Jacobian")):
        if values.size:
            counts, _ = np.histogram(values, bins=edges)
            data.append(dict(
                type="bar", x=centers, y=(counts / values.size).astype(np.float32),
                width=width, name=f"{name} ({values.size})", opacity=0.75,
                marker=dict(color=color, line=dict(width=0)),
                hovertemplate=f"log10 σ ≈ %{{x:.2f}}<br>fraction %{{y:.3f}}<extra>{short}"
                              "</extra>"))
    return figure(panel, _spectrum_title(title, snap), data, dict(
        xaxis=axis("log10 singular value", range=[lo, hi]),
        yaxis=axis("fraction of singular values", rangemode="tozero"),
        barmode="overlay", bargap=0.0, legend=legend(**TOP_LEGEND),
        shapes=[dict(type="line", xref="x", x0=0, x1=0, yref="paper", y0=0, y1=1,
                     line=dict(color=TEXT, width=2, dash="dash"))],
        annotations=[dict(text=" σ = 1", xref="x", x=0, yref="paper", y=0.98, xanchor="left",
                          yanchor="top", showarrow=False, font=dict(size=FONT_SIZE))],
        margin=dict(l=70, r=20, t=84, b=60, pad=2),
    ))


def _spectrum_title(title: str, snap: Snapshot) -> str:
    """Spectra are recomputed every ``spectrum_every`` steps and carried forward in between:
    the title names the step they were measured at (so the figure only changes with them)."""
    measured = snap.spectrum_step
    if measured is None:
        return step_title(title, snap)
    text = f"{title} · from step {measured}"
    return text + " (diverged)" if snap.diverged else text


def _time_grads(snap: Snapshot) -> go.Figure:
    g = np.asarray(snap.time_grad_norms, dtype=np.float64).ravel()
    t = np.arange(1, g.size + 1, dtype=np.int32)
    y, zero, bad = clip_log(g)
    lo, hi = decades(y, pad=0.3)
    main = dict(type="scatter", x=t, y=y, mode="lines+markers" if g.size <= 60 else "lines",
                name="||dL/dh_t||", line=dict(color=BLUE, width=3),
                marker=dict(size=7, color=BLUE),
                hovertemplate="t = %{x}<br>||dL/dh_t|| = %{y:.3g}<extra></extra>")
    return figure("spectrum", step_title("Gradient reaching each time step", snap),
                   [main, *marks(t, zero, bad, lo, hi)], dict(
        xaxis=axis(f"time step t (the loss is read at t = {g.size})"),
        yaxis=log_axis("||dL/dh_t||  (log scale)", lo, hi),
        showlegend=bool(zero.any() or bad.any()), legend=legend(**TOP_LEGEND),
    ))


# ---- 6./7. histograms per layer ------------------------------------------------------------


def _hist_figure(snap: Snapshot | None, panel: str, title: str, attr: str,
                 edges: np.ndarray | None, xtitle: str, with_saturation: bool,
                 vlines: Sequence[tuple[float, str, str]] = ()) -> go.Figure:
    hidden = [la for la in hidden_layers(snap) if getattr(la, attr) is not None] if snap else []
    if snap is None or not hidden or edges is None or len(edges) < 2:
        return empty_figure(panel, title)
    edges = np.asarray(edges, dtype=np.float64)
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    fracs = []
    for la in hidden:
        c = np.asarray(getattr(la, attr), dtype=np.float64)[: len(centers)]
        c = np.where(np.isfinite(c), c, 0.0)
        fracs.append(c / c.sum() if c.sum() > 0 else np.zeros_like(c))
    lines_mode = len(hidden) <= LINE_MODE_MAX_DEPTH
    layer_idx = np.array([la.index for la in hidden], dtype=np.int32)
    main_domain = [0.0, 0.72] if with_saturation else [0.0, 1.0]
    data: Data = []
    if lines_mode:
        for la, f, color in zip(hidden, fracs, layer_colors(len(hidden)), strict=True):
            data.append(dict(
                type="scatter", x=centers, y=f.astype(np.float32), mode="lines",
                line=dict(color=color, width=3, shape="hvh"), name=layer_label(la),
                hovertemplate=f"{layer_label(la)}<br>%{{x:.2f}}: %{{y:.3f}}<extra></extra>"))
        yaxis = axis("fraction of units", rangemode="tozero")
    else:
        rows = pick(len(hidden), MAX_HEAT_ROWS)
        z = np.stack([fracs[i] for i in rows]).astype(np.float32)
        # colour range from the interior bins: the edge bins collect spikes (dead ReLUs
        # at 0, saturated tanh at +-1, clipped outliers) that would turn the rest dark;
        # they saturate to the top colour instead (the saturation bars tell that story)
        inner = z[:, 1:-1] if z.shape[1] > 2 else z
        zmax = float(inner.max()) if inner.size and inner.max() > 0 else float(z.max() or 1.0)
        data.append(dict(
            type="heatmap", x=centers, y=layer_idx[rows], z=z, zmin=0.0,
            zmax=max(zmax, 1e-6), colorscale="Viridis", name="fraction",
            colorbar=dict(title=dict(text="fraction", font=dict(size=FONT_SIZE)),
                          tickfont=dict(size=FONT_SIZE), len=1.0, thickness=12,
                          x=1.0 if not with_saturation else 1.02, xanchor="left",
                          nticks=5),
            hovertemplate="layer %{y}<br>%{x:.2f}: %{z:.3f}<extra></extra>"))
        yaxis = axis("hidden layer", autorange="reversed")
    shapes = [dict(type="line", xref="x", x0=x, x1=x, yref="paper", y0=0, y1=1,
                   line=dict(color=color, width=2, dash="dash")) for x, _, color in vlines]
    annotations = [dict(text=text, xref="x", x=x, yref="paper", y=1.0, yanchor="bottom",
                        showarrow=False, font=dict(size=FONT_SIZE, color=color))
                   for x, text, color in vlines]
    layout: Layout = dict(
        xaxis=axis(xtitle, domain=main_domain), yaxis=yaxis, shapes=shapes,
        annotations=annotations, showlegend=lines_mode,
        legend=legend(x=0.01, y=0.99, xanchor="left", yanchor="top"),
        margin=dict(l=70, r=20 if lines_mode else 90, t=60, b=60, pad=2),
    )
    if with_saturation:
        sat = np.array([la.saturation if is_finite(la.saturation) else np.nan for la in hidden],
                       dtype=np.float64)
        data.append(dict(
            type="bar", x=sat, y=layer_idx, orientation="h", name="saturated",
            showlegend=False, xaxis="x2", yaxis="y2",
            marker=dict(color=saturation_colors(sat), line=dict(width=0)),
            hovertemplate="layer %{y}: %{x:.0%} saturated<extra></extra>"))
        layout["xaxis2"] = axis("saturated", domain=[0.8, 1.0], anchor="y2", range=[0, 1],
                                 tickvals=[0, 0.5, 1], ticktext=["0", "½", "1"])
        y2: dict[str, Any] = dict(anchor="x2", autorange="reversed")
        if lines_mode:
            y2.update(tickmode="array", tickvals=layer_idx, title=dict(
                text="layer", font=dict(size=AXIS_TITLE_SIZE), standoff=4))
        else:
            y2.update(matches="y", showticklabels=False)
        layout["yaxis2"] = axis("", **y2)
    return figure(panel, step_title(title, snap), data, layout)


def activation_panel(snap: Snapshot | None) -> go.Figure:
    """Glorot & Bengio's plots: per hidden layer the activation histogram (overlaid lines up
    to depth 6, above that a heatmap layer x value, colour = fraction) and, on the right,
    the fraction of saturated units per layer."""
    return _hist_figure(snap, "activation_panel", "Activations per hidden layer", "act_hist",
                        None if snap is None else snap.act_edges, "activation value", True)


def grad_hist_panel(snap: Snapshot | None) -> go.Figure:
    """Histograms of the back-propagated gradients log10|dC/dz| per hidden layer (lines up to
    depth 6, a heatmap above), with the 1e-6 / 1e3 marks."""
    return _hist_figure(snap, "grad_hist_panel", "Back-propagated gradients per layer",
                        "grad_hist", None if snap is None else snap.grad_edges,
                        "log10 |dC/dz|", False,
                        vlines=((math.log10(VANISH), "1e-6", BLUE),
                                (math.log10(EXPLODE), "1e3", RED)))
