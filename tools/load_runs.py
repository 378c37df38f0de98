"""The load test's runs against a started server: the class and the burst.

Class: one warm-up session (Play, first step, close), then the memory baseline ("start");
N sessions open their page at random within ``--open`` seconds, press Play at random within
``--ramp`` seconds, each is read ``--hold`` seconds after its Play; ``--tabs`` Chromium tabs
join at a random moment of the Play window; every tab closes at once and the server is
watched for ``--after`` seconds. Burst: N websocket sessions connect within
``--burst-window`` seconds and each asks for its first script run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.clients import Plan, SessionResult, run_class
from tools.protocol import ProtocolSession
from tools.server import (
    Sampler,
    Server,
    cpu_s,
    last_received_ms,
    ports_towards,
    process_tree,
)

SETTLE_S = 5.0   # between the last page opening and the first moment of the Play window


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (linear interpolation; ``inf`` counts as a value
    larger than any); None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    frac = k - lo
    if frac == 0 or v[hi] == v[lo]:
        return v[lo]
    return v[lo] + (v[hi] - v[lo]) * frac


def jain(values: list[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2): 1 when all are equal, 1/n when one
    has everything; None when empty or all zero."""
    sq = sum(x * x for x in values)
    if not values or sq <= 0:
        return None
    return sum(values) ** 2 / (len(values) * sq)


def class_plans(n: int, tabs: int, t0: float, open_s: float, ramp_s: float, hold_s: float,
                rng: random.Random, settle_s: float = SETTLE_S) -> list[Plan]:
    """``n`` sessions that open at random within ``open_s`` after ``t0`` and press Play at
    random within the ``ramp_s`` window that starts ``settle_s`` after the last opening,
    then ``tabs`` late joiners that open at a random moment of that window and press Play
    as soon as they can. The class closes ``hold_s`` after the window ends."""
    play0 = t0 + open_s + settle_s
    close = play0 + ramp_s + hold_s
    plans = [Plan(t0 + rng.uniform(0, open_s), play0 + rng.uniform(0, ramp_s), close)
             for _ in range(n)]
    for _ in range(tabs):
        at = play0 + rng.uniform(0, ramp_s)
        plans.append(Plan(at, at, close))
    return plans


def summary(values: list[float | None]) -> dict[str, Any]:
    """p50 / p95 / max of the figures that exist, with the missing ones counted as never
    (infinitely late) in the percentiles."""
    got = [v for v in values if v is not None]
    full = [math.inf if v is None else v for v in values]
    return {"n": len(got), "of": len(values), "p50": pct(full, 0.5), "p95": pct(full, 0.95),
            "max": max(full) if full else None}


def browser_pids(me: int, server: Server) -> list[int]:
    """This process's descendants that are not the server's: Playwright and Chromium."""
    theirs = set(server.tree())
    return [p for p in process_tree(me) if p != me and p not in theirs]


