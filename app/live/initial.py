"""The step-0 picture of a config, measured once per web process and shared.

Opening the page costs no thread of its own: the step-0 snapshot of a fresh network (what
the page shows before Play) depends on the config only, so :data:`INITIAL` asks an executor
for it once per config, and every session with that config shares the same immutable
Snapshot and its figures (a class opening one link measures once).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from app.stream_chart.frozen import FrozenFigures
from core.config import RunConfig
from core.snapshot import Snapshot

_LOG = logging.getLogger("gradlab.live")

#: A run function: ``core.train.steps`` or a stand-in with its signature (tests), named by
#: ``"module:qualname"`` so that an executor process can import it.
RunFn = Callable[..., Iterator[Snapshot | None]]
#: What a measurement gives: (full snapshot, light copy, the shared figure dict).
Initial = tuple[Snapshot, Snapshot, FrozenFigures]
#: What a callback receives: the measurement, or the exception that stopped it.
InitialResult = Initial | BaseException


def run_ref(run_fn: RunFn | None) -> str | None:
    """``"module:qualname"`` of a module-level run function (None: ``core.train.steps``)."""
    if run_fn is None:
        return None
    ref = f"{run_fn.__module__}:{run_fn.__qualname__}"
    assert "<" not in ref, f"{ref}: an executor can only import a module-level function"
    return ref


class InitialSnapshots:
    """Step-0 snapshots by (run function, config), measured on an executor.

    ``core.train.steps`` is deterministic for a config (its own seeded ``torch.Generator``),
    so a fresh network's snapshot is the same for every session that asks with the same
    config: it is measured once, kept in a small LRU (bounded by entries and by the
    layer-records it holds) and shared. Requests for a config being measured join it.
    """

    def __init__(self, max_entries: int = 32, max_layers: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._max_layers = max_layers
        self._done: OrderedDict[tuple, Initial] = OrderedDict()
        self._pending: dict[tuple, list[Callable[[InitialResult], None]]] = {}
        self.measured = 0                     # measurements made (tests, load figures)

    @staticmethod
    def key(cfg: RunConfig, ref: str | None) -> tuple:
        return (ref, cfg)

    def get(self, cfg: RunConfig, ref: str | None = None) -> Initial | None:
        """The (snapshot, light copy, figures) for ``cfg`` if measured, else None."""
        k = self.key(cfg, ref)
        with self._lock:
            hit = self._done.get(k)
            if hit is not None:
                self._done.move_to_end(k)
            return hit

    def request(self, cfg: RunConfig, ref: str | None,
                callback: Callable[[InitialResult], None], pool: Callable[[], Any]) -> None:
        """Measure ``cfg`` (once, however many ask) and call ``callback(result)`` from the
        pool's receiver thread; at once, on this thread, when the result is cached."""
        k = self.key(cfg, ref)
        with self._lock:
            hit = self._done.get(k)
            if hit is not None:
                self._done.move_to_end(k)
            else:
                waiting = self._pending.get(k)
                self._pending.setdefault(k, []).append(callback)
                if waiting is not None:
                    return                    # being measured: this request joins it
        if hit is not None:
            callback(hit)
            return
        try:
            def handler(msg: tuple) -> None:
                if msg[0] == "snap":
                    snap = msg[3] or msg[2]
                    self._finish(k, (snap, msg[2], FrozenFigures()))
                elif msg[0] == "end" and msg[2] != "finished":
                    self._finish(k, RuntimeError(msg[3] or msg[2]))
                elif msg[0] == "end":
                    self._finish(k, RuntimeError("the run produced no snapshot"))

            pool().start({"cfg": cfg, "fn": ref, "first_only": True}, handler)
        except Exception as e:  # noqa: BLE001 - e.g. no executor: the sessions hear of it
            self._finish(k, e)

    def _finish(self, k: tuple, result: InitialResult) -> None:
        with self._lock:
            callbacks = self._pending.pop(k, None)
            if callbacks is None:
                return                        # already answered (a late "end" message)
            self.measured += 1
            if not isinstance(result, BaseException):   # a failure is not cached
                self._done[k] = result
                self._evict_locked()
        for cb in callbacks:
            try:
                cb(result)
            except Exception:  # noqa: BLE001 - one session's bug must not stop the rest
                _LOG.exception("step-0 callback failed")

    def clear(self) -> None:
        with self._lock:
            self._done.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"cached": len(self._done), "pending": len(self._pending),
                    "measured": self.measured}

    def _evict_locked(self) -> None:
        def layers(v: Initial) -> int:
            return len(v[0].layers)

        total = sum(layers(v) for v in self._done.values())
        while len(self._done) > 1 and (len(self._done) > self._max_entries
                                       or total > self._max_layers):
            _, v = self._done.popitem(last=False)
            total -= layers(v)


#: The step-0 cache of this web process.
INITIAL = InitialSnapshots()
