"""The step-0 picture of a config, measured once per server process and shared.

Opening the page costs no thread and no slot of its own: the step-0 snapshot of a fresh
network (what the page shows before Play) depends on the config only, so :data:`INITIAL`
measures it once per config on ONE process-wide thread, and every session with that config
shares the same immutable Snapshot and its figures (a class opening one link measures once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from app.live.history import light
from app.live.process import configure_torch
from app.stream_chart.frozen import FrozenFigures
from core.config import RunConfig
from core.snapshot import Snapshot
from core.train import RunControl, run

_LOG = logging.getLogger("gradlab.live")

#: A run function: ``core.train.run`` or a stand-in with its signature (tests).
RunFn = Callable[..., Iterator[Snapshot]]
#: What a measurement gives: (full snapshot, light copy, the shared figure dict).
Initial = tuple[Snapshot, Snapshot, FrozenFigures]
#: What a callback receives: the measurement, or the exception it raised.
InitialResult = Initial | BaseException


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

    def __init__(self, max_entries: int = 32, max_layers: int = 20_000,
                 idle_s: float = 10.0) -> None:
        self._cv = threading.Condition()
        self._max_entries = max_entries
        self._max_layers = max_layers
        self._idle_s = idle_s
        self._done: OrderedDict[tuple, Initial] = OrderedDict()
        self._pending: OrderedDict[tuple, list[Callable[[InitialResult], None]]] = OrderedDict()
        self._thread: threading.Thread | None = None
        self.measured = 0                     # measurements made (tests, load figures)

    @staticmethod
    def key(cfg: RunConfig, run_fn: RunFn | None) -> tuple:
        return (run_fn or run, cfg)

    def get(self, cfg: RunConfig, run_fn: RunFn | None = None) -> Initial | None:
        """The (snapshot, light copy, figures) for ``cfg`` if measured, else None."""
        k = self.key(cfg, run_fn)
        with self._cv:
            hit = self._done.get(k)
            if hit is not None:
                self._done.move_to_end(k)
            return hit

    def request(self, cfg: RunConfig, run_fn: RunFn | None,
                callback: Callable[[InitialResult], None]) -> None:
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

    def _measure(self, k: tuple) -> InitialResult:
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
        def layers(v: Initial) -> int:
            return len(v[0].layers)

        total = sum(layers(v) for v in self._done.values())
        while len(self._done) > 1 and (len(self._done) > self._max_entries
                                       or total > self._max_layers):
            _, v = self._done.popitem(last=False)
            total -= layers(v)


#: The one step-0 cache / measuring thread of this server process.
INITIAL = InitialSnapshots()