class CpuWatch:
    """CPU seconds used per role (web, executor, other, ws clients, chromium) over a
    stretch of time, from per-process samples: a process that appears meanwhile counts from
    zero, one that goes keeps its last sample."""

    def __init__(self, server: Server) -> None:
        self.server, self.me = server, os.getpid()
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.box: tuple[list[float], list[float]] | None = None   # box_s(): first, last

    def groups(self) -> dict[str, list[int]]:
        g = {role: self.server.pids(role) for role in ("web", "executor", "other")}
        g["ws clients"] = [self.me]
        g["chromium"] = browser_pids(self.me, self.server)
        return g

    @staticmethod
    def box_s() -> list[float]:
        """The box's CPU seconds so far (/proc/stat): user+nice, system, irq+softirq
        (loopback traffic is processed there), steal (the hypervisor's other guests)."""
        f = [int(x) / os.sysconf("SC_CLK_TCK")
             for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return [f[0] + f[1], f[2], f[5] + f[6], f[7]]

    def sample(self) -> None:
        now = self.box_s()
        self.box = (self.box[0] if self.box else now, now)
        started = bool(self.first)
        for role, pids in self.groups().items():
            for pid in pids:
                c = cpu_s([pid])
                if c is not None:
                    self.first.setdefault(pid, 0.0 if started else c)
                    self.last[pid] = (role, c)

    async def run(self, stop: asyncio.Event, period: float = 1.0) -> None:
        """Sample every ``period`` seconds, and once more when ``stop`` is set."""
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
        self.sample()

    def per_pid(self, role: str) -> dict[str, float]:
        """CPU seconds of each process of ``role``."""
        return {str(pid): round(c - self.first[pid], 1) for pid, (r, c) in self.last.items()
                if r == role}

    def used(self) -> dict[str, float]:
        """CPU seconds per role; "box": the whole machine busy (irq and softirq included),
        "rest of the box": user and system time of other processes on the machine."""
        out: dict[str, float] = {}
        for pid, (role, c) in self.last.items():
            out[role] = round(out.get(role, 0.0) + c - self.first[pid], 1)
        if self.box is not None:
            d = [b - a for a, b in zip(*self.box, strict=True)]
            out["box"] = round(sum(d[:3]), 1)
            out["box irq+softirq"], out["box steal"] = round(d[2], 1), round(d[3], 1)
            out["rest of the box"] = round(sum(d[:2]) - sum(
                v for k, v in out.items() if not k.startswith("box")), 1)
        return out


def tab_websockets(ports: list[int], server_port: int, args: argparse.Namespace) -> list[int]:
    """Of the Chromium tabs' connections to the server, their websockets: the ones that
    received data within the last 3 s (a running page gets a frame every 0.75 s; idle HTTP
    connections get nothing); with one tab, the most recent one."""
    ages = last_received_ms(server_port)
    if not ages or not ports:
        return ports
    if args.tabs + (args.sessions if args.client == "browser" else 0) == 1:
        return [min(ports, key=lambda p: ages.get(p, 1 << 30))]
    return [p for p in ports if ages.get(p, 1 << 30) < 3000]


# ---- the class ---------------------------------------------------------------------------------


async def load_mode(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """The class run; its report (a JSON-able dict)."""
    sampler = Sampler(server)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    rng = random.Random(args.seed)
    me = os.getpid()
    url = server.url + ("/?" + args.query.lstrip("?") if args.query else "/")
    kind = "chromium" if args.client == "browser" else "ws"
    kinds = [kind] * args.sessions + ["chromium"] * args.tabs
    results = [SessionResult(i, client=k) for i, k in enumerate(kinds)]
    conns: dict[int, int] = {}
    tab_ports: list[int] = []
    cpu: dict[str, Any] = {}
    try:
        sampler.phase = "idle"
        await asyncio.sleep(3)
        # 1. a warm-up session pays the cold start (imports, first pictures)
        sampler.phase = "warm-up"
        warm = [SessionResult(0)]
        now = time.monotonic()
        await run_class(server.port, url, [Plan(now, now, now)], ["ws"],
                        argparse.Namespace(**{**vars(args), "hold": 3.0}), warm)
        sampler.phase = "start"
        await asyncio.sleep(10)
        # 2. the class
        sampler.phase = "class"
        t0 = time.monotonic()
        plans = class_plans(args.sessions, args.tabs, t0, args.open, args.ramp, args.hold, rng)
        mid = t0 + args.open + SETTLE_S + args.ramp + args.hold / 2

        async def look_midway() -> None:
            await asyncio.sleep(max(0.0, mid - time.monotonic()))
            conns.update(server.connections())
            tab_ports.extend(tab_websockets(ports_towards(browser_pids(me, server),
                                                          server.port), server.port, args))

        watch, watching = CpuWatch(server), asyncio.Event()
        watcher = asyncio.create_task(watch.run(watching))
        midway = asyncio.create_task(look_midway())
        try:
            await run_class(server.port, url, plans, kinds, args, results, watching)
        finally:
            watching.set()
            midway.cancel()
            await watcher
        cpu = {**watch.used(), "per web worker": watch.per_pid("web"),
               "per executor": watch.per_pid("executor")}
        class_s = time.monotonic() - t0
        # 3. every tab closed: watch the server
        sampler.phase = "after"
        await asyncio.sleep(args.after)
    finally:
        stop.set()
        await sampling
    return _class_report(args, server, sampler, results, warm, conns, tab_ports, cpu, class_s)


def _class_report(args: argparse.Namespace, server: Server, sampler: Sampler,
                  results: list[SessionResult], warm: list[SessionResult],
                  conns: dict[int, int], tab_ports: list[int],
                  cpu: dict[str, Any], class_s: float) -> dict[str, Any]:
    for r in results:
        if r.client == "ws" and r.local_port in conns:
            r.worker_pid = conns[r.local_port]
    tab_workers = [conns[p] for p in tab_ports if p in conns]
    tabs = [r for r in results if r.client == "chromium"]
    if len(tabs) == 1 and len(tab_workers) == 1:
        tabs[0].worker_pid = tab_workers[0]
    per_worker = Counter(r.worker_pid for r in results if r.worker_pid is not None)
    if len(tabs) > 1:             # which tab is which is not known: count them per worker
        per_worker.update(tab_workers)
    steps = [r.steps or 0 for r in results]
    start, after = sampler.last("start"), sampler.last("after")
    peak = sampler.peak(["class", "after"])
    return {
        "mode": "load", "client": args.client, "sessions": args.sessions, "tabs": args.tabs,
        "procs": args.procs, "executors": args.executors, "hold_s": args.hold,
        "open_s": args.open, "ramp_s": args.ramp, "seed": args.seed, "after_s": args.after,
        "class_seconds": round(class_s, 1),
        "warm_up": {"play_to_first_step_s": warm[0].play_to_first_step,
                    "errors": warm[0].errors},
        "per_session": [{
            "i": r.index, "client": r.client, "ready_s": r.ready_s,
            "play_delay_s": r.play_delay_s, "play_to_first_step_s": r.play_to_first_step,
            "play_to_chart_s": r.chart_s, "steps": r.steps, "plays": r.plays,
            "fragment_reruns": r.fragment_reruns, "worker": r.worker_pid,
            **({"trace": r.trace} if r.trace else {}),
            "errors": r.errors} for r in results],
        "errors": [f"session {r.index} ({r.client}): {e}" for r in results for e in r.errors],
        "error_count": sum(len(r.errors) for r in results),
        "progressed": sum(1 for r in results if r.play_to_first_step is not None
                          and (r.steps or 0) > 0),
        "ready_s": summary([r.ready_s for r in results]),
        "play_to_first_step_s": summary([r.play_to_first_step for r in results]),
        "steps": {"min": min(steps), "median": pct([float(x) for x in steps], 0.5),
                  "max": max(steps), "jain": jain([float(x) for x in steps])},
        "tabs_report": [{"play_to_first_step_s": r.play_to_first_step,
                         "play_to_chart_s": r.chart_s, "steps": r.steps,
                         "ready_s": r.ready_s, "errors": r.errors, "workers": tab_workers}
                        for r in results if r.client == "chromium"][:3],
        "rss_mb": {"idle": sampler.last("idle"), "start": start, "peak": peak,
                   "after": after,
                   "after_over_start": None if not (start and after) else after / start,
                   "web": {"start": sampler.last("start", "web"),
                           "peak": sampler.peak(["class"], "web"),
                           "after": sampler.last("after", "web")},
                   "executors": {"start": sampler.last("start", "executor"),
                                 "peak": sampler.peak(["class"], "executor"),
                                 "after": sampler.last("after", "executor")}},
        "threads": {"start": sampler.last("start", "threads"),
                    "peak": sampler.peak(["class"], "threads"),
                    "after": sampler.last("after", "threads")},
        "workers": {"sessions_per_worker": {str(k): v for k, v in per_worker.items()},
                    "unmapped": len(results) - sum(per_worker.values()),
                    "connections_per_worker": {str(k): v for k, v in
                                               Counter(conns.values()).items()},
                    "web_pids": server.pids("web")},
        "cpu_s_during_class": cpu,
        "server_log_tracebacks": server.count_in_log("Traceback"),
        "load_average": os.getloadavg(),
        "samples": sampler.samples,
    }


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
            out.error = s.exception_error()
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
                    results: list[BurstResult], server: Server | None = None,
                    conns: dict[int, int] | None = None) -> None:
    """``n`` sessions connecting evenly within ``--burst-window``; closed together. With
    ``server``, ``conns`` gets its client port -> web worker map before they close."""
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
    if server is not None and conns is not None:
        conns.update(server.connections())
    all_done.set()
    sessions = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    await asyncio.gather(*(s.close() for s in sessions if isinstance(s, ProtocolSession)),
                         return_exceptions=True)


async def burst_mode(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """The burst run (after one warm-up session unless ``--cold``); its report."""
    sampler = Sampler(server, period=0.5)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    cold: list[BurstResult] = []
    conns: dict[int, int] = {}
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
        watch, watching = CpuWatch(server), asyncio.Event()
        watcher = asyncio.create_task(watch.run(watching, period=0.5))
        t_burst = time.monotonic()
        await run_burst(args.burst, server.port, args, results, server, conns)
        burst_s = time.monotonic() - t_burst
        cpu1, own1 = server.cpu_s(), time.process_time()
        watching.set()
        await watcher
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
        "rss_mb": {"idle": sampler.last("idle"), "burst_max": sampler.peak(["burst"]),
                   "after": sampler.last("after"),
                   "executors_after": sampler.last("after", "executor")},
        "threads": {"idle": sampler.last("idle", "threads"),
                    "burst_max": sampler.peak(["burst"], "threads"),
                    "after": sampler.last("after", "threads")},
        "server_log_tracebacks": server.count_in_log("Traceback"),
        "sessions_per_worker": {str(k): v for k, v in Counter(conns.values()).items()},
        "server_cpu_s": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2),
        "client_cpu_s": round(own1 - own0, 2),
        "cpu_s_during_burst": watch.used(), "burst_seconds": round(burst_s, 2),
        "load_average": os.getloadavg(),
    }

