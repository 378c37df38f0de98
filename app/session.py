"""Per-session training: a worker thread drives ``core.train.run`` into a bounded buffer.

One ``Trainer`` per browser session, created by :func:`get_trainer` as a *session-scoped*
``st.cache_resource`` with a release hook: when the tab closes, Streamlit clears the
session's resources and :meth:`Trainer.release` stops the worker within about a second.
Nothing big (models, histories) lives in ``st.session_state``, which outlives a closed tab.

The worker never waits for the UI: it appends each Snapshot to a buffer under a lock and
carries on; the page's fragment takes a copy (:meth:`Trainer.view`) at its own frame rate.

Concurrency is capped process-wide by :data:`SLOTS`, a FIFO queue of training slots
(env ``GRADLAB_MAX_WORKERS``, default :func:`default_slots`: the cores this process may use,
shared among the server processes of ``app.asgi``). Sessions beyond the cap wait in line
and start by themselves; pausing, finishing, going idle or closing the tab frees the slot.
A holder that has trained for a while hands its slot to the next in line and queues again
(``GRADLAB_SLICE_S``), so one long run cannot starve a class.

Opening the page costs no thread and no slot: the step-0 snapshot of a fresh network (what
the page shows before Play) depends on the config only, so :data:`INITIAL` measures it once
per config on ONE process-wide thread and every session with that config shares the same
immutable Snapshot (a class opening one link measures it once). A session's own worker
thread starts at its first Play or Step.

Only this module starts threads; ``core`` stays pure. ``configure_torch`` sets the
process-wide torch thread count once (measured: 1 thread is fastest while the server and a
browser share the machine).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from app.env import default_slots, env_float, env_int
from core.config import RunConfig
from core.snapshot import Snapshot
from core.train import RunControl, run  # imports torch: paid once, at server start

_LOG = logging.getLogger("gradlab.session")

# ---- process-wide settings ------------------------------------------------------------------

_TORCH_LOCK = threading.Lock()
_TORCH_CONFIGURED = False


def configure_torch() -> None:
    """Set torch's intra-op thread count once per process (env GRADLAB_TORCH_THREADS, 1)."""
    global _TORCH_CONFIGURED
    with _TORCH_LOCK:
        if _TORCH_CONFIGURED:
            return
        import torch

        torch.set_num_threads(env_int("GRADLAB_TORCH_THREADS", 1))
        _TORCH_CONFIGURED = True


_WARMED = False


def warm_up() -> None:
    """Once per process: set the thread count and run one tiny net on a background thread,
    so the first real run does not pay for torch's lazy initialisation. (The guard lives
    here, in an imported module: Streamlit re-executes the main script on every rerun.)"""
    global _WARMED
    with _TORCH_LOCK:
        if _WARMED:
            return
        _WARMED = True
    configure_torch()

    def work() -> None:
        try:
            cfg = RunConfig(depth=2, width=8, n_train=64, n_test=16, batch_size=16, steps=2,
                            every=1, device="cpu")
            for _ in run(cfg):
                pass
        except Exception:  # noqa: BLE001 - warming up is best effort
            pass

    threading.Thread(target=work, name="gradlab-warmup", daemon=True).start()


#: Fields that apply to a running net without a reset (through core.train.RunControl).
LIVE_FIELDS = frozenset({"lr", "every"})

#: Layer-records (snapshots x layers) the history may hold: ~270 bytes each -> ~27 MB.
HISTORY_BUDGET = 100_000
HISTORY_MAX = 1000      # snapshots, at most
HISTORY_MIN = 64        # snapshots, at least (depth 1000 still keeps a curve)
HISTORY_RECENT = 0.25   # fraction of the buffer never thinned (the newest points)


# ---- the process-wide FIFO of training slots ------------------------------------------------


