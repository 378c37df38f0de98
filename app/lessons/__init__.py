"""Guided lessons: one module per lesson, named ``lNN_slug.py``, each exposing

    TITLE: str          # shown in the navigation, e.g. "1 · Nielsen: speed of learning"
    ICON: str           # a Material icon name such as ":material/speed:"
    PRESETS: list[str]  # the core presets the lesson loads (also runnable headless)
    def render() -> None  # the page body

``app/main.py`` discovers the modules in order, so a lesson is added by adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover() -> list[ModuleType]:
    """All lesson modules (``lNN_*.py``) sorted by number."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name[:1] == "l"
                   and m.name[1:3].isdigit())
    return [importlib.import_module(f"{__name__}.{n}") for n in names]
