"""Run functions with ``core.train.steps``'s signature that misbehave on purpose. They are
module-level (an executor process imports them by name) and import only ``core``."""

from __future__ import annotations

import time
from collections.abc import Iterator

from core.config import RunConfig
from core.snapshot import Snapshot
from core.train import RunControl, steps


def broken_after_three(cfg: RunConfig, control: RunControl | None = None
                       ) -> Iterator[Snapshot | None]:
    """Fails after three steps."""
    for i, item in enumerate(steps(cfg, control)):
        if i == 3:
            raise RuntimeError("boom in the run")
        yield item


def broken_after_step0(cfg: RunConfig, control: RunControl | None = None
                       ) -> Iterator[Snapshot | None]:
    """Gives the step-0 snapshot, then fails as a GPU out of memory would."""
    yield next(steps(cfg, control))
    raise RuntimeError("CUDA out of memory (simulated)")


def broken_at_start(cfg: RunConfig, control: RunControl | None = None
                    ) -> Iterator[Snapshot | None]:
    """Fails before its first snapshot."""
    raise RuntimeError("no data (simulated)")
    yield  # pragma: no cover


def slow_start(cfg: RunConfig, control: RunControl | None = None
               ) -> Iterator[Snapshot | None]:
    """Takes 1.5 s before its first snapshot (a big net's step 0)."""
    time.sleep(1.5)
    yield from steps(cfg, control)


def slow_steps(cfg: RunConfig, control: RunControl | None = None
               ) -> Iterator[Snapshot | None]:
    """Every optimiser step takes ``cfg.lr`` extra seconds (a big net on a busy box)."""
    for item in steps(cfg, control):
        time.sleep(cfg.lr)
        yield item
