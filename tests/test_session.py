"""app.live: the per-session Trainer over real executor processes, without a Streamlit
runtime: play / pause / step / reset, live lr, divergence and failures as messages, the
idle limit, the bounded history and the shared step-0 pictures."""

from __future__ import annotations

import itertools
import secrets
import threading

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
    InitialSnapshots,
    Trainer,
    get_pool,
    history,
    history_cap,
    thin,
)
from core.config import RunConfig
from core.presets import preset
from tests import fake_runs

TINY = RunConfig(depth=2, width=8, n_train=64, n_test=16, batch_size=16, steps=100_000,
                 every=1, hist_bins=8)


@pytest.fixture()
def make():
    """Trainer factory; every trainer is released at teardown and its run leaves the
    executors."""
    made: list[Trainer] = []

    def factory(cfg: RunConfig = TINY, **kw) -> Trainer:
        t = Trainer(cfg, **kw)
        made.append(t)
        return t

    yield factory
    for t in made:
        t.release()
    assert not any(t.has_job for t in made)


def _at_least(n):
    return lambda v: v.step >= n


_BARRIER_IDS = itertools.count(-1, -1)     # job ids the pool never hands out (it counts up)


def executors_caught_up(timeout: float = 30.0) -> None:
    """A round trip through every executor connection of this process (a trivial lesson
    call on each). An executor reads its connection in order and its runs emit only during
    their turns, so once each has answered, every message it sent before reading our
    earlier commands (a pause, a drop) has been delivered: "nothing more came" can then be
    checked at once instead of after a sleep."""
    pool = get_pool()
    answered = []
    for link in pool.links:
        done = threading.Event()
        jid = next(_BARRIER_IDS)
        link.handlers[jid] = lambda msg, done=done: done.set()
        link.send(("call", jid, secrets.token_bytes(8), "builtins:abs", (0,), {}))
        answered.append(done)
    for i, done in enumerate(answered):
        assert done.wait(timeout), f"executor {i} did not answer within {timeout:g} s"


def test_wait_until_fails_loudly_with_the_state_reached(make):
    t = make()
    assert t.wait_until(lambda v: v.status == IDLE, timeout=0.1).status == IDLE
    with pytest.raises(TimeoutError, match="status 'ready', step 0"):
        t.wait_until(lambda v: v.status == FINISHED, timeout=0.1)


def test_play_streams_snapshots(make):
    t = make()
    t.play()
    v = t.wait_until(lambda v: len(v.history) >= 5)
    assert v.status == RUNNING
    assert len(v.history) >= 5 and v.latest is not None
    steps = [s.step for s in v.history]
    assert steps == sorted(steps) and steps[0] == 0
    assert v.latest.layers[0].act_hist is not None        # the latest keeps its arrays
    assert v.history[-1].layers[0].act_hist is None       # the history is light
    v = t.wait_until(lambda v: v.steps_per_s > 0, timeout=30)
    assert v.sharing >= 1 and v.executors == get_pool().size


def test_pause_stops_steps(make):
    t = make()
    t.play()
    t.wait_until(_at_least(5))
    t.pause()
    v1 = t.view()
    assert v1.status == PAUSED
    executors_caught_up()                      # what was already on its way has landed
    v2 = t.view()
    executors_caught_up()                      # a run still playing would have had a turn
    v3 = t.view()
    assert v2.step == v3.step and len(v2.history) == len(v3.history)
    assert v3.status == PAUSED and not v3.active


def test_step_advances_exactly_one_snapshot(make):
    t = make(TINY.replace(every=10))
    t.reset()                                   # measures step 0
    v0 = t.wait_until(lambda v: not v.busy)
    assert [s.step for s in v0.history] == [0] and v0.status == IDLE
    for k in (1, 2, 3):
        t.step()
        v = t.wait_until(lambda v: not v.busy)
        assert v.step == k, "one Step = one optimiser step, whatever the snapshot cadence"
        assert len(v.history) == k + 1
        assert v.status == PAUSED


def test_reset_clears(make):
    t = make()
    t.play()
    t.wait_until(_at_least(10))
    t.reset(measure=False)
    v = t.view()
    assert v.step == 0 and v.history == () and v.latest is None and v.status == IDLE
    executors_caught_up()
    assert t.view().history == (), "a snapshot of the old run leaked in after the reset"
    t.reset()
    v = t.wait_until(lambda v: not v.busy)
    assert [s.step for s in v.history] == [0]


