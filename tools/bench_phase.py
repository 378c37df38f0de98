"""Bench section: the phase map (``core.experiments.phase``, lesson 11, ``gradlab phase``).

* ``phase_init_ready_s``: the at-init map of 32 sigma_w^2 x depth 200, width 128 (4 nets, 2
  pairs per sigma_w^2), computed as the page does: 4 chunks of 8 sigma_w^2, theory included.
* ``phase_init_first_cells_s``: the first of those chunks (the first cells on the page).
* ``phase_batched_over_looped``: the same nets one by one (``batched=False``) over the one
  batched ensemble, theory left out of both (median of interleaved repetitions).
* ``phase_train_map_s``: the trainability map, 12 sigma_w^2 x 10 depths (5..100) x 300 SGD
  steps, width 64, one call per depth as the page streams it; ``phase_train_first_cells_s``:
  the first depth's cells. ``--quick``: 4 x 3 cells x 50 steps (noted), tiny: smaller still.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np

from tools.bench_steps import SCALE_ENV, Sizes

KEYS = ("phase_init_ready_s", "phase_init_first_cells_s", "phase_batched_over_looped",
        "phase_train_map_s", "phase_train_first_cells_s")
TARGETS: dict[str, tuple[str, float]] = {
    "phase_init_ready_s": ("<=", 10.0),
    "phase_init_first_cells_s": ("<=", 1.0),
    "phase_batched_over_looped": (">=", 5.0),
    "phase_train_map_s": ("<=", 180.0),
}
FULL_TRAIN = (12, (5, 10, 15, 20, 30, 40, 50, 60, 80, 100), 300)


def measure(sizes: Sizes) -> dict[str, Any]:
    from core.experiments.phase import at_init_map, phase_theory, trainability

    tiny = os.environ.get(SCALE_ENV, "").strip().lower() == "tiny"
    quick = not sizes.browser
    grid, depth, width, chunk = (8, 20, 16, 4) if tiny else (32, 200, 128, 8)
    sw2 = tuple(float(v) for v in np.linspace(0.5, 4.0, grid))
    kw: dict[str, Any] = dict(depth=depth, width=width, nets=4, pairs=2)
    notes: dict[str, str] = {}

    t0 = time.perf_counter()
    first = None
    for k in range(0, grid, chunk):
        at_init_map("tanh", 0.05, sw2[k:k + chunk], **kw)
        first = first if first is not None else time.perf_counter() - t0
    ready = time.perf_counter() - t0

    th = phase_theory("tanh", 0.05, sw2)
    batched, looped = [], []
    for _ in range(1 if tiny else (2 if quick else 3)):
        for flag, out in ((True, batched), (False, looped)):
            t = time.perf_counter()
            at_init_map("tanh", 0.05, sw2, batched=flag, theory_column=th, **kw)
            out.append(time.perf_counter() - t)
    ratio = statistics.median(looped) / statistics.median(batched)

    n_sw, depths, steps = FULL_TRAIN
    if tiny:
        n_sw, depths, steps = 2, (2, 3), 3
    elif quick:
        n_sw, depths, steps = 4, (5, 20, 50), 50
    if tiny or quick:
        for k in ("phase_train_map_s", "phase_train_first_cells_s"):
            notes[k] = (f"--quick: {n_sw} x {len(depths)} cells x {steps} steps, not the "
                        "12 x 10 x 300 map of the target")
    tsw2 = tuple(float(v) for v in np.linspace(0.5, 4.0, n_sw))
    t0 = time.perf_counter()
    train_first = None
    accs = []
    for d in depths:
        r = trainability("tanh", 0.05, tsw2, (d,), steps=steps, width=64, lr=0.01,
                         batch_size=32, **(dict(n_train=64, n_test=32) if tiny else {}))
        accs.append(r.test_accuracy[:, 0].tolist())
        train_first = train_first if train_first is not None else time.perf_counter() - t0
    train_s = time.perf_counter() - t0
    return {
        "phase_init_ready_s": ready, "phase_init_first_cells_s": first,
        "phase_batched_over_looped": ratio, "phase_train_map_s": train_s,
        "phase_train_first_cells_s": train_first, "notes": notes,
        "details": {"init": dict(grid=grid, depth=depth, width=width, chunk=chunk, nets=4,
                                 pairs=2, batched_s=batched, looped_s=looped),
                    "train": dict(sigma_w2=list(tsw2), depths=list(depths), steps=steps,
                                  test_accuracy_by_depth=accs)},
    }
