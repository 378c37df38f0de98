"""The load test's two clients of a page: the websocket protocol client (tools/protocol.py)
and a real Chromium tab (Playwright). Each session opens the playground at its planned
moment, presses the real Play button (key ``pg_play``) at its planned moment, reads the
"Step" metric ("1,234 / 2,000"), presses Play again whenever a run ends, and stays until
the class closes its tabs; all sessions of a class close at the same moment."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tools.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from tools.protocol import ProtocolSession, open_until_play

PLAY_KEY = "pg_play"  # app/views/playground.py: st.button("Play", key="pg_play")
STEP_RE = re.compile(r"([\d,]+)\s*/\s*([\d,]+)")


# ---- per-session plan and results ---------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """When one session opens its page, presses Play (or as soon as it can after that), and
    when the class closes its tabs (later if this session's own hold ends later)."""

    open_at: float
    play_at: float
    close_at: float


@dataclass
class SessionResult:
    """What one session saw."""

    index: int
    client: str = "ws"                       # "ws" or "chromium"
    ready_s: float | None = None             # open -> Play can be pressed
    play_delay_s: float | None = None        # planned Play moment -> actual press (page late)
    first_step_s: list[float] = field(default_factory=list)   # Play -> first step, per Play
    chart_s: float | None = None             # Chromium: first Play -> first bars redraw
    steps: int | None = None                 # steps trained from the first Play to Play + hold
    plays: int = 0
    fragment_reruns: int = 0                 # auto-reruns this client sent (ws)
    local_port: int | None = None            # the websocket's client-side port (ws)
    worker_pid: int | None = None            # the web worker that served it (if found)
    #: ws sessions whose first step took over 2 s: the wire's events from Play on, as
    #: "+seconds event" (where the time went: no run, no timer, runs without a new Step)
    trace: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def play_to_first_step(self) -> float | None:
        """The class moment's figure: the first Play's time to its first step."""
        return self.first_step_s[0] if self.first_step_s else None


#: A ws session whose first step takes longer keeps its wire trace in the report.
SLOW_FIRST_STEP_S = 2.0

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


def run_over(status: str) -> bool:
    """The status says the run ended (finished, diverged or stopped by an error)."""
    s = status.lower()
    return s.startswith("finished") or s.startswith("diverged") or "stopped by an error" in s


class StepCounter:
    """Turns the page's (step, status) readings into Play -> first step times and the steps
    trained since the first Play, over every run. Play is pressed only on a fresh page or
    an ended run, so each Play starts a run at step 0."""

    def __init__(self) -> None:
        self.t_play: float | None = None      # the last Play, until its first step is seen
        self.first_play: float | None = None
        self.first_step_s: list[float] = []
        self.plays = 0
        self._banked = 0                      # steps of the runs that ended
        self._current = 0                     # step of the run on screen
        self._armed = False                   # the page shows the last Play's run

    @property
    def total(self) -> int:
        """Steps trained since the first Play."""
        return self._banked + self._current

    def pressed(self, now: float) -> None:
        """Play was pressed at ``now``: the run on screen (if any) is over."""
        self._banked += self._current
        self._current, self._armed, self.t_play = 0, False, now
        self.plays += 1
        if self.first_play is None:
            self.first_play = now

    def observe(self, step: int | None, status: str, now: float) -> None:
        """One reading of the page. Right after Play the page may still show the previous
        run ("finished (2,000 steps)"): its steps count once the new run is on screen."""
        if self.first_play is None or step is None:
            return
        if not self._armed:
            if not (status.lower().startswith("running") or step == 0):
                return
            self._armed = True
        self._current = max(self._current, step)
        if self.t_play is not None and step >= 1:
            self.first_step_s.append(now - self.t_play)
            self.t_play = None


async def sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.monotonic()))


# ---- client 1: the websocket protocol client ----------------------------------------------------


