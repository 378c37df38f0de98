"""Trainers' lifecycle: one per browser session, released when the session ends.

:func:`get_trainer` makes the session's Trainer a *session-scoped* ``st.cache_resource``
with a release hook: when the tab closes, Streamlit clears the session's resources and
:meth:`Trainer.release` drops its run from the executor at once. Nothing big (models,
histories) lives in ``st.session_state``, which outlives a closed tab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from app.live.trainer import TRAINERS, Trainer


def release_all() -> None:
    """Release every trainer of this process (tests, server shutdown): their runs are
    dropped from the executors at once."""
    for t in list(TRAINERS):
        t.release()


def live_trainers() -> list[Trainer]:
    """The trainers of this process that hold a run on an executor."""
    return [t for t in list(TRAINERS) if t.has_job]


def _release(trainer: Trainer) -> None:
    trainer.release()


def _usable(trainer: Trainer) -> bool:
    """A released trainer is never handed out again (a new one is made instead)."""
    return not trainer.closed


def get_trainer() -> Trainer:
    """This browser session's Trainer (created on first use, released when it ends)."""
    import streamlit as st

    return _session_trainer_factory(st)()


_FACTORY: Callable[[], Trainer] | None = None
_EXTRAS_FACTORY: Callable[[], SessionExtras] | None = None


@dataclass
class SessionExtras:
    """A session's runs beside its main one: the pinned run A of a compare (a Trainer of
    its own, training through the same executors) and the last Repeat x N result."""

    pinned: Trainer | None = None
    pinned_live: bool = False         # A trains with B (False: a kept, finished picture)
    repeat: Any = None                # a core.repeat.RepeatResult
    repeat_key: Any = None            # (config without seed, seeds) it was computed for
    closed: bool = field(default=False)

    def unpin(self) -> None:
        pinned, self.pinned, self.pinned_live = self.pinned, None, False
        if pinned is not None:
            pinned.release()

    def release(self) -> None:
        self.closed = True
        self.unpin()
        self.repeat = self.repeat_key = None


def get_extras() -> SessionExtras:
    """This browser session's :class:`SessionExtras` (released with the session)."""
    import streamlit as st

    global _EXTRAS_FACTORY
    if _EXTRAS_FACTORY is None:
        @st.cache_resource(scope="session", on_release=lambda x: x.release(),
                           show_spinner=False, max_entries=1,
                           validate=lambda x: not x.closed)
        def _session_extras() -> SessionExtras:
            return SessionExtras()

        _EXTRAS_FACTORY = _session_extras
    return _EXTRAS_FACTORY()


def _session_trainer_factory(st: ModuleType) -> Callable[[], Trainer]:
    """The session-scoped resource, declared once per process (on first use)."""
    global _FACTORY
    if _FACTORY is None:
        @st.cache_resource(scope="session", on_release=_release, show_spinner=False,
                           max_entries=1, validate=_usable)
        def _session_trainer() -> Trainer:
            return Trainer()

        _FACTORY = _session_trainer
    return _FACTORY
