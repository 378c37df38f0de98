"""The one helper that starts and stops a local Gradient Lab server, for the tests
(tests/conftest.py, tests/test_serve.py), the benchmark and the load test.

    with serving(hosted=False) as server:        # streamlit run app/main.py, a free port
        requests_to(server.url)
    with serving(procs=2) as server:             # gradlab-serve --workers 2, hosted profile
        server.rss_mb(), server.cpu_s(), server.threads()

The server runs in its own process group on 127.0.0.1 only, logs to a temporary file, and
is stopped with SIGTERM to the whole group, then SIGKILL if it does not go. Memory, CPU and
threads are summed over its process tree (the uvicorn parent and its workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent   # the folder that holds app/ and tools/
LOOPBACK = "127.0.0.1"                                # the only address a server binds here
SERVE_MODULE = "app.hosting.serve"                    # gradlab-serve's module
STOP_GRACE_S = 15.0                                   # SIGTERM -> SIGKILL


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant's pid (from /proc; processes gone meanwhile are skipped)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(k) for k in Path(f"/proc/{p}/task/{task}/children").read_text()
                            .split())
        except OSError:
            continue
    return out


class ServerError(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log's tail."""


class Server:
    """A started server: ``streamlit run SCRIPT`` (``procs`` 0) or ``gradlab-serve --workers
    procs`` (uvicorn worker processes sharing one socket, as the Docker image runs it).

    ``workers`` sets GRADLAB_MAX_WORKERS; ``env`` is added to this process's environment.
    ``hosted`` runs it as the Docker image does (GRADLAB_PROFILE=hosted, 2 malloc arenas);
    ``extra_args`` go to ``streamlit run``. Call :meth:`wait_healthy`, then :meth:`stop`
    (or use :func:`serving`)."""

    def __init__(self, port: int = 0, script: str = "app/main.py", workers: int | None = None,
                 env: Mapping[str, str] | None = None, procs: int = 0, *, hosted: bool = True,
                 extra_args: Sequence[str] = (), log_prefix: str = "gradlab-server-") -> None:
        if not procs and not (REPO_ROOT / script).is_file():
            raise ServerError(f"{script} does not exist")
        self.port = port or free_port()
        self.procs = procs
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix=log_prefix)) / "server.log"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1",
                    "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
        if hosted:   # as in the Dockerfile (a user's MALLOC_ARENA_MAX still wins)
            full_env = {"MALLOC_ARENA_MAX": "2", **full_env, "GRADLAB_PROFILE": "hosted"}
        full_env.update(env or {})
        if workers is not None:
            full_env["GRADLAB_MAX_WORKERS"] = str(workers)
        if procs:
            cmd = [sys.executable, "-m", SERVE_MODULE, "--host", LOOPBACK,
                   "--port", str(self.port), "--workers", str(procs)]
        else:
            cmd = [sys.executable, "-m", "streamlit", "run", script,
                   "--server.headless", "true", "--server.port", str(self.port),
                   "--server.address", LOOPBACK, "--browser.gatherUsageStats", "false",
                   "--server.fileWatcherType", "none", *extra_args]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=full_env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def describe(self) -> str:
        return (f"gradlab-serve, {self.procs} worker process{'es' if self.procs > 1 else ''}"
                if self.procs else "streamlit run, one process")

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Return once /_stcore/health answers "ok" (and, with several worker processes,
        every worker has started); raise :class:`ServerError` otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"server exited with {self.proc.returncode} before answering:"
                                  f"\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        if self.procs > 1:   # every worker warm (lifespan) and accepting
                            self._wait_workers(deadline)
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise ServerError(f"no /_stcore/health within {timeout:.0f} s:\n{self.log_tail()}")

    def _wait_workers(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.log_text().count("Application startup complete") >= self.procs:
                return
            time.sleep(0.25)
        raise ServerError(f"not every worker started:\n{self.log_tail()}")

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM to the whole process group; SIGKILL if it has not gone after ``grace``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    # ---- the process tree ----------------------------------------------------------------

    def tree(self) -> list[int]:
        """The server's pid and every descendant's (uvicorn's workers)."""
        return process_tree(self.pid)

    def rss_mb(self) -> float | None:
        """Resident memory of the process tree, summed (MB)."""
        total, seen = 0.0, False
        for pid in self.tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
                        seen = True
            except OSError:
                continue
        return total if seen else None

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the server's processes have used so far."""
        total, seen = 0.0, False
        for pid in self.tree():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
                seen = True
            except (OSError, IndexError, ValueError):
                continue
        return total if seen else None

    def threads(self) -> int | None:
        """Threads alive in the process tree (/proc/PID/task)."""
        counts = []
        for pid in self.tree():
            with contextlib.suppress(OSError):
                counts.append(len(os.listdir(f"/proc/{pid}/task")))
        return sum(counts) if counts else None

    # ---- the log -------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 3000) -> str:
        return self.log_text()[-n:] or "<no log>"

    def count_in_log(self, needle: str) -> int:
        return self.log_text().count(needle)


@contextlib.contextmanager
def serving(script: str = "app/main.py", *, procs: int = 0, workers: int | None = None,
            env: Mapping[str, str] | None = None, hosted: bool = True,
            extra_args: Sequence[str] = (), timeout: float = 90.0,
            log_prefix: str = "gradlab-server-") -> Iterator[Server]:
    """Start a server on a free port, wait until it is healthy, yield it, stop it."""
    server = Server(0, script, workers, env, procs, hosted=hosted, extra_args=extra_args,
                    log_prefix=log_prefix)
    try:
        server.wait_healthy(timeout)
        yield server
    finally:
        server.stop()


@dataclass
class Sampler:
    """RSS / thread samples of a server, tagged with the phase of the run."""

    server: Server
    period: float = 1.0
    samples: list[tuple[float, str, float | None, int | None]] = field(default_factory=list)
    phase: str = "start"
    t0: float = field(default_factory=time.monotonic)

    def sample(self) -> tuple[float | None, int | None]:
        rss, thr = self.server.rss_mb(), self.server.threads()
        self.samples.append((time.monotonic() - self.t0, self.phase, rss, thr))
        return rss, thr

    async def run(self, stop: asyncio.Event) -> None:
        """Sample every ``period`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)

    def of(self, phase: str) -> list[tuple[float, str, float | None, int | None]]:
        return [s for s in self.samples if s[1] == phase]

    def stats(self, phase: str) -> dict[str, Any]:
        """Last and largest RSS / thread count seen in ``phase``."""
        rows = self.of(phase)
        rss = [r[2] for r in rows if r[2] is not None]
        thr = [r[3] for r in rows if r[3] is not None]
        return {"rss_mb_last": rss[-1] if rss else None, "rss_mb_max": max(rss) if rss else None,
                "threads_last": thr[-1] if thr else None,
                "threads_max": max(thr) if thr else None}
