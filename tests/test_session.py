"""app.live: the per-session Trainer and the process-wide slot queue, without a Streamlit
runtime."""

from __future__ import annotations

import threading
import time

import pytest

from app import live
from app.live import (
    DIVERGED,
    ERROR,
    FINISHED,
    IDLE,
    INITIAL,
    PAUSED,
    RUNNING,
    WAITING,
    InitialSnapshots,
    SlotQueue,
    Trainer,
    history,
    history_cap,
    ordinal,
    thin,
)
from core.config import RunConfig
from core.presets import preset
from core.train import run

TINY = RunConfig(depth=2, width=8, n_train=64, n_test=16, batch_size=16, steps=100_000,
                 every=1, hist_bins=8)


@pytest.fixture()
def make():
    """Trainer factory on a private slot queue; every trainer is released at teardown."""
    made: list[Trainer] = []

    def factory(cfg: RunConfig = TINY, *, slots: SlotQueue | None = None, **kw) -> Trainer:
        t = Trainer(cfg, slots=slots or SlotQueue(cap=4), **kw)
        made.append(t)
        return t

    yield factory
    for t in made:
        t.release()
    for t in made:
        assert t.join(5.0), "a worker thread outlived its release"


def _at_least(n):
    return lambda v: v.step >= n


def test_play_streams_snapshots(make):
    t = make()
    t.play()
    v = t.wait_for(lambda v: len(v.history) >= 5)
    assert v.status == RUNNING
    assert len(v.history) >= 5 and v.latest is not None
    steps = [s.step for s in v.history]
    assert steps == sorted(steps) and steps[0] == 0
    assert v.latest.layers[0].act_hist is not None        # the latest keeps its arrays
    assert v.history[-1].layers[0].act_hist is None       # the history is light
    v = t.wait_for(lambda v: v.steps_per_s > 0, timeout=30)
    assert v.steps_per_s > 0


def test_pause_stops_steps(make):
    t = make()
    t.play()
    t.wait_for(_at_least(5))
    t.pause()
    v1 = t.wait_for(lambda v: v.status in (PAUSED, IDLE))
    assert v1.status == PAUSED
    time.sleep(0.2)
    v2 = t.view()
    time.sleep(0.3)
    v3 = t.view()
    assert v2.step == v3.step and len(v2.history) == len(v3.history)
    assert not v3.active


def test_step_advances_exactly_one_snapshot(make):
    t = make(TINY.replace(every=10))
    t.reset()                                   # measures step 0
    v0 = t.wait_for(lambda v: not v.busy)
    assert [s.step for s in v0.history] == [0] and v0.status == IDLE
    for k in (1, 2, 3):
        t.step()
        v = t.wait_for(lambda v: not v.busy)
        assert v.step == k, "one Step = one optimiser step, whatever the snapshot cadence"
        assert len(v.history) == k + 1
        assert v.status == PAUSED


def test_reset_clears(make):
    t = make()
    t.play()
    t.wait_for(_at_least(10))
    t.reset(measure=False)
    v = t.view()
    assert v.step == 0 and v.history == () and v.latest is None and v.status == IDLE
    time.sleep(0.3)
    assert t.view().history == (), "a snapshot of the old run leaked in after the reset"
    t.reset()
    v = t.wait_for(lambda v: not v.busy)
    assert [s.step for s in v.history] == [0]


def test_lr_change_applies_live_without_reset(make):
    controls = []

    def spy(cfg, control):
        controls.append(control)
        yield from run(cfg, control)

    t = make(run_fn=spy)
    t.play()
    before = t.wait_for(_at_least(20)).step
    changed = t.set_config(TINY.replace(lr=0.01))
    assert changed == ["lr"]
    v = t.wait_for(_at_least(before + 20))
    assert v.status == RUNNING and v.step > before and v.history[0].step == 0
    assert len(controls) == 1, "the lr change restarted the run"
    assert controls[0].lr == 0.01 and v.lr == 0.01
    # The core measures with the lr in force: update_ratio = lr * |dC/dW| / |W|.
    la = v.latest.layers[0]
    assert la.update_ratio == pytest.approx(0.01 * la.weight_grad_norm / la.weight_norm,
                                            rel=1e-3)
    # A structural change resets.
    assert t.set_config(TINY.replace(lr=0.01, depth=3)) == ["depth"]
    v = t.wait_for(lambda v: not v.busy)
    assert v.step == 0 and v.status == IDLE and len(v.latest.layers) == 4


