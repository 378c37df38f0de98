"""Statistics of a spectrum of singular values, in NumPy only (no torch), so that a page can
read them off a result it received: the effective rank and the spread on a log axis.

``core.spectrum`` (which computes the spectra) and ``core.experiments.spectra`` re-export them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def effective_rank(sv: np.ndarray | torch.Tensor) -> float:
    """Effective rank exp(H(p)) with p = sv / sum(sv) (Roy & Vetterli 2007): between 1 and the
    number of nonzero values. Zeros contribute nothing; all-zero input gives 0.0."""
    if hasattr(sv, "detach"):           # a torch tensor, told apart without importing torch
        sv = sv.detach().cpu().numpy()
    s = np.abs(np.asarray(sv, dtype=np.float64).ravel())
    if not np.all(np.isfinite(s)):
        raise ValueError("singular values must be finite (pass sv, not log sv)")
    total = s.sum()
    if total == 0.0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def log_spread(log_sv: np.ndarray) -> float:
    """Standard deviation of the natural-log singular values (0 = all equal): the width
    of the spectrum on a log axis. Exact zeros (-inf) are left out."""
    x = np.asarray(log_sv, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.std()) if x.size else float("nan")


__all__ = ["effective_rank", "log_spread"]
