"""Streamlit's websocket protocol from the client's side (BackMsg / ForwardMsg protobufs):
the load test's sessions, which make a server do a page's work without a browser.

The fragment timers follow Streamlit 1.67's front end (``App.handleAutoRerun``): a
``run_every`` fragment's interval arrives as an ``auto_rerun`` ForwardMsg in each full run;
the browser then sends that fragment's rerun every interval *whether or not a script is
running*; the start of a full run (a ``new_session`` whose run has no fragment ids) clears
every timer, ``stop_auto_rerun`` clears the named ones, and the same interval sent again
keeps the running timer (its countdown is not restarted)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from tools.server import LOOPBACK


class FragmentTimers:
    """The browser's auto-rerun timers, one per fragment id, on a caller-given clock."""

    def __init__(self) -> None:
        self._timers: dict[str, tuple[float, float]] = {}   # fragment id -> (interval, due)

    def __len__(self) -> int:
        return len(self._timers)

    def __contains__(self, fragment_id: str) -> bool:
        return fragment_id in self._timers

    def auto_rerun(self, fragment_id: str, interval: float, now: float) -> None:
        """An ``auto_rerun`` message: (re)arm the timer unless it runs at that interval."""
        if not fragment_id or interval <= 0:
            return                      # the 1.67 front end ignores these
        old = self._timers.get(fragment_id)
        if old is not None and old[0] == interval:
            return
        self._timers[fragment_id] = (interval, now + interval)

    def full_run_started(self) -> None:
        """A full-app run started (``new_session`` without fragment ids): clear every timer."""
        self._timers.clear()

    def stop(self, fragment_ids: list[str]) -> None:
        """A ``stop_auto_rerun`` message."""
        for fid in fragment_ids:
            self._timers.pop(fid, None)

    def due(self, now: float) -> list[str]:
        """The fragments whose timer fired by ``now``; each fires once however late it is
        (``setInterval`` does not catch up on missed ticks) and is re-armed."""
        fired = []
        for fid, (interval, due) in list(self._timers.items()):
            if now >= due:
                fired.append(fid)
                nxt = due + interval
                self._timers[fid] = (interval, nxt if nxt > now else now + interval)
        return fired

    def next_due(self) -> float | None:
        """When the next timer fires (None: no timer)."""
        return min((d for _, d in self._timers.values()), default=None)


