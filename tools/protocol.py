"""Streamlit's websocket protocol from the client's side (BackMsg / ForwardMsg protobufs):
the load test's sessions, which make a server do a page's work without a browser."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from tools.server import LOOPBACK


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
        """Open the websocket (Streamlit's subprotocol, no size cap, no pings)."""
        import websockets

        self.ws = await websockets.connect(self.uri, subprotocols=["streamlit"], max_size=None,
                                           open_timeout=timeout, ping_interval=None)

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
        """Close the websocket (a closed tab); errors on the way out are ignored."""
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

