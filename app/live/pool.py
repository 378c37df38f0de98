"""The page side of the training executors: connections, placement by load, and calls.

A web process holds one connection to each executor of the box (:mod:`app.live.executor`)
and one receiver thread per connection, which hands each message to the job it names. A
new run goes to the executor with the fewest runnable jobs, counting every web process's
jobs (each executor broadcasts its load), so the box's cores are shared by all sessions
whichever web worker accepted their websocket.

Where the executors come from: ``GRADLAB_EXECUTOR_ADDRS`` (comma-separated socket paths)
and ``GRADLAB_EXECUTOR_KEY`` name the ones ``gradlab-serve``'s supervisor started;
without them (``streamlit run``, tests) this process starts its own on first use
(``GRADLAB_EXECUTORS`` of them, default: the cores), and they exit with it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from app.env import available_cores, env_int

_LOG = logging.getLogger("gradlab.pool")
ADDRS_ENV = "GRADLAB_EXECUTOR_ADDRS"
KEY_ENV = "GRADLAB_EXECUTOR_KEY"
COUNT_ENV = "GRADLAB_EXECUTORS"
CONNECT_TIMEOUT_S = 120.0
LOST = "The training process stopped unexpectedly; press Play to start again."

Handler = Callable[[tuple], None]
_ROOT = Path(__file__).resolve().parents[2]


class ExecutorLost(RuntimeError):
    """No executor could be reached."""


class Link:
    """One connection to one executor, and the jobs this process has on it."""

    def __init__(self, index: int, address: str, key: bytes,
                 proc: subprocess.Popen | None = None) -> None:
        self.index, self.address, self.key, self.proc = index, address, key, proc
        self.conn: Connection | None = None
        self.load = 0                       # runnable jobs there, all clients (broadcast)
        self.handlers: dict[int, Handler] = {}
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.conn is not None

    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = Client(self.address, family="AF_UNIX", authkey=self.key)
                break
            except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, EOFError):
                # not listening yet, or a restarted executor closed a connection that
                # reached it while it was starting: try again until the deadline
                if self.proc is not None and self.proc.poll() is not None:
                    raise ExecutorLost(f"executor {self.index} exited "
                                       f"(code {self.proc.returncode})") from None
                if time.monotonic() > deadline:
                    raise ExecutorLost(f"executor {self.index} did not answer at "
                                       f"{self.address}") from None
                time.sleep(0.05)
        with self._lock:
            self.conn = conn
        threading.Thread(target=self._receive, args=(conn,), daemon=True,
                         name=f"gradlab-link-{self.index}").start()

    def send(self, msg: tuple) -> None:
        conn = self.conn
        if conn is None:
            raise ExecutorLost(f"executor {self.index} is not connected")
        try:
            with self._send_lock:
                conn.send(msg)
        except (OSError, EOFError, ValueError) as e:
            self._lost(conn)
            raise ExecutorLost(str(e)) from None

    def _receive(self, conn: Connection) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                self._lost(conn)
                return
            except Exception:  # noqa: BLE001 - an unpicklable message: skip it, keep the link
                _LOG.exception("executor %d sent an unreadable message", self.index)
                continue
            if msg[0] == "batch":               # what waited at the executor, in order
                for m in msg[1]:
                    self._dispatch(m)
            else:
                self._dispatch(msg)

    def _dispatch(self, msg: tuple) -> None:
        """Hand one executor message to the job it names (or take its load figure)."""
        if msg[0] == "load":
            self.load = msg[2]
            return
        final = msg[0] in ("end", "result")      # the job's last message
        handler = self.handlers.pop(msg[1], None) if final else self.handlers.get(msg[1])
        if handler is not None:
            try:
                handler(msg)
            except Exception:  # noqa: BLE001 - one session's bug must not stop the rest
                _LOG.exception("job %s handler failed", msg[1])

    def _lost(self, conn: Connection) -> None:
        with self._lock:
            if self.conn is not conn:
                return
            self.conn = None
            handlers, self.handlers = self.handlers, {}
        conn.close()
        for jid, handler in handlers.items():
            try:
                handler(("end", jid, "error", LOST))
            except Exception:  # noqa: BLE001
                _LOG.exception("job %s handler failed", jid)


class Pool:
    """The executors this web process uses."""

    def __init__(self, links: list[Link], owned: bool) -> None:
        self.links = links
        self.owned = owned                  # started by this process (stopped at exit)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # ---- placement ------------------------------------------------------------------------

    def place(self, key: bytes | None = None) -> Link:
        """The executor for a new job: the least loaded one (or, for a lesson computation
        with ``key``, always the same one, so that identical requests share one job)."""
        with self._lock:
            for link in self.links:
                if not link.alive:
                    self._revive(link)
            live = [link for link in self.links if link.alive]
            if not live:
                raise ExecutorLost("no training process is available")
            if key is not None:             # a stable hash: every web process agrees
                return live[zlib.crc32(key) % len(live)]
            return min(live, key=lambda link: (link.load, len(link.handlers)))

    def _revive(self, link: Link) -> None:
        try:
            if self.owned and (link.proc is None or link.proc.poll() is not None):
                link.proc = respawn(link.index, link.address, link.key)
            link.connect(timeout=CONNECT_TIMEOUT_S if self.owned else 1.0)
        except ExecutorLost as e:
            _LOG.warning("executor %d unavailable: %s", link.index, e)

    def start(self, spec: dict[str, Any], handler: Handler) -> tuple[Link, int]:
        """Start a run job (``app.live.scheduler.RunJob`` spec); messages go to ``handler``.
        An executor that turns out to be gone is skipped for the next one."""
        for attempt in range(len(self.links)):
            link = self.place()
            jid = next(self._ids)
            link.handlers[jid] = handler
            link.load += 1                  # until the executor's own figure arrives
            try:
                link.send(("run", jid, spec))
                return link, jid
            except ExecutorLost:
                link.handlers.pop(jid, None)
                if attempt == len(self.links) - 1:
                    raise
        raise ExecutorLost("no training process is available")

    @staticmethod
    def control(link: Link, jid: int, change: dict[str, Any]) -> None:
        link.send(("ctl", jid, change))

    @staticmethod
    def drop(link: Link, jid: int) -> None:
        link.handlers.pop(jid, None)
        try:
            link.send(("drop", jid))
        except ExecutorLost:
            pass

    def call(self, ref: str, args: tuple, kwargs: dict[str, Any],
             on_progress: Callable[[float | None, str], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> Any:
        """Run ``ref(*args, **kwargs)`` (a lesson computation) on an executor, sharing the
        job and its result with every session that asks the same; blocks until done.
        ``on_progress(fraction, text)`` is called on this thread; raises RuntimeError with
        the computation's message if it failed."""
        key = pickle.dumps((ref, args, sorted(kwargs.items())), protocol=5)
        link = self.place(key)
        jid = next(self._ids)
        cv = threading.Condition()
        box: dict[str, Any] = {}

        def handler(msg: tuple) -> None:
            with cv:
                if msg[0] == "progress":
                    box["progress"] = msg[2:]
                elif msg[0] == "result":
                    box["result"] = msg[2:]
                elif msg[0] == "end":
                    box["result"] = (False, msg[3])
                cv.notify_all()

        link.handlers[jid] = handler
        link.send(("call", jid, key, ref, args, kwargs))
        try:
            while True:
                with cv:
                    cv.wait_for(lambda: box, timeout=0.5)
                    result = box.pop("result", None)
                    prog = box.pop("progress", None)
                if result is not None:
                    ok, value = result
                    if not ok:
                        raise RuntimeError(value)
                    return value
                if prog is not None and on_progress is not None:
                    on_progress(*prog)
                if cancelled is not None and cancelled():
                    raise RuntimeError("cancelled")
        finally:
            self.drop(link, jid)

    @property
    def total_load(self) -> int:
        """Runnable jobs on the box (all web processes): what "runs sharing" counts."""
        return sum(link.load for link in self.links if link.alive)

    @property
    def size(self) -> int:
        return len(self.links)

    def close(self) -> None:
        for link in self.links:
            conn, link.conn = link.conn, None
            if conn is not None:
                conn.close()
            if self.owned and link.proc is not None:
                stop(link.proc)
        if self.owned:
            remove_sockets([link.address for link in self.links])


