"""What the page reads from a Trainer: its statuses and an immutable view of its state."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import RunConfig
from core.snapshot import Snapshot

#: Status values. "active" ones keep the page's fragment refreshing.
IDLE, RUNNING, PAUSED, FINISHED, DIVERGED, ERROR, CLOSED = (
    "idle", "running", "paused", "finished", "diverged", "error", "closed")
ACTIVE = frozenset({RUNNING})


@dataclass(frozen=True)
class TrainerView:
    """An immutable copy of what the page draws; taken under the lock, read without it."""

    status: str                         # see the status constants above
    config: RunConfig                   # the config of the current run
    step: int                           # optimiser steps done (step of the latest snapshot)
    total_steps: int                    # config.steps
    steps_per_s: float                  # recent training speed (0 when not running)
    history: tuple[Snapshot, ...]       # light snapshots (no histograms / spectra), thinned
    latest: Snapshot | None             # the last *good* full snapshot: what panels draw
    diverged: Snapshot | None           # the snapshot that found NaN/inf, if any
    message: str | None                 # error / divergence / idle message for a banner
    lr: float                           # the learning rate in effect (live-changeable)
    busy: bool                          # a single step (or the step-0 measurement) is pending
    epoch: int = 0                      # bumped by every reset (identifies the run)
    sharing: int = 0                    # runs training on this server now (all sessions)
    executors: int = 0                  # the server's training processes (about its cores)

    @property
    def active(self) -> bool:
        """True while the page should keep refreshing (training, waiting, stepping)."""
        return self.status in ACTIVE or self.busy

    @property
    def status_text(self) -> str:
        """One short phrase for the status line."""
        if self.status == DIVERGED and self.diverged is not None:
            layer = (self.diverged.diverged_layer or "an unknown layer").split(" (")[0]
            return f"diverged at step {self.diverged.step} in {layer}"
        if self.status == FINISHED:
            return f"finished ({self.step:,} steps)"
        if self.status == ERROR:
            return "stopped by an error"
        if self.status == IDLE:
            return "measuring the initial network" if self.busy else "ready"
        if self.status == PAUSED and self.busy:
            return "stepping"
        return self.status

    @property
    def sharing_text(self) -> str | None:
        """How the server's training is shared right now, or None when this run has it to
        itself (or nothing trains)."""
        if self.sharing <= 1 or not self.executors:
            return None
        cores = f"{self.executors} training process{'es' if self.executors > 1 else ''}"
        return f"{self.sharing} runs share this server's {cores}"


def frame_period(base_s: float, running: int, full_rate: int) -> float:
    """Seconds between a page's redraws when ``running`` sessions of its web process train:
    ``base_s`` up to ``full_rate`` sessions, then in proportion (the process's redraw work
    stays bounded however big the class)."""
    return round(base_s * max(1.0, running / max(1, full_rate)), 2)