class ProtocolSession:
    """A minimal Streamlit client: connect to /_stcore/stream, ask for a run, read the
    ForwardMsgs, press a button by its trigger, send fragment auto-reruns on the browser's
    timers (``fragments=False``: never)."""

    def __init__(self, port: int, query: str = "", fragments: bool = True) -> None:
        self.uri = f"ws://{LOOPBACK}:{port}/_stcore/stream"
        self.query = query.lstrip("?")
        self.ws: Any = None
        self.local_port: int | None = None              # this side's TCP port
        self.page_hash = ""
        self.buttons: dict[str, tuple[str, bool]] = {}  # label -> (widget id, disabled)
        self.metrics: dict[str, str] = {}               # label -> shown value
        #: "Type: message" of each exception element received (the first line)
        self.exception_texts: list[str] = []
        self.timers = FragmentTimers()
        self.fragments = fragments
        self.running = False                            # a script run is in progress
        self.finished_runs = 0
        self.fragment_reruns_sent = 0
        self.runs_at_trigger = 0                        # finished_runs at the last press
        self.first_delta_at: float | None = None
        self.first_finish_at: float | None = None
        self.closed_reason: str | None = None
        #: (monotonic time, event) of what happened on the wire since :meth:`start_trace`
        #: (None: not tracing): runs started / finished, timers, Step changes, reruns sent.
        self.trace: list[tuple[float, str]] | None = None

    @property
    def exceptions(self) -> int:
        """Exception elements received (since the caller last cleared ``exception_texts``)."""
        return len(self.exception_texts)

    def exception_error(self) -> str:
        """The error a load report gives for the first exception element received."""
        return "exception element sent: " + self.exception_texts[0]

    def start_trace(self) -> None:
        """Record the wire's events from now on (the load test keeps them for the sessions
        whose first step came late, to tell where the time went)."""
        self.trace = []

    def _note(self, event: str, now: float | None = None) -> None:
        if self.trace is not None and len(self.trace) < 400:
            self.trace.append((time.monotonic() if now is None else now, event))

    async def connect(self, timeout: float) -> None:
        """Open the websocket (Streamlit's subprotocol, no size cap, no pings)."""
        import websockets

        self.ws = await websockets.connect(self.uri, subprotocols=["streamlit"], max_size=None,
                                           open_timeout=timeout, ping_interval=None)
        with contextlib.suppress(Exception):
            self.local_port = int(self.ws.local_address[1])

    async def rerun(self, trigger_id: str | None = None, fragment_id: str = "") -> None:
        """Ask for a script run: a button press (``trigger_id``) or a fragment's auto-rerun."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_script_hash = self.page_hash
        if fragment_id:
            cs.fragment_id = fragment_id
            cs.is_auto_rerun = True
            self.fragment_reruns_sent += 1
            self._note("sent fragment rerun")
        if trigger_id:
            self.runs_at_trigger = self.finished_runs
            w = cs.widget_states.widgets.add()
            w.id = trigger_id
            w.trigger_value = True
            self._note("sent button press")
        await self.ws.send(msg.SerializeToString())

    def handle(self, data: bytes, now: float | None = None) -> None:
        """Take one ForwardMsg into the session's state (buttons, metrics, timers...)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        now = time.monotonic() if now is None else now
        fm = ForwardMsg()
        fm.ParseFromString(data)
        kind = fm.WhichOneof("type")
        if kind == "delta":
            if self.first_delta_at is None:
                self.first_delta_at = now
            d = fm.delta
            if d.WhichOneof("type") == "new_element":
                el = d.new_element
                et = el.WhichOneof("type")
                if et == "button":
                    self.buttons[el.button.label] = (el.button.id, el.button.disabled)
                elif et == "metric":
                    if el.metric.label == "Step" and self.metrics.get("Step") != el.metric.body:
                        self._note(f"Step {el.metric.body}", now)
                    self.metrics[el.metric.label] = el.metric.body
                elif et == "exception":
                    first = (el.exception.message.splitlines() or [""])[0][:200]
                    self.exception_texts.append(f"{el.exception.type}: {first}")
        elif kind == "new_session":
            self.running = True
            self._note("fragment run started" if fm.metadata.run.fragment_ids
                       else "full run started", now)
            if fm.new_session.page_script_hash:
                self.page_hash = fm.new_session.page_script_hash
            if not fm.metadata.run.fragment_ids:
                self.timers.full_run_started()
        elif kind == "navigation":
            if fm.navigation.page_script_hash:
                self.page_hash = fm.navigation.page_script_hash
        elif kind == "auto_rerun":
            if fm.auto_rerun.fragment_id not in self.timers:
                self._note(f"timer on ({fm.auto_rerun.interval:g} s)", now)
            self.timers.auto_rerun(fm.auto_rerun.fragment_id, fm.auto_rerun.interval, now)
        elif kind == "stop_auto_rerun":
            self._note("timer off", now)
            self.timers.stop(list(fm.stop_auto_rerun.fragment_ids))
        elif kind == "script_finished":
            self._note(f"run finished ({fm.script_finished})", now)
            self.running = False
            self.finished_runs += 1
            if self.first_finish_at is None and fm.script_finished == 0:  # FINISHED_SUCCESSFULLY
                self.first_finish_at = now
        elif kind == "session_status_changed":
            self.running = fm.session_status_changed.script_is_running

    async def pump(self, until: float, one: bool = False) -> None:
        """Read messages until ``until`` (monotonic; ``one``: or until one message came);
        send the fragment reruns that fall due meanwhile, as the browser does: running
        script or not."""
        while time.monotonic() < until and self.closed_reason is None:
            now = time.monotonic()
            if self.fragments:
                for fid in self.timers.due(now):
                    await self.rerun(fragment_id=fid)
            nxt = self.timers.next_due() if self.fragments else None
            wait = min(until - now, 0.25, (nxt - now) if nxt is not None else 0.25)
            try:
                data = await asyncio.wait_for(self.ws.recv(), timeout=max(0.005, wait))
            except asyncio.TimeoutError:
                continue
            except Exception as e:  # noqa: BLE001 - ConnectionClosed and friends
                self.closed_reason = f"{type(e).__name__}: {e}"[:160]
                return
            if isinstance(data, bytes):
                self.handle(data)
            if one:
                return

    async def close(self) -> None:
        """Close the websocket (a closed tab); errors on the way out are ignored."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


async def open_until_play(s: ProtocolSession, t_open: float, timeout: float = 90.0) -> str | None:
    """Connect, run the page once and wait (``timeout`` s from ``t_open``) until its Play
    button can be pressed: None once it can, else the error to report."""
    await s.connect(timeout=timeout)
    await s.rerun()
    while time.monotonic() - t_open < timeout and not s.closed_reason:
        if "Play" in s.buttons and not s.buttons["Play"][1] and s.finished_runs:
            return None
        await s.pump(time.monotonic() + 0.2)
    if "Play" in s.buttons and not s.buttons["Play"][1]:
        return None
    return (f"no Play button within {timeout:.0f} s"
            + (f" ({s.closed_reason})" if s.closed_reason else ""))