# ---- starting executors -----------------------------------------------------------------------


def respawn(index: int, address: str, key: bytes, parent: int | None = None
            ) -> subprocess.Popen:
    """Start executor ``index`` (again) on ``address``."""
    env = dict(os.environ)
    env["GRADLAB_EXECUTOR_KEY"] = key.hex()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
    for name in (ADDRS_ENV,):
        env.pop(name, None)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(address)
    cmd = [sys.executable, "-m", "app.live.executor", "--address", address,
           "--index", str(index), "--parent", str(parent or os.getpid())]
    # A process group of its own: a signal to the server's group (Ctrl-C, kill -- -PGID)
    # reaches the parent, which stops its executors after its web workers, so they do not
    # die first and are not restarted during the shutdown.
    return subprocess.Popen(cmd, env=env, cwd=str(_ROOT), stdin=subprocess.DEVNULL,
                            start_new_session=True)


def start_executors(n: int, parent: int | None = None
                    ) -> tuple[list[subprocess.Popen], list[str], bytes]:
    """Start ``n`` executor processes on fresh Unix sockets. Returns (processes, socket
    paths, key). Used by gradlab-serve's supervisor and by a lone page process."""
    key = secrets.token_bytes(16)
    folder = tempfile.mkdtemp(prefix="gradlab-exec-")
    addrs = [os.path.join(folder, f"e{i}.sock") for i in range(n)]
    procs = [respawn(i, a, key, parent) for i, a in enumerate(addrs)]
    return procs, addrs, key


def remove_sockets(addrs: list[str]) -> None:
    """Remove the socket folder that :func:`start_executors` made (its executors stopped)."""
    for folder in {os.path.dirname(a) for a in addrs}:
        shutil.rmtree(folder, ignore_errors=True)


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop one executor: SIGTERM, then SIGKILL if it has not gone after ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_POOL: Pool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> Pool:
    """This process's pool, connected on first use (starting executors if none are named)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            return _POOL
        addrs = [a for a in os.environ.get(ADDRS_ENV, "").split(",") if a.strip()]
        key_hex = os.environ.get(KEY_ENV, "")
        if addrs and key_hex:
            links = [Link(i, a.strip(), bytes.fromhex(key_hex)) for i, a in enumerate(addrs)]
            pool = Pool(links, owned=False)
        else:
            n = env_int(COUNT_ENV, available_cores())
            procs, paths, key = start_executors(n)
            links = [Link(i, a, key, p) for i, (a, p) in enumerate(zip(paths, procs, strict=True))]
            pool = Pool(links, owned=True)
            atexit.register(pool.close)
        for link in links:
            try:
                link.connect()
            except ExecutorLost as e:
                _LOG.warning("%s", e)
        _POOL = pool
        return pool


def reset_pool() -> None:
    """Close this process's pool (tests; a later get_pool() starts afresh)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.close()


__all__ = ["ExecutorLost", "Link", "Pool", "get_pool", "remove_sockets", "reset_pool",
           "respawn", "start_executors", "stop"]