class SlotQueue:
    """At most ``cap`` owners train at once; the others wait in line.

    The line is FIFO in two classes: owners that just pressed Play (``enqueue(...,
    fresh=True)``, their first turn) stand before owners that already had a turn and queued
    again when their time slice ended. So every student sees a first chart within a few
    short first turns, however many long runs are sharing the slots (measured with 30
    sessions on 2 slots and 30-s slices, strict FIFO left the last Play without a first step
    for 3.5 minutes). ``acquire`` blocks (polling a cancel predicate) until the owner is at
    the head of the line and a slot is free. All state sits behind one condition variable."""

    def __init__(self, cap: int | None = None) -> None:
        self._cv = threading.Condition()
        self._cap = cap if cap is not None else env_int("GRADLAB_MAX_WORKERS", default_slots())
        self._active: set[int] = set()
        self._waiting: deque[int] = deque()
        self._fresh: set[int] = set()          # waiting for their first turn since Play

    @property
    def cap(self) -> int:
        return self._cap

    @cap.setter
    def cap(self, value: int) -> None:
        with self._cv:
            self._cap = max(1, int(value))
            self._cv.notify_all()

    def acquire(self, owner: object, cancelled: Callable[[], bool], poll_s: float = 0.1) -> bool:
        """Wait for a slot. True once held; False if ``cancelled()`` became true first."""
        oid = id(owner)
        with self._cv:
            if oid in self._active:
                return True
            if oid not in self._waiting:
                self._waiting.append(oid)
            while True:
                if oid not in self._waiting:       # released from another thread
                    return oid in self._active
                if self._head_locked() == oid and len(self._active) < self._cap:
                    self._waiting.remove(oid)
                    self._fresh.discard(oid)
                    self._active.add(oid)
                    self._cv.notify_all()
                    return True
                if cancelled():
                    self._waiting.remove(oid)
                    self._fresh.discard(oid)
                    self._cv.notify_all()
                    return False
                self._cv.wait(poll_s)

    def _order_locked(self) -> list[int]:
        """The line as it will be served: first turns, then returning holders, FIFO each."""
        return ([o for o in self._waiting if o in self._fresh]
                + [o for o in self._waiting if o not in self._fresh])

    def _head_locked(self) -> int | None:
        order = self._order_locked()
        return order[0] if order else None

    def enqueue(self, owner: object, *, fresh: bool = False) -> None:
        """Take a place in line now (when Play is pressed), so the order is the order of
        the presses, not of the worker threads waking up. ``fresh``: a first turn since
        Play (stands before those who queue again after a turn)."""
        oid = id(owner)
        with self._cv:
            if oid not in self._active and oid not in self._waiting:
                self._waiting.append(oid)
                if fresh:
                    self._fresh.add(oid)
                self._cv.notify_all()

    def leave_line(self, owner: object) -> None:
        """Give up a place in line (a slot already held is kept)."""
        oid = id(owner)
        with self._cv:
            if oid in self._waiting:
                self._waiting.remove(oid)
                self._fresh.discard(oid)
                self._cv.notify_all()

    def release(self, owner: object) -> None:
        oid = id(owner)
        with self._cv:
            self._active.discard(oid)
            if oid in self._waiting:
                self._waiting.remove(oid)
            self._fresh.discard(oid)
            self._cv.notify_all()

    def position(self, owner: object) -> int | None:
        """1-based place in the waiting line, or None if not waiting."""
        with self._cv:
            oid = id(owner)
            if oid not in self._waiting:
                return None
            return self._order_locked().index(oid) + 1

    def holds(self, owner: object) -> bool:
        with self._cv:
            return id(owner) in self._active

    def someone_waiting(self) -> bool:
        with self._cv:
            return bool(self._waiting)

    def stats(self) -> dict[str, int]:
        with self._cv:
            return {"cap": self._cap, "active": len(self._active), "waiting": len(self._waiting)}


#: The one queue shared by every session of this server process.
SLOTS = SlotQueue()


# ---- the process-wide step-0 measurements ---------------------------------------------------


