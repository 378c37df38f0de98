"""The one helper that starts and stops a local Gradient Lab server, for the tests
(tests/conftest.py, tests/test_serve.py), the benchmark and the load test.

    with serving(hosted=False) as server:        # streamlit run app/main.py, a free port
        requests_to(server.url)
    with serving(procs=2) as server:             # gradlab-serve --workers 2, hosted profile
        server.rss_mb(), server.cpu_s(), server.threads(), server.by_role(rss_mb)

The server runs in its own process group on 127.0.0.1 only, logs to a temporary file, and
is stopped with SIGTERM to the whole group, then SIGKILL if it does not go. Memory, CPU and
threads are summed over its process tree (the supervisor, its web workers and its training
executors), or per role; which web worker holds which websocket is read from /proc.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def rss_mb(pids: Sequence[int]) -> float | None:
    """Resident memory of ``pids``, summed (MB); None when none of them could be read."""
    total, seen = 0.0, False
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
                    seen = True
        except OSError:
            continue
    return total if seen else None


def cpu_s(pids: Sequence[int]) -> float | None:
    """CPU seconds (user + system) ``pids`` have used so far, summed."""
    total, seen = 0.0, False
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            seen = True
        except (OSError, IndexError, ValueError):
            continue
    return total if seen else None


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` holds open (/proc/PID/fd)."""
    out = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    out.add(int(link[8:-1]))
    return out


