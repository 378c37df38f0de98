"""The executors' time-sharing (app.live.scheduler), driven in-process: fairness, failures
that stay contained, pause / step / drop between turns, and shared lesson computations."""

from __future__ import annotations

import time

import pytest

from app.live.scheduler import CallJob, RunJob, Scheduler
from core import progress
from core.config import RunConfig

TINY = RunConfig(depth=3, width=16, dataset="spiral", n_train=256, n_test=64, batch_size=32,
                 steps=100_000, every=10, seed=0, device="cpu", spectrum_every=0)


@pytest.fixture(scope="module", autouse=True)
def _warm_torch() -> None:
    """As an executor does before it serves: torch's first run pays its lazy set-up."""
    from app.live.process import configure_torch
    from core.train import run

    configure_torch()
    for _ in run(TINY.replace(steps=2)):
        pass


def counted(n: int, fail: bool = False) -> int:
    """A lesson-style computation: n progress points, then a result (or an error)."""
    for i in range(n):
        progress.stage(i, n)
        progress.step(1, 1)
        time.sleep(0.002)
    if fail:
        raise ValueError("the computation failed")
    return n * 2


class Inbox:
    def __init__(self) -> None:
        self.msgs: list[tuple[object, tuple]] = []

    def __call__(self, client: object, msg: tuple) -> None:
        self.msgs.append((client, msg))

    def of(self, client: object, kind: str, jid: int | None = None) -> list[tuple]:
        return [m for c, m in self.msgs if c == client and m[0] == kind
                and (jid is None or m[1] == jid)]