def test_slot_cap_queues_fifo_and_hands_over(make):
    slots = SlotQueue(cap=1)
    a, b, c = (make(slots=slots) for _ in range(3))
    a.play()
    a.wait_for(lambda v: v.status == RUNNING)
    b.play()
    c.play()
    vb = b.wait_for(lambda v: v.queue_position == 1)
    vc = c.wait_for(lambda v: v.queue_position == 2)
    assert vb.status == WAITING and vb.status_text == "waiting for a slot: 1st in line"
    assert vc.status_text == "waiting for a slot: 2nd in line"
    assert b.view().step == 0
    a.pause()                                         # pausing frees the slot ...
    vb = b.wait_for(lambda v: v.status == RUNNING and v.step > 3)
    assert vb.queue_position is None
    assert c.view().queue_position == 1               # ... and c moves up the line
    b.release()                                       # closing frees it too
    c.wait_for(lambda v: v.status == RUNNING)
    assert slots.stats() == {"cap": 1, "active": 1, "waiting": 0}


def test_finishing_releases_the_slot(make):
    slots = SlotQueue(cap=1)
    a = make(TINY.replace(steps=30), slots=slots)
    b = make(slots=slots)
    a.play()
    b.play()
    va = a.wait_for(lambda v: v.status == FINISHED)
    assert va.step == 30 and va.status_text == "finished (30 steps)"
    b.wait_for(lambda v: v.status == RUNNING)
    assert b.view().status == RUNNING


def test_long_holder_hands_its_slot_on(make):
    slots = SlotQueue(cap=1)
    a = make(slots=slots, slice_s=0.3)
    b = make(slots=slots, slice_s=0.3)
    a.play()
    a.wait_for(lambda v: v.status == RUNNING)
    b.play()
    vb = b.wait_for(lambda v: v.step > 0 and v.status == RUNNING, timeout=30)
    assert vb.step > 0, "b never got a turn"
    assert a.view().status in (WAITING, RUNNING)


def test_release_stops_the_worker_quickly(make):
    cfg = RunConfig(depth=10, width=64, n_train=512, batch_size=64, steps=100_000, every=50)
    t = make(cfg)
    t.play()
    t.wait_for(lambda v: v.status == RUNNING and v.step > 0, timeout=60)
    t0 = time.monotonic()
    t.release()
    assert t.join(2.0), "the worker did not stop within 2 s of release()"
    assert time.monotonic() - t0 < 2.0
    assert not t.thread_alive
    # A trainer waiting in the line leaves it on release.
    slots = SlotQueue(cap=1)
    a, b = make(slots=slots), make(slots=slots)
    a.play()
    a.wait_for(lambda v: v.status == RUNNING)
    b.play()
    b.wait_for(lambda v: v.queue_position == 1)
    b.release()
    assert b.join(2.0)
    assert slots.stats()["waiting"] == 0


def test_divergence_ends_with_a_message(make):
    t = make(preset("exploding-lr"))
    t.play()
    v = t.wait_for(lambda v: v.status not in (IDLE, WAITING, RUNNING), timeout=60)
    assert v.status == DIVERGED
    assert v.diverged is not None and v.diverged.diverged
    assert "NaN/inf" in v.message
    assert v.status_text.startswith(f"diverged at step {v.diverged.step} in ")
    assert v.latest is not None and not v.latest.diverged     # charts keep the last good data
    assert all(not s.diverged for s in v.history)
    assert not v.active and t.thread_alive                    # the worker idles, alive
    t.play()                                                  # Play starts again from 0
    v = t.wait_for(lambda v: v.status == DIVERGED and v.diverged is not None, timeout=60)
    assert v.status == DIVERGED


def test_worker_exception_becomes_a_message(make):
    def broken(cfg, control):
        yield next(run(cfg, control))
        raise RuntimeError("CUDA out of memory (simulated)")

    t = make(run_fn=broken)
    t.play()
    v = t.wait_for(lambda v: v.status == ERROR)
    assert v.status == ERROR and "CUDA out of memory (simulated)" in v.message
    assert [s.step for s in v.history] == [0]                  # what came before stays
    assert t.thread_alive, "the worker thread must survive a failed run"


def test_idle_limit_pauses_and_releases(make):
    slots = SlotQueue(cap=1)
    t = make(slots=slots, idle_limit_s=0.3)
    t.play()
    v = t.wait_for(lambda v: v.status == PAUSED, timeout=30)
    assert v.status == PAUSED and "without activity" in v.message
    assert slots.stats()["active"] == 0


def test_ring_buffer_is_bounded(make, monkeypatch):
    monkeypatch.setattr(history, "HISTORY_MAX", 40)
    monkeypatch.setattr(history, "HISTORY_MIN", 8)
    t = make(TINY.replace(steps=400))
    t.play()
    v = t.wait_for(lambda v: v.status == FINISHED, timeout=30)
    assert v.status == FINISHED
    assert 10 <= len(v.history) <= 40
    steps = [s.step for s in v.history]
    assert steps[0] == 0 and steps[-1] == 400 and steps == sorted(steps)
    # Old points are thinned, recent ones kept whole: the gaps grow towards the start.
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    assert gaps[0] > gaps[-1] == 1


