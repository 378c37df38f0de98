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


def cli(argv: list[str] | None = None) -> int:
    """``python -m tools.bench_bare [--device D] [--quick]``: this section alone (one torch
    thread, the clock ``make bench`` uses), its figures printed as JSON."""
    import argparse
    import json

    import torch

    from core.train import resolve_device
    from tools.bench_steps import use_clock, use_device

    ap = argparse.ArgumentParser(prog="python -m tools.bench_bare",
                                 description="The engine against a bare PyTorch loop.")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ap.add_argument("--quick", action="store_true", help="the bench's --quick sizes")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    dev = use_device(a.device)
    clock = use_clock(resolve_device(dev))
    r = measure(Sizes.pick(a.quick))
    print(json.dumps({"device": dev, "clock": clock, **r}, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(cli())
