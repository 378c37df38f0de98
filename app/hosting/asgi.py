"""Gradient Lab as an ASGI app: what each ``gradlab-serve`` web worker process runs.

Each worker warms itself before uvicorn lets it take a connection, so no first page pays a
cold start. It serves pages only: runs train in the executors (app/live/executor.py), so a
worker never imports torch. What is per process, and why: deploy/README.md, "Inside a pod".
(``streamlit run app/main.py``, ``make run``, stays the way to develop.)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # uvicorn imports this module with the working directory on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from app.hosting.serve import load_streamlit_config  # noqa: E402
from app.hosting.static_cache import Mount, StaticCache, Store  # noqa: E402

_LOG = logging.getLogger("gradlab.asgi")
MAIN_SCRIPT = ROOT / "app" / "main.py"


def warm_process() -> None:
    """Everything a first page would otherwise pay in this process: the page modules and
    every lesson imported, and the connections to the training executors opened."""
    import pandas  # noqa: F401  - before any thread does (plotly imports it lazily: a race)

    from app import charts, controls, lessons, live  # noqa: F401
    from app.stream_chart import stream_chart  # noqa: F401

    live.warm_up()
    try:
        lessons.discover()
    except Exception:  # noqa: BLE001 - main.py loads lessons one by one and logs the bad one
        _LOG.exception("lesson discovery failed while warming up")


def quiet_access_log() -> None:
    """No line per HTTP request (the ingress logs those): Streamlit gives uvicorn's access
    logger a handler after uvicorn's ``access_log=False`` emptied it, and uvicorn logs
    whenever that logger has a handler (measured: a line per health probe and page load)."""
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


#: Streamlit's front end: index.html, and the hashed files it loads under ``static/``.
STREAMLIT_FRONTEND = Path(st.__file__).parent / "static"


def static_store() -> Store:
    """The immutable front-end files this process answers from memory (static_cache):
    Streamlit's hashed ``/static/`` files and the chart component's two script directories,
    in that order, under ``server.baseUrlPath`` when one is set."""
    from app import stream_chart as sc

    base = "/" + str(st.get_option("server.baseUrlPath") or "").strip("/")
    base = "" if base == "/" else base
    return Store([
        Mount(f"{base}/static/", STREAMLIT_FRONTEND / "static"),
        Mount(f"{base}/component/{sc._ASSETS_NAME}/", sc.FRONTEND_DIR, versioned=True),
        Mount(f"{base}/component/{sc._PLOTLYJS_NAME}/", sc.PLOTLY_DIR, versioned=True),
    ])


def warm_static(store: Store) -> int:
    """Load and compress, before the first student, the files every first visit fetches:
    the chart scripts (plotly.min.js takes ~0.15 s to gzip) and what index.html names."""
    import re

    from app import stream_chart as sc

    static, assets, plotly = store.mounts
    index = (STREAMLIT_FRONTEND / "index.html").read_text()
    named = re.findall(r'["\']\.?/?static/([^"\'?#]+)', index)
    return store.warm([assets.prefix + sc._JS_FILE, plotly.prefix + sc._PLOTLY_FILE,
                       *(static.prefix + rel for rel in named)])


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    quiet_access_log()
    warm_process()
    from app.stream_chart import register_static_routes

    register_static_routes()   # the chart scripts, served by every worker from the start
    warm_static(STATIC)
    yield


#: Settings a hosted server always has, whatever the config file says: no file watcher (it
#: walks every module torch imported after each script run: measured ~0.3 s of CPU per first
#: page, 10x the page itself) and no browser to open.
HOSTED_OPTIONS: dict[str, Any] = {"server_fileWatcherType": "none", "server_headless": True}


load_streamlit_config(HOSTED_OPTIONS)   # the STREAMLIT_* variables, as `streamlit run`
STATIC = static_store()
app = st.App(MAIN_SCRIPT, lifespan=_lifespan,
             middleware=[Middleware(StaticCache, store=STATIC)])
