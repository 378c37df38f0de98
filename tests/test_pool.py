"""app.live.pool without executors: placement by load over every web process, stable
placement of lesson computations, and what a lost executor means for its jobs."""

from __future__ import annotations

import zlib

import pytest

from app.live.pool import LOST, ExecutorLost, Link, Pool


class FakeConn:
    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.closed = False

    def send(self, msg: tuple) -> None:
        if self.closed:
            raise OSError("closed")
        self.sent.append(msg)

    def close(self) -> None:
        self.closed = True


def _pool(loads: list[int]) -> Pool:
    links = []
    for i, load in enumerate(loads):
        link = Link(i, f"/nowhere/{i}", b"k")
        link.conn = FakeConn()  # type: ignore[assignment]
        link.load = load
        links.append(link)
    return Pool(links, owned=False)


def test_a_new_run_goes_to_the_least_loaded_executor() -> None:
    pool = _pool([5, 2, 7])
    link, jid = pool.start({"cfg": None}, lambda msg: None)
    assert link.index == 1 and link.conn.sent == [("run", jid, {"cfg": None})]
    assert link.load == 3, "counted at once, before the executor's own figure arrives"
    pool.links[1].load = 9
    assert pool.start({}, lambda msg: None)[0].index == 0


def test_lesson_computations_land_on_the_same_executor_in_every_process() -> None:
    pool = _pool([0, 0, 0])
    key = b"some computation"
    assert pool.place(key).index == zlib.crc32(key) % 3
    assert pool.place(key) is pool.place(key)


def test_a_gone_executor_is_skipped_and_its_jobs_hear_of_it() -> None:
    pool = _pool([0, 5])
    got: list[tuple] = []
    link, jid = pool.start({}, got.append)
    assert link.index == 0
    link.conn.closed = True                        # the executor died
    link2, _ = pool.start({}, lambda msg: None)    # skipped: the next one takes the run
    assert link2.index == 1 and not link.alive
    assert got == [("end", jid, "error", LOST)]
    for other in pool.links:
        other.conn = None
    with pytest.raises(ExecutorLost):
        pool.start({}, lambda msg: None)


def test_total_load_counts_every_live_executor() -> None:
    pool = _pool([3, 4])
    assert pool.total_load == 7 and pool.size == 2
    pool.links[0].conn = None
    assert pool.total_load == 4