def test_lr_change_applies_live_without_reset(make):
    t = make()
    t.play()
    before = t.wait_until(_at_least(20)).step
    changed = t.set_config(TINY.replace(lr=0.01))
    assert changed == ["lr"]
    assert t.view().lr == 0.01

    def measured_with_new_lr(v) -> bool:
        # The core measures with the lr in force: update_ratio = lr * |dC/dW| / |W|.
        la = v.latest.layers[0]
        return la.update_ratio == pytest.approx(0.01 * la.weight_grad_norm / la.weight_norm,
                                                rel=1e-3)

    v = t.wait_until(lambda v: v.step >= before + 20 and measured_with_new_lr(v))
    assert v.status == RUNNING and v.history[0].step == 0
    # A structural change resets.
    assert t.set_config(TINY.replace(lr=0.01, depth=3)) == ["depth"]
    v = t.wait_until(lambda v: not v.busy)
    assert v.step == 0 and v.status == IDLE and len(v.latest.layers) == 4


def test_finishing_ends_the_run(make):
    t = make(TINY.replace(steps=30))
    t.play()
    v = t.wait_until(lambda v: v.status == FINISHED)
    assert v.step == 30 and v.status_text == "finished (30 steps)" and not t.has_job


def test_release_drops_the_run_at_once(make):
    cfg = RunConfig(depth=10, width=64, n_train=512, batch_size=64, steps=100_000, every=50)
    t = make(cfg)
    t.play()
    t.wait_until(lambda v: v.status == RUNNING and v.step > 0, timeout=60)
    t.release()
    assert not t.has_job and t.view().history == ()


def test_divergence_ends_with_a_message(make):
    t = make(preset("exploding-lr"))
    t.play()
    v = t.wait_until(lambda v: v.status not in (IDLE, RUNNING), timeout=60)
    assert v.status == DIVERGED
    assert v.diverged is not None and v.diverged.diverged
    assert "NaN/inf" in v.message
    assert v.status_text.startswith(f"diverged at step {v.diverged.step} in ")
    assert v.latest is not None and not v.latest.diverged     # charts keep the last good data
    assert all(not s.diverged for s in v.history)
    assert not v.active
    first = v
    t.play()                                                  # Play starts again from 0 ...
    v = t.wait_until(lambda v: v.epoch > first.epoch and v.status == DIVERGED
                     and v.diverged is not None, timeout=60)
    assert v.diverged.step == first.diverged.step             # ... and diverges the same way
    assert v.diverged.diverged_layer == first.diverged.diverged_layer


def test_a_failing_run_becomes_a_message(make):
    t = make(run_fn=fake_runs.broken_after_step0)
    t.play()
    v = t.wait_until(lambda v: v.status == ERROR)
    assert "CUDA out of memory (simulated)" in v.message
    assert [s.step for s in v.history] == [0]                  # what came before stays
    failed = v.epoch
    t.play()                                                   # and the session goes on:
    v = t.wait_until(lambda v: v.epoch > failed and v.status == ERROR and v.history)
    assert "CUDA out of memory (simulated)" in v.message      # a fresh run, failing again


def test_idle_limit_pauses_the_run(make):
    t = make(idle_limit_s=0.3)
    t.play()
    v = t.wait_until(lambda v: v.status == PAUSED, timeout=30)
    assert "without activity" in v.message
    executors_caught_up()                      # the steps already on their way have landed
    step = t.view().step
    executors_caught_up()
    assert t.view().step == step, "the executor kept training a paused run"


def test_ring_buffer_is_bounded(make, monkeypatch):
    monkeypatch.setattr(history, "HISTORY_MAX", 40)
    monkeypatch.setattr(history, "HISTORY_MIN", 8)
    t = make(TINY.replace(steps=400))
    t.play()
    v = t.wait_until(lambda v: v.status == FINISHED, timeout=30)
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