class InitialSnapshots:
    """Step-0 snapshots by (run function, config), measured on one shared thread.

    ``core.train.run`` is deterministic for a config (its own seeded ``torch.Generator``),
    so the snapshot of a fresh network is the same for every session that asks with the
    same config: it is measured once, kept in a small LRU (bounded by entries and by the
    layer-records it holds) and shared. Requests for configs not measured yet queue FIFO,
    deduplicated; the one measuring thread ends after ``idle_s`` without work and is started
    again on the next request. The measurement takes no training slot: it is one forward /
    backward pass, and what queues behind it are other sessions' step-0 pictures, not runs.
    """

    def __init__(self, max_entries: int = 32, max_layers: int = 20_000, idle_s: float = 10.0):
        self._cv = threading.Condition()
        self._max_entries = max_entries
        self._max_layers = max_layers
        self._idle_s = idle_s
        # key -> (full snapshot, light copy, the page's shared figure dict)
        self._done: OrderedDict[tuple, tuple] = OrderedDict()
        self._pending: OrderedDict[tuple, list[Callable[[object], None]]] = OrderedDict()
        self._thread: threading.Thread | None = None
        self.measured = 0                     # measurements made (tests, load figures)

    @staticmethod
    def key(cfg: RunConfig, run_fn: Callable[..., Iterator[Snapshot]] | None) -> tuple:
        return (run_fn or run, cfg)

    def get(self, cfg: RunConfig, run_fn=None):
        """The (snapshot, light copy, figures) for ``cfg`` if measured, else None."""
        k = self.key(cfg, run_fn)
        with self._cv:
            hit = self._done.get(k)
            if hit is not None:
                self._done.move_to_end(k)
            return hit

    def request(self, cfg: RunConfig, run_fn, callback: Callable[[object], None]) -> None:
        """Measure ``cfg`` (once, however many ask) and call ``callback(result)`` from the
        measuring thread; called at once (on this thread) when the result is cached."""
        k = self.key(cfg, run_fn)
        with self._cv:
            hit = self._done.get(k)
            if hit is None:
                self._pending.setdefault(k, []).append(callback)
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._work, daemon=True,
                                                    name="gradlab-step0")
                    self._thread.start()
                self._cv.notify_all()
                return
            self._done.move_to_end(k)
        callback(hit)

    def clear(self) -> None:
        with self._cv:
            self._done.clear()

    def stats(self) -> dict[str, int]:
        with self._cv:
            return {"cached": len(self._done), "pending": len(self._pending),
                    "measured": self.measured}

    def _measure(self, k: tuple):
        run_fn, cfg = k
        configure_torch()
        gen = run_fn(cfg, RunControl(lr=cfg.lr, every=None))
        try:
            snap = next(gen)
        except StopIteration:
            return RuntimeError("the run produced no snapshot")
        except Exception as e:  # noqa: BLE001 - becomes the session's error message
            return e
        finally:
            gen.close()
        return snap, light(snap), FrozenFigures()

    def _work(self) -> None:
        while True:
            with self._cv:
                deadline = time.monotonic() + self._idle_s
                while not self._pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        if self._thread is threading.current_thread():
                            self._thread = None
                        return
                    self._cv.wait(left)
                k = next(iter(self._pending))
            try:
                result = self._measure(k)
            except BaseException as e:  # noqa: BLE001 - the waiting sessions must hear of it
                result = e
            if isinstance(result, BaseException):
                result = result.with_traceback(None)   # no frames (and tensors) kept alive
            with self._cv:
                callbacks = self._pending.pop(k, [])
                self.measured += 1
                if not isinstance(result, BaseException):   # a failure is not cached
                    self._done[k] = result
                    self._done.move_to_end(k)
                    self._evict_locked()
            for cb in callbacks:
                try:
                    cb(result)
                except Exception:  # noqa: BLE001 - one session's bug must not stop the rest
                    _LOG.exception("step-0 callback failed")

    def _evict_locked(self) -> None:
        def layers(v) -> int:
            return len(v[0].layers)

        total = sum(layers(v) for v in self._done.values())
        while len(self._done) > 1 and (len(self._done) > self._max_entries
                                       or total > self._max_layers):
            _, v = self._done.popitem(last=False)
            total -= layers(v)


#: The one step-0 cache / measuring thread of this server process.
INITIAL = InitialSnapshots()


# ---- what the UI reads ------------------------------------------------------------------------

#: Status values. "active" ones keep the page's fragment refreshing.
IDLE, WAITING, RUNNING, PAUSED, FINISHED, DIVERGED, ERROR, CLOSED = (
    "idle", "waiting", "running", "paused", "finished", "diverged", "error", "closed")
