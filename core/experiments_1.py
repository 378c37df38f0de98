"""Small experiment helpers for the guided lessons 1-4 (Nielsen, Glorot & Bengio, D2L).

Pure core: torch + NumPy, no streamlit. Every helper builds its network exactly as
``core.train.run`` does (same data, same ``torch.Generator`` seeded from ``config.seed``), so
a number shown in a lesson is the number ``gradlab run`` gives for the same config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core import data as data_mod
from core.config import RunConfig
from core.models import build
from core.snapshot import RunResult
from core.train import _loss_fn, run_all


@dataclass
class LayerVariances:
    """Per hidden layer l = 1..L at initialisation, over a batch of training inputs."""

    forward: np.ndarray        # (L,) Var(h^l): the layer's activations (after phi)
    backward: np.ndarray       # (L,) Var(dl/dh^l): per-example gradient w.r.t. h^l
    backward_z: np.ndarray     # (L,) Var(dl/dz^l): Glorot's "back-propagated gradient"
    input_var: float           # Var(x) of the inputs that fed layer 1


def layer_variances(cfg: RunConfig, n_examples: int = 256) -> LayerVariances:
    """Forward and backward variances per hidden layer of cfg's MLP at initialisation.

    The gradients are per example (the batch-mean loss times the batch size), so they do
    not shrink with the batch. NaN/inf are kept: an overflow is a result to show.
    """
    if cfg.arch != "mlp":
        raise ValueError("layer_variances: only MLPs have per-layer forward variances")
    g = torch.Generator().manual_seed(cfg.seed)           # the run's own init stream
    ds = data_mod.load(cfg, torch.device("cpu"))
    model = build(cfg, ds.n_in, ds.n_out, g)
    x, y = ds.x_train[:n_examples], ds.y_train[:n_examples]   # (B, n_in), (B,)
    out, taps = model(x, taps=True)
    for a in taps.a:
        a.retain_grad()
    loss = _loss_fn(cfg, ds.task, ds.n_out)(out, y)
    loss.backward()
    b = x.shape[0]

    def var(ts: Sequence[torch.Tensor]) -> np.ndarray:
        return np.array([float(t.detach().double().var()) for t in ts])

    return LayerVariances(
        forward=var(taps.a),
        backward=var([a.grad * b for a in taps.a]),
        backward_z=var([z.grad * b for z in taps.z]),
        input_var=float(x.double().var()),
    )


@dataclass
class SweepPoint:
    lr: float
    clip_norm: float
    diverged_at: int | None     # first step with NaN/inf (None: never)
    diverged_layer: str | None
    final_loss: float           # loss of the last snapshot (NaN if diverged)
    final_test_accuracy: float | None


def lr_sweep(cfg: RunConfig, lrs: Sequence[float], clip_norm: float = 0.0) -> list[SweepPoint]:
    """Run cfg once per learning rate (same seed, same init) and record where NaN/inf
    appears. ``clip_norm`` > 0 clips the global gradient norm in every run."""
    pts = []
    for lr in lrs:
        res = run_all(cfg.replace(lr=float(lr), clip_norm=float(clip_norm)))
        last = res.snapshots[-1]
        pts.append(SweepPoint(
            lr=float(lr), clip_norm=float(clip_norm), diverged_at=res.diverged_at,
            diverged_layer=res.diverged_layer, final_loss=float(last.loss),
            final_test_accuracy=last.test_accuracy,
        ))
    return pts


def first_divergent_lr(points: Sequence[SweepPoint]) -> float | None:
    """The smallest learning rate in a sweep whose run hit NaN/inf (None if none did)."""
    bad = [p.lr for p in points if p.diverged_at is not None]
    return min(bad) if bad else None


def hist_quantile(counts: np.ndarray, edges: np.ndarray, q: float, absolute: bool = False) -> float:
    """Quantile q (0..1) of a fixed-bin histogram, linear within a bin. With ``absolute``
    the quantile is of |a| (bins folded about 0), as in Glorot & Bengio's 98th percentile."""
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if counts.sum() <= 0:
        return float("nan")
    if absolute:
        lo, hi = np.abs(edges[:-1]), np.abs(edges[1:])
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        lo = np.where(edges[:-1] * edges[1:] < 0, 0.0, lo)  # the bin that straddles 0
        order = np.argsort(lo + hi)
        c, lo, hi = counts[order], lo[order], hi[order]
    else:
        c, lo, hi = counts, edges[:-1], edges[1:]
    cum = np.cumsum(c) / c.sum()
    i = int(np.searchsorted(cum, q))
    i = min(i, len(c) - 1)
    prev = cum[i - 1] if i > 0 else 0.0
    frac = 0.0 if c[i] == 0 else (q - prev) / (cum[i] - prev)
    return float(lo[i] + np.clip(frac, 0.0, 1.0) * (hi[i] - lo[i]))


def activation_percentiles(res: RunResult, q: float = 0.98) -> tuple[np.ndarray, np.ndarray]:
    """Glorot & Bengio's Figure 3 statistic from a run's snapshots: per hidden layer, the
    q-quantile of |activation| (``hist_quantile`` of the snapshot's fixed-bin ``act_hist``,
    i.e. of the measured training batch). Returns (steps (K,), values (K, L))."""
    steps = np.array([s.step for s in res.snapshots])
    vals = np.array([[hist_quantile(la.act_hist, s.act_edges, q, absolute=True)
                      for la in s.layers if la.act_hist is not None]
                     for s in res.snapshots])
    return steps, vals


def first_crossings(res: RunResult, level: float = 0.9, q: float = 0.98,
                    window: int = 1) -> list[int | None]:
    """Per hidden layer (1..L), the first snapshot step at which the q-quantile of |a|
    reaches ``level`` (None: never within the run). With ``window`` > 1 the statistic is
    first averaged over that many consecutive snapshots (trailing), which damps the noise of
    a quantile measured on one small training batch."""
    steps, vals = activation_percentiles(res, q)
    if window > 1 and len(vals):
        c = np.cumsum(np.vstack([np.zeros((1, vals.shape[1])), vals]), axis=0)
        k = np.minimum(np.arange(1, len(vals) + 1), window)
        vals = (c[1:] - c[np.arange(len(vals)) + 1 - k]) / k[:, None]
    out: list[int | None] = []
    for j in range(vals.shape[1]):
        hit = np.nonzero(vals[:, j] >= level)[0]
        out.append(int(steps[hit[0]]) if hit.size else None)
    return out


def saturation_order(crossings: Sequence[int | None]) -> list[int]:
    """Hidden layers (1-based) in the order they crossed (ties: lower layer first);
    layers that never crossed are left out. Glorot's tanh cascade is [1, 2, ..., L]."""
    hit = [(s, j + 1) for j, s in enumerate(crossings) if s is not None]
    return [j for _, j in sorted(hit)]


__all__ = [
    "LayerVariances", "SweepPoint", "activation_percentiles", "first_crossings",
    "first_divergent_lr", "hist_quantile", "layer_variances", "lr_sweep", "saturation_order",
]