def test_history_helpers():
    assert history_cap(7) == history.HISTORY_MAX
    assert history_cap(1001) == max(history.HISTORY_MIN, history.HISTORY_BUDGET // 1001)
    assert history_cap(10**7) == history.HISTORY_MIN
    items = list(range(100))
    out = thin(items, 100)
    assert out[0] == 0 and out[-25:] == items[-25:] and len(out) < 100
    assert thin(items[:50], 100) == items[:50]
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]


def test_slot_queue_cancel_and_concurrency():
    q = SlotQueue(cap=2)
    owners = [object() for _ in range(6)]
    held, peak, lock = [], [0], threading.Lock()

    def work(o):
        assert q.acquire(o, cancelled=lambda: False)
        with lock:
            held.append(o)
            peak[0] = max(peak[0], q.stats()["active"])
        time.sleep(0.05)
        q.release(o)

    threads = [threading.Thread(target=work, args=(o,)) for o in owners]
    for th in threads:
        th.start()
    for th in threads:
        th.join(5)
    assert len(held) == 6 and peak[0] <= 2
    assert q.stats() == {"cap": 2, "active": 0, "waiting": 0}
    # A cancelled wait leaves the line.
    a, b, c = object(), object(), object()
    assert q.acquire(a, cancelled=lambda: False) and q.acquire(b, cancelled=lambda: False)
    assert q.acquire(c, cancelled=lambda: True) is False
    assert q.position(c) is None and q.stats()["waiting"] == 0


def test_release_all_stops_every_thread():
    ts = [Trainer(TINY, slots=SlotQueue(cap=2)) for _ in range(3)]
    for t in ts:
        t.play()
    ts[0].wait_for(lambda v: v.status == RUNNING)
    assert live.release_all(timeout=5.0)
    assert not any(t.thread_alive for t in ts)


# ---- opening the page: the shared step-0 picture, no thread per session ---------------------


def test_reset_measures_step0_once_per_config_without_a_thread_or_slot(make):
    """A class opening one link: every session shows the same step-0 snapshot, measured once
    on the one shared thread; no session starts a worker or takes a slot to see it."""
    INITIAL.clear()
    slots = SlotQueue(cap=1)
    cfg = TINY.replace(seed=12345)
    before = INITIAL.stats()["measured"]
    ts = [make(cfg, slots=slots) for _ in range(20)]
    for t in ts:
        t.reset()
    views = [t.wait_for(lambda v: not v.busy, timeout=30) for t in ts]
    assert INITIAL.stats()["measured"] - before == 1
    assert all(v.latest is views[0].latest for v in views), "the step-0 snapshot is shared"
    assert all([s.step for s in v.history] == [0] and v.status == IDLE for v in views)
    assert not any(t.thread_alive for t in ts), "opening the page started a worker thread"
    assert slots.stats() == {"cap": 1, "active": 0, "waiting": 0}
    # the figures built for the shared snapshot are shared too, until a session trains
    assert ts[0].ui_cache is ts[1].ui_cache
    ts[0].step()
    ts[0].wait_for(lambda v: v.step == 1 and not v.busy)
    assert ts[0].ui_cache is not ts[1].ui_cache and ts[1].ui_cache is ts[2].ui_cache
    # a later session with the same config gets it at once (cached): nothing pending
    late = make(cfg, slots=slots)
    late.reset()
    v = late.view()
    assert not v.busy and v.latest is views[0].latest


def test_play_after_the_shared_step0_does_not_repeat_it(make):
    t = make(TINY.replace(seed=777, every=5))
    t.reset()
    t.wait_for(lambda v: not v.busy)
    t.play()
    v = t.wait_for(lambda v: len(v.history) >= 4)
    steps = [s.step for s in v.history]
    assert steps[:4] == [0, 5, 10, 15], steps


def test_step_pressed_while_step0_is_measured_still_makes_one_step(make):
    gate = threading.Event()

    def slow(cfg, control):
        gate.wait(5)
        yield from run(cfg, control)

    t = make(TINY.replace(seed=4242, every=10), run_fn=slow)
    t.reset()                                   # measuring (held at the gate)
    assert t.view().busy and t.view().status_text == "measuring the initial network"
    t.step()
    gate.set()
    v = t.wait_for(lambda v: v.step >= 1 and not v.busy, timeout=30)
    assert v.step == 1 and [s.step for s in v.history] == [0, 1] and v.status == PAUSED


