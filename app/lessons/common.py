"""What the lesson pages share: ``compute`` (every run and experiment of the core, cached
for the whole process), the predict-then-run pattern, "published vs this run" tables,
charts with their captions, and links that open a config in the playground.

Anything that trains a net or runs an experiment goes through :func:`compute`, named as
``"core.module:qualname"`` so that the page process never imports torch (results come back
as torch-free types: ``core.snapshot``, ``core.experiments.results``); instant closed-form
theory (``core.theory``, e.g. lesson 2's chain) and the reading of a result (e.g.
``core.experiments.saturation``'s percentiles of a run, ``core.spectrum_stats``) are called
directly.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.util
import numbers
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app.live.pool import get_pool
from core.config import RunConfig
from core.presets import preset

T = TypeVar("T")

#: The one training loop, by name (``core.train.run_all``: a config -> its RunResult).
RUN_ALL = "core.train:run_all"

#: Results kept per core function (the least recently used go first): enough for every
#: choice a lesson offers; big results (warped grids, seed sweeps) get fewer places.
MAX_ENTRIES: dict[str, int] = {
    "run_all": 128, "layer_variances": 128, "lr_sweep": 16, "deep_linear_seeds": 16,
    "product_spectra": 32, "spread_vs_depth": 32, "jacobian_spectrum": 64, "warp_grid": 32,
}
DEFAULT_MAX_ENTRIES = 64

_RESULTS: dict[str, OrderedDict[str, Any]] = {}     # per core function, least recent first
_RESULTS_LOCK = threading.Lock()


# ---- computing ------------------------------------------------------------------------------


@overload
def compute(fn: Callable[..., T], /, *args: Any, label: str, **kwargs: Any) -> T: ...
@overload
def compute(fn: str, /, *args: Any, label: str, **kwargs: Any) -> Any: ...


def compute(fn: Callable[..., Any] | str, /, *args: Any, label: str, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, computed once and shared by every session (a class of 200
    opening the same lesson computes each thing once), with ``label`` and a progress bar
    shown while it runs. It runs on the server's training executors, taking turns with
    every other run (``app.live.scheduler``), so 30 students pressing "Train" at once share
    the machine instead of queueing behind each other's page. ``fn`` is a module-level
    function of ``core``, or its name ``"core.module:qualname"``: a lesson names the
    functions of torch-bearing modules, so that the page process never imports torch. The
    arguments are plain values (numbers, strings, tuples, dicts, frozen dataclasses such as
    RunConfig), which also key the cache. Treat the result as read-only."""
    module, qualname = _target(fn)
    name = f"{module}.{qualname}"
    key = f"{_canonical(args)}{_canonical(dict(kwargs))}"
    with _RESULTS_LOCK:
        store = _RESULTS.setdefault(name, OrderedDict())
        if key in store:
            store.move_to_end(key)
            return store[key]
    bar = st.progress(0.0, text=label)

    def progress(fraction: float | None, text: str) -> None:
        more = f" ({text})" if text else ""
        bar.progress(min(1.0, fraction or 0.0), text=f"{label}{more}")

    try:
        value = get_pool().call(f"{module}:{qualname}", args, kwargs, progress)
    finally:
        bar.empty()
    with _RESULTS_LOCK:
        store[key] = value
        while len(store) > MAX_ENTRIES.get(qualname, DEFAULT_MAX_ENTRIES):
            store.popitem(last=False)
    return value


def clear_results() -> None:
    """Forget every cached result of this process (tests)."""
    with _RESULTS_LOCK:
        _RESULTS.clear()


