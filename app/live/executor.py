"""A training executor: one process, one core, many runs taking turns (``app.live.scheduler``).

Started by ``gradlab-serve``'s supervisor (one per core, shared by all its web workers) or,
under ``streamlit run``, by the page process itself (:mod:`app.live.pool`). It listens on a
Unix socket; every web process that hosts sessions holds one connection to it. Page work
never waits on training: this process has its own interpreter lock.

    python -m app.live.executor --address PATH [--index I] [--parent PID]

The connection key comes from the environment (``GRADLAB_EXECUTOR_KEY``, hex), never argv.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection, Listener, wait

from app.live.process import schedule_trim
from app.live.scheduler import Scheduler

_LOG = logging.getLogger("gradlab.executor")
KEY_ENV = "GRADLAB_EXECUTOR_KEY"
LOAD_EVERY_S = 0.1       # load broadcasts to the clients, at most this often
IDLE_TICK_S = 0.25       # an idle executor still wakes this often (late load news, parent)


#: Messages one client may have waiting before it is taken for dead (a web process that
#: stopped reading: its jobs are dropped rather than this process's memory growing).
MAX_BACKLOG = 20_000
#: At most this many waiting messages go out as one ``("batch", [...])`` message.
MAX_BATCH = 512


class Outbox:
    """What this executor sends one client, written by a thread of its own.

    The training loop only appends: it never waits on a client that reads slowly. Measured
    before: with 30 sessions per web process, that process's reading thread fell behind
    (it shares an interpreter lock with 30 page scripts), the socket filled, ``send``
    blocked, and *every* run of this executor stopped with it: executors ~30 % busy on a
    saturated box, and first steps 4-15 s after Play. Order is kept; a client whose backlog
    passes :data:`MAX_BACKLOG`, or whose socket fails, is reported through ``on_dead``.

    Whatever waits goes out in one ``("batch", [msg, ...])`` message: the web process's
    reading thread pays its per-message cost (reacquiring an interpreter lock contended by
    its page scripts, two or three times per ``recv``) once per batch, not once per
    snapshot. A reader that falls behind thus catches up in bigger gulps instead of falling
    further behind (measured: a new session's first step queued behind seconds of other
    sessions' snapshots)."""

    def __init__(self, conn: Connection, on_dead: Callable[[Connection], None]) -> None:
        self.conn = conn
        self._on_dead = on_dead
        self._queue: deque[tuple] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self.sent = 0              # messages sent
        self.batches = 0           # socket messages they went in
        threading.Thread(target=self._write, name="gradlab-outbox", daemon=True).start()

    def put(self, msg: tuple) -> None:
        with self._cv:
            if self._closed:
                return
            if len(self._queue) >= MAX_BACKLOG:
                self._closed = True
                self._queue.clear()
                self._cv.notify_all()
                dead = True
            else:
                self._queue.append(msg)
                self._cv.notify()
                dead = False
        if dead:
            _LOG.warning("a client stopped reading (%d messages waiting): dropping it",
                         MAX_BACKLOG)
            self._on_dead(self.conn)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()

    def _write(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                n = min(len(self._queue), MAX_BATCH)
                msgs = [self._queue.popleft() for _ in range(n)]
            try:
                self.conn.send(msgs[0] if n == 1 else ("batch", msgs))
                self.sent += n
                self.batches += 1
            except (OSError, EOFError, ValueError):
                self.close()
                self._on_dead(self.conn)
                return
            except Exception:  # noqa: BLE001 - an unpicklable message: skip it, keep going
                self._send_each(msgs)

    def _send_each(self, msgs: list[tuple]) -> None:
        """A batch that would not pickle: send its messages one by one, skipping the bad."""
        for msg in msgs:
            try:
                self.conn.send(msg)
                self.sent += 1
            except (OSError, EOFError, ValueError):
                self.close()
                self._on_dead(self.conn)
                return
            except Exception:  # noqa: BLE001 - an unpicklable message: skip it
                _LOG.exception("executor could not send a %r message", msg[:1])


class Executor:
    """Accepts client connections and runs the scheduler between their commands."""

    def __init__(self, address: str, authkey: bytes, index: int = 0,
                 parent: int | None = None) -> None:
        self.index = index
        self.parent = parent
        self.listener = Listener(address, family="AF_UNIX", authkey=authkey)
        self.clients: list[Connection] = []
        self.outboxes: dict[Connection, Outbox] = {}
        self._dead: list[Connection] = []       # found dead by an outbox's thread
        self.scheduler = Scheduler(self._emit)
        self._new: list[Connection] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._sent_load = -1
        self._load_at = 0.0
        self._stop = False

    # ---- connections ----------------------------------------------------------------------

    def _accept_forever(self) -> None:
        while not self._stop:
            try:
                conn = self.listener.accept()
            except OSError:                     # closed at shutdown, or a failed handshake
                if self._stop:
                    return
                continue
            except Exception:  # noqa: BLE001 - e.g. a wrong key: refuse that one only
                _LOG.warning("executor %d refused a connection", self.index)
                continue
            with self._lock:
                self._new.append(conn)
            os.write(self._wake_w, b"x")

    def _emit(self, client: object, msg: tuple) -> None:
        box = self.outboxes.get(client)  # type: ignore[call-overload]
        if box is not None:
            box.put(msg)

    def _died(self, conn: Connection) -> None:
        """From an outbox's thread: hand the dead client to the loop (the scheduler is the
        loop's alone)."""
        with self._lock:
            self._dead.append(conn)
        os.write(self._wake_w, b"x")

    def _gone(self, conn: Connection) -> None:
        if conn in self.clients:
            self.clients.remove(conn)
            box = self.outboxes.pop(conn, None)
            if box is not None:
                box.close()
            self.scheduler.drop_client(conn)
            conn.close()
            self._sent_load = -1
            schedule_trim()

    def _broadcast_load(self, force: bool = False) -> None:
        load = self.scheduler.load
        now = time.monotonic()
        if load == self._sent_load and not force:
            return
        if now - self._load_at < LOAD_EVERY_S and not force and self._sent_load >= 0:
            return
        self._sent_load, self._load_at = load, now
        for conn in list(self.clients):
            self._emit(conn, ("load", self.index, load))

    # ---- the loop -------------------------------------------------------------------------

    def serve(self) -> None:
        threading.Thread(target=self._accept_forever, name="gradlab-accept", daemon=True).start()
        wake = os.fdopen(self._wake_r, "rb", buffering=0)
        had_jobs = False
        while not self._stop:
            busy = self.scheduler.runnable()
            ready = wait([*self.clients, wake], timeout=0 if busy else IDLE_TICK_S)
            for r in ready:
                if r is not wake and r not in self.outboxes:
                    continue                        # dropped earlier in this round
                if r is wake:
                    os.read(self._wake_r, 4096)
                    with self._lock:
                        fresh, self._new = self._new, []
                        dead, self._dead = self._dead, []
                    for conn in fresh:
                        self.clients.append(conn)
                        self.outboxes[conn] = Outbox(conn, self._died)
                        self._emit(conn, ("load", self.index, self.scheduler.load))
                    for conn in dead:
                        self._gone(conn)
                    continue
                conn: Connection = r  # type: ignore[assignment]
                try:
                    while conn.poll():
                        self.scheduler.handle(conn, conn.recv())
                except (EOFError, OSError):
                    self._gone(conn)
            self._broadcast_load()
            if busy:
                self.scheduler.run_turn()
            if had_jobs and not self.scheduler.jobs:
                schedule_trim()                     # the last run left: give memory back
            had_jobs = bool(self.scheduler.jobs)
            if not busy and self.parent is not None and os.getppid() != self.parent:
                return                              # the process that started us died

    def close(self) -> None:
        self._stop = True
        for box in self.outboxes.values():
            box.close()
        self.scheduler.close()
        self.listener.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.live.executor")
    p.add_argument("--address", required=True)
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--parent", type=int, default=None)
    args = p.parse_args(argv)
    key = os.environ.get(KEY_ENV, "")
    if not key:
        print(f"executor: {KEY_ENV} is not set", file=sys.stderr)
        return 2
    from app.live.process import configure_torch, warm_torch

    configure_torch()
    ex = Executor(args.address, bytes.fromhex(key), args.index, args.parent)
    warm_torch()
    try:
        ex.serve()
    except KeyboardInterrupt:
        pass
    finally:
        ex.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
