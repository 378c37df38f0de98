"""Snapshot / LayerStats: what one measurement of a training run carries.

Plain floats, ints and NumPy arrays only (no tensors): a Snapshot is built on the host
after the single device->host transfer of probes.py, and is safe to hand to any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LayerStats:
    """Statistics of one layer (hidden layers count from 1; the output layer is last)."""

    index: int                      # 1..depth for hidden layers, depth+1 for the output
    name: str                       # "hidden1", ..., "output" (rnn/gru: "rnn1", ...)
    weight_grad_norm: float         # ||dC/dW||_F
    bias_grad_norm: float           # ||dC/db||
    delta_norm: float               # Nielsen's speed of learning ||mean_batch dC/dz||
    delta_top: list[float]          # first six entries of that mean vector (neuron bars)
    activation_mean: float          # mean of the layer's output over batch and units
    activation_std: float           # std of the same
    saturation: float               # fraction of units in the flat part of the activation
    update_ratio: float             # ||lr * grad W|| / ||W|| (Karpathy's update:data ratio)
    weight_norm: float = 0.0        # ||W||_F
    act_hist: np.ndarray | None = None   # counts over Snapshot.act_edges
    grad_hist: np.ndarray | None = None  # counts of log10|dC/dz| over Snapshot.grad_edges
    weight_singular_values: np.ndarray | None = None  # descending, float64

    def to_json(self) -> dict[str, Any]:
        d = {
            "index": self.index, "name": self.name,
            "weight_grad_norm": _f(self.weight_grad_norm),
            "bias_grad_norm": _f(self.bias_grad_norm),
            "delta_norm": _f(self.delta_norm), "delta_top": [_f(x) for x in self.delta_top],
            "activation_mean": _f(self.activation_mean), "activation_std": _f(self.activation_std),
            "saturation": _f(self.saturation), "update_ratio": _f(self.update_ratio),
            "weight_norm": _f(self.weight_norm),
            "weight_singular_values": _arr(self.weight_singular_values),
        }
        if self.act_hist is not None:
            d["act_hist"] = _arr(self.act_hist)
        if self.grad_hist is not None:
            d["grad_hist"] = _arr(self.grad_hist)
        return d


@dataclass
class Snapshot:
    """One measurement: taken every ``config.every`` steps (and at step 0 before any update)."""

    step: int
    loss: float                                  # training loss of the measured batch
    train_accuracy: float | None                 # None for regression tasks
    test_accuracy: float | None
    test_loss: float | None
    layers: list[LayerStats]
    elapsed_s: float = 0.0                       # wall time since the run started
    jacobian_singular_values: np.ndarray | None = None  # descending (may be tiny, never 0)
    jacobian_log_singular_values: np.ndarray | None = None  # natural log, exact even at depth 1000
    #: The step at which the weight spectra (LayerStats.weight_singular_values) and the Jacobian
    #: spectrum were measured: they are refreshed every ``config.spectrum_every`` steps (one
    #: SVD per layer costs more than a training step) and carried forward in between.
    spectrum_step: int | None = None
    time_grad_norms: np.ndarray | None = None    # rnn/gru: ||dL/dh_t||, t = 1..T
    act_edges: np.ndarray | None = None          # bin edges of LayerStats.act_hist
    grad_edges: np.ndarray | None = None         # bin edges (log10) of LayerStats.grad_hist
    diverged: bool = False                       # this snapshot found NaN/inf
    diverged_layer: str | None = None            # first layer (from the input) with NaN/inf
    message: str | None = None                   # a human sentence about this snapshot

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "loss": _f(self.loss),
            "train_accuracy": _f(self.train_accuracy), "test_accuracy": _f(self.test_accuracy),
            "test_loss": _f(self.test_loss), "elapsed_s": round(self.elapsed_s, 4),
            "layers": [layer.to_json() for layer in self.layers],
            "jacobian_singular_values": _arr(self.jacobian_singular_values),
            "jacobian_log_singular_values": _arr(self.jacobian_log_singular_values),
            "spectrum_step": self.spectrum_step,
            "time_grad_norms": _arr(self.time_grad_norms),
            "act_edges": _arr(self.act_edges), "grad_edges": _arr(self.grad_edges),
            "diverged": self.diverged, "diverged_layer": self.diverged_layer,
            "message": self.message,
        }


@dataclass
class RunResult:
    """What the CLI writes: the config, every snapshot, and where it diverged."""

    config: dict[str, Any]
    snapshots: list[Snapshot] = field(default_factory=list)
    diverged_at: int | None = None
    diverged_layer: str | None = None
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "device": self.device,
            "snapshots": [s.to_json() for s in self.snapshots],
            "diverged_at": self.diverged_at,
            "diverged_layer": self.diverged_layer,
        }


def _f(x: float | None) -> float | str | None:
    """JSON has no NaN/inf: write them as strings so the document stays valid JSON."""
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _arr(a: np.ndarray | None) -> list[Any]:
    if a is None:
        return []
    return [_f(v) if isinstance(v, float) else v for v in np.asarray(a).tolist()]