def tcp_established() -> list[tuple[int, int, int]]:
    """(local port, remote port, socket inode) of every ESTABLISHED TCP connection of this
    network namespace (/proc/net/tcp and tcp6)."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "01":
                rows.append((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16),
                             int(f[9])))
    return rows


def ports_towards(pids: Sequence[int], port: int) -> list[int]:
    """The local ports of the connections ``pids`` hold to ``port`` (a client's side)."""
    inodes = set().union(*(socket_inodes(p) for p in pids)) if pids else set()
    return [lp for lp, rp, ino in tcp_established() if rp == port and ino in inodes]


def last_received_ms(port: int) -> dict[int, int]:
    """Local port -> milliseconds since that connection to ``port`` last received data
    (``ss -tni``; {} when ``ss`` is missing). A page's websocket receives every frame,
    its idle HTTP connections do not: the smallest value is the websocket."""
    try:
        out = subprocess.run(["ss", "-tni", "state", "established", f"( dport = :{port} )"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[int, int] = {}
    local: int | None = None
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and ":" in f[-2] and ":" in f[-1] and not line.startswith("\t"):
            local = int(f[-2].rsplit(":", 1)[1])
        elif local is not None and "lastrcv:" in line:
            found[local] = int(line.split("lastrcv:", 1)[1].split()[0])
            local = None
    return found


class ServerError(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log's tail."""


class Server:
    """A started server: ``streamlit run SCRIPT`` (``procs`` 0) or ``gradlab-serve --workers
    procs`` (uvicorn worker processes sharing one socket, as the Docker image runs it).

    ``env`` is added to this process's environment; ``executors`` is the number of training
    processes (``gradlab-serve --executors``, or GRADLAB_EXECUTORS of ``streamlit run``;
    None: the app's default, the cores). ``hosted`` runs it as the Docker image does
    (GRADLAB_PROFILE=hosted, 2 malloc arenas); ``extra_args`` go to ``streamlit run``. Call
    :meth:`wait_healthy`, then :meth:`stop` (or use :func:`serving`)."""

    def __init__(self, port: int = 0, script: str = "app/main.py",
                 env: Mapping[str, str] | None = None, procs: int = 0, *, hosted: bool = True,
                 executors: int | None = None, extra_args: Sequence[str] = (),
                 log_prefix: str = "gradlab-server-") -> None:
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
        self.executors = executors
        if executors is not None and not procs:
            full_env["GRADLAB_EXECUTORS"] = str(executors)
        if procs:
            cmd = [sys.executable, "-m", SERVE_MODULE, "--host", LOOPBACK,
                   "--port", str(self.port), "--workers", str(procs)]
            if executors is not None:
                cmd += ["--executors", str(executors)]
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
        ex = f"{self.executors} executors" if self.executors else "executors = cores"
        return (f"gradlab-serve, {self.procs} web worker{'s' if self.procs > 1 else ''}, {ex}"
                if self.procs else f"streamlit run, one web process, {ex}")

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

    def role(self, pid: int) -> str:
        """"web" (a process serving pages), "executor" (training) or "other" (the
        supervisor, multiprocessing's resource tracker)."""
        cmd = cmdline(pid)
        if "app.live.executor" in cmd:
            return "executor"
        if self.procs:
            return "web" if "multiprocessing" in cmd and "resource_tracker" not in cmd \
                else "other"
        return "web" if pid == self.pid else "other"

    def pids(self, role: str) -> list[int]:
        """The tree's processes of one :meth:`role`."""
        return [p for p in self.tree() if self.role(p) == role]

    def by_role(self, measure: Callable[[Sequence[int]], float | None]
                ) -> dict[str, float | None]:
        """``measure`` (e.g. :func:`rss_mb`, :func:`cpu_s`) of the web, executor and other
        processes apart, and of the whole tree ("all")."""
        groups: dict[str, list[int]] = {"web": [], "executor": [], "other": []}
        for pid in self.tree():
            groups[self.role(pid)].append(pid)
        out = {k: measure(v) for k, v in groups.items()}
        out["all"] = measure([p for v in groups.values() for p in v])
        return out

    def rss_mb(self) -> float | None:
        """Resident memory of the process tree, summed (MB)."""
        return rss_mb(self.tree())

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the server's processes have used so far."""
        return cpu_s(self.tree())

    def threads(self) -> int | None:
        """Threads alive in the process tree (/proc/PID/task)."""
        counts = []
        for pid in self.tree():
            with contextlib.suppress(OSError):
                counts.append(len(os.listdir(f"/proc/{pid}/task")))
        return sum(counts) if counts else None

    def connections(self) -> dict[int, int]:
        """Client port -> pid of the web process holding that accepted connection, for
        every connection established to the server's port now."""
        owner = {ino: pid for pid in self.pids("web") for ino in socket_inodes(pid)}
        return {rp: owner[ino] for lp, rp, ino in tcp_established()
                if lp == self.port and ino in owner}

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
def serving(script: str = "app/main.py", *, procs: int = 0, executors: int | None = None,
            env: Mapping[str, str] | None = None, hosted: bool = True,
            extra_args: Sequence[str] = (), timeout: float = 90.0,
            log_prefix: str = "gradlab-server-") -> Iterator[Server]:
    """Start a server on a free port, wait until it is healthy, yield it, stop it."""
    server = Server(0, script, env, procs, hosted=hosted, executors=executors,
                    extra_args=extra_args, log_prefix=log_prefix)
    try:
        server.wait_healthy(timeout)
        yield server
    finally:
        server.stop()


@dataclass
class Sampler:
    """RSS (whole tree, web processes, executors) and thread samples of a server, tagged
    with the phase of the run."""

    server: Server
    period: float = 1.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    phase: str = "start"
    t0: float = field(default_factory=time.monotonic)

    def sample(self) -> dict[str, Any]:
        rss = self.server.by_role(rss_mb)
        row = {"t": round(time.monotonic() - self.t0, 2), "phase": self.phase,
               "rss": rss["all"], "web": rss["web"], "executor": rss["executor"],
               "threads": self.server.threads()}
        self.samples.append(row)
        return row

    async def run(self, stop: asyncio.Event) -> None:
        """Sample every ``period`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)

    def of(self, phase: str) -> list[dict[str, Any]]:
        return [s for s in self.samples if s["phase"] == phase]

    def last(self, phase: str, key: str = "rss") -> Any:
        """The last sample's ``key`` in ``phase`` (None when there is none)."""
        vals = [r[key] for r in self.of(phase) if r[key] is not None]
        return vals[-1] if vals else None

    def peak(self, phases: Sequence[str], key: str = "rss") -> Any:
        """The largest ``key`` over ``phases`` (None when there is none)."""
        vals = [r[key] for r in self.samples if r["phase"] in phases and r[key] is not None]
        return max(vals) if vals else None