def test_release_all_drops_every_run():
    ts = [Trainer(TINY) for _ in range(3)]
    for t in ts:
        t.play()
    ts[0].wait_until(lambda v: v.status == RUNNING and v.step > 0)
    live.release_all()
    assert not any(t.has_job for t in ts) and not live.live_trainers()


# ---- opening the page: the shared step-0 picture ----------------------------------------------


def test_reset_measures_step0_once_per_config_and_starts_no_run(make):
    """A class opening one link: every session shows the same step-0 snapshot, measured once;
    no session starts a run to see it."""
    INITIAL.clear()
    cfg = TINY.replace(seed=12345)
    before = INITIAL.stats()["measured"]
    ts = [make(cfg) for _ in range(20)]
    for t in ts:
        t.reset()
    views = [t.wait_until(lambda v: not v.busy, timeout=30) for t in ts]
    assert INITIAL.stats()["measured"] - before == 1
    assert all(v.latest is views[0].latest for v in views), "the step-0 snapshot is shared"
    assert all([s.step for s in v.history] == [0] and v.status == IDLE for v in views)
    assert not any(t.has_job for t in ts), "opening the page started a run"
    # the figures built for the shared snapshot are shared too, until a session trains
    assert ts[0].ui_cache is ts[1].ui_cache
    ts[0].step()
    ts[0].wait_until(lambda v: v.step == 1 and not v.busy)
    assert ts[0].ui_cache is not ts[1].ui_cache and ts[1].ui_cache is ts[2].ui_cache
    # a later session with the same config gets it at once (cached): nothing pending
    late = make(cfg)
    late.reset()
    v = late.view()
    assert not v.busy and v.latest is views[0].latest


def test_a_new_config_right_after_another_run_finished_gets_its_picture(make):
    """Issue 19's "stuck at ready": a config not seen before, opened right after another
    session finished a run, must show its step-0 picture (and say "measuring" until then)."""
    a = make(TINY.replace(steps=40, seed=31))
    a.play()
    a.wait_until(lambda v: v.status == FINISHED)
    for seed in range(3):
        b = make(TINY.replace(seed=5000 + seed, depth=3))
        b.reset()
        v = b.view()
        assert v.busy or v.latest is not None
        if v.busy:
            assert v.status_text == "measuring the initial network" and v.active
        v = b.wait_until(lambda v: not v.busy, timeout=10)
        assert v.latest is not None and v.latest.step == 0 and v.status_text == "ready"


def test_play_after_the_shared_step0_does_not_repeat_it(make):
    t = make(TINY.replace(seed=777, every=5))
    t.reset()
    t.wait_until(lambda v: not v.busy)
    t.play()
    v = t.wait_until(lambda v: len(v.history) >= 4)
    steps = [s.step for s in v.history]
    assert steps[:4] == [0, 5, 10, 15], steps


def test_step_pressed_while_step0_is_measured_still_makes_one_step(make):
    t = make(TINY.replace(seed=4242, every=10), run_fn=fake_runs.slow_start)
    t.reset()                                   # measuring (1.5 s)
    assert t.view().busy and t.view().status_text == "measuring the initial network"
    t.step()
    v = t.wait_until(lambda v: v.step >= 1 and not v.busy, timeout=30)
    assert v.step == 1 and [s.step for s in v.history] == [0, 1] and v.status == PAUSED


def test_a_failing_step0_measurement_is_a_message(make):
    t = make(TINY.replace(seed=99), run_fn=fake_runs.broken_at_start)
    t.reset()
    v = t.wait_until(lambda v: not v.busy)
    assert v.status == ERROR and "no data (simulated)" in v.message


def test_initial_cache_is_bounded():
    import threading

    cache = InitialSnapshots(max_entries=3)
    done = threading.Event()
    got = []
    for seed in range(5):
        cache.request(TINY.replace(seed=seed), None,
                      lambda r: (got.append(r), len(got) == 5 and done.set()), get_pool)
    assert done.wait(30)
    assert not any(isinstance(r, BaseException) for r in got)
    assert cache.stats()["cached"] == 3 and cache.stats()["measured"] == 5
    # the executors answer in any order: the last three answers stay
    last = [r[0].step == 0 and r for r in got[-3:]]
    kept = [s for s in range(5) if cache.get(TINY.replace(seed=s)) is not None]
    assert len(kept) == 3 and all(last)


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
