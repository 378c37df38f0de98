"""The load test's pure parts (tools/): percentiles, Jain's index, the class's plan, the
browser-like fragment timers, the step counting from page readings, the argument bounds."""

from __future__ import annotations

import math
import random

import pytest

from tests.async_helpers import run_coroutine
from tools.clients import StepCounter, run_over, step_of
from tools.load_runs import class_plans, jain, pct, summary
from tools.protocol import FragmentTimers

# ---- statistics ---------------------------------------------------------------------------------


def test_pct_interpolates_and_handles_edges() -> None:
    assert pct([], 0.5) is None
    assert pct([3.0], 0.95) == 3.0
    assert pct([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert pct(list(map(float, range(1, 101))), 0.95) == pytest.approx(95.05)
    assert pct([4.0, 1.0, 3.0, 2.0], 1.0) == 4.0          # unsorted input


def test_pct_counts_never_as_later_than_anything() -> None:
    assert pct([1.0, 2.0, math.inf], 0.5) == 2.0
    assert pct([1.0, 2.0, math.inf], 1.0) == math.inf
    assert pct([1.0] * 19 + [math.inf], 0.95) == math.inf  # 1 in 20 never: p95 is never


def test_summary_reports_missing_figures_as_never() -> None:
    s = summary([0.5, None, 1.5])
    assert (s["n"], s["of"], s["p50"], s["max"]) == (2, 3, 1.5, math.inf)
    assert summary([])["p50"] is None


def test_jain_index() -> None:
    assert jain([5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert jain([10.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)       # one has everything: 1/n
    assert jain([1.0, 2.0]) == pytest.approx(9 / 10)
    assert jain([]) is None and jain([0.0, 0.0]) is None


# ---- the class's plan ---------------------------------------------------------------------------


def test_class_plans_follow_the_windows() -> None:
    plans = class_plans(30, 1, t0=100.0, open_s=10, ramp_s=10, hold_s=60,
                        rng=random.Random(1), settle_s=5)
    assert len(plans) == 31
    play0, close = 115.0, 185.0
    for p in plans[:30]:
        assert 100 <= p.open_at <= 110 and play0 <= p.play_at <= play0 + 10
        assert p.close_at == close
    tab = plans[30]
    assert play0 <= tab.open_at <= play0 + 10 and tab.play_at == tab.open_at
    # random moments, reproducible from the seed
    assert len({round(p.play_at, 6) for p in plans[:30]}) == 30
    again = class_plans(30, 1, 100.0, 10, 10, 60, random.Random(1), settle_s=5)
    assert again == plans


# ---- the browser's fragment timers --------------------------------------------------------------


def test_timer_fires_every_interval_and_once_when_late() -> None:
    t = FragmentTimers()
    t.auto_rerun("f", 0.75, now=0.0)
    assert t.next_due() == 0.75
    assert t.due(0.5) == []
    assert t.due(0.75) == ["f"]
    assert t.next_due() == 1.5
    # a late look fires once (no burst of missed ticks) and re-arms from now
    assert t.due(5.0) == ["f"]
    assert t.due(5.0) == []
    assert t.next_due() == pytest.approx(5.75)


def test_same_interval_keeps_the_countdown_a_new_one_restarts_it() -> None:
    t = FragmentTimers()
    t.auto_rerun("f", 1.0, now=0.0)
    t.auto_rerun("f", 1.0, now=0.9)          # a rerun re-registers: countdown kept
    assert t.next_due() == 1.0
    t.auto_rerun("f", 2.0, now=0.9)          # a changed interval replaces the timer
    assert t.next_due() == pytest.approx(2.9)


def test_full_run_and_stop_clear_timers_fragment_ids_are_required() -> None:
    t = FragmentTimers()
    t.auto_rerun("a", 1.0, 0.0)
    t.auto_rerun("b", 1.0, 0.0)
    t.stop(["a"])
    assert "a" not in t and "b" in t
    t.full_run_started()
    assert len(t) == 0 and t.next_due() is None and t.due(10.0) == []
    t.auto_rerun("", 1.0, 0.0)               # the 1.67 front end ignores an empty id
    t.auto_rerun("c", 0.0, 0.0)
    assert len(t) == 0


def test_the_timer_fires_while_a_script_runs() -> None:
    """The protocol session sends due reruns whatever its ``running`` flag says."""
    import asyncio

    from streamlit.proto.BackMsg_pb2 import BackMsg  # imported before the clock starts

    from tools.protocol import ProtocolSession

    sent: list[bytes] = []

    class FakeWs:
        async def send(self, data: bytes) -> None:
            sent.append(data)

        async def recv(self) -> bytes:
            await asyncio.sleep(10)
            return b""

    async def go() -> None:
        s = ProtocolSession(1)
        s.ws = FakeWs()
        s.running = True
        import time as _t

        s.timers.auto_rerun("frag", 0.05, _t.monotonic())
        await s.pump(_t.monotonic() + 0.18)
        assert s.fragment_reruns_sent >= 2

    run_coroutine(go())
    msg = BackMsg.FromString(sent[0])
    assert msg.rerun_script.fragment_id == "frag" and msg.rerun_script.is_auto_rerun


def test_new_session_of_a_full_run_clears_timers_a_fragment_run_does_not() -> None:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from tools.protocol import ProtocolSession

    s = ProtocolSession(1)
    fm = ForwardMsg()
    fm.auto_rerun.fragment_id, fm.auto_rerun.interval = "frag", 0.75
    s.handle(fm.SerializeToString(), now=0.0)
    assert "frag" in s.timers
    frag_run = ForwardMsg()
    frag_run.new_session.page_script_hash = "h"
    frag_run.metadata.run.fragment_ids.append("frag")
    s.handle(frag_run.SerializeToString(), now=0.1)
    assert "frag" in s.timers and s.page_hash == "h"
    full_run = ForwardMsg()
    full_run.new_session.page_script_hash = "h"
    s.handle(full_run.SerializeToString(), now=0.2)
    assert len(s.timers) == 0


# ---- reading the page ---------------------------------------------------------------------------


def test_step_metric_and_run_over() -> None:
    assert step_of("1,234 / 2,000") == 1234 and step_of("0 / 2,000") == 0
    assert step_of("") is None and step_of("—") is None
    assert run_over("finished (2,000 steps)") and run_over("diverged at step 3 in layer 2")
    assert run_over("stopped by an error") and not run_over("running")


def test_step_counter_first_step_and_steps_over_runs() -> None:
    c = StepCounter()
    c.observe(0, "ready", 0.0)                       # before Play: nothing counts
    assert c.total == 0 and c.first_play is None
    c.pressed(10.0)
    c.observe(0, "ready", 10.2)
    assert c.t_play == 10.0
    c.observe(15, "running", 10.6)
    assert c.first_step_s == [pytest.approx(0.6)] and c.t_play is None
    c.observe(2000, "finished (2,000 steps)", 40.0)
    assert c.total == 2000
    c.pressed(41.0)                                  # Play again after the run finished
    c.observe(2000, "finished (2,000 steps)", 41.1)  # the old run still on screen
    assert c.total == 2000 and c.t_play == 41.0
    c.observe(30, "running", 41.5)
    assert c.total == 2030 and c.plays == 2
    assert c.first_step_s[1] == pytest.approx(0.5)
    c.observe(25, "running", 41.6)                   # a stale reading never counts back
    assert c.total == 2030


# ---- the command line ---------------------------------------------------------------------------


def test_defaults_are_the_class_of_issue_19() -> None:
    from tools.load import class_targets, parse_args

    a = parse_args([])
    assert (a.sessions, a.tabs, a.client, a.open, a.ramp, a.hold, a.after, a.procs) == (
        30, 1, "ws", 10.0, 10.0, 60.0, 30.0, 2)
    assert a.executors is None and a.burst == 0 and a.soak == 0.0 and a.seed is not None
    assert not hasattr(a, "workers")
    for bad in (["--procs", "17"], ["--sessions", "501"], ["--executors", "0"],
                ["--tabs", "-1"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
    r = {"sessions": 60, "tabs": 1, "error_count": 0, "progressed": 61,
         "play_to_first_step_s": {"p95": 2.5}}
    assert [ok for _, ok in class_targets(r)] == [True, True, True]
    r = {**r, "sessions": 30, "progressed": 31, "steps": {"jain": 0.95},
         "rss_mb": {"after_over_start": 1.2}}
    assert [ok for _, ok in class_targets(r)] == [True, True, False, True, False]
