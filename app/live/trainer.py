"""The per-session trainer: the page's handle on one run that trains in an executor.

It holds no thread and no model: commands go to the run's job on an executor
(:mod:`app.live.pool`), and the snapshots that come back (on the pool's receiver thread)
land in a bounded history that the page's fragment copies at its own frame rate
(:meth:`Trainer.view`). Pause / step / reset / close take effect within one executor turn.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from app.env import env_float
from app.live.history import HISTORY_MAX, history_cap, thin
from app.live.initial import INITIAL, InitialResult, run_ref
from app.live.pool import ExecutorLost, Link, Pool, get_pool
from app.live.process import schedule_trim
from app.live.view import (
    CLOSED,
    DIVERGED,
    ERROR,
    FINISHED,
    IDLE,
    PAUSED,
    RUNNING,
    TrainerView,
)
from app.stream_chart.frozen import FrozenFigures
from core.config import RunConfig
from core.snapshot import Snapshot

_LOG = logging.getLogger("gradlab.live")

#: Fields that apply to a running net without a reset (through core.train.RunControl).
LIVE_FIELDS = frozenset({"lr", "every"})

#: Every Trainer of this process that has not been collected (tests, shutdown).
TRAINERS: weakref.WeakSet[Trainer] = weakref.WeakSet()

NO_EXECUTOR = ("No training process is available right now, so the run cannot start. "
               "Try again in a moment; if it persists, tell whoever runs this server.")


class Trainer:
    """Play / pause / step / reset one run of ``core.train.steps`` on an executor.

    Thread-safety: the state is guarded by ``self._cv``; the executor's messages arrive on
    the pool's receiver thread and are dropped when they belong to an older run (``epoch``).
    """

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        pool: Callable[[], Pool] | None = None,
        idle_limit_s: float | None = None,
        run_fn: Callable[..., Iterator[Snapshot | None]] | None = None,
    ) -> None:
        self._cv = threading.Condition()
        self._pool = pool or get_pool
        self._idle_limit_s = (idle_limit_s if idle_limit_s is not None
                              else 60.0 * env_float("GRADLAB_IDLE_MINUTES", 10.0, lo=0.1))
        self._ref = run_ref(run_fn)
        self._cfg = config or RunConfig()
        self._lr = self._cfg.lr
        self._every = self._cfg.every
        self._epoch = 0                       # bumped by reset: stale messages are dropped
        self._job: tuple[Link, int] | None = None
        self._want_run = False
        self._step_requests = 0
        self._status = IDLE
        self._message: str | None = None
        self._history: list[Snapshot] = []
        self._cap = HISTORY_MAX
        self._latest: Snapshot | None = None
        self._diverged: Snapshot | None = None
        self._step = 0
        self._speed: deque[tuple[float, int]] = deque(maxlen=64)
        self._closed = False
        self._last_touch = time.monotonic()
        self._measuring = False               # a step-0 picture is on its way
        self._initial: Snapshot | None = None  # the shared step-0 snapshot in force, if any
        self._initial_ui: dict | None = None   # the figures every session shares for it
        self._ui: dict = FrozenFigures()      # this session's figures
        self._received = 0                    # snapshots received (wait_for_news)
        self.configured = False               # set by the first reset / set_config
        TRAINERS.add(self)

    # ---- commands (called from the script thread) -----------------------------------------

    def touch(self) -> None:
        """Record page activity (each full rerun): the idle limit counts from here."""
        self._last_touch = time.monotonic()

    def play(self) -> None:
        """Train until paused or done. After a finished / diverged / failed run, Play
        starts the same config again from step 0."""
        if self.view().status in (FINISHED, DIVERGED, ERROR):
            self.reset(measure=False)
        with self._cv:
            if self._closed:
                return
            self._want_run = True
            self._message = None
            self._status = RUNNING
            self._command({"play": True, "every": self._every, "lr": self._lr})
        self.touch()

    def pause(self) -> None:
        with self._cv:
            self._want_run = False
            if self._status == RUNNING:
                self._status = PAUSED if self._step or self._latest else IDLE
            if self._job is not None:
                self._command({"play": False})
            self._cv.notify_all()

    def step(self) -> None:
        """Pause, then advance exactly one optimiser step (and take one snapshot)."""
        with self._cv:
            if self._closed or self._status in (FINISHED, DIVERGED, ERROR):
                return
            self._want_run = False
            if self._status == RUNNING:
                self._status = PAUSED
            self._step_requests += 1
            self._command({"step": 1, "lr": self._lr})
        self.touch()

    def reset(self, config: RunConfig | None = None, *, measure: bool = True) -> None:
        """Forget the run (optionally switching config); with ``measure``, show the step-0
        snapshot of the fresh network, shared by every session with this config."""
        with self._cv:
            self.configured = True
            if config is not None:
                self._cfg = config
                self._lr, self._every = config.lr, config.every
            self._epoch += 1
            epoch, cfg = self._epoch, self._cfg
            self._drop_job()
            self._want_run = False
            self._step_requests = 0
            self._measuring = measure
            self._status = IDLE
            self._message = None
            self._history = []
            self._latest = self._diverged = self._initial = self._initial_ui = None
            self._step = 0
            self._speed.clear()
            self._cv.notify_all()
        if measure:
            INITIAL.request(cfg, self._ref, lambda result: self._on_initial(epoch, result),
                            self._pool)

    def set_config(self, config: RunConfig, *, measure: bool = True) -> list[str]:
        """Adopt ``config``. Returns the names of the fields that changed. A change outside
        ``LIVE_FIELDS`` resets the run; lr / every apply live to the running net."""
        with self._cv:
            old = self._cfg
            self.configured = True
        if config == old:
            return []
        od, nd = old.to_dict(), config.to_dict()
        changed = [k for k in nd if nd[k] != od[k]]
        if set(changed) <= LIVE_FIELDS:
            with self._cv:
                self._cfg = config
                self._lr, self._every = config.lr, config.every
                if self._job is not None:
                    self._command({"lr": config.lr, "every": config.every})
        else:
            self.reset(config, measure=measure)
        return changed

    def preload(self, view: TrainerView) -> None:
        """Show another trainer's run as this one's (compare: "Pin as A" keeps the run on
        screen). No job is started: Play on a preloaded run past step 0 would start it
        again from step 0, so the page leaves such a run as it is until Reset."""
        with self._cv:
            self.configured = True
            self._epoch += 1
            self._drop_job()
            self._cfg = view.config
            self._lr, self._every = view.lr, view.config.every
            self._want_run = False
            self._step_requests = 0
            self._measuring = False
            self._history = list(view.history)
            self._latest, self._diverged = view.latest, view.diverged
            self._initial = self._initial_ui = None
            self._step = view.step
            self._speed.clear()
            self._message = None
            if view.diverged is not None:
                self._status = DIVERGED
            elif view.step >= view.config.steps:
                self._status = FINISHED
            else:
                self._status = PAUSED if view.step else IDLE
            self._cv.notify_all()

    def release(self) -> None:
        """Stop for good (the session ended): the executor drops the run at once."""
        with self._cv:
            self._closed = True
            self._want_run = False
            self._step_requests = 0
            self._status = CLOSED
            self._drop_job()
            self._history = []
            self._latest = self._diverged = self._initial = self._initial_ui = None
            self._ui = FrozenFigures()
            self._cv.notify_all()
        schedule_trim()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def has_job(self) -> bool:
        """A run of this session is on an executor (tests: a closed tab holds none)."""
        return self._job is not None

    @property
    def config(self) -> RunConfig:
        with self._cv:
            return self._cfg

    def view(self) -> TrainerView:
        """A consistent copy of the state for drawing (the history list is copied)."""
        pool = _pool_if_started()
        with self._cv:
            now = time.monotonic()
            speed = 0.0
            if self._status == RUNNING and len(self._speed) >= 2:
                (t0, s0), (t1, s1) = self._speed[0], self._speed[-1]
                if t1 > t0 and now - t1 < 5.0:
                    speed = (s1 - s0) / (t1 - t0)
            return TrainerView(
                status=self._status, config=self._cfg, step=self._step,
                total_steps=self._cfg.steps, steps_per_s=speed,
                history=tuple(self._history), latest=self._latest, diverged=self._diverged,
                message=self._message,
                lr=self._lr, busy=self._step_requests > 0 or self._measuring,
                epoch=self._epoch,
                sharing=pool.total_load if pool is not None else 0,
                executors=pool.size if pool is not None else 0,
            )

    @property
    def ui_cache(self) -> dict:
        """Where the page keeps its figures (a :class:`FrozenFigures`). While the session
        shows the shared step-0 snapshot, the dict shared by every session showing it."""
        with self._cv:
            if (self._initial_ui is not None and self._latest is self._initial
                    and len(self._history) == 1):
                return self._initial_ui
            return self._ui

    def wait_for(self, pred: Callable[[TrainerView], bool], timeout: float = 30.0) -> TrainerView:
        """Wait until ``pred(view())`` holds or ``timeout`` passes; returns the last view
        (the caller checks ``pred`` on it: a timeout is not an error here)."""
        deadline = time.monotonic() + timeout
        v = self.view()
        while not pred(v):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with self._cv:
                self._cv.wait(min(left, 0.25))
            v = self.view()
        return v

    def wait_until(self, pred: Callable[[TrainerView], bool],
                   timeout: float = 30.0) -> TrainerView:
        """:meth:`wait_for` for callers that need ``pred`` (tests): the view where it holds,
        or TimeoutError naming the state reached instead."""
        v = self.wait_for(pred, timeout)
        if not pred(v):
            raise TimeoutError(f"not reached within {timeout:g} s: status {v.status_text!r}, "
                               f"step {v.step}, busy {v.busy}, message {v.message!r}")
        return v

    # ---- the executor's messages (pool receiver thread) -------------------------------------

    def _command(self, change: dict[str, Any]) -> None:
        """Send ``change`` to this run's job, starting the job if there is none (lock held)."""
        if self._job is not None:
            link, jid = self._job
            try:
                Pool.control(link, jid, change)
                return
            except ExecutorLost:
                self._job = None
        epoch = self._epoch
        spec = {"cfg": self._cfg, "fn": self._ref, "lr": self._lr, "every": self._every,
                "play": bool(change.get("play")), "steps": self._step_requests}
        try:
            self._job = self._pool().start(spec, lambda msg: self._on_message(epoch, msg))
        except ExecutorLost as e:
            _LOG.warning("no executor: %s", e)
            self._fail_locked(NO_EXECUTOR)

    def _drop_job(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            Pool.drop(*job)

    def _on_message(self, epoch: int, msg: tuple) -> None:
        with self._cv:
            if epoch != self._epoch or self._closed:
                return
            if msg[0] == "snap":
                self._accept_locked(msg[2], msg[3])
            elif msg[0] == "end":
                kind, text = msg[2], msg[3]
                self._job = None
                if kind == "error":
                    self._fail_locked(f"The run stopped with an error: {(text or '')[:300]}")
                elif kind == "finished" and self._status != DIVERGED:
                    self._finish_locked()
            self._cv.notify_all()

    def _accept_locked(self, lite: Snapshot, full: Snapshot | None) -> None:
        if (lite.step == 0 and not lite.diverged and self._latest is not None
                and self._latest.step == 0):
            return      # the job's step 0 = the shared picture already shown
        stepping = self._step_requests > 0
        if stepping and lite.step > 0:
            self._step_requests -= 1
        self._received += 1
        self._step = lite.step
        if lite.diverged:
            self._diverged = full or lite
            self._message = lite.message
            self._status = DIVERGED
            self._want_run = False
            self._step_requests = 0
            return
        if full is not None:
            self._latest = full
        if stepping and self._status == IDLE and lite.step > 0:
            self._status = PAUSED
        self._cap = history_cap(len(lite.layers))
        self._history.append(lite)
        self._history = thin(self._history, self._cap)
        if self._want_run:
            now = time.monotonic()
            self._speed.append((now, lite.step))
            while len(self._speed) > 2 and now - self._speed[0][0] > 3.0:
                self._speed.popleft()
            if now - self._last_touch > self._idle_limit_s:
                self._want_run = False
                self._status = PAUSED
                self._message = (f"Paused after {self._idle_limit_s / 60:g} minutes without "
                                 "activity on the page: press Play to go on.")
                self._command({"play": False})
        if lite.step >= self._cfg.steps:
            self._finish_locked()

    def _on_initial(self, epoch: int, result: InitialResult | BaseException) -> None:
        """The step-0 picture arrived (from the pool's thread, or at once from the cache)."""
        with self._cv:
            if epoch != self._epoch:
                return
            self._measuring = False
            self._cv.notify_all()
            if isinstance(result, BaseException):
                if self._latest is None and self._status == IDLE:
                    self._fail_locked(f"The run stopped with an error: {str(result)[:300]}")
                return
            snap, lite, ui = result
            if self._closed or self._latest is not None or self._diverged is not None:
                return                        # Play / Step already delivered its own step 0
            self._step = snap.step
            if snap.diverged:
                self._diverged = snap
                self._message = snap.message
                self._status = DIVERGED
                return
            self._latest = self._initial = snap
            self._initial_ui = ui
            self._cap = history_cap(len(snap.layers))
            self._history = [lite]

    def _finish_locked(self) -> None:
        self._job = None                  # the executor ends a finished run by itself
        self._status = FINISHED
        self._want_run = False
        self._step_requests = 0

    def _fail_locked(self, text: str) -> None:
        self._status = ERROR
        self._want_run = False
        self._step_requests = 0
        self._message = text
        self._drop_job()


def _pool_if_started() -> Pool | None:
    from app.live import pool as pool_mod

    return pool_mod._POOL


__all__ = ["LIVE_FIELDS", "NO_EXECUTOR", "TRAINERS", "Trainer"]
