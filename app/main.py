"""Gradient Lab's entry point: ``streamlit run app/main.py``.

Sets up the page, connects to the training executors once per server process (so the
first chart appears within a couple of seconds of pressing Play), and builds the navigation:
the live playground, then one page per guided lesson found by ``app.lessons.discover()``.
Training runs only in the executors: this process never imports torch
(``tests/test_web_process.py``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ first, not the root
    sys.path.insert(0, str(_ROOT))

import pandas  # noqa: E402,F401  - import before any thread does (plotly imports it lazily: a race)
import streamlit as st  # noqa: E402

from app import live  # noqa: E402

_LOG = logging.getLogger("gradlab")


def _lesson_modules() -> list:
    """Lesson modules in order; a broken lesson is skipped (and logged), never fatal."""
    from app import lessons

    try:
        return lessons.discover()
    except Exception:  # noqa: BLE001
        _LOG.exception("lesson discovery failed; loading lessons one by one")
    import importlib
    import pkgutil

    mods = []
    for m in sorted(pkgutil.iter_modules(lessons.__path__), key=lambda m: m.name):
        if m.name[:1] == "l" and m.name[1:3].isdigit():
            try:
                mods.append(importlib.import_module(f"app.lessons.{m.name}"))
            except Exception:  # noqa: BLE001
                _LOG.exception("lesson %s failed to import", m.name)
    return mods


def _lesson_page(module) -> st.Page:
    name = module.__name__.rsplit(".", 1)[-1]

    def page() -> None:
        module.render()

    page.__name__ = name
    return st.Page(page, title=str(getattr(module, "TITLE", name)),
                   icon=getattr(module, "ICON", None) or ":material/school:", url_path=name)


def main() -> None:
    live.warm_up()         # once per process: connect to (or start) the executors
    from app import presenter  # presenter mode (?present=1) and the fit-the-screen CSS

    presenter.adopt_url()
    st.set_page_config(page_title="Gradient Lab", page_icon="📉",
                       layout="wide", initial_sidebar_state=presenter.sidebar_state())
    presenter.page_style()
    pages: dict[str, list[st.Page]] = {
        "Playground": [st.Page(_ROOT / "app" / "views" / "playground.py", title="Playground",
                               icon=":material/science:", default=True)],
    }
    lesson_pages = []
    for module in _lesson_modules():
        try:
            lesson_pages.append(_lesson_page(module))
        except Exception:  # noqa: BLE001
            _LOG.exception("lesson %s has no usable page", getattr(module, "__name__", "?"))
    if lesson_pages:
        pages["Lessons"] = lesson_pages
    from app.views import class_join  # the class board: its page, and ?class=CODE links

    pages["Class"] = class_join.pages(_ROOT)
    class_join.adopt_class_link()
    st.navigation(pages, expanded=True).run()   # every lesson listed, no "View more"


main()