async def ws_session(i: int, port: int, plan: Plan, args: argparse.Namespace,
                     result: SessionResult) -> ProtocolSession | None:
    """One protocol session of the class; returns it open (the caller closes the class)."""
    await sleep_until(plan.open_at)
    s = ProtocolSession(port, args.query)
    counter = StepCounter()
    try:
        t_open = time.monotonic()
        error = await open_until_play(s, t_open, args.play_timeout)
        result.local_port = s.local_port
        if error:
            result.errors.append(error)
            return s
        result.ready_s = time.monotonic() - t_open
        await s.pump(plan.play_at)                      # the page sits open until then
        await _press_ws(s, counter, result, plan)
        hold_end = (counter.first_play or 0.0) + args.hold
        end = max(plan.close_at, hold_end)
        while time.monotonic() < end:
            # message by message until the first step is seen (its time to the ms)
            await s.pump(min(end, time.monotonic() + 0.1), one=counter.t_play is not None)
            now = time.monotonic()
            status = s.metrics.get("Status", "")
            counter.observe(step_of(s.metrics.get("Step", "")), status, now)
            if result.steps is None and now >= hold_end:
                result.steps = counter.total
            if s.closed_reason or s.exceptions:
                result.errors.append(f"connection closed: {s.closed_reason}" if s.closed_reason
                                     else s.exception_error())
                break
            if counter.t_play is not None:
                if now - counter.t_play > args.play_timeout:
                    result.errors.append(f"no first step {args.play_timeout:.0f} s after Play")
                    break
            elif run_over(status) and not s.buttons["Play"][1]:
                if "stopped by an error" in status:
                    result.errors.append(f"run error: {status}")
                await _press_ws(s, counter, result, plan)
    except Exception as e:  # noqa: BLE001 - one broken session is a reported error
        first_line = str(e).splitlines()[0][:160] if str(e) else ""
        result.errors.append(f"{type(e).__name__}: {first_line}")
    _finish(result, counter, _seen(s))
    result.fragment_reruns = s.fragment_reruns_sent
    first = result.play_to_first_step
    if s.trace and (first is None or first > SLOW_FIRST_STEP_S):   # slow, or never
        t0 = s.trace[0][0]
        end = t0 + first + 1.0 if first is not None else float("inf")
        result.trace = [f"+{t - t0:.2f} {e}" for t, e in s.trace if t <= end]
    log(f"session {i} (ws): done, {result.plays} plays, {result.steps} steps, {result.errors}")
    return s


def _seen(s: ProtocolSession) -> str:
    """What the page last showed, for an error message."""
    play = s.buttons.get("Play")
    return (f"page shows {s.metrics.get('Status', '?')!r}, {s.metrics.get('Step', '?')!r}; Play "
            f"{'disabled' if play and play[1] else 'enabled'}; "
            f"{s.finished_runs - s.runs_at_trigger} script runs finished since Play; "
            f"fragment timer {'on' if len(s.timers) else 'off'}")


async def _press_ws(s: ProtocolSession, counter: StepCounter, result: SessionResult,
                    plan: Plan) -> None:
    if s.trace is None:
        s.start_trace()
    await s.rerun(trigger_id=s.buttons["Play"][0])
    counter.pressed(time.monotonic())
    if result.play_delay_s is None:
        result.play_delay_s = max(0.0, time.monotonic() - plan.play_at)
    log(f"session {result.index}: Play")


def _finish(result: SessionResult, counter: StepCounter, seen: str = "") -> None:
    result.first_step_s = counter.first_step_s
    result.plays = counter.plays
    if result.steps is None and counter.first_play is not None:
        result.steps = counter.total     # the session ended before its hold did
    if not result.errors:
        if counter.plays == 0:
            result.errors.append("Play was never pressed")
        elif not counter.first_step_s:
            result.errors.append("no first step after Play" + (f" ({seen})" if seen else ""))


# ---- client 2: a real Chromium tab (Playwright, Debian's Chromium) ------------------------------

#: The metrics, exceptions, connection state, and how often the gradient bars were redrawn
#: (app/stream_chart counts its Plotly.react calls in ``__glUpdates``; -1: not drawn yet).
READ_PAGE_JS = """() => {
  const metrics = {};
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    const value = m.querySelector('[data-testid="stMetricValue"]');
    if (label && value) metrics[label.innerText.trim()] = value.innerText.trim();
  }
  let bars = -1;
  for (const gd of document.querySelectorAll('.gl-stream-chart')) {
    if (gd.layout && gd.layout.uirevision === 'gradient_bars') bars = gd.__glUpdates || 0;
  }
  const conn = document.querySelector('[data-testid="stConnectionStatus"]');
  return {
    metrics, bars,
    exceptions: document.querySelectorAll('[data-testid="stException"]').length,
    disconnected: !!conn && /connect/i.test(conn.innerText),
  };
}"""


