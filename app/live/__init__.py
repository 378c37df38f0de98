"""Running sessions: the trainer a page talks to, fair turns at training, the shared step-0
pictures, history thinning and the process settings.

    scheduler time-sharing inside an executor: short turns, least-served first
    executor  a training process (one per core): serves the scheduler over a Unix socket
    pool      the web process's side: connections, placement by load, lesson calls
    process   torch's thread count and warm-up, giving memory back (malloc_trim)
    initial   INITIAL: each config's step-0 snapshot, measured once per process and shared
    history   light snapshots and thinning: a bounded history that keeps a run's shape
    view      the statuses and TrainerView, the immutable copy a page draws from
    trainer   Trainer: play / pause / step / reset of a run that trains in an executor
    binding   get_trainer (one per browser session), release_all, live_trainers

Only this package starts threads; ``core`` stays pure.

An executor process imports only what it runs (scheduler, history, process, core): the
names below load their modules on first use (PEP 562), so that importing this package
does not pull in Streamlit and Plotly there.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "get_trainer": "app.live.binding",
    "get_extras": "app.live.binding",
    "SessionExtras": "app.live.binding",
    "live_trainers": "app.live.binding",
    "release_all": "app.live.binding",
    "history_cap": "app.live.history",
    "light": "app.live.history",
    "thin": "app.live.history",
    "INITIAL": "app.live.initial",
    "InitialSnapshots": "app.live.initial",
    "configure_torch": "app.live.process",
    "warm_up": "app.live.process",
    "get_pool": "app.live.pool",
    "LIVE_FIELDS": "app.live.trainer",
    "Trainer": "app.live.trainer",
    "ACTIVE": "app.live.view",
    "CLOSED": "app.live.view",
    "DIVERGED": "app.live.view",
    "ERROR": "app.live.view",
    "FINISHED": "app.live.view",
    "IDLE": "app.live.view",
    "PAUSED": "app.live.view",
    "RUNNING": "app.live.view",
    "TrainerView": "app.live.view",
    "frame_period": "app.live.view",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'app.live' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)


__all__ = sorted(_WHERE)
