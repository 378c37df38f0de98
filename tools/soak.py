"""The load test's soak run: one websocket session presses Play and streams for ``--soak``
seconds (Play again whenever a run ends) while the server's RSS and threads are sampled;
reported: RSS over time, its growth after the warm-up and its trend, steps, errors."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from tools.clients import SessionResult, StepCounter, run_over, step_of
from tools.protocol import ProtocolSession, open_until_play
from tools.server import Sampler, Server

SOAK_QUERY = "steps=1000000"  # one run for the whole soak (local profile: no 20,000-step cap)
SOAK_ENV = {"GRADLAB_PROFILE": "local", "GRADLAB_IDLE_MINUTES": "600"}  # no idle pause mid-soak


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
    counter = StepCounter()
    error = await open_until_play(s, t_start, args.play_timeout)
    if error:
        result.errors.append(error)
        return
    next_note = 0.0
    while time.monotonic() < until and not s.closed_reason:
        play_id, disabled = s.buttons["Play"]
        if disabled:
            await s.pump(time.monotonic() + 0.25)
            continue
        await s.rerun(trigger_id=play_id)
        counter.pressed(time.monotonic())
        while time.monotonic() < until and not s.closed_reason:
            await s.pump(time.monotonic() + 0.25)
            status = s.metrics.get("Status", "")
            step = step_of(s.metrics.get("Step", ""))
            if s.exceptions:
                result.errors.append(s.exception_error())
                s.exception_texts.clear()
            counter.observe(step, status, time.monotonic())
            now = time.monotonic() - t_start
            if step is not None and now >= next_note:
                steps_seen.append((round(now, 1), step))
                next_note = now + args.soak_period
            if counter.t_play is not None and \
                    time.monotonic() - counter.t_play > args.play_timeout:
                result.errors.append(f"no first step {args.play_timeout:.0f} s after Play")
                counter.t_play = None
            if counter.t_play is None and run_over(status):
                if "stopped by an error" in status:
                    result.errors.append(f"run error: {status}")
                await s.pump(time.monotonic() + 1.0)   # the buttons' rerun lands
                break
            if counter.t_play is None and status.startswith("paused"):
                result.errors.append(f"the run paused by itself: {status}")
                await s.pump(time.monotonic() + 1.0)
                break
    result.first_step_s, result.plays = counter.first_step_s, counter.plays
    if s.closed_reason:
        result.errors.append(f"connection closed: {s.closed_reason}")


async def soak_mode(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """The soak run; its report (a JSON-able dict)."""
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
    rows = [(r["t"], r["rss"], r["threads"]) for r in sampler.of("soak") if r["rss"]]
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

    growth = None if not (base and end) else round(100 * (end - base) / base, 1)
    slope = trend_mb_per_min(tail)
    return {
        "mode": "soak", "seconds": args.soak, "query": args.query or SOAK_QUERY,
        "errors": result.errors, "error_count": len(result.errors), "plays": result.plays,
        "play_to_first_step_s": result.first_step_s,
        "steps": steps_seen[-1][1] if steps_seen else None, "redraws": redraws,
        "rss_mb": {"idle": sampler.last("idle"), "after_warmup": base,
                   "peak": max((r for _, r in warm), default=None), "end": end,
                   "after_close": sampler.last("after")},
        "rss_growth_after_warmup_pct": growth,
        "rss_trend_last_two_thirds_mb_per_min": None if slope is None else round(slope, 3),
        "threads": {"soak_max": sampler.peak(["soak"], "threads"),
                    "after_close": sampler.last("after", "threads")},
        "timeline": timeline, "step_samples": steps_seen,
        "server_log_tracebacks": server.count_in_log("Traceback"),
        "load_average": os.getloadavg(),
        "samples": sampler.samples,
    }

