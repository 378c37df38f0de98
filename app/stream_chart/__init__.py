"""stream_chart: Plotly charts that update IN PLACE inside Streamlit.

``st.plotly_chart`` remounts its chart whenever the figure changes (visible flicker, and
zoom is lost); a page that redraws from ``st.fragment(run_every=...)`` several times a second
needs the opposite. ``stream_chart(fig, key=...)`` keeps ONE ``<div>`` per key and calls
``Plotly.react(div, data, layout, config)`` on every update, so ``layout.uirevision``
keeps the user's zoom and hover across frames.

How (Streamlit 1.67):

* A components-v2 component (``st.components.v2.component``): rendered in the page itself,
  no iframe, so ONE copy of plotly.js serves every chart on the page. Streamlit re-invokes
  its JS with the same parent element whenever ``data`` changes; the element keeps its
  identity because it is keyed.
* The inline JS of a v2 component travels with every update, so it is a ~300-byte loader;
  the real module (``frontend/stream_chart.js``) and ``plotly.min.js`` are static files
  that Streamlit serves through components-v1 routes (v1 components with a path, registered
  by :func:`register_static_routes`, never rendered). plotly.min.js is served straight from
  the installed ``plotly`` package (``plotly/package_data``): no CDN, works offline, nothing
  vendored, and the plotly.js version always matches the Python package that wrote the JSON.
* The figure goes over the wire as bytes of ``plotly.io.to_json`` output: NumPy arrays are
  base64 typed arrays, and bytes avoid escaping JSON inside JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
from plotly.basedatatypes import BaseFigure
from streamlit.components.v1.custom_component import CustomComponent
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.stream_chart.frozen import FrozenFigures

_HERE = Path(__file__).resolve().parent
FRONTEND_DIR = _HERE / "frontend"
PLOTLY_DIR = Path(plotly.__file__).resolve().parent / "package_data"
_JS_FILE = "stream_chart.js"
_PLOTLY_FILE = "plotly.min.js"

# v1 names are "<module>.<name>", as declare_component would name them from this module.
_ASSETS_NAME = f"{__name__}.assets"
_PLOTLYJS_NAME = f"{__name__}.plotlyjs"
# Cache busters: the static routes answer "Cache-Control: public".
_JS_VERSION = hashlib.sha1((FRONTEND_DIR / _JS_FILE).read_bytes()).hexdigest()[:12]
_PLOTLY_VERSION = plotly.__version__

#: Plotly config used unless the caller passes one: no logo, resize with the column.
DEFAULT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    # The camera downloads a PNG at 2x (projector-sharp); the JS adds an SVG button.
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


def _loader_js() -> str:
    """The inline v2 module (~300 bytes, sent with every update): find the app's base URL
    from Streamlit's own <script src=".../static/js/..."> (right under server.baseUrlPath,
    on any page of a multipage app and behind path-rewriting proxies), import the real module
    once (the browser caches it by URL) and hand it the base. It must contain a newline:
    Streamlit treats a one-line string that looks like a path as a file to load."""
    return (
        "const s=document.querySelector('script[src*=\"/static/js/\"]');\n"
        "const b=s?s.src.split('/static/js/')[0]+'/':new URL('./',location.href).href;\n"
        f"const u=b+'component/{_ASSETS_NAME}/{_JS_FILE}?v={_JS_VERSION}';\n"
        "export default async c=>(await import(u)).default(c,b+'component/');\n"
    )


# Registered at import; Streamlit copies the definition onto each runtime at mount time.
_MOUNT = st.components.v2.component("gradlab.stream_chart", js=_loader_js(),
                                    isolate_styles=False)


_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()  # runtimes that serve our two dirs


def register_static_routes() -> None:
    """Declare the two v1 static directories on the running server, once per runtime (each
    runtime, e.g. every AppTest, has its own registry; the module is imported only once).

    Called by every mount, and by each hosted worker process at start-up (``app.hosting.asgi``):
    the browser fetches these files over their own HTTP connections, which may reach
    another worker than the one holding its websocket, so every worker must serve them
    before it has run a page itself (measured: without it, a fresh two-worker server
    answered a page's chart script with 404 and the panels showed "BidiComponent Error").
    Without a running server (bare Python) there is nothing to do."""
    if not Runtime.exists():
        return
    runtime = Runtime.instance()
    if runtime in _REGISTERED:
        return
    for name, path in ((_ASSETS_NAME, FRONTEND_DIR), (_PLOTLYJS_NAME, PLOTLY_DIR)):
        # what st.components.v1.declare_component does, but also outside a script run
        runtime.component_registry.register_component(
            CustomComponent(name=name, path=str(path), module_name=__name__))
    _REGISTERED.add(runtime)


def _containers(obj: Any) -> Any:
    """A copy of the dicts and lists of a figure tree; leaves (NumPy arrays included) are
    shared, not copied."""
    if isinstance(obj, dict):
        return {k: _containers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_containers(v) for v in obj]
    return obj


def figure_json(fig: go.Figure | dict[str, Any]) -> str:
    """The figure as plotly JSON (NumPy arrays as base64 typed arrays), not re-validated.

    Same text as ``plotly.io.to_json(fig, validate=False)``, faster: ``Figure.to_dict``
    deep-copies the whole figure (NumPy arrays included) only so that the base64 step may
    rewrite it in place; a copy of its dicts and lists is enough for that (measured: the
    deep copy was a third of a live page's redraw time). Figures with animation frames take
    plotly's own path."""
    if isinstance(fig, BaseFigure) and not fig._frame_objs:
        tree = {"data": _containers(fig._data), "layout": _containers(fig._layout)}
    elif isinstance(fig, dict):           # a plain figure dict (app.charts.RawFigure)
        tree = _containers(fig)
    else:
        return pio.to_json(fig, validate=False)
    _to_base64(tree)
    return pio.to_json(tree, validate=False)


_SKIPPED_KEYS = frozenset({"geojson", "layer", "layers", "range"})   # as plotly skips them
_SHORT_TYPES = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4",
                "uint32": "u4", "float32": "f4", "float64": "f8"}
_NARROW = {"int64": ("int8", "int16", "int32"), "uint64": ("uint8", "uint16", "uint32")}


def _typed_array(v: np.ndarray) -> Any:
    """plotly's ``to_typed_array_spec`` for a NumPy array, without its generic front door
    (narwhals and ``inspect.getattr_static`` on every array: measured as most of a live
    page's redraw time in a class). Same output: 64-bit integers narrowed when they fit,
    other dtypes left for the JSON encoder."""
    if v.size == 0:
        return v
    dtype = str(v.dtype)
    if dtype in _NARROW:
        lo, hi = v.min(), v.max()
        for name in _NARROW[dtype]:
            info = np.iinfo(name)
            if info.min <= lo and hi <= info.max:
                v, dtype = v.astype(name), name
                break
        else:
            return v
    short = _SHORT_TYPES.get(dtype)
    if short is None:
        return v
    spec = {"dtype": short, "bdata": base64.b64encode(np.ascontiguousarray(v)).decode("ascii")}
    if v.ndim > 1:
        spec["shape"] = str(v.shape)[1:-1]
    return spec


def _to_base64(obj: Any) -> None:
    """``_plotly_utils.utils.convert_to_base64`` for trees of dicts, lists and NumPy arrays
    (what app.charts builds): a dict's array values become typed-array specs, in place."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in _SKIPPED_KEYS:
                continue
            if isinstance(value, np.ndarray):
                obj[key] = _typed_array(value)
            elif isinstance(value, dict | list | tuple):
                _to_base64(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            if isinstance(value, dict | list | tuple):
                _to_base64(value)


#: id(frozen figure) -> (weak reference to it, {(key, height): payload bytes})
_FROZEN: dict[int, tuple[weakref.ref, dict[tuple, bytes]]] = {}
_FROZEN_ATTR = "_stream_chart_frozen"


def freeze(fig: go.Figure) -> go.Figure:
    """Promise that ``fig`` will not change any more: its payload is then serialised once
    and reused for every page that draws it (e.g. the step-0 figures that every session of a
    class shares: ``plotly.io.to_json`` is ~4 ms a figure). Returns ``fig``."""
    if isinstance(fig, (go.Figure, dict)) and hasattr(fig, "__dict__"):   # not a bare dict
        setattr(fig, _FROZEN_ATTR, True)
    return fig


def payload(
    fig: go.Figure | dict[str, Any],
    *,
    key: str = "",
    height: int = 360,
    config: dict[str, Any] | None = None,
) -> bytes:
    """The exact bytes sent to the browser for one update (exposed to measure its size).
    Memoised for figures passed to :func:`freeze` drawn with the default config (a caller's
    own config dict may change between calls, so it is never part of a memo key)."""
    if config is not None or not getattr(fig, _FROZEN_ATTR, False):
        return _payload(fig, key, height, config)
    fid, k = id(fig), (key, int(height))
    entry = _FROZEN.get(fid)
    if entry is None or entry[0]() is not fig:
        entry = (weakref.ref(fig, lambda _r, fid=fid: _FROZEN.pop(fid, None)), {})
        _FROZEN[fid] = entry
    out = entry[1].get(k)
    if out is None:
        out = entry[1][k] = _payload(fig, key, height, config)
    return out


def _payload(fig: go.Figure | dict[str, Any], key: str, height: int,
             config: dict[str, Any] | None) -> bytes:
    head = {
        "key": key,
        "height": int(height),
        "config": DEFAULT_CONFIG if config is None else config,
        "plotly_path": f"{_PLOTLYJS_NAME}/{_PLOTLY_FILE}?v={_PLOTLY_VERSION}",
    }
    # Splice the figure's JSON in as-is: no decode / re-encode, no escaping.
    return (json.dumps(head)[:-1] + ',"figure":' + figure_json(fig) + "}").encode()


def stream_chart(
    fig: go.Figure | dict[str, Any],
    *,
    key: str,
    height: int = 360,
    config: dict[str, Any] | None = None,
) -> None:
    """Render (first call) or update in place (later calls with the same ``key``) a Plotly
    chart. Works inside ``st.fragment(run_every=...)``. ``height`` is in CSS pixels; the
    width follows the container. ``config`` replaces ``DEFAULT_CONFIG``. Set a constant
    ``layout.uirevision`` in the figure (app.charts does) to keep zoom across updates."""
    if not key:
        raise ValueError("stream_chart needs a key: it names the chart that gets updated")
    if get_script_run_ctx(suppress_warning=True) is None:
        return  # bare Python (a script, a unit test): there is no page to draw on
    register_static_routes()
    _MOUNT(
        key=f"gradlab_stream_chart:{key}",
        data=payload(fig, key=key, height=height, config=config),
        height=int(height),
    )


__all__ = ["DEFAULT_CONFIG", "FRONTEND_DIR", "PLOTLY_DIR", "FrozenFigures", "figure_json",
           "freeze", "payload", "stream_chart"]
