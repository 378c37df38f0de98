"""Trainers over real executor processes (app.live.pool / executor): every run moves at
once, a closed session frees its share, a crashed executor is a message, not a hang. Then
the hosted layout (``gradlab-serve --workers 2 --executors 2``): the executors are the
supervisor's children, both web workers train on them with each run placed by the load of
the whole pod, and a killed executor is started again and trains the next Play."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.live.pool import Pool, get_pool
from app.live.trainer import Trainer
from app.live.view import ERROR, FINISHED, PAUSED, RUNNING
from core.config import RunConfig
from tests.async_helpers import run_coroutine
from tests.test_serve import _state
from tools.protocol import ProtocolSession, open_until_play
from tools.server import Server, cmdline, cpu_s

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


# ---- under gradlab-serve: the supervisor's executors, shared by two web workers ------------

QUERY = "steps=20000"          # the default net, long enough to train all through the test


def _executors(server: Server) -> dict[int, int]:
    """``--index`` -> pid of the supervisor's live executor children."""
    out = {}
    for pid in server.pids("executor"):
        m = re.search(r"--index (\d+)", cmdline(pid))
        if m and _ppid(pid) == server.pid and _state(pid) not in ("Z", "gone"):
            out[int(m.group(1))] = pid
    return out


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _listening(pid: int) -> bool:
    """The executor's socket exists (it listens; its accept loop starts once warm)."""
    m = re.search(r"--address (\S+)", cmdline(pid))
    return bool(m) and os.path.exists(m.group(1))


def _step(s: ProtocolSession) -> int:
    head = s.metrics.get("Step", "").split("/")[0].replace(",", "").strip()
    return int(head) if head.isdigit() else -1


def _status(s: ProtocolSession) -> str:
    return s.metrics.get("Status", "")


def _trains(s: ProtocolSession) -> bool:
    return _status(s).startswith("running") and _step(s) >= 1


async def _pump_until(sessions: list[ProtocolSession], pred: Callable[[], bool],
                      timeout: float, what: str,
                      detail: Callable[[], object] = lambda: "") -> None:
    """Pump every session (as open browser tabs would) until ``pred()`` or ``timeout``."""
    end = time.monotonic() + timeout
    while not pred():
        for s in sessions:
            assert s.closed_reason is None and not s.exceptions, (what, s.closed_reason,
                                                                  s.exceptions)
        assert time.monotonic() < end, (
            f"{what}: not within {timeout:.0f} s {detail()}; pages: "
            f"{[(s.metrics.get('Step'), _status(s)) for s in sessions]}")
        await asyncio.gather(*(s.pump(time.monotonic() + 0.2) for s in sessions))


async def _open(server: Server) -> ProtocolSession:
    s = ProtocolSession(server.port, QUERY)
    error = await open_until_play(s, time.monotonic(), timeout=120)
    assert error is None, error
    return s


async def _play(s: ProtocolSession) -> None:
    await s.rerun(trigger_id=s.buttons["Play"][0])


def _worker_of(server: Server, s: ProtocolSession) -> int:
    holders = server.connections()
    assert s.local_port in holders, f"no web worker holds session {s.local_port}: {holders}"
    return holders[s.local_port]


async def _hosted_lifecycle(server: Server) -> None:
    ex = _executors(server)
    a = await _open(server)
    b: ProtocolSession | None = None
    try:
        # Session b must reach the other web worker. Each worker has its own socket and the
        # kernel hashes every new connection to one of them (app/hosting/workers.py): open
        # sessions until one lands there (P(20 misses) = 1e-6)
        wa = _worker_of(server, a)
        for _ in range(20):
            b = await _open(server)
            if _worker_of(server, b) != wa:
                break
            await b.close()
        assert b is not None
        wb = _worker_of(server, b)
        assert wb != wa and {wa, wb} == set(server.pids("web"))

        # a trains first; b, pressed later in the other worker, goes to the other executor
        # (a's run is counted there through the executors' load), so both executors train
        await _play(a)
        await _pump_until([a, b], lambda: _trains(a), 90, "a's first step")
        cpu0 = {i: cpu_s([pid]) or 0.0 for i, pid in ex.items()}
        await _play(b)
        await _pump_until([a, b], lambda: _trains(b), 90, "b's first step")
        a_step = _step(a)

        def grown() -> dict[int, float]:
            return {i: (cpu_s([pid]) or 0.0) - cpu0[i] for i, pid in ex.items()}

        await _pump_until([a, b], lambda: min(grown().values()) >= 0.5, 120,
                          "one run on each executor",
                          lambda: f"(CPU s since a trained: {grown()})")
        await _pump_until([a, b], lambda: _step(a) > a_step and _trains(b), 60, "both runs moving")

        # Both executors killed: each page says its run stopped, the supervisor starts them
        # again, and a later Play in each web worker trains on the new ones
        for pid in ex.values():
            os.kill(pid, signal.SIGKILL)
        await _pump_until([a, b],
                          lambda: all("stopped by an error" in _status(s) for s in (a, b)),
                          60, "the pages report the lost runs")

        def restarted() -> bool:
            now = _executors(server)
            return (sorted(now) == sorted(ex) and not set(now.values()) & set(ex.values())
                    and all(_listening(p) for p in now.values()))

        await _pump_until([a, b], restarted, 90, "the supervisor restarts both executors")
        for s in (a, b):
            await _play(s)
        await _pump_until([a, b], lambda: _trains(a) and _trains(b), 120, "Play after the restart")
    finally:
        for s in (a, b):
            if s is not None:
                await s.close()


