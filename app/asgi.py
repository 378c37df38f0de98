"""Gradient Lab as an ASGI app: the hosted instance, one server process per core.

    WEB_CONCURRENCY=2 uvicorn app.asgi:app --host 0.0.0.0 --port 8501 --no-access-log

(``make host`` runs exactly that; the Docker image's CMD too.) ``streamlit run app/main.py``
(``make run``) stays the way to develop: one process, same page.

Why: one Python process gives the page and the training about one core (the GIL; the
issue's prototype measured 30 trainers in 8.8/8.7/9.4/10.7 s with 1/2/4/8 slots, and a
burst of first page loads is bound the same way, ~35 ms of one core per session here). A
Streamlit session is one websocket and lives in the process that accepted it, so uvicorn's
own worker processes, sharing one listening socket, spread sessions over the cores with no
proxy, scheduler or shared state of ours. What each worker holds is per process: its
sessions, its FIFO of training slots (``GRADLAB_MAX_WORKERS`` each; by default the cores
divided by ``WEB_CONCURRENCY``, see ``app.env.default_slots``) and its caches.

Each worker warms itself in the lifespan hook, before uvicorn lets it accept a connection:
torch and the core are imported and run once, the lessons are imported, the chart scripts
are registered, and the front-end files every first visit fetches are loaded into the
worker's static cache (``app.static_cache``: answered from memory, gzipped once), so no
student's first page pays a worker's cold start.

A reconnecting tab (network blip, laptop lid) may reach another worker, which does not know
its session: the page then starts again at step 0 with the same settings (the page keeps
its config in the URL), as after a pod restart. Kubernetes' cookie affinity keeps a browser
on its pod; which worker inside the pod holds its websocket is the kernel's choice. Nothing
here serves per-process files to the browser except the chart scripts, which every worker
registers at start-up (no ``st.image`` or downloads: their media files live in one worker).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # uvicorn imports app.asgi with the working directory on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from app.serve import load_streamlit_config  # noqa: E402
from app.static_cache import Mount, StaticCache, Store  # noqa: E402

_LOG = logging.getLogger("gradlab.asgi")
MAIN_SCRIPT = ROOT / "app" / "main.py"


def warm_process() -> None:
    """Everything a first page would otherwise pay in this process: torch and the core
    (imported and run once on a tiny net), the page modules and every lesson."""
    import pandas  # noqa: F401  - before any thread does (plotly imports it lazily: a race)

    from app import charts, controls, lessons, session  # noqa: F401
    from app.stream_chart import stream_chart  # noqa: F401

    session.warm_up()
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
    """The immutable front-end files this process answers from memory (app/static_cache):
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
