"""Load test of the hosted app against a LOCAL server (``make load``). Not a pytest test.

    python -m tools.load --sessions 30 --minutes 5          # real Chromium pages (the default)
    python -m tools.load --sessions 30 --minutes 5 --client ws
    python -m tools.load --burst 200 --procs 2              # 200 sessions within 1 s
    python -m tools.load --soak 1800                        # one session, 30 minutes

It starts its own server (``streamlit run app/main.py``, or with ``--procs N``
``gradlab-serve --workers N`` as the Docker image runs it; GRADLAB_PROFILE=hosted, bound to
127.0.0.1), only ever talks to 127.0.0.1, bounds every wait, and stops the server at the end.

Load mode (tools/load_runs.py): p50/p95 time from Play to the first training step on screen,
queue waits, errors, and the server's RSS and threads (summed over its processes) before,
after the first session, during, and after every tab closed. Clients: ``browser`` =
Playwright + Debian Chromium (/usr/bin/chromium), one context per session; ``ws`` = the
websocket protocol client (tools/protocol.py), the same server work without N browsers.
Burst mode: how many of N sessions rendered, p50/p95 first delta and first render, RSS,
server CPU. Soak mode (tools/soak.py): RSS over time, its growth and trend, steps, errors.
Each report is printed with its targets and a verdict (``--json`` writes it too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tools.clients import set_verbose
from tools.load_runs import burst_mode, load_mode
from tools.server import REPO_ROOT, Server
from tools.soak import SOAK_ENV, soak_mode

# ---- the report ----------------------------------------------------------------------------


def fmt(x: float | None, unit: str = "s", nd: int = 2) -> str:
    """A figure with its unit, or a dash when there is none."""
    return "—" if x is None else f"{x:.{nd}f} {unit}".strip()


def print_soak(r: dict[str, Any]) -> None:
    """Print a soak report with its verdict."""
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
    """Print a load, burst or soak report with its targets and verdict."""
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
    """The command line; bounded on purpose (sessions, burst size, durations)."""
    ap = argparse.ArgumentParser(prog="python -m tools.load",
                                 description=__doc__.split("\n\n")[0],
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
    """Start the server, run the mode, stop the server, print (and write) the report."""
    args = parse_args(argv)
    set_verbose(args.verbose)
    if not (REPO_ROOT / args.script).is_file():
        print(f"{args.script} does not exist", file=sys.stderr)
        return 2
    extra = dict(kv.split("=", 1) for kv in args.env if "=" in kv)
    if args.soak:
        extra = {**SOAK_ENV, **extra}
    server = Server(args.port, args.script, args.workers, extra, procs=args.procs,
                    log_prefix="gradlab-load-")
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