def test_the_supervisors_executors_train_for_both_workers_and_come_back() -> None:
    """``gradlab-serve --workers 2 --executors 2``: two executor processes, children of the
    supervisor (which never loads torch); a session in each web worker trains, the second
    run on the other executor, and neither web worker loads torch; after SIGKILL of both
    executors the pages say so, the supervisor starts them again and Play trains in both
    workers."""
    with Server(env={}, procs=2, executors=2) as server:
        server.wait_healthy(timeout=180)
        ex = _executors(server)
        assert sorted(ex) == [0, 1], [cmdline(p) for p in server.tree()]
        assert len(server.pids("web")) == 2
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert "torch" not in maps, "the supervisor loaded torch"
        run_coroutine(_hosted_lifecycle(server))
        for pid in server.pids("web"):     # they served training pages, and trained nothing
            assert "torch" not in Path(f"/proc/{pid}/maps").read_text(), "a web worker loaded torch"
        log = server.log_text()
        for i in ex:
            assert f"training process {i} exited (code -9)" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


def test_a_client_that_stops_reading_does_not_stop_the_others(tmp_path: Path) -> None:
    """One web process that stops reading (its page threads hog its interpreter) must not
    stall the executor: before the outboxes, its socket filled, ``send`` blocked, and every
    run on that executor stopped (first steps 4-15 s after Play with 60 sessions). Here
    client X floods (a snapshot per step) and never reads; client Y's run keeps arriving,
    and X's messages wait in its outbox, not in the training loop."""
    import threading
    from multiprocessing.connection import Client

    from app.live.executor import Executor

    key = os.urandom(16)
    address = str(tmp_path / "ex.sock")
    ex = Executor(address, key)
    loop = threading.Thread(target=ex.serve, daemon=True)
    loop.start()
    x = Client(address, family="AF_UNIX", authkey=key)
    y = Client(address, family="AF_UNIX", authkey=key)
    try:
        flood = {"cfg": TINY.replace(every=1), "play": True, "every": 1, "lr": 0.1}
        x.send(("run", 1, flood))
        y.send(("run", 1, {"cfg": TINY, "play": True, "every": 10, "lr": 0.1}))

        def y_steps(seconds: float) -> list[int]:
            out, end = [], time.monotonic() + seconds
            while time.monotonic() < end:
                if y.poll(0.05):
                    msg = y.recv()
                    for m in (msg[1] if msg[0] == "batch" else [msg]):
                        if m[0] == "snap":
                            out.append(m[2].step)
            return out

        end = time.monotonic() + 10.0   # until X's unread snapshots fill its socket
        while time.monotonic() < end and sum(
                b.backlog for b in getattr(ex, "outboxes", {}).values()) <= 50:
            y_steps(0.2)
        later = y_steps(2.0)
        assert len(later) >= 5 and later[-1] > later[0], f"Y stalled behind X: {later}"
        backlog = sum(b.backlog for b in ex.outboxes.values())
        assert backlog > 50, f"X's messages did not pile up ({backlog}): the test proves nothing"
    finally:
        x.close()
        y.close()
        ex._stop = True              # the loop ends its turn, then the scheduler closes
        loop.join(timeout=10)
        ex.close()


def test_what_waits_for_a_slow_reader_goes_out_in_one_batch_in_order() -> None:
    """While a send is under way, the snapshots produced meanwhile wait and then go out as
    one ``("batch", ...)`` message, in order; the page side hands each to its job in that
    order. (One message per snapshot made a web process whose page scripts hog its
    interpreter lock fall further and further behind.)"""
    import threading

    from app.live.executor import Outbox
    from app.live.pool import Link

    gate = threading.Event()

    class SlowConn:
        def __init__(self) -> None:
            self.sent: list[tuple] = []

        def send(self, msg: tuple) -> None:
            gate.wait(5)
            self.sent.append(msg)

    conn = SlowConn()
    box = Outbox(conn, on_dead=lambda c: None)  # type: ignore[arg-type]
    box.put(("snap", 1, 0, None))               # taken at once; its send waits on the gate
    time.sleep(0.2)
    for i in range(1, 101):
        box.put(("snap", 1 + i % 2, i, None))
    box.put(("load", 0, 3))
    gate.set()
    end = time.monotonic() + 5
    while box.sent < 102 and time.monotonic() < end:
        time.sleep(0.01)
    assert box.sent == 102
    assert len(conn.sent) == 2 and conn.sent[1][0] == "batch", [m[0] for m in conn.sent]
    assert [m[2] for m in conn.sent[1][1][:-1]] == list(range(1, 101))
    box.close()

    link = Link(0, "unused", b"k")
    got: dict[int, list[int]] = {1: [], 2: []}
    link.handlers[1] = lambda m: got[1].append(m[2])
    link.handlers[2] = lambda m: got[2].append(m[2])
    for msg in conn.sent:
        for m in (msg[1] if msg[0] == "batch" else [msg]):
            link._dispatch(m)
    assert got[1] == [0] + list(range(2, 101, 2)) and got[2] == list(range(1, 101, 2))
    assert link.load == 3