ACTIVE = frozenset({WAITING, RUNNING})


@dataclass(frozen=True)
class TrainerView:
    """An immutable copy of what the page draws; taken under the lock, read without it."""

    status: str                         # see the status constants above
    config: RunConfig                   # the config of the current run
    step: int                           # optimiser steps done (step of the latest snapshot)
    total_steps: int                    # config.steps
    steps_per_s: float                  # recent training speed (0 when not running)
    history: tuple[Snapshot, ...]       # light snapshots (no histograms / spectra), thinned
    latest: Snapshot | None             # the last *good* full snapshot: what panels draw
    diverged: Snapshot | None           # the snapshot that found NaN/inf, if any
    message: str | None                 # error / divergence / idle message for a banner
    queue_position: int | None          # 1-based place in line while waiting for a slot
    lr: float                           # the learning rate in effect (live-changeable)
    busy: bool                          # a single step (or the step-0 measurement) is pending
    epoch: int = 0                      # bumped by every reset (identifies the run)

    @property
    def active(self) -> bool:
        """True while the page should keep refreshing (training, waiting, stepping)."""
        return self.status in ACTIVE or self.busy or self.queue_position is not None

    @property
    def status_text(self) -> str:
        """One short phrase for the status line."""
        if self.status == WAITING or self.queue_position is not None:
            pos = self.queue_position or 1
            return f"waiting for a slot: {ordinal(pos)} in line"
        if self.status == DIVERGED and self.diverged is not None:
            layer = (self.diverged.diverged_layer or "an unknown layer").split(" (")[0]
            return f"diverged at step {self.diverged.step} in {layer}"
        if self.status == FINISHED:
            return f"finished ({self.step:,} steps)"
        if self.status == ERROR:
            return "stopped by an error"
        if self.status == IDLE:
            return "measuring the initial network" if self.busy else "ready"
        if self.status == PAUSED and self.busy:
            return "stepping"
        return self.status


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def light(s: Snapshot) -> Snapshot:
    """The snapshot without its per-layer arrays: what the history curves need."""
    return dataclasses.replace(
        s,
        layers=[dataclasses.replace(la, act_hist=None, grad_hist=None,
                                    weight_singular_values=None, delta_top=[])
                for la in s.layers],
        jacobian_singular_values=None, jacobian_log_singular_values=None,
        time_grad_norms=None, act_edges=None, grad_edges=None,
    )


