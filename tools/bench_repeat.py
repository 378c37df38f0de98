"""Bench section: Repeat x 5 over seeds (core/repeat.py, one batched model) against one run.

``repeat5_over_one_run``: wall time of ``core.repeat.repeat(default config, seeds 0-4)``
over wall time of ``core.train.run_all(default config)``, both on one torch thread (as a
hosted executor runs them), timed in alternating blocks (A B B A ..., the median of the
per-rep ratios). Goal: <= 2.5 (five seeds for the price of 2.5 runs; seed after seed it
would be 5).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

KEYS = ("repeat5_over_one_run",)
TARGETS: dict[str, tuple[str, float]] = {"repeat5_over_one_run": ("<=", 2.5)}


def measure(sizes: Any) -> dict[str, Any]:
    import torch

    from core.config import RunConfig
    from core.repeat import repeat
    from core.train import run_all

    torch.set_num_threads(1)
    cfg = RunConfig()
    quick = getattr(sizes, "n_train", 1000) < 1000 or getattr(sizes, "reps", 5) < 3
    if quick:
        cfg = cfg.replace(steps=200)
    reps = max(1, min(3, int(getattr(sizes, "reps", 3))))

    def one() -> float:
        t = time.perf_counter()
        run_all(cfg)
        return time.perf_counter() - t

    def five() -> float:
        t = time.perf_counter()
        repeat(cfg, range(5))
        return time.perf_counter() - t

    # Warm both paths first (lazy imports, MKL's and the allocator's first calls): a cold
    # first call would land in the first rep's one-run time and flatter its ratio (with
    # --quick's single rep, the whole figure).
    run_all(cfg.replace(steps=5))
    repeat(cfg.replace(steps=5), range(5))
    ratios, ones, fives = [], [], []
    for i in range(reps):
        if i % 2 == 0:
            a, b = one(), five()
        else:
            b, a = five(), one()
        ones.append(a)
        fives.append(b)
        ratios.append(b / a)
    return {"repeat5_over_one_run": round(statistics.median(ratios), 3),
            "details": {"one_run_s": round(statistics.median(ones), 3),
                        "repeat5_s": round(statistics.median(fives), 3),
                        "load_1min": round(os.getloadavg()[0], 2),
                        "steps": cfg.steps}}
