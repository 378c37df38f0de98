"""The load test's load and burst runs against a started server.

Load: one session first (the memory baseline), then N sessions open over ``--ramp`` seconds
and train for ``--minutes``; every tab closes at once and the server is watched for
``--after`` seconds. Burst: N websocket sessions connect within ``--burst-window`` seconds
and each asks for its first script run."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from tools.clients import SessionResult, run_browser_sessions, run_ws_sessions
from tools.protocol import ProtocolSession
from tools.server import Sampler, Server


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (linear interpolation); None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ---- burst ---------------------------------------------------------------------------------


@dataclass
class BurstResult:
    """One burst session: when it connected, its first delta and first finished run."""

    index: int
    started: float = 0.0
    first_delta: float | None = None     # seconds from the connect attempt
    rendered: float | None = None        # first script run finished successfully
    error: str | None = None


async def burst_session(i: int, port: int, start_at: float, args: argparse.Namespace,
                        all_done: asyncio.Event, out: BurstResult) -> ProtocolSession | None:
    """Connect at ``start_at``, ask for the first run, wait for it; stay open until
    ``all_done``."""
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
    """``n`` sessions connecting evenly within ``--burst-window``; closed together."""
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


# ---- the two runs --------------------------------------------------------------------------


async def load_mode(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """The load run; its report (a JSON-able dict)."""
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
    base, after = sampler.stats("baseline"), sampler.stats("after")
    idle = sampler.stats("idle")
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
                   "load_max": sampler.stats("load")["rss_mb_max"],
                   "after_close_60s": after["rss_mb_last"]},
        "threads": {"idle": idle["threads_last"], "after_first_session": base["threads_last"],
                    "load_max": sampler.stats("load")["threads_max"],
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
    """The burst run (after one warm-up session unless ``--cold``); its report."""
    sampler = Sampler(server, period=0.5)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    cold: list[BurstResult] = []
    try:
        sampler.phase = "idle"
        await asyncio.sleep(2)
        if not args.cold:
            # a warm-up session pays the cold start (imports), reported apart from the burst
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
        "rss_mb": {"idle": sampler.stats("idle")["rss_mb_last"],
                   "burst_max": sampler.stats("burst")["rss_mb_max"],
                   "after": sampler.stats("after")["rss_mb_last"]},
        "threads": {"idle": sampler.stats("idle")["threads_last"],
                    "burst_max": sampler.stats("burst")["threads_max"],
                    "after": sampler.stats("after")["threads_last"]},
        "server_log_tracebacks": server.count_in_log("Traceback"),
        "server_cpu_s": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2),
        "client_cpu_s": round(own1 - own0, 2),
        "load_average": os.getloadavg(),
    }

