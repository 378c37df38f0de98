"""The per-session Trainer: its worker thread takes turns from a
:class:`~app.live.slots.TurnQueue` and appends each Snapshot to a bounded history; the page
copies it (:meth:`Trainer.view`) at its own frame rate and never waits for training."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator

from app.env import env_float
from app.live.history import HISTORY_MAX, history_cap, light, thin
from app.live.initial import INITIAL, InitialResult, RunFn
from app.live.process import configure_torch, schedule_trim
from app.live.slots import SLOTS, TurnQueue
from app.live.view import (
    CLOSED,
    DIVERGED,
    ERROR,
    FINISHED,
    IDLE,
    PAUSED,
    RUNNING,
    WAITING,
    TrainerView,
)
from app.stream_chart.frozen import FrozenFigures
from core.config import RunConfig
from core.snapshot import Snapshot
from core.train import RunControl, run

_LOG = logging.getLogger("gradlab.live")

#: Fields that apply to a running net without a reset (through core.train.RunControl).
LIVE_FIELDS = frozenset({"lr", "every"})

#: Every Trainer of this process not yet garbage-collected (see app.live.binding).
TRAINERS: weakref.WeakSet[Trainer] = weakref.WeakSet()


class Trainer:
    """Play / pause / step / reset a run of ``core.train.run`` on a worker thread.

    Thread-safety: every field shared with the worker is guarded by ``self._lock``; the
    generator, model and optimiser are touched by the worker thread only. Commands set
    flags and ``interrupt`` the run (RunControl.every = 1 makes ``run`` yield after the
    current optimiser step), so pause / reset / release take effect within one step."""

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        slots: TurnQueue | None = None,
        idle_limit_s: float | None = None,
        slice_s: float | None = None,
        first_turn_s: float | None = None,
        run_fn: RunFn | None = None,
    ) -> None:
        self._lock = threading.Condition()
        self._slots = slots or SLOTS
        self._idle_limit_s = (idle_limit_s if idle_limit_s is not None
                              else 60.0 * env_float("GRADLAB_IDLE_MINUTES", 10.0, lo=0.1))
        self._slice_s = slice_s if slice_s is not None else env_float("GRADLAB_SLICE_S", 30.0, 1.0)
        # the first turn after Play is short when others wait (they get theirs soon too)
        self._first_turn_s = min(self._slice_s, first_turn_s if first_turn_s is not None
                                 else env_float("GRADLAB_FIRST_TURN_S", 5.0, 0.5))
        self._fresh_turn = False              # the next turn is the first since Play
        self._last_turn_end = -1e18           # monotonic end of this session's last turn
        self._run_fn = run_fn
        self._cfg = config or RunConfig()
        self._lr = self._cfg.lr
        self._every = self._cfg.every
        # run state (guarded by _lock)
        self._epoch = 0                       # bumped by reset: stale snapshots are dropped
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
        self._control: RunControl | None = None   # RunControl of the current generator
        self._closed = False
        self._last_touch = time.monotonic()
        self._thread: threading.Thread | None = None
        self._measuring = False               # a step-0 picture is on its way (INITIAL)
        self._initial: Snapshot | None = None  # the shared step-0 snapshot in force, if any
        self._initial_ui: dict | None = None   # the figures every session shares for it
        self._ui: dict = FrozenFigures()      # this session's figures
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
        with self._lock:
            if self._closed:
                return
            self._want_run = True
            self._message = None
            self._set_control_every(self._every)
            if self._status in (IDLE, PAUSED):
                self._status = WAITING
            # Fresh (first-turn priority): a run from step 0, or no turn within the last
            # slice; pause-then-Play does not jump the line (deploy/README.md, "Fair turns").
            fresh = (not self._slots.holds(self)
                     and (self._step == 0
                          or time.monotonic() - self._last_turn_end > self._slice_s))
            if fresh:
                self._fresh_turn = True
            self._slots.enqueue(self, fresh=fresh)
            self._lock.notify_all()
        self.touch()
        self._ensure_thread()

    def pause(self) -> None:
        with self._lock:
            self._want_run = False
            if self._status in (RUNNING, WAITING):
                self._status = PAUSED if self._step or self._latest else IDLE
            if self._step_requests == 0:
                self._slots.leave_line(self)
            self._interrupt()
            self._lock.notify_all()

    def step(self) -> None:
        """Pause, then advance exactly one optimiser step (and take one snapshot)."""
        with self._lock:
            if self._closed or self._status in (FINISHED, DIVERGED, ERROR):
                return
            self._want_run = False
            if self._status in (RUNNING, WAITING):
                self._status = PAUSED
            self._step_requests += 1
            self._slots.enqueue(self, fresh=True)
            self._interrupt()
            self._lock.notify_all()
        self.touch()
        self._ensure_thread()

    def reset(self, config: RunConfig | None = None, *, measure: bool = True) -> None:
        """Forget the run (optionally switching config); with ``measure``, show the step-0
        snapshot of the fresh network: from :data:`INITIAL` (shared by every session with
        this config; measured there if new), without a slot or a thread of this session."""
        with self._lock:
            self.configured = True
            if config is not None:
                self._cfg = config
                self._lr, self._every = config.lr, config.every
            self._epoch += 1
            epoch, cfg = self._epoch, self._cfg
            self._want_run = False
            self._step_requests = 0
            self._measuring = measure
            self._status = IDLE
            self._message = None
            self._history = []
            self._latest = self._diverged = self._initial = self._initial_ui = None
            self._step = 0
            self._speed.clear()
            self._slots.leave_line(self)
            self._interrupt()
            self._lock.notify_all()
        if measure:
            INITIAL.request(cfg, self._run_fn, lambda result: self._on_initial(epoch, result))

    def set_config(self, config: RunConfig, *, measure: bool = True) -> list[str]:
        """Adopt ``config``. Returns the names of the fields that changed. A change outside
        ``LIVE_FIELDS`` resets the run; lr / every apply live to the running net."""
        with self._lock:
            old = self._cfg
            self.configured = True
        if config == old:
            return []
        od, nd = old.to_dict(), config.to_dict()
        changed = [k for k in nd if nd[k] != od[k]]
        if set(changed) <= LIVE_FIELDS:
            with self._lock:
                self._cfg = config
                self._lr, self._every = config.lr, config.every
                if self._control is not None:
                    self._control.lr = config.lr
                    if self._want_run:
                        self._control.every = config.every
        else:
            self.reset(config, measure=measure)
        return changed

    def release(self) -> None:
        """Stop for good (the session ended): the worker exits after the current step."""
        _LOG.debug("trainer %x released", id(self))
        with self._lock:
            self._closed = True
            self._want_run = False
            self._step_requests = 0
            self._status = CLOSED
            self._interrupt()
            # Drop what is big at once: a closed tab's session (and with it, e.g. the
            # page's fragment that names this trainer) can outlive it for a while.
            self._history = []
            self._latest = self._diverged = self._initial = self._initial_ui = None
            self._ui = FrozenFigures()
            self._lock.notify_all()
        self._slots.release(self)
        schedule_trim()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread to end (tests). True if it has ended."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def config(self) -> RunConfig:
        with self._lock:
            return self._cfg

    def view(self) -> TrainerView:
        """A consistent copy of the state for drawing (the buffer list is copied)."""
        pos = self._slots.position(self)
        with self._lock:
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
                message=self._message, queue_position=pos,
                lr=self._lr, busy=self._step_requests > 0 or self._measuring,
                epoch=self._epoch,
            )

    @property
    def ui_cache(self) -> dict:
        """Where the page keeps its figures (a :class:`FrozenFigures`: a cached figure must
        not be changed afterwards). While the session shows the shared step-0 snapshot
        (nothing trained yet), the dict shared by every session showing that same snapshot
        object: a class opening one link builds and serialises its first figures once. The
        page's cache keys name the snapshot objects they were built from, so sharing is
        safe."""
        with self._lock:
            if (self._initial_ui is not None and self._latest is self._initial
                    and len(self._history) == 1):
                return self._initial_ui
            return self._ui

    def wait_for(self, pred: Callable[[TrainerView], bool], timeout: float = 30.0) -> TrainerView:
        """Poll ``view()`` until ``pred`` holds (tests and scripts). Returns the last view."""
        deadline = time.monotonic() + timeout
        v = self.view()
        while not pred(v) and time.monotonic() < deadline:
            time.sleep(0.02)
            v = self.view()
        return v

    # ---- internals --------------------------------------------------------------------------

    def _on_initial(self, epoch: int, result: InitialResult) -> None:
        """The step-0 picture arrived (from INITIAL's thread, or at once from its cache)."""
        if isinstance(result, BaseException):
            with self._lock:
                if epoch != self._epoch:
                    return
                self._measuring = False
                if self._latest is not None or self._status != IDLE:
                    return                    # a run of this session got further meanwhile
            self._fail(epoch, result)
            return
        snap, lite, ui = result  # type: ignore[misc]
        with self._lock:
            if epoch != self._epoch:
                return
            self._measuring = False
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

    def _set_control_every(self, every: int | None) -> None:
        if self._control is not None:
            self._control.every = every

    def _interrupt(self) -> None:
        """Make the in-flight run yield after its current step (lock held)."""
        if self._control is not None:
            self._control.every = 1

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(
                target=self._worker, name=f"gradlab-trainer-{id(self):x}", daemon=True)
            self._thread.start()

    def _has_work(self) -> bool:
        return not self._closed and (self._want_run or self._step_requests > 0)

    def _worker(self) -> None:
        configure_torch()
        gen: Iterator[Snapshot] | None = None
        gen_epoch = -1
        try:
            while True:
                with self._lock:
                    while not self._closed and not self._has_work():
                        self._lock.wait(5.0)      # commands notify; this is a safety net
                    if self._closed:
                        return
                    if self._want_run:
                        self._status = WAITING
                got = self._slots.acquire(self, cancelled=lambda: not self._has_work())
                if not got:
                    with self._lock:
                        if self._status == WAITING:
                            self._status = PAUSED if self._latest else IDLE
                    continue
                try:
                    gen, gen_epoch = self._train(gen, gen_epoch)
                except Exception as e:  # noqa: BLE001 - a bug here must not kill the worker
                    _LOG.exception("trainer worker failed")
                    self._fail(self._epoch, e)
                    gen, gen_epoch = None, -1
                finally:
                    self._last_turn_end = time.monotonic()
                    self._slots.release(self)
        finally:
            if gen is not None:
                gen.close()
            with self._lock:
                self._control = None

    def _train(self, gen: Iterator[Snapshot] | None,
               gen_epoch: int) -> tuple[Iterator[Snapshot] | None, int]:
        """Hold a slot: take snapshots while there is work. Returns the generator state."""
        held_since = time.monotonic()
        with self._lock:
            self._speed.clear()
            turn_s = self._first_turn_s if self._fresh_turn else self._slice_s
            self._fresh_turn = False
        while True:
            with self._lock:
                if not self._has_work():
                    return gen, gen_epoch
                stepping = self._step_requests > 0
                if not stepping:
                    self._status = RUNNING
                    if time.monotonic() - self._last_touch > self._idle_limit_s:
                        mins = self._idle_limit_s / 60
                        self._want_run = False
                        self._status = PAUSED
                        self._message = (f"Paused after {mins:g} minutes without activity "
                                         "on the page: press Play to go on.")
                        return gen, gen_epoch
                    if (time.monotonic() - held_since > turn_s
                            and self._slots.someone_waiting()):
                        self._status = WAITING   # hand the slot on; queue again
                        return gen, gen_epoch
                epoch, cfg = self._epoch, self._cfg
                if gen is None or gen_epoch != epoch:
                    if gen is not None:
                        gen.close()
                    self._control = RunControl(lr=self._lr, every=None)
                    gen = (self._run_fn or run)(cfg, self._control)
                    gen_epoch = epoch
                    self._speed.clear()
                self._control.lr = self._lr
                self._control.every = 1 if stepping else self._every
            # --- compute outside the lock: the UI never waits for training -------------
            try:
                snap = next(gen)
                done = False
            except StopIteration:
                snap, done = None, True
            except Exception as e:  # noqa: BLE001 - any failure is a message, never a crash
                self._fail(epoch, e)
                return None, -1
            with self._lock:
                if epoch != self._epoch:      # reset while computing: drop the stale result
                    continue
                if done:
                    self._finish_locked()
                    return None, -1
                self._accept_locked(snap, stepping)
                if snap.diverged:
                    return None, -1

    def _accept_locked(self, snap: Snapshot, stepping: bool) -> None:
        if (snap.step == 0 and not snap.diverged and self._latest is not None
                and self._latest.step == 0):
            return      # the fresh generator's step 0 = the shared picture already shown
        if stepping and self._step_requests > 0 and snap.step > 0:
            self._step_requests -= 1      # step 0 is no optimiser step
        self._step = snap.step
        if snap.diverged:
            self._diverged = snap
            self._message = snap.message
            self._status = DIVERGED
            self._want_run = False
            self._step_requests = 0
            return
        self._latest = snap
        if stepping and self._status == IDLE and snap.step > 0:
            self._status = PAUSED
        self._cap = history_cap(len(snap.layers))
        self._history.append(light(snap))
        self._history = thin(self._history, self._cap)
        if not stepping:
            now = time.monotonic()
            self._speed.append((now, snap.step))
            while len(self._speed) > 2 and now - self._speed[0][0] > 3.0:
                self._speed.popleft()
        if snap.step >= self._cfg.steps:
            self._finish_locked()

    def _finish_locked(self) -> None:
        self._status = FINISHED
        self._want_run = False
        self._step_requests = 0
        self._control = None

    def _fail(self, epoch: int, e: BaseException) -> None:
        with self._lock:
            if epoch != self._epoch:
                return
            self._status = ERROR
            self._want_run = False
            self._step_requests = 0
            self._control = None
            text = str(e).strip() or type(e).__name__
            self._message = f"The run stopped with an error: {text[:300]}"
