"""Deep linear nets over many seeds (lesson 5, Orhan: degeneracy, not vanishing): one config
trained once per seed by ``core.train.run``, with what a Snapshot does not carry measured at
each snapshot through its ``probe``: per-example gradient norms w.r.t. every layer's
pre-activations and the singular values of the end-to-end map."""

from __future__ import annotations

import time

import numpy as np
import torch

from core import data as data_mod
from core import progress
from core.config import LIMITS, RunConfig
from core.experiments.results import SeedsResult
from core.models import Taps
from core.train import run


def _grid(steps: int, every: int) -> list[int]:
    """The snapshot steps of a run that does not diverge: every ``every``, and the last."""
    return sorted(set(range(0, steps + 1, every)) | {steps})


class _Probe:
    """Measures the extra statistics of one snapshot (after backward, before the update)."""

    def __init__(self) -> None:
        self.last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, taps: Taps) -> None:
        zs = taps.z
        B = zs[0].shape[0]
        G = torch.stack([z.grad for z in zs]) * B                  # (L, B, n): dC_x/dz_l
        agn = torch.linalg.vector_norm(G, dim=2).mean(1)           # (L,)
        dn = torch.linalg.vector_norm(G.mean(1), dim=1)            # (L,)
        ws = model.weights()
        prod = ws[0].detach().double()
        for w in ws[1:]:
            prod = w.detach().double() @ prod                      # (d_out, d_in)
        sv = torch.full((min(prod.shape),), float("nan"), dtype=torch.float64)
        if torch.isfinite(prod).all():
            sv = torch.linalg.svdvals(prod)
        self.last = (agn.double().cpu().numpy(), dn.double().cpu().numpy(), sv.cpu().numpy())


def deep_linear_seeds(cfg: RunConfig, seeds: list[int] | int = 10, steps: int | None = None,
                      every: int | None = None) -> SeedsResult:
    """Train ``cfg`` (a plain MLP: no residual, no norm) once per seed.

    Each seed's run is ``core.train.run(cfg.replace(seed=s))`` itself, on the CPU, with the
    test set evaluated at every snapshot and the weight spectra only at the ends (this
    study measures its own end-to-end spectrum). ``steps`` / ``every`` override the config's.
    """
    assert cfg.arch == "mlp" and not cfg.residual and cfg.norm == "none", \
        "deep_linear_seeds handles plain MLPs (no residual, no norm)"
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    steps = cfg.steps if steps is None else int(steps)
    every = cfg.every if every is None else int(every)
    t0 = time.perf_counter()
    grid = _grid(steps, every)
    col = {s: k for k, s in enumerate(grid)}
    S, K, L = len(seeds), len(grid), cfg.depth
    loss = np.full((S, K), np.nan)
    test = np.full((S, K), np.nan)
    agn = np.full((S, K, L), np.nan)
    dn = np.full((S, K, L), np.nan)
    e2e = np.full((S, K, 0), np.nan)      # (S, K, min(d_out, d_in)) once the size is known
    diverged = np.zeros(S, dtype=bool)
    for i, seed in enumerate(seeds):
        progress.stage(i, S)
        c = cfg.replace(seed=seed, steps=steps, every=every, device="cpu", eval_every=0,
                        spectrum_every=int(LIMITS["spectrum_every"][1]))
        probe = _Probe()
        for snap in run(c, probe=probe):
            if snap.diverged:          # the run stops here: the rest of the row stays NaN
                diverged[i] = True
                break
            assert probe.last is not None, "the probe runs at every snapshot"
            k = col[snap.step]
            loss[i, k] = snap.loss
            test[i, k] = np.nan if snap.test_loss is None else snap.test_loss
            if not e2e.shape[2]:
                e2e = np.full((S, K, len(probe.last[2])), np.nan)
            agn[i, k], dn[i, k], e2e[i, k] = probe.last
    if cfg.dataset == "teacher":
        teacher_sv = np.stack([torch.linalg.svdvals(
            data_mod.teacher_matrix(cfg.replace(seed=s)).double()).numpy() for s in seeds])
    else:
        teacher_sv = np.zeros((S, 0))
    return SeedsResult(
        config=cfg.to_dict(), seeds=seeds, steps=np.asarray(grid),
        loss=np.where(np.isfinite(loss), loss, np.nan),
        test_loss=np.where(np.isfinite(test), test, np.nan),
        act_grad_norm=agn, delta_norm=dn, e2e_sv=e2e, teacher_sv=teacher_sv,
        diverged=diverged, elapsed_s=time.perf_counter() - t0,
    )


__all__ = ["SeedsResult", "deep_linear_seeds"]
