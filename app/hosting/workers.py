"""The web workers of ``gradlab-serve``: one listening socket *per worker* (``SO_REUSEPORT``).

Why not uvicorn's own ``--workers``: its processes share ONE listening socket, and whichever
worker's event loop wakes first accepts. Measured with 60 sessions on 2 workers: 50 / 11.
The busier worker is not slower to accept (accepting is cheap; running 50 sessions' scripts
is not), so it kept taking connections until its script runs stopped finishing and 12 of 61
sessions never saw a step. With one socket per worker, bound to the same port with
``SO_REUSEPORT``, the kernel hashes each new connection (its addresses and ports) to one
socket: the split is even by construction (60 sessions on 2 workers: 30 +- 4), whatever the
workers are doing.

Each socket belongs to the supervisor for the server's whole life and is handed to one
worker; a worker that dies is replaced on the same socket, so connections the kernel queued
for it wait for the replacement instead of being refused. Where ``SO_REUSEPORT`` does not
exist (not Linux or BSD), every worker shares one socket, as uvicorn does.

Supervision (start, health check, replace a dead or hung worker, SIGINT/SIGTERM, SIGHUP to
replace every worker one by one) is uvicorn's :class:`~uvicorn.supervisors.Multiprocess`;
only which socket each process gets differs.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

_LOG = logging.getLogger("uvicorn.error")


def reuseport_supported() -> bool:
    """Whether this platform can bind several listening sockets to one port."""
    return hasattr(socket, "SO_REUSEPORT")


def listening_sockets(host: str, port: int, n: int, backlog: int = 2048) -> list[socket.socket]:
    """``n`` listening TCP sockets on ``host:port``, each with ``SO_REUSEPORT`` (so that the
    kernel spreads new connections over them); port 0 picks one free port for all of them.
    Without ``SO_REUSEPORT``: one socket (the workers share it). Raises ``OSError`` when the
    address is taken or cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    count = n if reuseport_supported() else 1
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuseport_supported():
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((host, port))
            port = s.getsockname()[1]       # port 0: the others join the port it got
            s.listen(backlog)
            s.set_inheritable(True)
    except OSError:
        for s in socks:
            s.close()
        raise
    return socks


class PerSocketWorkers(Multiprocess):
    """uvicorn's multi-process supervisor, with worker ``i`` always serving ``sockets[i %
    len(sockets)]`` (its own socket; the shared one where there is only one)."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.processes_num = config.workers or 1

    def _new(self, idx: int) -> Process:
        return Process(self.config, [self.sockets[idx % len(self.sockets)]])

    def init_processes(self) -> None:
        for idx in range(self.processes_num):
            process = self._new(idx)
            process.start()
            self.processes.append(process)

    def restart_all(self) -> None:
        """SIGHUP: replace each worker, the replacement serving before the old one goes."""
        for idx, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._new(idx)
            new.start()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck,
                                        self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    _LOG.error("New worker [%s] was not ready in time; keeping [%s] and "
                               "aborting the restart.", new.pid, old.pid)
                return
            old.terminate()
            old.join()
            self.processes[idx] = new

    def keep_subprocess_alive(self) -> None:
        """A worker that died or stopped answering its health check is replaced on its own
        socket (a worker that failed before serving stops the server, as in uvicorn)."""
        from uvicorn.supervisors.multiprocess import STARTUP_FAILURE

        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                _LOG.error("Worker [%s] failed to start; stopping the server.", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            _LOG.info("Worker [%s] died; starting another on its socket", process.pid)
            process = self._new(idx)
            process.start()
            self.processes[idx] = process

    def handle_ttin(self) -> None:
        _LOG.info("SIGTTIN ignored: gradlab-serve's worker count is fixed (one socket each)")

    def handle_ttou(self) -> None:
        _LOG.info("SIGTTOU ignored: gradlab-serve's worker count is fixed (one socket each)")


def serve(app: str, host: str, port: int, workers: int, **options: Any) -> None:
    """Run ``app`` (an ``module:attribute`` import string) in ``workers`` processes, each on
    its own ``SO_REUSEPORT`` socket of ``host:port``, until SIGINT or SIGTERM."""
    config = Config(app, host=host, port=port, workers=workers, **options)
    socks = listening_sockets(host, port, workers, backlog=config.backlog)
    try:
        PerSocketWorkers(config, socks).run()
    finally:
        for s in socks:
            s.close()
