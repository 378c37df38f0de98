"""Trainers over real executor processes (app.live.pool / executor): every run moves at
once, a closed session frees its share, a crashed executor is a message, not a hang."""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.live.pool import Pool, get_pool
from app.live.trainer import Trainer
from app.live.view import ERROR, FINISHED, PAUSED, RUNNING
from core.config import RunConfig

pytestmark = pytest.mark.slow

TINY = RunConfig(depth=3, width=16, dataset="spiral", n_train=256, n_test=64, batch_size=32,
                 steps=100_000, every=10, seed=0, device="cpu", spectrum_every=0)


@pytest.fixture(scope="module")
def pool() -> Pool:
    p = get_pool()
    assert p.size >= 1 and all(link.alive for link in p.links)
    return p


def _until(pred, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_every_run_of_a_class_moves_and_shares_fairly(pool: Pool) -> None:
    trainers = [Trainer(TINY.replace(seed=i)) for i in range(8)]
    try:
        for t in trainers:
            t.reset()
        t0 = time.monotonic()
        for t in trainers:
            t.play()
        first = []
        for t in trainers:
            v = t.wait_for(lambda v: v.step > 0, timeout=20)
            assert v.step > 0, v.status_text
            first.append(time.monotonic() - t0)
        assert max(first) < 5.0, first          # generous: a loaded CI box
        time.sleep(3.0)
        reached = [t.view().step for t in trainers]
        jain = sum(reached) ** 2 / (len(reached) * sum(r * r for r in reached))
        assert jain >= 0.8, (reached, jain)
        assert max(link.load for link in pool.links) <= 8
        assert trainers[0].view().sharing >= 8 - 1
        assert trainers[0].view().status == RUNNING
    finally:
        for t in trainers:
            t.release()
    assert _until(lambda: pool.total_load == 0, 5.0), "closed sessions freed their share"


def test_step_pause_and_finish(pool: Pool) -> None:
    t = Trainer(TINY.replace(steps=50, every=5))
    try:
        t.reset()
        t.wait_for(lambda v: v.latest is not None, timeout=20)
        t.step()
        v = t.wait_for(lambda v: v.step == 1 and not v.busy, timeout=20)
        assert v.step == 1 and v.status == PAUSED
        t.play()
        v = t.wait_for(lambda v: v.status == FINISHED, timeout=30)
        assert v.status == FINISHED and v.step == 50 and v.latest.step == 50
        assert [s.step for s in v.history][-2:] == [45, 50]
    finally:
        t.release()


def test_a_killed_executor_is_an_error_message_and_the_next_run_works(pool: Pool) -> None:
    if not pool.owned:
        pytest.skip("the executors belong to a supervisor here")
    t = Trainer(TINY)
    try:
        t.reset()
        t.play()
        assert t.wait_for(lambda v: v.step > 0, timeout=20).step > 0
        link, _ = t._job
        os.kill(link.proc.pid, signal.SIGKILL)
        v = t.wait_for(lambda v: v.status == ERROR, timeout=10)
        assert v.status == ERROR and "stopped unexpectedly" in (v.message or "")
        t.reset()
        t.play()
        v = t.wait_for(lambda v: v.status == RUNNING and v.step > 0, timeout=60)
        assert v.step > 0, v.message
    finally:
        t.release()