def _turns(s: Scheduler, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and s.run_turn():
        pass


def _last_step(inbox: Inbox, client: object, jid: int) -> int:
    snaps = inbox.of(client, "snap", jid)
    return snaps[-1][2].step if snaps else -1


def test_equal_runs_share_the_executor_fairly() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    clients = ["a", "b", "c", "d"]
    for i, c in enumerate(clients):
        s.handle(c, ("run", i, {"cfg": TINY, "play": True}))
    _turns(s, 2.0)
    served = [s.jobs[(c, i)].served for i, c in enumerate(clients)]
    reached = [_last_step(inbox, c, i) for i, c in enumerate(clients)]
    assert min(reached) > 20, reached
    jain = sum(reached) ** 2 / (len(reached) * sum(r * r for r in reached))
    assert jain >= 0.95, (reached, jain)
    assert max(served) / min(served) < 1.3, served


def test_a_late_run_starts_at_once_and_does_not_starve_others() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    s.handle("a", ("run", 1, {"cfg": TINY, "play": True}))
    _turns(s, 0.5)
    s.handle("b", ("run", 1, {"cfg": TINY, "play": True}))
    assert s.run_turn()
    assert inbox.of("b", "snap", 1), "the new run got the very next turn"
    before = _last_step(inbox, "a", 1)
    _turns(s, 0.5)
    assert _last_step(inbox, "a", 1) > before, "the older run kept moving"


def test_a_burst_of_runs_all_move_within_the_first_round() -> None:
    """A class pressing Play at once: each of 30 runs added together gets its first turn in
    the first 30 turns, in the order they came. (Placing each joiner one turn *ahead* of
    the least-served stacked their credit: the first of 30 waited ~13 s of executor time.)"""
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    n = 30
    for i in range(n):
        s.handle(f"c{i}", ("run", 1, {"cfg": TINY, "play": True}))
    order = []
    for _ in range(n):
        assert s.run_turn()
        order.append(next(c for c in (f"c{i}" for i in range(n))
                          if c not in order and inbox.of(c, "snap", 1)))
    assert order == [f"c{i}" for i in range(n)], order
    assert all(_last_step(inbox, f"c{i}", 1) > 0 for i in range(n))


def test_a_run_that_joins_a_busy_executor_waits_at_most_one_round() -> None:
    """Ten runs have trained for a while; a new one gets the very next turn (run on to its
    first new step), then waits while the others catch up with that turn, and after that it
    is level with them: not owed their past, nor owing more than its own first turn."""
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    for i in range(10):
        s.handle(f"c{i}", ("run", 1, {"cfg": TINY, "play": True}))
    _turns(s, 0.5)
    s.handle("late", ("run", 1, {"cfg": TINY, "play": True}))
    assert s.run_turn()
    assert inbox.of("late", "snap", 1), "the new run got the very next turn"
    late = s.jobs[("late", 1)]
    first = late.served            # its first turn ran on to its first new step: paid back
    others = [j for j in s.jobs.values() if j is not late]
    for _ in range(2000):
        if min(j.served for j in others) >= first:
            break
        s.run_turn()
    assert late.served == first, "no further turn until the others caught up"
    # From here on each turn goes to the least-served run, so the spread never grows past
    # one turn. A busy box can stretch any one turn (CI saw 0.25 s), so check the choices
    # and bound the spread by the turns measured, not by a fixed figure alone.
    def spread() -> float:
        served = [j.served for j in s.jobs.values()]
        return max(served) - min(served)

    start, longest = spread(), 0.0
    for _ in range(30):
        before = {k: j.served for k, j in s.jobs.items()}
        s.run_turn()
        grew = {k: j.served - before[k] for k, j in s.jobs.items() if j.served > before[k]}
        (chosen, took), = grew.items()
        assert before[chosen] == min(before.values()), "a turn went to a run not least served"
        longest = max(longest, took)
    assert spread() <= max(start, longest) + 1e-9, (spread(), start, longest)
    if start < 0.05 and longest < 0.05:                  # a quiet box: all within 50 ms
        assert spread() < 0.05, spread()


def test_the_turn_after_play_lasts_until_the_first_new_snapshot() -> None:
    """With 10 steps between snapshots at 5 ms a step, a 10 ms turn would end before the
    first new picture, and with a class on the executor the click would show one round
    later. The turn after Play (and after Step) goes on until that snapshot is out; the
    turns after it keep their budget, and the extra time counts as served."""
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    slow = TINY.replace(lr=0.005)
    spec = {"cfg": slow, "play": True, "fn": "tests.fake_runs:slow_steps"}
    s.handle("c", ("run", 1, spec))
    assert s.run_turn()
    assert _last_step(inbox, "c", 1) == 10, "Play's first turn shows a new step"
    job = s.jobs[("c", 1)]
    t = time.perf_counter()
    s.run_turn()
    assert time.perf_counter() - t < 0.25, "later turns keep their budget (no 0.5 s grace)"
    assert job.served > 0.05
    s.handle("c", ("ctl", 1, {"play": False}))
    before = _last_step(inbox, "c", 1)
    s.handle("c", ("ctl", 1, {"play": True}))
    s.run_turn()
    assert _last_step(inbox, "c", 1) > before, "so does the turn after the next Play"


def test_a_slider_change_before_the_first_turn_keeps_the_wait_for_news() -> None:
    """Play, then a learning-rate change before the run's first turn: that turn still runs
    on to the first new snapshot (the change must not cancel what the click is owed)."""
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    spec = {"cfg": TINY.replace(lr=0.005), "play": True, "fn": "tests.fake_runs:slow_steps"}
    s.handle("c", ("run", 1, spec))
    s.handle("c", ("ctl", 1, {"lr": 0.005}))
    assert s.run_turn()
    assert _last_step(inbox, "c", 1) == 10, "the first turn still shows a new step"


def test_the_first_snapshot_grace_is_capped() -> None:
    """A run whose first new snapshot is far off (here 10 steps of 0.1 s) holds the
    executor for at most NEWS_GRACE_S, then the others get their turns."""
    from app.live.scheduler import NEWS_GRACE_S

    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    spec = {"cfg": TINY.replace(lr=0.1), "play": True, "fn": "tests.fake_runs:slow_steps"}
    s.handle("slow", ("run", 1, spec))
    t = time.perf_counter()
    s.run_turn()
    took = time.perf_counter() - t
    assert NEWS_GRACE_S <= took < NEWS_GRACE_S + 0.35, took
    assert _last_step(inbox, "slow", 1) == 0


def test_a_failing_run_ends_with_its_message_and_the_others_go_on() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    s.handle("bad", ("run", 1, {"cfg": TINY, "play": True,
                                "fn": "tests.fake_runs:broken_after_three"}))
    s.handle("good", ("run", 1, {"cfg": TINY, "play": True}))
    _turns(s, 0.5)
    ends = inbox.of("bad", "end", 1)
    assert ends == [("end", 1, "error", "boom in the run")]
    assert ("bad", 1) not in s.jobs
    assert _last_step(inbox, "good", 1) > 50


def test_a_diverging_run_ends_as_diverged() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    cfg = TINY.replace(lr=100.0, activation="relu", init="he")
    s.handle("x", ("run", 1, {"cfg": cfg, "play": True}))
    _turns(s, 1.0)
    assert inbox.of("x", "end", 1)[-1][2] == "diverged"
    last = inbox.of("x", "snap", 1)[-1]
    assert last[2].diverged and last[3] is not None and last[3].diverged


def test_pause_step_and_play_between_turns() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    s.handle("x", ("run", 1, {"cfg": TINY, "play": True}))
    _turns(s, 0.2)
    s.handle("x", ("ctl", 1, {"play": False}))
    paused_at = _last_step(inbox, "x", 1)
    assert not s.run_turn(), "a paused run is not scheduled"
    s.handle("x", ("ctl", 1, {"step": 1}))
    _turns(s, 0.5)
    snaps = inbox.of("x", "snap", 1)
    assert snaps[-1][3] is not None, "a step's snapshot is a full one"
    stepped = snaps[-1][2].step
    assert stepped > paused_at and not s.runnable()
    s.handle("x", ("ctl", 1, {"step": 1}))
    _turns(s, 0.5)
    assert _last_step(inbox, "x", 1) == stepped + 1, "one Step is one optimiser step"
    s.handle("x", ("ctl", 1, {"play": True, "every": 5}))
    _turns(s, 0.2)
    later = [m[2].step for m in inbox.of("x", "snap", 1)[-3:]]
    assert all(b - a == 5 for a, b in zip(later, later[1:], strict=False)), later


def test_drop_frees_the_share_at_once() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    s.handle("a", ("run", 1, {"cfg": TINY, "play": True}))
    s.handle("b", ("run", 1, {"cfg": TINY, "play": True}))
    _turns(s, 0.2)
    assert s.load == 2
    s.drop_client("a")
    assert s.load == 1 and ("a", 1) not in s.jobs
    n = len(inbox.of("a", "snap"))
    _turns(s, 0.2)
    assert len(inbox.of("a", "snap")) == n, "a dropped run sends nothing more"


def test_first_only_gives_the_step0_picture_and_ends() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    s.handle("a", ("run", 7, {"cfg": TINY, "first_only": True}))
    _turns(s, 0.5)
    snaps = inbox.of("a", "snap", 7)
    assert len(snaps) == 1 and snaps[0][2].step == 0 and snaps[0][3] is not None
    assert inbox.of("a", "end", 7) == [("end", 7, "finished", None)]
    assert not s.jobs


def test_a_lesson_computation_is_shared_cached_and_takes_turns_with_runs() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    ref = f"{__name__}:counted"
    s.handle("a", ("run", 1, {"cfg": TINY, "play": True}))
    s.handle("a", ("call", 2, b"k1", ref, (60,), {}))
    s.handle("b", ("call", 5, b"k1", ref, (60,), {}))
    assert len({id(j) for j in s.jobs.values() if isinstance(j, CallJob)}) == 1
    _turns(s, 3.0)
    assert inbox.of("a", "result", 2) == [("result", 2, True, 120)]
    assert inbox.of("b", "result", 5) == [("result", 5, True, 120)]
    assert inbox.of("a", "progress", 2), "progress was reported"
    assert _last_step(inbox, "a", 1) > 50, "the run moved while the computation ran"
    s.handle("c", ("call", 1, b"k1", ref, (60,), {}))
    assert inbox.of("c", "result", 1) == [("result", 1, True, 120)], "served from cache"
    s.close()


def test_a_failing_computation_reports_and_is_not_cached() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    ref = f"{__name__}:counted"
    s.handle("a", ("call", 1, b"k2", ref, (3,), {"fail": True}))
    _turns(s, 1.0)
    (msg,) = inbox.of("a", "result", 1)
    assert msg[2] is False and "the computation failed" in msg[3]
    assert b"k2" not in s.results


def test_dropping_the_only_waiter_stops_the_computation() -> None:
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.005)
    s.handle("a", ("call", 1, b"k3", f"{__name__}:counted", (10_000,), {}))
    assert s.run_turn()
    (job,) = [j for j in s.jobs.values() if isinstance(j, CallJob)]
    s.drop("a", 1)
    job._thread.join(5.0)
    assert not job._thread.is_alive() and not s.jobs and not s.calls