def test_a_failing_step0_measurement_is_a_message(make):
    def broken(cfg, control):
        raise RuntimeError("no data (simulated)")
        yield  # pragma: no cover

    t = make(TINY.replace(seed=99), run_fn=broken)
    t.reset()
    v = t.wait_for(lambda v: not v.busy)
    assert v.status == ERROR and "no data (simulated)" in v.message


def test_initial_cache_is_bounded():
    cache = InitialSnapshots(max_entries=3, idle_s=0.2)
    done = threading.Event()
    got = []
    for seed in range(5):
        cache.request(TINY.replace(seed=seed), None, lambda r: (got.append(r),
                                                                 len(got) == 5 and done.set()))
    assert done.wait(30)
    assert cache.stats()["cached"] == 3 and cache.stats()["measured"] == 5
    assert cache.get(TINY.replace(seed=4)) is not None and cache.get(TINY.replace(seed=0)) is None
    time.sleep(0.5)
    assert not any(th.name == "gradlab-step0" and th.is_alive() for th in threading.enumerate()
                   if th is not INITIAL._thread), "the measuring thread idles out"


def test_shared_step0_figures_are_frozen_and_serialised_once():
    import plotly.graph_objects as go

    from app import stream_chart

    shared = stream_chart.FrozenFigures()
    fig = go.Figure(go.Bar(y=[1.0, 2.0]))
    shared["pg_chart_grad"] = ((1, 2), fig)
    a = stream_chart.payload(fig, key="pg_chart_grad", height=360)
    b = stream_chart.payload(fig, key="pg_chart_grad", height=360)
    assert a is b, "a frozen (shared) figure is serialised once"
    assert stream_chart.payload(fig, key="pg_chart_grad", height=400) is not a
    own = go.Figure(go.Bar(y=[1.0, 2.0]))              # a session's own figure: not frozen
    p1 = stream_chart.payload(own, key="k")
    own.update_layout(title="changed")
    assert stream_chart.payload(own, key="k") != p1, "an unfrozen figure is never memoised"
    fid = id(fig)
    del shared, fig
    import gc

    gc.collect()
    assert fid not in stream_chart._FROZEN, "the memo outlived its figure"


def test_a_fresh_play_gets_a_first_turn_before_runs_that_already_had_one(make):
    """FIFO in two classes: sessions that just pressed Play stand before sessions that queue
    again after their slice, and a first turn is short when others wait."""
    slots = SlotQueue(cap=1)
    a = make(slots=slots, slice_s=1.0, first_turn_s=0.3)
    b = make(slots=slots, slice_s=1.0, first_turn_s=0.3)
    a.play()
    a.wait_for(lambda v: v.status == RUNNING and v.step > 0)
    b.play()
    b.wait_for(lambda v: v.status == RUNNING and v.step > 0, timeout=30)
    # a had its turn and queued again; a newcomer goes before it
    a.wait_for(lambda v: v.queue_position == 1, timeout=30)
    c = make(slots=slots, slice_s=1.0, first_turn_s=0.3)
    c.play()
    assert c.view().queue_position == 1 and a.view().queue_position == 2
    assert c.view().status_text == "waiting for a slot: 1st in line"
    vc = c.wait_for(lambda v: v.step > 0, timeout=30)
    assert vc.step > 0
    # pausing and pressing Play again right after a turn is no fresh start
    a.wait_for(lambda v: v.status == RUNNING, timeout=30)
    a.pause()
    a.wait_for(lambda v: v.status == PAUSED)
    a.play()
    assert id(a) not in slots._fresh, "Pause + Play jumped the line"
    # ... but a new run is a fresh start: Reset (or a finished run) and Play
    for t in (a, b, c):
        t.pause()
    deadline = time.monotonic() + 30
    while slots._active and time.monotonic() < deadline:
        time.sleep(0.05)
    blocker = object()                       # hold the slot so that a has to queue
    assert slots.acquire(blocker, cancelled=lambda: False)
    a.reset(measure=False)
    a.play()
    assert id(a) in slots._fresh, "a restarted run waits behind every run's second turn"
    slots.release(blocker)
    assert a.wait_for(lambda v: v.step > 0, timeout=30).step > 0


def test_slot_queue_puts_first_turns_first():
    q = SlotQueue(cap=1)
    holder, old1, old2, new1, new2 = (object() for _ in range(5))
    assert q.acquire(holder, cancelled=lambda: False)
    q.enqueue(old1)
    q.enqueue(new1, fresh=True)
    q.enqueue(old2)
    q.enqueue(new2, fresh=True)
    assert [q.position(o) for o in (new1, new2, old1, old2)] == [1, 2, 3, 4]
    q.release(holder)
    assert q.acquire(new1, cancelled=lambda: False)
    assert [q.position(o) for o in (new2, old1, old2)] == [1, 2, 3]
