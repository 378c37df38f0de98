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


CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP) -> int | None:
    """Whole CPUs of this container's CPU quota (a Kubernetes CPU limit), rounded up; None
    without a quota. Reads cgroup v2 (``cpu.max``), else v1 (``cpu/cpu.cfs_quota_us``)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    try:
        q = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        t = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if q <= 0 or t <= 0 else max(1, -(-q // t))
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """CPUs this process may use: its affinity mask, capped by the container's CPU quota
    (what a Kubernetes CPU limit becomes; ``os.cpu_count()`` would report the whole node).
    The default count of web workers and of training executors."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, min(n, limit) if limit is not None else n)


def hosted() -> bool:
    """True when the hosted profile (``GRADLAB_PROFILE=hosted``) tightens the per-run caps."""
    return os.environ.get("GRADLAB_PROFILE", "").strip().lower() == "hosted"


def run_limits() -> Limits:
    """The per-run caps in force: ``Limits.hosted()`` under the hosted profile, else the
    defaults. The app passes them wherever it builds a config from widgets or a URL."""
    from core.config import Limits

    return Limits.hosted() if hosted() else Limits()
