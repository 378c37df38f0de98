#!/usr/bin/env python
"""Load test of the hosted instance against a LOCAL server (`make load`). Not a pytest test.

    python tests/load_test.py --sessions 30 --minutes 5          # real Chromium pages
    python tests/load_test.py --sessions 30 --minutes 5 --client ws
    python tests/load_test.py --burst 200 --procs 2              # 200 sessions within 1 s
    python tests/load_test.py --soak 1800                        # one session, 30 minutes

It starts its own server (``python -m streamlit run app/main.py``, or with ``--procs N``
``gradlab-serve --workers N`` as the Docker image runs it; GRADLAB_PROFILE=hosted, bound to
127.0.0.1) and only ever talks to 127.0.0.1. Everything is bounded in time and the server
is stopped at the end. Memory, CPU and threads are summed over the server's processes.

Load mode: one session first (the "after the first session" memory baseline), then N
sessions open over ``--ramp`` seconds; each presses Play and keeps training for
``--minutes`` (pressing Play again when its run ends). Then every tab closes at once and
the server is watched for ``--after`` seconds. Reported: errors, p50/p95 time from Play to
the first training step on screen (the "Step" metric >= 1, drawn in the same fragment run as
the charts), queue waits ("waiting for a slot" visible), server RSS (before, after the
first session, during, and after close) and threads left alive (/proc/PID/task).

Clients: ``browser`` = Playwright + Debian Chromium (/usr/bin/chromium), one browser, one
context per session (what a class does, but N pages cost CPU on the same box); ``ws`` = a
minimal websocket client that speaks Streamlit's protocol (BackMsg / ForwardMsg protobufs):
it presses Play by sending the button's trigger and runs the fragment's auto-reruns like
the browser does, so the server does the same work without N browsers beside it.

Burst mode: N websocket sessions connect within ``--burst-window`` seconds, each asks for
the first script run; reported: how many rendered (script finished with no exception
element), p50/p95 time to first delta and to the finished first run, and RSS.

Soak mode: one websocket session presses Play and streams for ``--soak`` seconds (Play
again whenever a run ends; by default a 1,000,000-step run of the local profile, so one run
lasts the whole soak and its history has to stay bounded). The server's RSS and thread
count are sampled every ``--soak-period`` seconds; reported: RSS over time, its growth after
the warm-up (the first ``--soak-warmup`` seconds), the trend over the last two thirds, steps
trained, redraws, errors, and RSS / threads ``--after`` seconds after the session closed.

Targets (issue 6) are printed next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"  # the only address this script ever connects to
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
PLAY_KEY = "pg_play"  # app/views/playground.py: st.button("Play", key="pg_play")
WAITING_TEXT = "waiting for a slot"
STEP_RE = re.compile(r"([\d,]+)\s*/\s*([\d,]+)")
ORDINAL_RE = re.compile(r"(\d+)(?:st|nd|rd|th) in line")


# ---- the server under test ---------------------------------------------------------------------


def free_port() -> int:
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


class Server:
    """The app in its own process group, on 127.0.0.1 only: ``streamlit run`` (one process),
    or with ``procs`` >= 1 ``gradlab-serve --workers procs`` (app/serve.py: uvicorn worker
    processes sharing one socket, as the Docker image runs it). Memory, CPU and threads are
    summed over the whole process tree (the uvicorn parent and its workers)."""

    def __init__(self, port: int, script: str, workers: int | None, extra_env: dict[str, str],
                 procs: int = 0):
        self.port = port
        self.procs = procs
        self.url = f"http://{LOOPBACK}:{port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="gradlab-load-")) / "server.log"
        # As in the Dockerfile: the hosted profile and 2 malloc arenas (see there).
        env = {"MALLOC_ARENA_MAX": "2", **os.environ, "PYTHONUNBUFFERED": "1",
               "GRADLAB_PROFILE": "hosted", "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
               **extra_env}
        if workers is not None:
            env["GRADLAB_MAX_WORKERS"] = str(workers)
        if procs:
            cmd = [sys.executable, "-m", "app.serve", "--host", LOOPBACK, "--port", str(port),
                   "--workers", str(procs)]
        else:
            cmd = [sys.executable, "-m", "streamlit", "run", script,
                   "--server.headless", "true", "--server.port", str(port),
                   "--server.address", LOOPBACK, "--browser.gatherUsageStats", "false",
                   "--server.fileWatcherType", "none"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def describe(self) -> str:
        return (f"gradlab-serve, {self.procs} worker process{'es' if self.procs > 1 else ''}"
                if self.procs else "streamlit run, one process")

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        if self.procs > 1:   # every worker warm (lifespan) and accepting
                            self._wait_workers(deadline)
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"no /_stcore/health within {timeout:.0f} s:\n{self.log_tail()}")

    def _wait_workers(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.log_text().count("Application startup complete") >= self.procs:
                return
            time.sleep(0.25)
        raise RuntimeError(f"not every worker started:\n{self.log_tail()}")

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
                fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
                seen = True
            except (OSError, IndexError, ValueError):
                continue
        return total if seen else None

    def threads(self) -> int | None:
        counts = []
        for pid in self.tree():
            with contextlib.suppress(OSError):
                counts.append(len(os.listdir(f"/proc/{pid}/task")))
        return sum(counts) if counts else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "<no log>"

    def count_in_log(self, needle: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(needle)
        except OSError:
            return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


@dataclass
class Sampler:
    """RSS / thread samples of the server, tagged with the phase of the test."""

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
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)

    def of(self, phase: str) -> list[tuple[float, str, float | None, int | None]]:
        return [s for s in self.samples if s[1] == phase]


# ---- per-session results -----------------------------------------------------------------------


@dataclass
class SessionResult:
    index: int
    play_to_first_step: list[float] = field(default_factory=list)   # seconds, per Play
    queue_waits: list[float] = field(default_factory=list)          # seconds seen waiting
    max_position: int = 0
    plays: int = 0
    ready_s: float | None = None                                    # open -> Play visible
    errors: list[str] = field(default_factory=list)


VERBOSE = False


def log(*parts: Any) -> None:
    if VERBOSE:
        print(f"{time.strftime('%H:%M:%S')}", *parts, flush=True)


def _step_of(text: str) -> int | None:
    m = STEP_RE.search(text or "")
    return int(m.group(1).replace(",", "")) if m else None


def _position_of(text: str) -> int:
    m = ORDINAL_RE.search(text or "")
    return int(m.group(1)) if m else (1 if WAITING_TEXT in (text or "") else 0)


class PlayTracker:
    """Turns the (step, status) readings after one Play into a time-to-first-step and a
    queue wait; shared by both clients."""

    def __init__(self, result: SessionResult) -> None:
        self.r = result
        self.t_play: float | None = None
        self.wait_started: float | None = None
        self.armed = False        # the page has shown this Play's new run (not a stale step)

    def pressed(self) -> None:
        self.t_play = time.monotonic()
        self.wait_started = None
        self.armed = False
        self.r.plays += 1

    def observe(self, step: int | None, status: str) -> bool:
        """Track queue waits (also after a time slice ends); True once the first training
        step after the last Play is on screen."""
        now = time.monotonic()
        if WAITING_TEXT in status:
            self.r.max_position = max(self.r.max_position, _position_of(status))
            if self.wait_started is None:
                self.wait_started = now
        elif self.wait_started is not None:
            self.r.queue_waits.append(now - self.wait_started)
            self.wait_started = None
        # Right after Play the page may still show the previous run ("finished (2,000
        # steps)", or paused at step 500): count a first step only once the new run is on
        # screen (waiting, running, or back at step 0).
        s = status.lower()
        if self.t_play is not None and not self.armed and (
                WAITING_TEXT in s or s.startswith("running") or step == 0):
            self.armed = True
        if (self.t_play is not None and self.armed and step is not None and step >= 1
                and WAITING_TEXT not in status):
            self.r.play_to_first_step.append(now - self.t_play)
            self.t_play = None
            return True
        return False

    def timed_out(self, limit: float) -> bool:
        return self.t_play is not None and time.monotonic() - self.t_play > limit


def _keep_going(until: float, tracker: PlayTracker, hard_until: float) -> bool:
    """Until the deadline; past it only to press Play once / see that Play's first step
    (bounded by ``hard_until``), so a slow start is measured, never silently skipped."""
    now = time.monotonic()
    if now >= hard_until:
        return False
    return now < until or tracker.r.plays == 0 or tracker.t_play is not None


def _run_over(status: str) -> bool:
    s = status.lower()
    return s.startswith("finished") or s.startswith("diverged") or "stopped by an error" in s


# ---- client 1: a real browser page (Playwright, Debian Chromium) -------------------------------

READ_PAGE_JS = """() => {
  const metrics = {};
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    const value = m.querySelector('[data-testid="stMetricValue"]');
    if (label && value) metrics[label.innerText.trim()] = value.innerText.trim();
  }
  return {
    metrics,
    exceptions: document.querySelectorAll('[data-testid="stException"]').length,
    disconnected: !!document.querySelector('[data-testid="stConnectionStatus"]') &&
                  /connect/i.test(document.querySelector('[data-testid="stConnectionStatus"]').innerText),
    charts: document.querySelectorAll('.js-plotly-plot').length,
  };
}"""


async def browser_session(i: int, browser: Any, url: str, until: float, args: argparse.Namespace,
                          result: SessionResult, closing: asyncio.Event) -> Any:
    """Open a page, press Play, keep training until ``until``. Returns the context (the
    caller closes all contexts at the same moment: "the class closes its tabs")."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    page.on("pageerror", lambda e: result.errors.append(f"page error: {str(e)[:120]}"))
    tracker = PlayTracker(result)
    hard_until = until + args.play_timeout
    t_open = time.monotonic()
    try:
        await page.goto(url, wait_until="domcontentloaded", timeout=90_000)
        # the key-derived class first (Streamlit may briefly keep a stale copy: .first)
        play = page.locator(f".st-key-{PLAY_KEY} button").first
        try:
            await play.wait_for(state="visible", timeout=90_000)
        except Exception:  # noqa: BLE001 - fall back to the button's text
            play = page.get_by_role("button", name="Play", exact=True).first
            await play.wait_for(state="visible", timeout=30_000)
        result.ready_s = time.monotonic() - t_open
        while _keep_going(until, tracker, hard_until) and not closing.is_set():
            # Play is disabled while a run is active; wait until it can be pressed
            if not await play.is_enabled():
                await asyncio.sleep(0.5)
                continue
            await play.click(timeout=30_000)
            tracker.pressed()
            log(f"session {i}: Play")
            while _keep_going(until, tracker, hard_until) and not closing.is_set():
                state = await page.evaluate(READ_PAGE_JS)
                status = state["metrics"].get("Status", "")
                if state["exceptions"]:
                    result.errors.append(f"exception element on the page ({status})")
                    return ctx
                if state["disconnected"]:
                    result.errors.append("connection lost")
                    return ctx
                if "stopped by an error" in status:
                    result.errors.append(f"run error: {status}")
                if tracker.observe(_step_of(state["metrics"].get("Step", "")), status) \
                        and args.first_only:
                    await asyncio.sleep(3)
                    return ctx
                if tracker.t_play is not None:
                    if tracker.timed_out(args.play_timeout):
                        result.errors.append(f"no first step {args.play_timeout:.0f} s after Play")
                        return ctx
                elif _run_over(status):
                    break  # press Play again
                await asyncio.sleep(0.25)
    except Exception as e:  # noqa: BLE001 - one broken session is a reported error
        result.errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
    _check_played(result, tracker)
    log(f"session {i}: done, {result.plays} plays, errors {result.errors}")
    return ctx


