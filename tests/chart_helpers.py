"""What the chart tests share: helpers that read a figure as the browser receives it, and
the set of figures every playground builder makes (the real runs they are fed are the
fixtures of ``tests/chart_fixtures.py``)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app import charts
from core.snapshot import Snapshot

PANELS = ("gradient_bars", "neuron_bars", "speed_curves", "loss_curves", "spectrum",
          "activation_panel", "grad_hist_panel", "update_ratio")
HISTORY_BUILDERS = {"speed_curves", "loss_curves", "update_ratio"}


# ---- helpers -------------------------------------------------------------------------------


def spec(fig: go.Figure) -> dict[str, Any]:
    """The figure as the browser receives it; NaN must not appear as a bare literal."""
    def no_nan(token: str) -> float:
        raise AssertionError(f"figure JSON holds a bare {token} (invalid JSON)")
    return json.loads(fig.to_json(), parse_constant=no_nan)


def arr(v: Any) -> np.ndarray:
    """Decode a plotly array: base64 typed-array spec, list or ndarray."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if "shape" in v:
            a = a.reshape([int(s) for s in str(v["shape"]).split(",")])
        return a.astype(np.float64)
    return np.array([np.nan if x is None else x for x in v], dtype=np.float64) \
        if isinstance(v, list) and v and not isinstance(v[0], list) else np.asarray(v, float)


def traces(fig: go.Figure, **match: Any) -> list[dict[str, Any]]:
    return [t for t in spec(fig)["data"] if all(t.get(k) == v for k, v in match.items())]


def texts(fig: go.Figure) -> list[str]:
    return [a.get("text", "") for a in spec(fig)["layout"].get("annotations", [])]


def hidden(snap: Snapshot) -> list:
    return [la for la in snap.layers if la.name != "output"]


def with_layers(snap: Snapshot, **fields: Sequence[Any]) -> Snapshot:
    """A copy of ``snap`` whose layers get the given per-layer values."""
    layers = [dataclasses.replace(la, **{k: v[i] for k, v in fields.items()})
              for i, la in enumerate(snap.layers)]
    return dataclasses.replace(snap, layers=layers)


def every_figure(history: Sequence[Snapshot]) -> dict[str, go.Figure]:
    snap = history[-1] if history else None
    return {
        "gradient_bars": charts.gradient_bars(snap),
        "gradient_bars_auto": charts.gradient_bars(snap, "weight_grad_norm", None),
        "neuron_bars": charts.neuron_bars(snap),
        "speed_curves": charts.speed_curves(history),
        "loss_curves": charts.loss_curves(history),
        "loss_curves_log": charts.loss_curves(history, log_y=True),
        "spectrum": charts.spectrum(snap),
        "activation_panel": charts.activation_panel(snap),
        "grad_hist_panel": charts.grad_hist_panel(snap),
        "update_ratio": charts.update_ratio(history),
    }