@pytest.mark.parametrize("n", [1, 3])
def test_run_jobs_follow_steps_exactly(n: int) -> None:
    """The snapshots a run job sends are those of core.train.run for the same config."""
    from core.train import run

    cfg = TINY.replace(steps=40, every=10)
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.001 * n)
    s.handle("a", ("run", 1, {"cfg": cfg, "play": True}))
    _turns(s, 5.0)
    got = [m[2] for m in inbox.of("a", "snap", 1)]
    want = list(run(cfg))
    assert [g.step for g in got] == [w.step for w in want]
    assert [g.loss for g in got] == pytest.approx([w.loss for w in want], rel=1e-6)
    assert isinstance(s.jobs.get(("a", 1)), RunJob | type(None))


def test_a_resumed_run_does_not_take_every_turn_to_catch_up() -> None:
    """A run paused for a while and resumed shares the executor at once, as a new run would:
    it does not owe the time it spent paused."""
    inbox = Inbox()
    s = Scheduler(inbox, turn_s=0.01)
    s.handle("a", ("run", 1, {"cfg": TINY, "play": True}))
    s.handle("b", ("run", 1, {"cfg": TINY, "play": True}))
    _turns(s, 0.3)
    s.handle("a", ("ctl", 1, {"play": False}))
    _turns(s, 1.0)                                     # b alone: its served time grows
    s.handle("a", ("ctl", 1, {"play": True}))
    a0, b0 = _last_step(inbox, "a", 1), _last_step(inbox, "b", 1)
    _turns(s, 0.6)
    da, db = _last_step(inbox, "a", 1) - a0, _last_step(inbox, "b", 1) - b0
    assert db > 0.5 * da, (da, db)