_MISUSE = "compute() runs module-level functions of core, importable by module and name"
_REF = re.compile(r"core(\.\w+)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)


def _target(fn: Callable[..., Any] | str) -> tuple[str, str]:
    """(module, qualname) of what ``compute`` runs, checked: a function object must be
    importable by that name from core; a name ``"core.module:qualname"`` must be a module
    of core that defines ``qualname`` at its top level (read from its source: importing it
    would load torch into this process)."""
    if not isinstance(fn, str):
        _qualified_name(fn)
        return fn.__module__, fn.__qualname__
    assert _REF.fullmatch(fn), f"{_MISUSE}; got {fn!r} (expected 'core.module:qualname')"
    module, _, qualname = fn.partition(":")
    source = _module_source(module)
    assert source is not None, f"{_MISUSE}; no module {module!r}"
    assert qualname.split(".")[0] in _top_level_names(source), (
        f"{_MISUSE}; {module} defines no {qualname.split('.')[0]!r}")
    return module, qualname


def _module_source(module: str) -> str | None:
    """The source file of ``module`` (None: there is none), found without running it: only
    the packages above it are imported, and only while each is a package."""
    parts = module.split(".")
    spec = None
    for i in range(1, len(parts) + 1):
        if spec is not None and spec.submodule_search_locations is None:
            return None                 # a plain module has no submodules
        try:
            spec = importlib.util.find_spec(".".join(parts[:i]))
        except ImportError:
            return None
        if spec is None:
            return None
    return spec.origin if spec is not None and spec.has_location else None


@functools.lru_cache(maxsize=64)
def _top_level_names(path: str) -> frozenset[str]:
    """Names a module's source binds at its top level (defs, classes, assignments, imports)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def _qualified_name(fn: Callable[..., Any]) -> str:
    """'core.train.run_all'; asserts that ``fn`` is importable by that name from core."""
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", "") or ""
    target: Any = None
    if module.split(".")[0] == "core" and "<" not in qualname:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part, None)
    assert target is fn, f"{_MISUSE}; got {module or '?'}.{qualname or fn!r}"
    return f"{module}.{qualname}"


def _canonical(v: Any) -> str:
    """A repr that is the same for equal plain values (dicts sorted, numbers as Python's)."""
    if v is None or isinstance(v, (bool, str, bytes)):
        return repr(v)
    if isinstance(v, numbers.Integral):
        return repr(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(v))
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_canonical(x) for x in v)
        return f"({inner},)" if isinstance(v, tuple) else f"[{inner}]"
    if isinstance(v, dict):
        items = sorted((_canonical(k), _canonical(x)) for k, x in v.items())
        return "{" + ", ".join(f"{k}: {x}" for k, x in items) + "}"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        t = type(v)
        fields = ", ".join(f"{f.name}={_canonical(getattr(v, f.name))}"
                           for f in dataclasses.fields(v))
        return f"{t.__module__}.{t.__qualname__}({fields})"
    raise TypeError(f"compute() takes plain values (numbers, strings, tuples, dicts, frozen "
                    f"dataclasses such as RunConfig), got {type(v).__name__}")


# ---- the page pattern -------------------------------------------------------------------------


def load_preset(name: str, **changes: Any) -> RunConfig:
    cfg = preset(name)
    return cfg.replace(**changes) if changes else cfg


def predict(key: str, question: str, options: Sequence[str]) -> str | None:
    """'Predict, then run': the student commits to an answer before the result shows."""
    return st.radio(question, list(options), index=None, key=f"predict_{key}")


def reveal(guess: str | None, correct: Callable[[str], bool], right: str, wrong: str) -> None:
    """The answer to a prediction, once one was made: "You predicted: *guess*." and then
    ``right`` (green) or ``wrong`` (blue)."""
    if guess is None:
        return
    ok = correct(guess)
    (st.success if ok else st.info)(f"You predicted: *{guess}*. " + (right if ok else wrong))


def run_button(key: str, label: str = "Run it") -> bool:
    """True once the button was pressed in this session (stays true across reruns)."""
    flag = f"ran_{key}"
    if st.button(label, key=f"btn_{key}", type="primary"):
        st.session_state[flag] = True
    return bool(st.session_state.get(flag))


def run_section(header: str, command: str, key: str, label: str) -> bool:
    """A section that runs something: its header, the command that does the same headless,
    and the run button (True once pressed, see :func:`run_button`)."""
    st.header(header)
    st.code(command, language="bash")
    return run_button(key, label)


def compare_table(rows: Sequence[dict[str, Any]]) -> None:
    """'Published vs this run' table: rows of {quantity, published, this run, ...}."""
    st.dataframe(list(rows), hide_index=True, width="stretch")


def chart(fig: go.Figure, key: str, caption: str | None = None, **plotly_kwargs: Any) -> None:
    """A figure and the sentence under it, in the page's theme, light or dark: the chart
    style's light-only colours (white background, near-black text, light grid) become the
    theme's (``app.charts.style.themed_for_page``), which Streamlit's chart theme fills in
    the browser and follows when the viewer switches theme; the palette, colour scales and
    type sizes stay the chart style's. Every lesson chart goes through here (``plotly_kwargs``:
    more of ``st.plotly_chart``'s arguments, e.g. ``config``)."""
    from app.charts.style import themed_for_page

    st.plotly_chart(themed_for_page(fig, dark=page_is_dark()), theme="streamlit", key=key,
                    **plotly_kwargs)
    if caption:
        st.caption(caption)


def page_is_dark() -> bool:
    """Is the viewer's page dark, as far as the server knows (``st.context.theme.type``;
    unknown outside a browser session, and stale for one rerun after a theme switch)?"""
    try:
        return st.context.theme.type == "dark"
    except Exception:  # noqa: BLE001 - no session context (bare mode, tests)
        return False


def fmt(x: float | None, missing: str = "NaN") -> str:
    """A measured number for prose and tables: 3 significant digits, ``missing`` for
    None, NaN and inf."""
    return f"{x:.3g}" if x is not None and np.isfinite(x) else missing


def open_in_playground(cfg: RunConfig, label: str = "Open in the playground") -> None:
    """A link that loads this exact config (seed included) in the live playground, and
    beside it the config's Export and reproduce box (:func:`export_box`)."""
    with st.container(horizontal=True, gap="small"):
        st.link_button(label, f"/?{cfg.to_query()}")
        export_box(cfg, key=_export_key(cfg, label))


def _export_key(cfg: RunConfig, label: str) -> str:
    """A widget key per (config, link text): a page may link one config twice."""
    import hashlib

    return "lx_" + hashlib.sha1(f"{cfg.to_query()}|{label}".encode()).hexdigest()[:12]


def export_box(cfg: RunConfig, key: str, label: str = "Export and reproduce") -> None:
    """Every lesson's downloads of a config's run: CSV (one row per snapshot and layer,
    columns named as the JSON keys) and the ``gradlab run --json`` document, and the exact
    command and five lines of Python that give the same numbers. The run is the cached
    :func:`compute` of :data:`RUN_ALL` (trained on the click if nobody has yet, with a
    progress bar); the files travel over the page's websocket (app/export_download.py)."""
    from app import export as exp
    from app.export_download import download_button

    stem = exp.file_stem(cfg)

    def document() -> dict[str, Any]:
        res = compute(RUN_ALL, cfg, label=f"Training {stem} for the download…")
        return res.to_json()

    with st.popover(label, icon=":material/download:"):
        c1, c2 = st.columns(2)
        with c1:
            download_button("CSV", lambda: exp.csv_text(document()), file_name=f"{stem}.csv",
                            mime="text/csv", key=f"{key}_csv")
        with c2:
            download_button("JSON", lambda: exp.json_text(document()),
                            file_name=f"{stem}.json", mime="application/json",
                            key=f"{key}_json")
        st.caption(f"{cfg.steps:,} steps, a snapshot every {cfg.every}: trained on the first "
                   "click if it has not been yet. Each chart's toolbar downloads a PNG.")
        st.markdown("**Reproduce** headless:")
        st.code(exp.reproduce_command(cfg), language="bash", wrap_lines=True)
        st.markdown("or in Python (same numbers):")
        st.code(exp.reproduce_python(cfg), language="python")


def seed_spread(values: Sequence[float], form: Callable[[float], str] | None = None) -> str:
    """Across seeds: 'median [q1 – q3]' (NumPy's percentiles, via core.repeat.quartiles;
    seeds with NaN / inf left out), the spread a lesson shows next to a published number
    that was measured on one seed. ``form`` writes one number (default :func:`fmt`)."""
    from core.repeat import quartiles

    form = form or fmt
    b = quartiles(np.asarray(values, dtype=np.float64).reshape(len(values), 1))
    med, q1, q3 = float(b.median[0]), float(b.q1[0]), float(b.q3[0])
    if not np.isfinite(med):
        return "NaN"
    return f"{form(med)} [{form(q1)} – {form(q3)}]"


def open_each_in_playground(labels: Mapping[str, str]) -> None:
    """One link per preset, side by side: ``labels[preset]`` is the button's text."""
    for col, (name, label) in zip(st.columns(len(labels)), labels.items(), strict=True):
        with col:
            open_in_playground(load_preset(name), label)
