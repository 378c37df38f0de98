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
from multiprocessing.connection import Connection, Listener, wait

from app.live.process import schedule_trim
from app.live.scheduler import Scheduler

_LOG = logging.getLogger("gradlab.executor")
KEY_ENV = "GRADLAB_EXECUTOR_KEY"
LOAD_EVERY_S = 0.1       # load broadcasts to the clients, at most this often
IDLE_TICK_S = 0.25       # an idle executor still wakes this often (late load news, parent)


class Executor:
    """Accepts client connections and runs the scheduler between their commands."""

    def __init__(self, address: str, authkey: bytes, index: int = 0,
                 parent: int | None = None) -> None:
        self.index = index
        self.parent = parent
        self.listener = Listener(address, family="AF_UNIX", authkey=authkey)
        self.clients: list[Connection] = []
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
        conn: Connection = client  # type: ignore[assignment]
        try:
            conn.send(msg)
        except (OSError, EOFError, ValueError):
            self._gone(conn)

    def _gone(self, conn: Connection) -> None:
        if conn in self.clients:
            self.clients.remove(conn)
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
                if r is wake:
                    os.read(self._wake_r, 4096)
                    with self._lock:
                        fresh, self._new = self._new, []
                    for conn in fresh:
                        self.clients.append(conn)
                        self._emit(conn, ("load", self.index, self.scheduler.load))
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
