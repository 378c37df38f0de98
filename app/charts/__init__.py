"""Every figure of the app, pure Plotly: data in, ``go.Figure`` out. No streamlit, no torch.

One style for all of them (``style``): no Plotly template, large type (a teacher projects
these in a lecture hall), a light grid, every axis titled. The playground's panels
(Snapshot(s) in) are re-exported here, ``charts.gradient_bars(snap)``; each lesson's
figures live in a module by topic (``nielsen``, ``initialisation``, ``degeneracy``,
``jacobians``, ``remedies``) and take the numbers the lesson computed.

The playground's builders carry a stable ``uirevision`` per panel so that zoom and hover
survive in-place updates (``app.stream_chart``). NumPy arrays go in as-is: plotly
base64-encodes them, which keeps a depth-20 figure's JSON well under 20 KB. Histograms
arrive pre-binned. Edge cases never raise: an empty history gives a "Press ▶ Play to start"
figure; NaN/inf (a diverged run) become gaps plus a red "NaN / inf" mark; exact zeros on a
log axis are clipped to ``ZERO_FLOOR`` (below every axis range) and marked "0".
"""

from __future__ import annotations

from app.charts.bars import gradient_bars, neuron_bars
from app.charts.base import (
    EXPLODE,
    KARPATHY,
    LINE_MODE_MAX_DEPTH,
    MAX_HEAT_ROWS,
    MAX_LINES,
    PLACEHOLDER_TEXT,
    SCATTER_ABOVE,
    VANISH,
    ZERO_FLOOR,
    RawFigure,
    empty_figure,
    raw_figures,
)
from app.charts.captions import CAPTIONS, SEQUENCE_CAPTIONS, caption
from app.charts.curves import loss_curves, speed_curves, update_ratio
from app.charts.distributions import activation_panel, grad_hist_panel, spectrum
from app.charts.style import (
    AXIS_LINE,
    AXIS_TITLE_SIZE,
    BLUE,
    C_MAX,
    C_MIN,
    EXPLODE_FILL,
    FONT_SIZE,
    GREEN,
    GREY,
    GRID,
    MAGNITUDE_COLORSCALE,
    ORANGE,
    RED,
    TEXT,
    TITLE_SIZE,
    VANISH_FILL,
    magnitude_colors,
    style_figure,
)

__all__ = [
    "AXIS_LINE", "AXIS_TITLE_SIZE", "BLUE", "CAPTIONS", "C_MAX", "C_MIN", "EXPLODE",
    "EXPLODE_FILL", "FONT_SIZE", "GREEN", "GREY", "GRID", "KARPATHY", "LINE_MODE_MAX_DEPTH",
    "MAGNITUDE_COLORSCALE", "MAX_HEAT_ROWS", "MAX_LINES", "ORANGE", "PLACEHOLDER_TEXT", "RED",
    "RawFigure", "SCATTER_ABOVE", "SEQUENCE_CAPTIONS", "TEXT", "TITLE_SIZE", "VANISH",
    "VANISH_FILL", "ZERO_FLOOR", "activation_panel", "caption", "empty_figure",
    "grad_hist_panel", "gradient_bars", "loss_curves", "magnitude_colors", "neuron_bars",
    "raw_figures", "spectrum", "speed_curves", "style_figure", "update_ratio",
]
