"""The load test's two clients of a page: a real Chromium page (Playwright) and the
websocket protocol client. Each session opens the page, presses Play, and keeps training
until its deadline (Play again when a run ends), timing Play -> first step and queue waits."""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tools.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from tools.protocol import ProtocolSession, open_until_play

PLAY_KEY = "pg_play"  # app/views/playground.py: st.button("Play", key="pg_play")
WAITING_TEXT = "waiting for a slot"
STEP_RE = re.compile(r"([\d,]+)\s*/\s*([\d,]+)")
ORDINAL_RE = re.compile(r"(\d+)(?:st|nd|rd|th) in line")


# ---- per-session results -----------------------------------------------------------------------


@dataclass
class SessionResult:
    """What one load session saw: per-Play times, queue waits, errors."""

    index: int
    play_to_first_step: list[float] = field(default_factory=list)   # seconds, per Play
    queue_waits: list[float] = field(default_factory=list)          # seconds seen waiting
    max_position: int = 0
    plays: int = 0
    ready_s: float | None = None                                    # open -> Play visible
    errors: list[str] = field(default_factory=list)


_VERBOSE = {"on": False}


def set_verbose(on: bool) -> None:
    """Print session events (``--verbose``)."""
    _VERBOSE["on"] = on


def log(*parts: Any) -> None:
    """A timestamped session event, printed with ``--verbose``."""
    if _VERBOSE["on"]:
        print(f"{time.strftime('%H:%M:%S')}", *parts, flush=True)


def step_of(text: str) -> int | None:
    """The step of the page's "Step" metric ("1,234 / 2,000" -> 1234)."""
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


def run_over(status: str) -> bool:
    """The status says the run ended (finished, diverged or stopped by an error)."""
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
                if tracker.observe(step_of(state["metrics"].get("Step", "")), status) \
                        and args.first_only:
                    await asyncio.sleep(3)
                    return ctx
                if tracker.t_play is not None:
                    if tracker.timed_out(args.play_timeout):
                        result.errors.append(f"no first step {args.play_timeout:.0f} s after Play")
                        return ctx
                elif run_over(status):
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
    """``n`` Chromium pages opening over ``--ramp`` seconds; all closed at the same moment."""
    from playwright.async_api import async_playwright

    missing = chromium_missing()
    if missing:
        raise SystemExit(f"{missing} (or use --client ws)")
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


async def ws_session(i: int, port: int, until: float, args: argparse.Namespace,
                     result: SessionResult) -> ProtocolSession:
    """The protocol client's version of :func:`browser_session`."""
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
                    if tracker.observe(step_of(s.metrics.get("Step", "")), status) \
                            and args.first_only:
                        await s.pump(time.monotonic() + 3)
                        return s
                    if tracker.t_play is not None:
                        if tracker.timed_out(args.play_timeout):
                            result.errors.append(
                                f"no first step {args.play_timeout:.0f} s after Play")
                            return s
                    elif run_over(status):
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
    """``n`` protocol sessions opening over ``--ramp`` seconds; all closed together."""
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

