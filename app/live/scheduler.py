"""Time-sharing of training jobs inside one executor process, the way an OS shares a CPU.

Every runnable job advances in short turns (``GRADLAB_TURN_S``, 30 ms); the next turn goes
to the job that has had the least executor time so far, ties to the one whose last turn is
oldest. A job that joins (or resumes) starts level with the least-served runnable job, the
scheduler's virtual clock (as Linux's CFS places a waking task at ``min_vruntime``), never
below it: it runs within one round, neither starving the others nor starved. (Placing each
joiner one turn *ahead* of the least-served, as before, stacks up in a burst: the 30th of
30 runs pressed at once sat 0.9 s of credit ahead, and the 1st waited some 13 s of
executor time before its first turn.) A playground run is
a generator (``core.train.steps`` yields after every optimiser step), advanced on the
scheduler's own thread. A lesson computation is a plain function: it runs on a thread of
its own that computes only while it holds the baton and hands it back at its next progress
point (``core.progress``) once its turn is used up.

The scheduler knows nothing of sockets: commands come in through :meth:`Scheduler.handle`,
results go out through the ``emit(client, message)`` callback.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from app.env import env_float
from app.live.history import light
from core import progress
from core.config import RunConfig
from core.snapshot import Snapshot

TURN_S = env_float("GRADLAB_TURN_S", 0.03, lo=0.001)
FULL_EVERY_S = 0.1        # a full snapshot (histograms, spectra) at most this often per run
PROGRESS_EVERY_S = 0.2    # progress reports of a lesson computation, at most this often
RESULT_CACHE = 64         # lesson results kept per executor (shared by every session)
#: A run's turn right after Play / Step / a start goes on past its budget until the first new
#: snapshot is out, for at most this long: the click shows at once instead of one round
#: later (with 30 runs on an executor a round is about a second). The extra time counts as
#: served, so the others get it back.
NEWS_GRACE_S = 0.5

Emit = Callable[[object, tuple], None]


def resolve(ref: str) -> Callable[..., Any]:
    """``"package.module:qualname"`` -> the function (run functions, lesson computations)."""
    mod, _, name = ref.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable")
    return obj


class Job:
    """One unit of work of one client. ``turn`` runs for about ``budget`` seconds."""

    def __init__(self, jid: int, client: object) -> None:
        self.jid, self.client = jid, client
        self.served = 0.0          # executor seconds used (the fairness measure)
        self.last_turn = -1        # the scheduler's turn count at this job's last turn
        self.done = False

    @property
    def runnable(self) -> bool:
        raise NotImplementedError

    def turn(self, budget: float, emit: Emit) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        self.done = True


class RunJob(Job):
    """A playground run: play / pause / step a ``core.train.steps`` generator."""

    def __init__(self, jid: int, client: object, spec: dict[str, Any]) -> None:
        super().__init__(jid, client)
        from core.train import RunControl

        self.cfg: RunConfig = spec["cfg"]
        self.fn = resolve(spec.get("fn") or "core.train:steps")
        self.control = RunControl(lr=spec.get("lr", self.cfg.lr), every=None)
        self.every: int = spec.get("every") or self.cfg.every
        self.playing: bool = bool(spec.get("play"))
        self.step_requests: int = int(spec.get("steps", 0))
        self.first_only: bool = bool(spec.get("first_only"))   # the step-0 picture only
        self.gen: Iterator[Snapshot | None] | None = None
        self._last_full = 0.0
        self._want_full = True    # the next snapshot after a start / Play / Step is full
        self._news_due = True     # the page waits for the first snapshot after a click

    @property
    def runnable(self) -> bool:
        return not self.done and (self.playing or self.step_requests > 0
                                  or self.first_only)

    def control_msg(self, change: dict[str, Any]) -> None:
        self._want_full = True    # what the page draws right after a click must be whole
        if change.get("play") is False:
            self._news_due = False     # paused: nobody waits for a new picture
        elif change.get("play") or change.get("step"):
            self._news_due = True      # (a slider change keeps a wait already due)
        if "lr" in change:
            self.control.lr = change["lr"]
        if "every" in change and change["every"]:
            self.every = int(change["every"])
        if "play" in change:
            self.playing = bool(change["play"])
        if change.get("step"):
            self.playing = False
            self.step_requests += int(change["step"])

    def turn(self, budget: float, emit: Emit) -> None:
        if self.gen is None:
            self.gen = self.fn(self.cfg, self.control)
        start = time.perf_counter()
        deadline, grace = start + budget, start + max(budget, NEWS_GRACE_S)
        while self.runnable:
            stepping = self.step_requests > 0 and not self.playing
            self.control.every = 1 if stepping else self.every
            try:
                item = next(self.gen)
            except StopIteration:
                self._end(emit, "finished", None)
                return
            except Exception as e:  # noqa: BLE001 - a failing run is a message, never a crash
                self._end(emit, "error", str(e).strip() or type(e).__name__)
                return
            if item is not None:
                self._deliver(item, stepping, emit)
            now = time.perf_counter()
            if now >= deadline and (not self._news_due or now >= grace):
                return

    def _deliver(self, snap: Snapshot, stepping: bool, emit: Emit) -> None:
        if stepping and snap.step > 0:
            self.step_requests -= 1
        final = (snap.diverged or snap.step >= self.cfg.steps or self.first_only
                 or (stepping and self.step_requests == 0))
        now = time.perf_counter()
        full = (snap if final or now - self._last_full >= FULL_EVERY_S
                or (self._want_full and snap.step > 0) else None)
        if snap.step > 0 or self.first_only:
            self._news_due = False
        if full is not None:
            self._last_full = now
            self._want_full = self._want_full and snap.step == 0
        emit(self.client, ("snap", self.jid, light(snap), full))
        if snap.diverged or snap.step >= self.cfg.steps or self.first_only:
            self._end(emit, "diverged" if snap.diverged else "finished", None)

    def _end(self, emit: Emit, kind: str, text: str | None) -> None:
        self.drop()
        emit(self.client, ("end", self.jid, kind, text))

    def drop(self) -> None:
        super().drop()
        if self.gen is not None:
            self.gen.close()
            self.gen = None


class CallJob(Job):
    """A lesson computation: ``fn(*args, **kwargs)`` on its own thread, computing only while
    it holds the baton. Several clients asking for the same call share one job."""

    def __init__(self, jid: int, client: object, key: bytes, ref: str, args: tuple,
                 kwargs: dict[str, Any]) -> None:
        super().__init__(jid, client)
        self.key = key
        self.waiters: list[tuple[object, int]] = [(client, jid)]
        self._cv = threading.Condition()
        self._baton = False
        self._turn_end = 0.0
        self._last_report = 0.0
        self._report: tuple | None = None
        self.result: tuple | None = None      # (ok, value or error text)
        self._thread = threading.Thread(target=self._work, args=(ref, args, kwargs),
                                        name=f"gradlab-call-{jid}", daemon=True)
        self._started = False

    @property
    def runnable(self) -> bool:
        return not self.done and self.result is None

    def turn(self, budget: float, emit: Emit) -> None:
        with self._cv:
            self._turn_end = time.perf_counter() + budget
            self._baton = True
            if not self._started:
                self._started = True
                self._thread.start()
            self._cv.notify_all()
            while self._baton:
                self._cv.wait()
            report, self._report = self._report, None
        if report is not None:
            for client, jid in self.waiters:
                emit(client, ("progress", jid, *report))

    def _work(self, ref: str, args: tuple, kwargs: dict[str, Any]) -> None:
        with self._cv:
            while not self._baton:
                self._cv.wait()
        try:
            from app.live.process import configure_torch

            configure_torch()
            with progress.listening(self._checkpoint):
                value = resolve(ref)(*args, **kwargs)
            result: tuple = (True, value)
        except BaseException as e:  # noqa: BLE001 - reported to the page, never a crash
            result = (False, f"{type(e).__name__}: {e}".strip()[:500])
        with self._cv:
            self.result = result
            self._baton = False
            self._cv.notify_all()

    def _checkpoint(self, p: progress.Progress) -> None:
        """A progress point of the computation: report, and yield the baton when the turn
        is used up (wait, without spinning, for the next one)."""
        now = time.perf_counter()
        if now - self._last_report >= PROGRESS_EVERY_S:
            self._last_report = now
            self._report = (p.fraction, p.text())
        if now < self._turn_end:
            return
        with self._cv:
            self._baton = False
            self._cv.notify_all()
            while not self._baton and not self.done:
                self._cv.wait()
        if self.done:
            raise _Dropped()

    def drop(self) -> None:
        with self._cv:
            super().drop()
            self._cv.notify_all()


class _Dropped(BaseException):
    """Unwinds a lesson computation nobody waits for any more."""


class Scheduler:
    """The jobs of one executor and whose turn it is."""

    def __init__(self, emit: Emit, turn_s: float = TURN_S) -> None:
        self.emit = emit
        self.turn_s = turn_s
        self.jobs: dict[tuple[object, int], Job] = {}
        self.calls: dict[bytes, CallJob] = {}                 # in flight, by call key
        self.results: OrderedDict[bytes, tuple] = OrderedDict()  # finished, by call key
        self.clock = 0.0          # virtual time: the least served time of a runnable job
        self.turns = 0            # turns given so far

    # ---- commands -------------------------------------------------------------------------

    def handle(self, client: object, msg: tuple) -> None:
        """Apply one command from ``client``. Unknown or stale commands are ignored."""
        kind = msg[0]
        if kind == "run":
            _, jid, spec = msg
            self._add(RunJob(jid, client, spec))
        elif kind == "ctl":
            _, jid, change = msg
            job = self.jobs.get((client, jid))
            if isinstance(job, RunJob):
                was = job.runnable
                job.control_msg(change)
                if job.runnable and not was:
                    self._level(job)     # a resumed run does not owe its paused time
        elif kind == "drop":
            self.drop(client, msg[1])
        elif kind == "call":
            _, jid, key, ref, args, kwargs = msg
            self._call(client, jid, key, ref, args, kwargs)

    def _add(self, job: Job) -> None:
        job.served = float("-inf")
        self._level(job)
        self.jobs[(job.client, job.jid)] = job

    def _level(self, job: Job) -> None:
        """A job that (re)joins starts level with the least-served runnable job (the virtual
        clock), never below it: it owes nothing for the time it was away and gets no
        credit for it either. Among jobs level with it, those that waited longer go first."""
        live = [j.served for j in self.jobs.values() if j.runnable and j is not job]
        if live:
            self.clock = max(self.clock, min(live))
        job.served = max(job.served, self.clock)

    def _call(self, client: object, jid: int, key: bytes, ref: str, args: tuple,
              kwargs: dict[str, Any]) -> None:
        hit = self.results.get(key)
        if hit is not None:
            self.results.move_to_end(key)
            self.emit(client, ("result", jid, *hit))
            return
        job = self.calls.get(key)
        if job is not None and not job.done:
            job.waiters.append((client, jid))
            self.jobs[(client, jid)] = job
            return
        job = CallJob(jid, client, key, ref, args, kwargs)
        self.calls[key] = job
        self._add(job)

    def drop(self, client: object, jid: int) -> None:
        job = self.jobs.pop((client, jid), None)
        if job is None:
            return
        if isinstance(job, CallJob):
            job.waiters = [w for w in job.waiters if w != (client, jid)]
            if job.waiters:
                return
            self.calls.pop(job.key, None)
        job.drop()

    def drop_client(self, client: object) -> None:
        """A client went away: everything it started is dropped."""
        for c, jid in [k for k in self.jobs if k[0] is client]:
            self.drop(c, jid)

    # ---- turns ----------------------------------------------------------------------------

    @property
    def load(self) -> int:
        """Distinct runnable jobs (what placement and the page's "runs sharing" count)."""
        return len({id(j) for j in self.jobs.values() if j.runnable})

    def runnable(self) -> bool:
        return any(j.runnable for j in self.jobs.values())

    def run_turn(self) -> bool:
        """Give one turn to the least-served runnable job. False if none is runnable."""
        best: Job | None = None
        for job in self.jobs.values():
            if job.runnable and (best is None or (job.served, job.last_turn)
                                 < (best.served, best.last_turn)):
                best = job
        if best is None:
            return False
        self.clock = max(self.clock, best.served)
        self.turns += 1
        best.last_turn = self.turns
        t0 = time.perf_counter()
        best.turn(self.turn_s, self.emit)
        best.served += time.perf_counter() - t0
        if isinstance(best, CallJob) and best.result is not None:
            self._finish_call(best)
        elif best.done:
            self.jobs.pop((best.client, best.jid), None)
        return True

    def _finish_call(self, job: CallJob) -> None:
        assert job.result is not None
        self.calls.pop(job.key, None)
        if job.result[0]:
            self.results[job.key] = job.result
            while len(self.results) > RESULT_CACHE:
                self.results.popitem(last=False)
        for client, jid in job.waiters:
            self.jobs.pop((client, jid), None)
            self.emit(client, ("result", jid, *job.result))
        job.done = True

    def close(self) -> None:
        for key in list(self.jobs):
            self.drop(*key)


__all__ = ["CallJob", "Job", "RunJob", "Scheduler", "TURN_S", "resolve"]