def history_cap(n_layers: int) -> int:
    """How many snapshots the history keeps for a net with ``n_layers`` layers."""
    return int(max(HISTORY_MIN, min(HISTORY_MAX, HISTORY_BUDGET // max(1, n_layers))))


def thin(items: list, cap: int) -> list:
    """When ``items`` is full, drop every other *old* entry (the first one always stays);
    the newest quarter is kept whole. A long run keeps the shape of its whole curve."""
    if len(items) < cap:
        return items
    recent = max(1, int(cap * HISTORY_RECENT))
    old, new = items[:-recent], items[-recent:]
    return old[::2] + new


class FrozenFigures(dict):
    """A figure cache of the page (``Trainer.ui_cache``). The page caches a figure with the
    inputs it was built from and never changes it afterwards, so a figure put here is
    frozen: ``app.stream_chart`` serialises it once, and a panel whose inputs did not change
    costs no JSON on the next redraw (sessions waiting in line redraw twice a second). The
    dict for a shared step-0 snapshot is shared by every session that shows it."""

    def __setitem__(self, k, value) -> None:
        fig = value[1] if isinstance(value, tuple) and len(value) == 2 else None
        if fig is not None:
            try:
                from app.stream_chart import freeze
            except ImportError:  # pragma: no cover - the component is optional
                pass
            else:
                freeze(fig)
        super().__setitem__(k, value)


# ---- the per-session trainer --------------------------------------------------------------------

_LIVE: weakref.WeakSet[Trainer] = weakref.WeakSet()


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
        slots: SlotQueue | None = None,
        idle_limit_s: float | None = None,
        slice_s: float | None = None,
        first_turn_s: float | None = None,
        run_fn: Callable[..., Iterator[Snapshot]] | None = None,
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
        self._control = None                  # RunControl of the current generator
        self._closed = False
        self._last_touch = time.monotonic()
        self._thread: threading.Thread | None = None
        self._measuring = False               # a step-0 picture is on its way (INITIAL)
        self._initial: Snapshot | None = None  # the shared step-0 snapshot in force, if any
        self._initial_ui: dict | None = None   # the figures every session shares for it
        self._ui: dict = FrozenFigures()      # this session's figures
        self.configured = False               # set by the first reset / set_config
        _LIVE.add(self)

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
            # A Play counts as fresh (first-turn priority) when it starts a new run (step 0:
            # after Reset, or after a finished run, which Play starts again) or when this
            # session has not trained within the last slice. Pausing a run and playing it
            # again right away does not jump the line. (Measured, 30 sessions on 2 slots:
            # with a restarted run queued behind every run's second turn, 2 of them waited
            # over 3 minutes for a first step.)
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
        _schedule_trim()

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

    def _on_initial(self, epoch: int, result: object) -> None:
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

    def _train(self, gen, gen_epoch):
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


# ---- giving memory back after a class closes its tabs ---------------------------------------

_TRIM_LOCK = threading.Lock()
_TRIM_TIMER: threading.Timer | None = None
TRIM_DELAY_S = 5.0


def _schedule_trim(delay: float | None = None) -> None:
    """After trainers are released (tabs closed), once things are quiet: one full garbage
    collection (a released trainer's history can sit in a reference cycle, and
    ``runner.postScriptGC`` is off) and, on glibc, ``malloc_trim(0)`` so the freed memory
    goes back to the OS instead of staying in the process (measured: without it, RSS 60 s
    after 30 sessions closed stayed at its load peak). Debounced: a class closing 30 tabs
    triggers one pass, ``TRIM_DELAY_S`` after the last release. (A second pass after
    ``server.disconnectedSessionTTL``, when Streamlit drops the closed sessions' state,
    freed nothing more in the load test.)"""
    global _TRIM_TIMER
    with _TRIM_LOCK:
        if _TRIM_TIMER is not None:
            _TRIM_TIMER.cancel()
        _TRIM_TIMER = threading.Timer(TRIM_DELAY_S if delay is None else delay, _trim)
        _TRIM_TIMER.name = "gradlab-trim"
        _TRIM_TIMER.daemon = True
        _TRIM_TIMER.start()


def _trim() -> None:
    global _TRIM_TIMER
    with _TRIM_LOCK:
        if _TRIM_TIMER is threading.current_thread():
            _TRIM_TIMER = None
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (musl, macOS): nothing to trim
        pass


def release_all(timeout: float = 5.0) -> bool:
    """Release every live trainer of this process and wait for their threads (tests,
    server shutdown). True if every worker thread has ended."""
    trainers = list(_LIVE)
    for t in trainers:
        t.release()
    deadline = time.monotonic() + timeout
    return all(t.join(max(0.0, deadline - time.monotonic())) for t in trainers)


def live_trainers() -> list[Trainer]:
    return [t for t in list(_LIVE) if t.thread_alive]


# ---- the Streamlit binding ---------------------------------------------------------------


def _release(trainer: Trainer) -> None:
    trainer.release()


def _usable(trainer: Trainer) -> bool:
    """A released trainer is never handed out again (a new one is made instead)."""
    return not trainer.closed


def get_trainer() -> Trainer:
    """This browser session's Trainer (created on first use, released when it ends)."""
    import streamlit as st

    return _session_trainer_factory(st)()


_FACTORY = None


def _session_trainer_factory(st):
    global _FACTORY
    if _FACTORY is None:
        @st.cache_resource(scope="session", on_release=_release, show_spinner=False,
                           max_entries=1, validate=_usable)
        def _session_trainer() -> Trainer:
            return Trainer()

        _FACTORY = _session_trainer
    return _FACTORY


__all__ = [
    "ACTIVE", "LIVE_FIELDS", "SLOTS", "SlotQueue", "Trainer", "TrainerView", "configure_torch",
    "get_trainer", "history_cap", "light", "live_trainers", "ordinal", "release_all", "thin",
]
