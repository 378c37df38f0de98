"""The playground's bar panels: the gradient per layer (coloured from vanishing to exploding)
and Nielsen's dC/db per neuron."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.charts.base import (
    EXPLODE,
    SCATTER_ABOVE,
    VANISH,
    ZERO_FLOOR,
    Data,
    clip_log,
    decades,
    empty_figure,
    figure,
    hidden_layers,
    hline,
    is_finite,
    log_label,
    marks,
    pick,
    short_name,
    step_title,
)
from app.charts.style import (
    AXIS_LINE,
    BLUE,
    C_MAX,
    C_MIN,
    EXPLODE_FILL,
    FONT_SIZE,
    GREY,
    MAGNITUDE_COLORSCALE,
    ORANGE,
    RED,
    TOP_LEGEND,
    VANISH_FILL,
    axis,
    band_patterns,
    legend,
    log_axis,
    magnitude_colors,
)
from core.snapshot import Snapshot

# ---- 1. gradient bars ---------------------------------------------------------------------

_METRICS = {
    "delta_norm": ("Gradient per layer ||dC/db||", "||dC/db||"),
    "weight_grad_norm": ("Gradient per layer ||dC/dW||", "||dC/dW||"),
    "bias_grad_norm": ("Bias gradient per layer ||dC/db||", "||dC/db||"),
}


def gradient_bars(
    snap: Snapshot | None,
    metric: str = "delta_norm",
    fixed_range: tuple[float, float] | None = (1e-8, 1e4),
) -> go.Figure:
    """One bar per layer (hidden1..output) of ``metric`` on a log axis, coloured from
    vanishing (blue, < 1e-6) through healthy (green) to exploding (red, > 1e3), with the two
    zones shaded and labelled. ``fixed_range`` (values, not logs) keeps the axis still from
    frame to frame and grows to whole decades when data fall outside it; None follows the
    data. Above ``SCATTER_ABOVE`` layers, a line with coloured markers replaces the bars."""
    panel = "gradient_bars"
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {', '.join(_METRICS)}, got {metric!r}")
    title, ytitle = _METRICS[metric]
    if snap is None or not snap.layers:
        return empty_figure(panel, title)
    layers = snap.layers
    x = np.array([layer.index for layer in layers], dtype=np.int32)
    y, zero, bad = clip_log([getattr(layer, metric) for layer in layers])
    must = [math.log10(VANISH), math.log10(EXPLODE)]
    if fixed_range is not None:
        must += [math.log10(max(v, ZERO_FLOOR)) for v in fixed_range]
        lo, hi = decades(y, must, pad=0.0)
    else:
        lo, hi = decades(y, must, pad=0.5)
    hover = "layer %{x}<br>%{y:.3g}<extra></extra>"
    if len(layers) > SCATTER_ABOVE:
        # numbers + colorscale: 1000 hex strings would be 10 KB of JSON
        color = np.log10(np.where(np.isfinite(y), y, 1.0)).astype(np.float32)
        main = dict(type="scatter", x=x, y=y, mode="lines+markers", name=ytitle,
                    showlegend=False,
                    line=dict(color="#a0a0a0", width=1.5),
                    marker=dict(size=5, color=color, colorscale=MAGNITUDE_COLORSCALE,
                                cmin=C_MIN, cmax=C_MAX, showscale=False),
                    hovertemplate=hover)
    else:
        # colour AND pattern per band (hatched: vanished, crossed: exploding), so the bands
        # read without hue (colour-vision deficiency, a washed-out projector)
        main = dict(type="bar", x=x, y=y, name=ytitle, showlegend=False,
                    marker=dict(color=magnitude_colors(y), line=dict(width=0),
                                pattern=dict(shape=band_patterns(y), fgcolor="white",
                                             size=8, solidity=0.3)),
                    hovertemplate=hover)
    v_log, e_log = math.log10(VANISH), math.log10(EXPLODE)
    shapes = [
        dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=10.0 ** lo, y1=VANISH,
             fillcolor=VANISH_FILL, line=dict(width=0), layer="below"),
        dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=EXPLODE, y1=10.0 ** hi,
             fillcolor=EXPLODE_FILL, line=dict(width=0), layer="below"),
        hline(VANISH, BLUE), hline(EXPLODE, RED),
    ]
    annotations = [log_label("vanishing < 1e-6", v_log, BLUE, above=False),
                   log_label("exploding > 1e3", e_log, RED, above=True)]
    if len(layers) <= 12:  # every layer labelled, the last one "out"
        xaxis = axis("layer (1 = next to the input)", tickmode="array", tickvals=x,
                      ticktext=[short_name(la) for la in layers])
    else:  # plotly's own ticks: they stay readable in a half-width column and when zoomed
        xaxis = axis(f"layer (1 = input side, {len(layers)} = output)",
                      range=[0.4, float(x[-1]) + 0.6], nticks=8)
    return figure(panel, step_title(title, snap), [main, *marks(x, zero, bad, lo, hi)], dict(
        xaxis=xaxis, yaxis=log_axis(f"{ytitle}  (log scale)", lo, hi),
        shapes=shapes, annotations=annotations, showlegend=bool(zero.any() or bad.any()),
        bargap=0.15 if len(layers) <= 40 else 0.0, legend=legend(**TOP_LEGEND),
        margin=dict(l=70, r=20, t=80, b=60, pad=2),
    ))


# ---- 2. Nielsen's neuron bars -------------------------------------------------------------


def neuron_bars(snap: Snapshot | None, max_layers: int = 6) -> go.Figure:
    """Nielsen's picture: dC/db of the first six neurons of each hidden layer, grouped by
    layer on ONE linear y scale, so the input side's tiny bars stand out next to the output
    side's. Each group is labelled with its layer's ||δ||. More than ``max_layers`` hidden
    layers: the first, the last and evenly spaced ones. (Grouped bars, not one subplot per
    layer: six subplots are unreadable in a half-width column.)"""
    panel = "neuron_bars"
    title = "dC/db per neuron"
    hidden = [la for la in hidden_layers(snap) if la.delta_top] if snap is not None else []
    if snap is None or not hidden:
        return empty_figure(panel, title)
    shown = [hidden[i] for i in pick(len(hidden), max(1, max_layers))]
    n = len(shown)
    n_neurons = max(len(la.delta_top) for la in shown)
    v = np.full((n, n_neurons), np.nan)                      # (layers, neurons)
    for k, layer in enumerate(shown):
        v[k, : len(layer.delta_top)] = [x if is_finite(x) else np.nan for x in layer.delta_top]
    pos = np.arange(n, dtype=np.int32)
    data: Data = []
    for j in range(n_neurons):
        col = v[:, j]
        data.append(dict(
            type="bar", x=pos, y=col, name=f"neuron {j + 1}", showlegend=False,
            marker=dict(color=[BLUE if x >= 0 else ORANGE for x in np.nan_to_num(col)],
                        line=dict(width=0)),
            customdata=[la.index for la in shown],
            hovertemplate=f"layer %{{customdata}}, neuron {j + 1}<br>dC/db = %{{y:.3g}}"
                          "<extra></extra>"))
    bad = [k for k, la in enumerate(shown) if not np.isfinite(v[k, : len(la.delta_top)]).all()]
    if bad:
        data.append(dict(
            type="scatter", x=np.array(bad, dtype=np.int32), y=np.zeros(len(bad)),
            mode="markers", name="NaN / inf", showlegend=False,
            marker=dict(symbol="x", size=16, color=RED), hovertemplate="NaN / inf<extra></extra>"))
    finite = np.abs(v[np.isfinite(v)])
    m = float(finite.max()) * 1.1 if finite.size and finite.max() > 0 else 1.0
    # Each group is labelled with its layer's ||δ|| above the plot. With more than four
    # groups the labels alternate between two rows, so that neighbours cannot touch in a
    # half-width column ("3.6e-5" is ~45 px at 16 px type; a group may be narrower).
    stagger = n > 4
    row = FONT_SIZE + 6                   # pixels between the two rows of labels
    annotations = [dict(text="||δ||", xref="paper", x=0.0, xanchor="right", yref="paper",
                        y=1.0, yanchor="bottom", showarrow=False,
                        font=dict(size=FONT_SIZE, color=GREY))]
    for k, layer in enumerate(shown):
        norm = short_number(layer.delta_norm)
        annotations.append(dict(text=norm, xref="x", x=int(k), yref="paper", y=1.0,
                                yanchor="bottom", showarrow=False,
                                yshift=row if stagger and k % 2 else 0,
                                font=dict(size=FONT_SIZE, color=GREY)))
    xtitle = "hidden layer" if n == len(hidden) else f"hidden layer ({n} of {len(hidden)})"
    top = 56 + FONT_SIZE + 8 + (row if stagger else 0)   # title, then the label row(s)
    return figure(panel, step_title(title, snap), data, dict(
        xaxis=axis(f"{xtitle}: neurons 1-{n_neurons}", tickmode="array", tickvals=pos,
                    ticktext=[str(la.index) for la in shown], showgrid=False,
                    range=[-0.5, n - 0.5]),
        yaxis=axis("dC/db", range=[-m, m], zeroline=True, zerolinecolor=AXIS_LINE,
                    zerolinewidth=1.5, exponentformat="power"),
        annotations=annotations, barmode="group", bargap=0.25, bargroupgap=0.05,
        showlegend=False, margin=dict(l=80, r=20, t=top, b=60, pad=2),
    ))


def short_number(x: Any) -> str:
    """3.6e-05 -> '3.6e-5', 0.087 -> '0.087', NaN -> 'NaN' (labels in narrow columns)."""
    if not is_finite(x):
        return "NaN"
    x = float(x)
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.2g}"
    mant, exp = f"{x:.1e}".split("e")
    return f"{mant}e{int(exp)}"