def _check_played(result: SessionResult, tracker: PlayTracker) -> None:
    if not result.errors:
        if result.plays == 0:
            result.errors.append("Play was never pressed (never enabled / page never ready)")
        elif tracker.t_play is not None and not result.play_to_first_step:
            result.errors.append("no first step after Play")


async def run_browser_sessions(n: int, url: str, minutes: float, args: argparse.Namespace,
                               results: list[SessionResult]) -> None:
    from playwright.async_api import async_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"{CHROMIUM} not found: apt-get install -y chromium (or use --client ws)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            closing = asyncio.Event()
            until = time.monotonic() + args.ramp + minutes * 60
            tasks = []
            for i in range(n):
                results.append(SessionResult(i))
                tasks.append(asyncio.create_task(
                    browser_session(i, browser, url, until, args, results[-1], closing)))
                if n > 1:
                    await asyncio.sleep(args.ramp / n)
            done = await asyncio.wait_for(asyncio.gather(*tasks), timeout=until - time.monotonic()
                                          + args.play_timeout + 120)
            closing.set()
            await asyncio.gather(*(c.close() for c in done if c is not None),
                                 return_exceptions=True)
        finally:
            await browser.close()


# ---- client 2: Streamlit's websocket protocol ---------------------------------------------------


class ProtocolSession:
    """A minimal Streamlit client: connect to /_stcore/stream, ask for a run, read the
    ForwardMsgs, press a button by its trigger, run fragment auto-reruns on their timer."""

    def __init__(self, port: int, query: str = "", fragments: bool = True) -> None:
        self.uri = f"ws://{LOOPBACK}:{port}/_stcore/stream"
        self.query = query.lstrip("?")
        self.ws: Any = None
        self.page_hash = ""
        self.buttons: dict[str, tuple[str, bool]] = {}  # label -> (widget id, disabled)
        self.metrics: dict[str, str] = {}
        self.exceptions = 0
        self.auto: dict[str, float] = {}                  # fragment id -> interval
        self.running = False
        self.finished_runs = 0
        self.first_delta_at: float | None = None
        self.first_finish_at: float | None = None
        self.closed_reason: str | None = None
        self._next_auto: dict[str, float] = {}            # fragment id -> next rerun time
        self.fragments = fragments                        # run auto-reruns like a browser

    async def connect(self, timeout: float) -> None:
        import websockets

        self.ws = await websockets.connect(self.uri, subprotocols=["streamlit"], max_size=None,
                                           open_timeout=timeout, ping_interval=None)

    async def rerun(self, trigger_id: str | None = None, fragment_id: str = "") -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_script_hash = self.page_hash
        if fragment_id:
            cs.fragment_id = fragment_id
            cs.is_auto_rerun = True
        if trigger_id:
            w = cs.widget_states.widgets.add()
            w.id = trigger_id
            w.trigger_value = True
        self.running = True
        await self.ws.send(msg.SerializeToString())

    def _handle(self, data: bytes) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        fm = ForwardMsg()
        fm.ParseFromString(data)
        kind = fm.WhichOneof("type")
        if kind == "delta":
            if self.first_delta_at is None:
                self.first_delta_at = time.monotonic()
            d = fm.delta
            if d.WhichOneof("type") == "new_element":
                el = d.new_element
                et = el.WhichOneof("type")
                if et == "button":
                    self.buttons[el.button.label] = (el.button.id, el.button.disabled)
                elif et == "metric":
                    self.metrics[el.metric.label] = el.metric.body
                elif et == "exception":
                    self.exceptions += 1
        elif kind == "new_session":
            if fm.new_session.page_script_hash:
                self.page_hash = fm.new_session.page_script_hash
        elif kind == "navigation":
            if fm.navigation.page_script_hash:
                self.page_hash = fm.navigation.page_script_hash
        elif kind == "auto_rerun" and self.fragments:
            self.auto[fm.auto_rerun.fragment_id] = max(0.05, fm.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in fm.stop_auto_rerun.fragment_ids:
                self.auto.pop(fid, None)
        elif kind == "script_finished":
            self.running = False
            self.finished_runs += 1
            if self.first_finish_at is None and fm.script_finished == 0:  # FINISHED_SUCCESSFULLY
                self.first_finish_at = time.monotonic()
        elif kind == "session_status_changed":
            self.running = fm.session_status_changed.script_is_running

    async def pump(self, until: float) -> None:
        """Read messages until ``until`` (monotonic); fire auto-reruns when due."""
        next_auto = self._next_auto
        while time.monotonic() < until and self.closed_reason is None:
            now = time.monotonic()
            for fid, interval in list(self.auto.items()):
                due = next_auto.setdefault(fid, now + interval)
                if now >= due and not self.running:
                    next_auto[fid] = now + interval
                    await self.rerun(fragment_id=fid)
            for fid in list(next_auto):
                if fid not in self.auto:
                    next_auto.pop(fid)
            wait = min([until - now, 0.1] + [d - now for d in next_auto.values()])
            try:
                data = await asyncio.wait_for(self.ws.recv(), timeout=max(0.01, wait))
            except asyncio.TimeoutError:
                continue
            except Exception as e:  # noqa: BLE001 - ConnectionClosed and friends
                self.closed_reason = f"{type(e).__name__}: {e}"[:160]
                return
            if isinstance(data, bytes):
                self._handle(data)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


async def open_until_play(s: ProtocolSession, t_open: float) -> str | None:
    """Connect, run the page once and wait (90 s from ``t_open``) for its Play button: None
    once it is there, else the error to report."""
    await s.connect(timeout=60)
    await s.rerun()
    while "Play" not in s.buttons and time.monotonic() - t_open < 90 and not s.closed_reason:
        await s.pump(time.monotonic() + 0.2)
    if "Play" in s.buttons:
        return None
    return "no Play button within 90 s" + (f" ({s.closed_reason})" if s.closed_reason else "")


async def ws_session(i: int, port: int, until: float, args: argparse.Namespace,
                     result: SessionResult) -> ProtocolSession:
    s = ProtocolSession(port, args.query)
    tracker = PlayTracker(result)
    hard_until = until + args.play_timeout
    t_open = time.monotonic()
    try:
        error = await open_until_play(s, t_open)
        if error:
            result.errors.append(error)
            return s
        result.ready_s = time.monotonic() - t_open
        while _keep_going(until, tracker, hard_until):
            play_id, disabled = s.buttons["Play"]
            if disabled or s.running:
                await s.pump(time.monotonic() + 0.25)
            else:
                await s.rerun(trigger_id=play_id)
                tracker.pressed()
                log(f"session {i}: Play")
                while _keep_going(until, tracker, hard_until):
                    await s.pump(time.monotonic() + 0.2)
                    status = s.metrics.get("Status", "")
                    if s.closed_reason:
                        result.errors.append(f"connection closed: {s.closed_reason}")
                        return s
                    if s.exceptions:
                        result.errors.append("exception element sent")
                        return s
                    if tracker.observe(_step_of(s.metrics.get("Step", "")), status) \
                            and args.first_only:
                        await s.pump(time.monotonic() + 3)
                        return s
                    if tracker.t_play is not None:
                        if tracker.timed_out(args.play_timeout):
                            result.errors.append(
                                f"no first step {args.play_timeout:.0f} s after Play")
                            return s
                    elif _run_over(status):
                        if "stopped by an error" in status:
                            result.errors.append(f"run error: {status}")
                        # let the page's rerun land (buttons re-enabled) before pressing again
                        await s.pump(time.monotonic() + 1.0)
                        break
            if s.closed_reason:
                result.errors.append(f"connection closed: {s.closed_reason}")
                return s
    except Exception as e:  # noqa: BLE001
        first_line = str(e).splitlines()[0][:160] if str(e) else ""
        result.errors.append(f"{type(e).__name__}: {first_line}")
    _check_played(result, tracker)
    log(f"session {i}: done, {result.plays} plays, errors {result.errors}")
    return s


async def run_ws_sessions(n: int, port: int, minutes: float, args: argparse.Namespace,
                          results: list[SessionResult]) -> None:
    until = time.monotonic() + args.ramp + minutes * 60
    tasks = []
    for i in range(n):
        results.append(SessionResult(i))
        tasks.append(asyncio.create_task(ws_session(i, port, until, args, results[-1])))
        if n > 1:
            await asyncio.sleep(args.ramp / n)
    sessions = await asyncio.wait_for(asyncio.gather(*tasks),
                                      timeout=until - time.monotonic() + args.play_timeout + 120)
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


# ---- burst mode ---------------------------------------------------------------------------------


@dataclass
class BurstResult:
    index: int
    started: float = 0.0
    first_delta: float | None = None     # seconds from the connect attempt
    rendered: float | None = None        # first script run finished successfully
    error: str | None = None


async def burst_session(i: int, port: int, start_at: float, args: argparse.Namespace,
                        all_done: asyncio.Event, out: BurstResult) -> ProtocolSession | None:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    s = ProtocolSession(port, args.query, fragments=not args.no_fragments)
    out.started = time.monotonic()
    try:
        await s.connect(timeout=args.burst_timeout)
        await s.rerun()
        deadline = out.started + args.burst_timeout
        while s.first_finish_at is None and s.closed_reason is None \
                and time.monotonic() < deadline:
            await s.pump(min(deadline, time.monotonic() + 0.5))
        if s.first_delta_at is not None:
            out.first_delta = s.first_delta_at - out.started
        if s.exceptions:
            out.error = "exception element sent"
        elif s.first_finish_at is not None:
            out.rendered = s.first_finish_at - out.started
        else:
            out.error = s.closed_reason or f"no finished run within {args.burst_timeout:.0f} s"
        # stay connected (as an open tab would) until every session has its answer
        while not all_done.is_set() and s.closed_reason is None:
            await s.pump(time.monotonic() + 0.5)
    except Exception as e:  # noqa: BLE001
        out.error = f"{type(e).__name__}: {str(e)[:160]}"
    return s


async def run_burst(n: int, port: int, args: argparse.Namespace,
                    results: list[BurstResult]) -> None:
    all_done = asyncio.Event()
    t0 = time.monotonic() + 0.2
    results.extend(BurstResult(i) for i in range(n))
    tasks = [asyncio.create_task(burst_session(i, port, t0 + args.burst_window * i / max(1, n),
                                               args, all_done, results[i])) for i in range(n)]
    deadline = t0 + args.burst_window + args.burst_timeout + 5
    while time.monotonic() < deadline:
        if all(r.rendered is not None or r.error is not None for r in results):
            break
        await asyncio.sleep(0.2)
    all_done.set()
    sessions = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    await asyncio.gather(*(s.close() for s in sessions if isinstance(s, ProtocolSession)),
                         return_exceptions=True)


# ---- reporting ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt(x: float | None, unit: str = "s", nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f} {unit}".strip()


def _phase_stats(sampler: Sampler, phase: str) -> dict[str, Any]:
    rows = sampler.of(phase)
    rss = [r[2] for r in rows if r[2] is not None]
    thr = [r[3] for r in rows if r[3] is not None]
    return {"rss_mb_last": rss[-1] if rss else None, "rss_mb_max": max(rss) if rss else None,
            "threads_last": thr[-1] if thr else None, "threads_max": max(thr) if thr else None}


async def load_mode(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    sampler = Sampler(server)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    runner = run_browser_sessions if args.client == "browser" else None

    async def sessions(n: int, minutes: float, out: list[SessionResult]) -> None:
        if runner is not None:
            await runner(n, server.url + ("/?" + args.query.lstrip("?") if args.query else "/"),
                         minutes, args, out)
        else:
            await run_ws_sessions(n, server.port, minutes, args, out)

    try:
        sampler.phase = "idle"
        await asyncio.sleep(3)
        # 1. one session: Play, first step, a few seconds, close -> the memory baseline
        sampler.phase = "first"
        first: list[SessionResult] = []
        saved = args.ramp
        args.ramp, args.first_only = 0, True   # Play, first step, 3 s more, close
        await sessions(1, args.play_timeout / 60, first)
        args.ramp, args.first_only = saved, False
        sampler.phase = "baseline"
        await asyncio.sleep(10)
        # 2. N sessions
        sampler.phase = "load"
        results: list[SessionResult] = []
        t_load = time.monotonic()
        await sessions(args.sessions, args.minutes, results)
        load_s = time.monotonic() - t_load
        # 3. every tab closed: watch the server
        sampler.phase = "after"
        await asyncio.sleep(args.after)
    finally:
        stop.set()
        await sampling
    plays = [x for r in results for x in r.play_to_first_step]
    ready = [r.ready_s for r in results if r.ready_s is not None]
    waits = [x for r in results for x in r.queue_waits]
    errors = [f"session {r.index}: {e}" for r in results for e in r.errors]
    base, after = _phase_stats(sampler, "baseline"), _phase_stats(sampler, "after")
    idle = _phase_stats(sampler, "idle")
    report = {
        "mode": "load", "client": args.client, "sessions": args.sessions, "minutes": args.minutes,
        "load_seconds": round(load_s, 1), "workers": args.workers,
        "first_session": {"open_to_play_visible_s": first[0].ready_s if first else None,
                          "play_to_first_step_s": first[0].play_to_first_step if first else [],
                          "errors": first[0].errors if first else ["not run"]},
        "errors": errors, "error_count": len(errors),
        "sessions_with_errors": sum(1 for r in results if r.errors),
        "plays": sum(r.plays for r in results),
        "open_to_play_visible_s": {"p50": pct(ready, 0.5), "p95": pct(ready, 0.95)},
        "play_to_first_step_s": {"n": len(plays), "p50": pct(plays, 0.5), "p95": pct(plays, 0.95),
                                 "max": max(plays) if plays else None},
        "queue": {"sessions_that_waited": sum(1 for r in results if r.queue_waits
                                              or r.max_position),
                  "waits": len(waits), "p50_s": pct(waits, 0.5), "p95_s": pct(waits, 0.95),
                  "max_s": max(waits) if waits else None,
                  "max_position": max((r.max_position for r in results), default=0)},
        "rss_mb": {"idle": idle["rss_mb_last"], "after_first_session": base["rss_mb_last"],
                   "load_max": _phase_stats(sampler, "load")["rss_mb_max"],
                   "after_close_60s": after["rss_mb_last"]},
        "threads": {"idle": idle["threads_last"], "after_first_session": base["threads_last"],
                    "load_max": _phase_stats(sampler, "load")["threads_max"],
                    "after_close": after["threads_last"]},
        "server_log_tracebacks": server.count_in_log("Traceback"),
        "samples": [list(s) for s in sampler.samples],
    }
    b, a = report["rss_mb"]["after_first_session"], report["rss_mb"]["after_close_60s"]
    report["rss_after_vs_first_pct"] = None if not (a and b) else round(100 * (a - b) / b, 1)
    tb, ta = report["threads"]["after_first_session"], report["threads"]["after_close"]
    report["threads_left_alive"] = None if ta is None or tb is None else max(0, ta - tb)
    return report


async def burst_mode(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    sampler = Sampler(server, period=0.5)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    cold: list[BurstResult] = []
    try:
        sampler.phase = "idle"
        await asyncio.sleep(2)
        if not args.cold:
            # one session first: the first script run imports torch and the app (the cold
            # start, reported apart); the burst then meets a warm server, as in a class
            # where the teacher opened the link before the students
            sampler.phase = "warm-up"
            await run_burst(1, server.port, args, cold)
            await asyncio.sleep(3)
        results: list[BurstResult] = []
        sampler.phase = "burst"
        cpu0, own0 = server.cpu_s(), time.process_time()
        await run_burst(args.burst, server.port, args, results)
        cpu1, own1 = server.cpu_s(), time.process_time()
        sampler.phase = "after"
        await asyncio.sleep(args.after)
    finally:
        stop.set()
        await sampling
    rendered = [r.rendered for r in results if r.rendered is not None]
    first = [r.first_delta for r in results if r.first_delta is not None]
    spread = [r.started for r in results if r.started]
    errors: dict[str, int] = {}
    for r in results:
        if r.error:
            key = r.error.split(":")[0][:80]
            errors[key] = errors.get(key, 0) + 1
    return {
        "mode": "burst", "sessions": args.burst, "window_s": args.burst_window,
        "fragment_reruns": not args.no_fragments,
        "cold_start_render_s": cold[0].rendered if cold else None,
        "opened_within_s": round(max(spread) - min(spread), 3) if spread else None,
        "rendered": len(rendered), "errors": errors,
        "first_delta_s": {"p50": pct(first, 0.5), "p95": pct(first, 0.95)},
        "first_render_s": {"p50": pct(rendered, 0.5), "p95": pct(rendered, 0.95),
                           "max": max(rendered) if rendered else None},
        "rss_mb": {"idle": _phase_stats(sampler, "idle")["rss_mb_last"],
                   "burst_max": _phase_stats(sampler, "burst")["rss_mb_max"],
                   "after": _phase_stats(sampler, "after")["rss_mb_last"]},
        "threads": {"idle": _phase_stats(sampler, "idle")["threads_last"],
                    "burst_max": _phase_stats(sampler, "burst")["threads_max"],
                    "after": _phase_stats(sampler, "after")["threads_last"]},
        "server_log_tracebacks": server.count_in_log("Traceback"),
        "server_cpu_s": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2),
        "client_cpu_s": round(own1 - own0, 2),
        "load_average": os.getloadavg(),
    }


# ---- soak mode ----------------------------------------------------------------------------------

SOAK_QUERY = "steps=1000000"  # one run for the whole soak (local profile: no 20,000-step cap)
SOAK_ENV = {"GRADLAB_PROFILE": "local", "GRADLAB_IDLE_MINUTES": "600"}


def trend_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx <= 0:
        return None
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / sxx


async def soak_session(s: ProtocolSession, until: float, args: argparse.Namespace,
                       result: SessionResult, steps_seen: list[tuple[float, int]],
                       t_start: float) -> None:
    """Press Play and stream until ``until``; Play again when a run ends."""
    tracker = PlayTracker(result)
    error = await open_until_play(s, t_start)
    if error:
        result.errors.append(error)
        return
    next_note = 0.0
    while time.monotonic() < until and not s.closed_reason:
        play_id, disabled = s.buttons["Play"]
        if disabled or s.running:
            await s.pump(time.monotonic() + 0.25)
            continue
        await s.rerun(trigger_id=play_id)
        tracker.pressed()
        while time.monotonic() < until and not s.closed_reason:
            await s.pump(time.monotonic() + 0.25)
            status = s.metrics.get("Status", "")
            step = _step_of(s.metrics.get("Step", ""))
            if s.exceptions:
                result.errors.append("exception element sent")
                s.exceptions = 0
            tracker.observe(step, status)
            now = time.monotonic() - t_start
            if step is not None and now >= next_note:
                steps_seen.append((round(now, 1), step))
                next_note = now + args.soak_period
            if tracker.timed_out(args.play_timeout):
                result.errors.append(f"no first step {args.play_timeout:.0f} s after Play")
                tracker.t_play = None
            if tracker.t_play is None and _run_over(status):
                if "stopped by an error" in status:
                    result.errors.append(f"run error: {status}")
                await s.pump(time.monotonic() + 1.0)   # the buttons' rerun lands
                break
            if tracker.t_play is None and status.startswith("paused"):
                result.errors.append(f"the run paused by itself: {status}")
                await s.pump(time.monotonic() + 1.0)
                break
    if s.closed_reason:
        result.errors.append(f"connection closed: {s.closed_reason}")


async def soak_mode(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    sampler = Sampler(server, period=args.soak_period)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    result = SessionResult(0)
    steps_seen: list[tuple[float, int]] = []
    s = ProtocolSession(server.port, args.query or SOAK_QUERY)
    try:
        sampler.phase = "idle"
        await asyncio.sleep(3)
        sampler.phase = "soak"
        t_start = time.monotonic()
        try:
            await soak_session(s, t_start + args.soak, args, result, steps_seen, t_start)
        except Exception as e:  # noqa: BLE001 - reported, the figures still come
            result.errors.append(f"{type(e).__name__}: {str(e)[:160]}")
        redraws = s.finished_runs
        await s.close()
        sampler.phase = "after"
        await asyncio.sleep(args.after)
    finally:
        stop.set()
        await sampling
        await s.close()
    rows = [(t, rss, thr) for t, ph, rss, thr in sampler.samples if ph == "soak" and rss]
    t0 = rows[0][0] if rows else 0.0
    warm = [(t - t0, r) for t, r, _ in rows if t - t0 >= args.soak_warmup]
    tail = [(t, r) for t, r in warm if t >= args.soak / 3]
    timeline = []
    every = max(60, int(args.soak // 10))
    for mark in range(0, int(args.soak), every):
        near = [r for r in rows if r[0] - t0 >= mark]
        if near:
            timeline.append({"t_s": mark, "rss_mb": round(near[0][1], 1), "threads": near[0][2]})
    if rows:
        timeline.append({"t_s": round(rows[-1][0] - t0), "rss_mb": round(rows[-1][1], 1),
                         "threads": rows[-1][2]})
    base = warm[0][1] if warm else None
    end = warm[-1][1] if warm else None
    after = _phase_stats(sampler, "after")
    growth = None if not (base and end) else round(100 * (end - base) / base, 1)
    slope = trend_mb_per_min(tail)
    return {
        "mode": "soak", "seconds": args.soak, "query": args.query or SOAK_QUERY,
        "errors": result.errors, "error_count": len(result.errors), "plays": result.plays,
        "play_to_first_step_s": result.play_to_first_step,
        "steps": steps_seen[-1][1] if steps_seen else None, "redraws": redraws,
        "rss_mb": {"idle": _phase_stats(sampler, "idle")["rss_mb_last"], "after_warmup": base,
                   "peak": max((r for _, r in warm), default=None), "end": end,
                   "after_close": after["rss_mb_last"]},
        "rss_growth_after_warmup_pct": growth,
        "rss_trend_last_two_thirds_mb_per_min": None if slope is None else round(slope, 3),
        "threads": {"soak_max": _phase_stats(sampler, "soak")["threads_max"],
                    "after_close": after["threads_last"]},
        "timeline": timeline, "step_samples": steps_seen,
        "server_log_tracebacks": server.count_in_log("Traceback"),
        "load_average": os.getloadavg(),
        "samples": [list(x) for x in sampler.samples],
    }


def print_soak(r: dict[str, Any]) -> None:
    rss, growth = r["rss_mb"], r["rss_growth_after_warmup_pct"]
    slope = r["rss_trend_last_two_thirds_mb_per_min"]
    print(f"SOAK: one session streaming for {r['seconds']:.0f} s ({r['query']}): "
          f"{r['plays']} plays, {r['steps'] or 0:,} steps, {r['redraws']} script/fragment runs")
    print(f"  errors              {r['error_count']}  {r['errors'][:5] or ''}")
    print("  Play -> first step  "
          + (", ".join(fmt(x) for x in r["play_to_first_step_s"]) or "—"))
    print("  RSS over time       "
          + "  ".join(f"{x['t_s'] / 60:.0f}m {x['rss_mb']:.0f}MB" for x in r["timeline"]))
    print(f"  RSS                 idle {fmt(rss['idle'], 'MB', 0)}  after warm-up "
          f"{fmt(rss['after_warmup'], 'MB', 0)}  peak {fmt(rss['peak'], 'MB', 0)}  end "
          f"{fmt(rss['end'], 'MB', 0)} ({'—' if growth is None else f'{growth:+.1f} %'}; "
          f"target bounded)  after close {fmt(rss['after_close'], 'MB', 0)}")
    print(f"  RSS trend           {'—' if slope is None else f'{slope:+.3f} MB/min'} "
          "over the last two thirds")
    print(f"  server threads      soak max {r['threads']['soak_max']}  after close "
          f"{r['threads']['after_close']}")
    print(f"  tracebacks in log   {r['server_log_tracebacks']}")
    la = ", ".join(f"{x:.1f}" for x in r["load_average"])
    print(f"  load average        {la}")
    ok = (r["error_count"] == 0 and growth is not None and growth <= 10
          and slope is not None and abs(slope) * 30 <= 0.05 * (rss["after_warmup"] or 1))
    print(f"  verdict             {'PASS' if ok else 'FAIL'} (0 errors; end within +10 % of "
          "the warm-up level; trend < 5 % per 30 min)")


def print_report(r: dict[str, Any]) -> None:
    print()
    if r["mode"] == "soak":
        print_soak(r)
        return
    if r["mode"] == "burst":
        n = r["sessions"]
        p95 = r["first_render_s"]["p95"]
        print(f"BURST: {n} sessions opened within {fmt(r['opened_within_s'])}, fragment "
              f"auto-reruns {'on (as browsers do)' if r['fragment_reruns'] else 'off'}")
        print(f"  server              {r.get('server', '?')}")
        print(f"  cold start          first session's first render "
              f"{fmt(r['cold_start_render_s'])} (before the burst; --cold to skip)")
        print(f"  rendered            {r['rendered']}/{n}   (target {n}/{n})")
        print(f"  first delta         p50 {fmt(r['first_delta_s']['p50'])}  "
              f"p95 {fmt(r['first_delta_s']['p95'])}")
        print(f"  first render        p50 {fmt(r['first_render_s']['p50'])}  p95 {fmt(p95)}  "
              f"max {fmt(r['first_render_s']['max'])}   (target p95 <= 3 s)")
        print(f"  errors              {r['errors'] or 'none'}")
        print(f"  server RSS          idle {fmt(r['rss_mb']['idle'], 'MB', 0)}  "
              f"burst max {fmt(r['rss_mb']['burst_max'], 'MB', 0)}  "
              f"after {fmt(r['rss_mb']['after'], 'MB', 0)}")
        print(f"  server threads      idle {r['threads']['idle']}  burst max "
              f"{r['threads']['burst_max']}  after {r['threads']['after']}")
        print(f"  tracebacks in log   {r['server_log_tracebacks']}")
        print(f"  CPU during burst    server {fmt(r['server_cpu_s'])} "
              f"({fmt((r['server_cpu_s'] or 0) * 1000 / max(1, n), 'ms', 0)} per session), "
              f"this client {fmt(r['client_cpu_s'])}; load average "
              f"{', '.join(f'{x:.1f}' for x in r['load_average'])}")
        ok = r["rendered"] == n and p95 is not None and p95 <= 3.0
        print(f"  verdict             {'PASS' if ok else 'FAIL'}")
        return
    q, p, rss, th = r["queue"], r["play_to_first_step_s"], r["rss_mb"], r["threads"]
    print(f"LOAD: {r['sessions']} sessions ({r['client']}), {r['minutes']} min, "
          f"{r['plays']} plays, GRADLAB_MAX_WORKERS={r['workers'] or 'app default'}")
    print(f"  errors              {r['error_count']} in {r['sessions_with_errors']} sessions "
          "(target 0)")
    for e in r["errors"][:10]:
        print(f"      {e}")
    f = r["first_session"]
    f_play = f["play_to_first_step_s"][0] if f["play_to_first_step_s"] else None
    print(f"  1st session (cold)  open -> Play shown {fmt(f['open_to_play_visible_s'])}, "
          f"Play -> first step {fmt(f_play)}, errors {f['errors'] or 'none'}")
    o = r["open_to_play_visible_s"]
    print(f"  open -> Play shown  p50 {fmt(o['p50'])}  p95 {fmt(o['p95'])}")
    print(f"  Play -> first step  p50 {fmt(p['p50'])}  p95 {fmt(p['p95'])}  max {fmt(p['max'])}"
          f"  (n={p['n']})")
    print(f"  queue               {q['sessions_that_waited']} sessions waited; waits p50 "
          f"{fmt(q['p50_s'])} p95 {fmt(q['p95_s'])} max {fmt(q['max_s'])}; "
          f"deepest place {q['max_position']}")
    print(f"  server RSS          idle {fmt(rss['idle'], 'MB', 0)}  after 1st session "
          f"{fmt(rss['after_first_session'], 'MB', 0)}  load max {fmt(rss['load_max'], 'MB', 0)}"
          f"  {r_after(r)}")
    print(f"  server threads      idle {th['idle']}  after 1st session "
          f"{th['after_first_session']}  load max {th['load_max']}  after close "
          f"{th['after_close']}  -> left alive {r['threads_left_alive']} (target 0)")
    print(f"  tracebacks in log   {r['server_log_tracebacks']}")
    pct_ = r["rss_after_vs_first_pct"]
    ok = (r["error_count"] == 0 and pct_ is not None and pct_ <= 10
          and r["threads_left_alive"] == 0)
    print(f"  verdict             {'PASS' if ok else 'FAIL'}")


def r_after(r: dict[str, Any]) -> str:
    a, d = r["rss_mb"]["after_close_60s"], r["rss_after_vs_first_pct"]
    return f"after close {fmt(a, 'MB', 0)} ({'—' if d is None else f'{d:+.1f} %'}; target <= +10 %)"


# ---- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=30, help="sessions in load mode (30)")
    ap.add_argument("--minutes", type=float, default=5.0, help="load duration (5)")
    ap.add_argument("--port", type=int, default=0, help="port of the local server (free one)")
    ap.add_argument("--burst", type=int, default=0, metavar="N",
                    help="burst mode: N sessions open within --burst-window seconds")
    ap.add_argument("--burst-window", type=float, default=1.0)
    ap.add_argument("--no-fragments", action="store_true",
                    help="burst: do not run the page's fragment auto-reruns (a browser does)")
    ap.add_argument("--cold", action="store_true",
                    help="burst into a cold server (no warm-up session first)")
    ap.add_argument("--burst-timeout", type=float, default=60.0,
                    help="seconds a burst session may take to render (60)")
    ap.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                    help="soak mode: one session streams for SECONDS (e.g. 1800)")
    ap.add_argument("--soak-warmup", type=float, default=300.0,
                    help="soak: seconds before the RSS baseline is taken (300)")
    ap.add_argument("--soak-period", type=float, default=5.0,
                    help="soak: seconds between RSS / step samples (5)")
    ap.add_argument("--client", choices=("browser", "ws"), default="browser",
                    help="load mode client: Chromium pages (default) or the protocol client")
    ap.add_argument("--workers", type=int, default=None,
                    help="GRADLAB_MAX_WORKERS of the server (default: the app's own)")
    ap.add_argument("--ramp", type=float, default=10.0,
                    help="seconds over which the load sessions open (10)")
    ap.add_argument("--after", type=float, default=60.0,
                    help="seconds to watch the server after every session closed (60)")
    ap.add_argument("--play-timeout", type=float, default=180.0,
                    help="max seconds from Play to the first step before it counts as an error")
    ap.add_argument("--query", default="", help="URL query for every session, e.g. preset=relu-he")
    ap.add_argument("--script", default="app/main.py")
    ap.add_argument("--procs", type=int, default=0, metavar="N",
                    help="serve with gradlab-serve --workers N (uvicorn worker processes, as "
                         "the Docker image does) instead of one `streamlit run` process")
    ap.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="print session events")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the server (repeatable)")
    a = ap.parse_args(argv)
    a.first_only = False
    if a.sessions < 1 or a.burst < 0 or a.minutes < 0 or a.after < 0 or a.burst_window < 0:
        ap.error("counts and durations must be positive")
    if a.soak < 0 or a.soak > 4 * 3600:
        ap.error("--soak: 0 to 14400 seconds")
    if a.soak and a.soak_warmup >= a.soak:
        a.soak_warmup = a.soak / 6
    if not 0 <= a.procs <= 16:
        ap.error("--procs: 0 (streamlit run) to 16")
    if a.sessions > 500 or a.burst > 1000 or a.minutes > 120:
        ap.error("bounded on purpose: at most 500 sessions, 1000 in a burst, 120 minutes")
    return a


def main(argv: list[str] | None = None) -> int:
    global VERBOSE
    args = parse_args(argv)
    VERBOSE = args.verbose
    if not (REPO / args.script).is_file():
        print(f"{args.script} does not exist", file=sys.stderr)
        return 2
    extra = dict(kv.split("=", 1) for kv in args.env if "=" in kv)
    if args.soak:
        extra = {**SOAK_ENV, **extra}
    port = args.port or free_port()
    server = Server(port, args.script, args.workers, extra, procs=args.procs)
    print(f"server: {server.describe()}, pid {server.pid}, {server.url}, log "
          f"{server.log_path}", flush=True)
    try:
        server.wait_healthy()  # the first session then pays the cold start (imports)
        if args.soak:
            report = asyncio.run(soak_mode(args, server))
        elif args.burst:
            report = asyncio.run(burst_mode(args, server))
        else:
            report = asyncio.run(load_mode(args, server))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        server.stop()
    report["server"] = server.describe()
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
        print(f"report: {args.json}")
    if report.get("server_log_tracebacks"):
        print("\nserver log (tail):\n" + server.log_tail(2000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
