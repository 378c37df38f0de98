"""Environment settings and the cores this process may use. No heavy imports: the
``gradlab-serve`` supervisor reads these before it starts its workers, and importing torch
there would cost every pod ~260 MB for a process that never trains (measured)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # core.config is imported lazily below: this module stays light
    from core.config import Limits


def env_int(name: str, default: int, lo: int = 1) -> int:
    """An integer setting from the environment, at least ``lo``; ``default`` if unset or
    not a number."""
    try:
        return max(lo, int(os.environ.get(name, "").strip() or default))
    except ValueError:
        return default


def env_float(name: str, default: float, lo: float = 0.0) -> float:
    """A float setting from the environment, at least ``lo``; ``default`` if unset or not a
    number."""
    try:
        return max(lo, float(os.environ.get(name, "").strip() or default))
    except ValueError:
        return default


def available_cores() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (what a
    Kubernetes CPU limit becomes; ``os.cpu_count()`` would report the whole node)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def default_slots() -> int:
    """Training slots of this process when ``GRADLAB_MAX_WORKERS`` is not set: the cores
    shared out among the server processes (``WEB_CONCURRENCY``, uvicorn's worker count; 1
    under ``streamlit run``), at least one. A trainer keeps one core busy."""
    return max(1, available_cores() // env_int("WEB_CONCURRENCY", 1))


def hosted() -> bool:
    """True when the hosted profile (``GRADLAB_PROFILE=hosted``) tightens the per-run caps."""
    return os.environ.get("GRADLAB_PROFILE", "").strip().lower() == "hosted"


def run_limits() -> Limits:
    """The per-run caps in force: ``Limits.hosted()`` under the hosted profile, else the
    defaults. The app passes them wherever it builds a config from widgets or a URL."""
    from core.config import Limits

    return Limits.hosted() if hosted() else Limits()
