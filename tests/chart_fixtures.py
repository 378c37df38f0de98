"""Real (short) runs of the core for the chart tests, as module-scoped fixtures; a test
module loads them with ``pytest_plugins = ("tests.chart_fixtures",)``."""

from __future__ import annotations

import pytest

from core.config import RunConfig
from core.presets import preset
from core.snapshot import Snapshot
from core.train import run_all

# ---- real snapshots ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> list[Snapshot]:
    """A 6-layer tanh MLP on the spiral, 20 steps, a snapshot every 5."""
    return run_all(RunConfig(steps=20, every=5)).snapshots


@pytest.fixture(scope="module")
def deep20() -> list[Snapshot]:
    return run_all(RunConfig(depth=20, width=32, n_train=256, n_test=64, steps=10,
                             every=5)).snapshots


@pytest.fixture(scope="module")
def deep200() -> Snapshot:
    return run_all(RunConfig(depth=200, width=16, n_train=128, n_test=0, steps=0)).snapshots[0]


@pytest.fixture(scope="module")
def depth1() -> list[Snapshot]:
    return run_all(RunConfig(depth=1, steps=10, every=5)).snapshots


@pytest.fixture(scope="module")
def exploding() -> list[Snapshot]:
    res = run_all(preset("exploding-lr"))
    assert res.diverged_at is not None, "the exploding-lr preset is expected to diverge"
    return res.snapshots


@pytest.fixture(scope="module")
def rnn() -> Snapshot:
    return run_all(preset("rnn-long").replace(steps=0, seq_len=10)).snapshots[0]
