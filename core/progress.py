"""Progress points: long computations say how far they are, whoever (if anyone) listens.

Pure: no threads, no clocks. ``core.train.steps`` reports every optimiser step and
multi-run experiments report which run they are on; a listener installed with
:func:`listening` (the hosted executors use it to show a progress bar and to take turns)
hears each report. Without a listener a report costs one context-variable lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Progress:
    """Where a computation is: run ``run`` of ``runs`` (0-based), step ``step`` of ``steps``."""

    run: int = 0
    runs: int = 0          # 0: unknown
    step: int = 0
    steps: int = 0         # 0: unknown

    @property
    def fraction(self) -> float | None:
        """Overall fraction done, or None when the total is unknown."""
        inner = self.step / self.steps if self.steps else 0.0
        if self.runs:
            return min(1.0, (self.run + inner) / self.runs)
        return min(1.0, inner) if self.steps else None

    def text(self) -> str:
        parts = []
        if self.runs:
            parts.append(f"run {min(self.run + 1, self.runs)} of {self.runs}")
        if self.steps:
            parts.append(f"step {self.step:,} of {self.steps:,}")
        return ", ".join(parts)


_LISTENER: ContextVar[tuple[Progress, Callable[[Progress], None]] | None] = ContextVar(
    "gradlab_progress", default=None)


def step(done: int, total: int) -> None:
    """Report optimiser step ``done`` of ``total`` of the current run."""
    lis = _LISTENER.get()
    if lis is not None:
        p, fn = lis
        p.step, p.steps = done, total
        fn(p)


def stage(index: int, count: int) -> None:
    """Report that run ``index`` (0-based) of ``count`` starts."""
    lis = _LISTENER.get()
    if lis is not None:
        p, fn = lis
        p.run, p.runs, p.step, p.steps = index, count, 0, 0
        fn(p)


@contextmanager
def listening(fn: Callable[[Progress], None]) -> Iterator[Progress]:
    """Call ``fn(progress)`` at every report made in this context (this thread)."""
    p = Progress()
    token = _LISTENER.set((p, fn))
    try:
        yield p
    finally:
        _LISTENER.reset(token)


__all__ = ["Progress", "listening", "stage", "step"]