async def chromium_session(i: int, browser: Any, url: str, plan: Plan, args: argparse.Namespace,
                           result: SessionResult) -> Any:
    """One Chromium tab of the class: open, wait for the step-0 picture, press Play at the
    planned moment; Play -> first step and Play -> first redraw of the gradient bars.
    Returns its browser context (the caller closes the class together)."""
    await sleep_until(plan.open_at)
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    page.on("pageerror", lambda e: result.errors.append(f"page error: {str(e)[:120]}"))
    counter = StepCounter()
    try:
        t_open = time.monotonic()
        timeout_ms = int(args.play_timeout * 1000)
        await page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
        play = page.locator(f".st-key-{PLAY_KEY} button").first   # (stale copy mid-rerun)
        await play.wait_for(state="visible", timeout=timeout_ms)
        await page.wait_for_function("b => !b.disabled", arg=await play.element_handle(),
                                     timeout=timeout_ms)
        # the step-0 picture drawn: a redraw of the bars after the click is the run's
        await page.wait_for_function(f"() => ({READ_PAGE_JS})().bars >= 1", timeout=timeout_ms)
        result.ready_s = time.monotonic() - t_open
        await sleep_until(plan.play_at)
        before = (await page.evaluate(READ_PAGE_JS))["bars"]
        await play.click(timeout=timeout_ms)
        counter.pressed(time.monotonic())
        result.play_delay_s = max(0.0, time.monotonic() - plan.play_at)
        log(f"session {i} (chromium): Play")
        hold_end = (counter.first_play or 0.0) + args.hold
        end = max(plan.close_at, hold_end)
        while time.monotonic() < end:
            state = await page.evaluate(READ_PAGE_JS)
            now = time.monotonic()
            status = state["metrics"].get("Status", "")
            counter.observe(step_of(state["metrics"].get("Step", "")), status, now)
            if result.chart_s is None and state["bars"] > before:
                result.chart_s = now - (counter.first_play or now)
            if result.steps is None and now >= hold_end:
                result.steps = counter.total
            if state["exceptions"] or state["disconnected"]:
                result.errors.append("exception element on the page" if state["exceptions"]
                                     else "connection lost")
                break
            if counter.t_play is not None:
                if now - counter.t_play > args.play_timeout:
                    result.errors.append(f"no first step {args.play_timeout:.0f} s after Play")
                    break
            elif run_over(status) and await play.is_enabled():
                await play.click(timeout=timeout_ms)
                counter.pressed(time.monotonic())
            # fine-grained until the first step and chart change are seen, then relaxed
            await asyncio.sleep(0.05 if result.chart_s is None or counter.t_play else 0.5)
    except Exception as e:  # noqa: BLE001 - one broken session is a reported error
        result.errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
    _finish(result, counter)
    log(f"session {i} (chromium): done, {result.steps} steps, errors {result.errors}")
    return ctx


# ---- the class -----------------------------------------------------------------------------------


async def run_class(port: int, url: str, plans: list[Plan], kinds: list[str],
                    args: argparse.Namespace, results: list[SessionResult],
                    ended: asyncio.Event | None = None) -> None:
    """Run one session per plan (``kinds[i]``: "ws" or "chromium"), each writing into
    ``results[i]``; every tab closes at the same moment, once all are done (``ended`` is
    set just before)."""
    async with contextlib.AsyncExitStack() as stack:
        browser = None
        if "chromium" in kinds:
            from playwright.async_api import async_playwright

            missing = chromium_missing()
            if missing:
                raise SystemExit(f"{missing} (or run without Chromium tabs: --tabs 0)")
            pw = await stack.enter_async_context(async_playwright())
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=CHROMIUM_ARGS)
            stack.push_async_callback(browser.close)
        tasks = []
        for i, (plan, kind) in enumerate(zip(plans, kinds, strict=True)):
            if kind == "chromium":
                tasks.append(chromium_session(i, browser, url, plan, args, results[i]))
            else:
                tasks.append(ws_session(i, port, plan, args, results[i]))
        limit = max(p.close_at for p in plans) - time.monotonic() + 2 * args.play_timeout + 120
        opened = await asyncio.wait_for(asyncio.gather(*tasks), timeout=limit)
        if ended is not None:
            ended.set()
            await asyncio.sleep(0.1)        # its watchers take their last look
        await asyncio.gather(*(o.close() for o in opened if o is not None),
                             return_exceptions=True)
