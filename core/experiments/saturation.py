"""Saturation of the hidden layers over training (lesson 3, Glorot & Bengio's Figures 2-4):
quantiles of |activation| read from the snapshots' fixed-bin histograms, the order in
which the layers cross a level, per-layer means, and the test error a run ends at. Pure
NumPy over a RunResult, so a page can read a run without importing torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.snapshot import RunResult


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


def layer_means(res: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """Glorot & Bengio's Figure 2 statistic: per hidden layer, the mean activation (over the
    measured training batch and the layer's units). Returns (steps (K,), means (K, L))."""
    steps = np.array([s.step for s in res.snapshots])
    means = np.array([[la.activation_mean for la in s.layers if la.name != "output"]
                      for s in res.snapshots])
    return steps, means


def trailing_mean(vals: np.ndarray, window: int) -> np.ndarray:
    """Each layer's statistic averaged over the last ``window`` snapshots (L,): one batch of
    10 images per snapshot is a noisy sample, so a run's end is read over several."""
    return np.asarray(vals, dtype=np.float64)[-max(1, window):].mean(0)


def error_curve(res: RunResult) -> tuple[list[int], list[float]]:
    """(steps, test error in %) at the snapshots where the test set was evaluated."""
    done = [s for s in res.snapshots if s.test_accuracy is not None]
    return [s.step for s in done], [100.0 * (1.0 - s.test_accuracy) for s in done]


def late_test_error(res: RunResult, start: float = 0.5) -> float | None:
    """Test error in % over the second part of a run: the mean of the evaluations at steps
    >= ``start`` x the last step (None: none there). One evaluation on 1000 images swings
    by 2-3 points; Glorot & Bengio's Table 1 reports test error."""
    steps, err = error_curve(res)
    if not steps:
        return None
    late = [e for s, e in zip(steps, err, strict=True) if s >= start * steps[-1]]
    return float(np.mean(late))


__all__ = ["activation_percentiles", "error_curve", "first_crossings", "hist_quantile",
           "late_test_error", "layer_means", "saturation_order", "trailing_mean"]
