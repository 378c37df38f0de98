"""Bench section: the engine against a bare PyTorch loop (issue 21).

* ``plain_over_bare``: one step of ``core.train.steps`` with no snapshot due (every =
  100000) over one step of a bare ``nn.Sequential`` + ``torch.optim.SGD`` loop of the same
  net (the AIVN demo's 7 x 10 sigmoid net, batch 32, spiral data), same initial weights,
  same data tensors, same batch size, same device.
* ``instrumented_over_bare``: the same, with the engine at the page's cadence: a Snapshot
  every 10 steps, test metrics every 10, weight spectra every 100.
* ``bare_steps_per_s``: the bare loop's own speed, for scale.

Both ratios are medians of per-repetition ratios of interleaved blocks (tools/bench_steps).
"""

from __future__ import annotations

from typing import Any

from tools.bench_steps import Sizes, bench_bare

KEYS = ("plain_over_bare", "instrumented_over_bare", "bare_steps_per_s")
TARGETS: dict[str, tuple[str, float]] = {
    "plain_over_bare": ("<=", 1.1),
    "instrumented_over_bare": ("<=", 1.1),
}


def measure(sizes: Sizes) -> dict[str, Any]:
    """The section's figures (``KEYS``) and its raw medians under ``details``."""
    r = bench_bare(sizes)
    return {**{k: r[k] for k in KEYS},
            "details": {"ms": r["ms"], "steps_per_block": r["steps_per_block"],
                        "restarts": r["restarts"]}}
