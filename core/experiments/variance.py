"""Variance through depth (lessons 3 and 4): forward and backward variances per layer at
initialisation, and learning-rate sweeps that find where NaN/inf appears.

Every helper builds its network exactly as ``core.train.run`` does (same data, same
``torch.Generator`` seeded from ``config.seed``), so a number shown in a lesson is the number
``gradlab run`` gives for the same config.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core import data as data_mod
from core import progress
from core.config import RunConfig
from core.experiments.results import LayerVariances, SweepPoint
from core.models import build
from core.train import loss_function, run_all


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
    loss = loss_function(cfg, ds.task, ds.n_out)(out, y)
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


def lr_sweep(cfg: RunConfig, lrs: Sequence[float], clip_norm: float = 0.0) -> list[SweepPoint]:
    """Run cfg once per learning rate (same seed, same init) and record where NaN/inf
    appears. ``clip_norm`` > 0 clips the global gradient norm in every run."""
    pts = []
    for i, lr in enumerate(lrs):
        progress.stage(i, len(lrs))
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


__all__ = ["LayerVariances", "SweepPoint", "first_divergent_lr", "layer_variances", "lr_sweep"]
