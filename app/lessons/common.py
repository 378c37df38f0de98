"""What the lesson pages share: ``compute`` (every run and experiment of the core, cached
for the whole process), the predict-then-run pattern, "published vs this run" tables,
charts with their captions, and links that open a config in the playground.

Anything that trains a net or runs an experiment goes through :func:`compute`; instant
closed-form theory (``core.theory``, e.g. lesson 2's chain) and the reading of a result
(e.g. ``core.experiments.saturation``'s percentiles of a run) are called directly.
"""

from __future__ import annotations

import dataclasses
import importlib
import numbers
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.config import RunConfig
from core.presets import preset

T = TypeVar("T")

#: Results kept per core function (the least recently used go first): enough for every
#: choice a lesson offers; big results (warped grids, seed sweeps) get fewer places.
MAX_ENTRIES: dict[str, int] = {
    "run_all": 128, "layer_variances": 128, "lr_sweep": 16, "deep_linear_seeds": 16,
    "product_spectra": 32, "spread_vs_depth": 32, "jacobian_spectrum": 64, "warp_grid": 32,
}
DEFAULT_MAX_ENTRIES = 64

_CALLERS: dict[str, Callable[..., Any]] = {}
_CALLERS_LOCK = threading.Lock()


# ---- computing ------------------------------------------------------------------------------


def compute(fn: Callable[..., T], /, *args: Any, label: str, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, computed once per process and shared by every session (a
    class of 200 opening the same lesson computes each thing once), with ``label`` shown
    while it runs. ``fn`` is a module-level function of ``core``; the arguments are plain
    values (numbers, strings, tuples, dicts, frozen dataclasses such as RunConfig), which
    also key the cache. Treat the result as read-only."""
    name = _qualified_name(fn)
    key = f"{name}{_canonical(args)}{_canonical(dict(kwargs))}"
    with st.spinner(label):
        return _caller(name, fn.__qualname__)(key, fn, args, kwargs)


def _qualified_name(fn: Callable[..., Any]) -> str:
    """'core.train.run_all'; asserts that ``fn`` is importable by that name from core."""
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", "") or ""
    target: Any = None
    if module.split(".")[0] == "core" and "<" not in qualname:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part, None)
    assert target is fn, (
        f"compute() runs module-level functions of core, importable by module and name; "
        f"got {module or '?'}.{qualname or fn!r}")
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


def _caller(name: str, short: str) -> Callable[..., Any]:
    """The cached caller of one core function: its own ``st.cache_data`` store (Streamlit
    keys a store by the function's qualified name), bounded by ``MAX_ENTRIES``. Arguments
    whose names start with ``_`` are not hashed: the key string stands for them."""
    with _CALLERS_LOCK:
        if name not in _CALLERS:
            def call(key: str, _fn: Callable[..., Any], _args: tuple, _kwargs: dict) -> Any:
                return _fn(*_args, **_kwargs)

            call.__qualname__ = f"compute[{name}]"
            _CALLERS[name] = st.cache_data(
                max_entries=MAX_ENTRIES.get(short, DEFAULT_MAX_ENTRIES),
                show_spinner=False)(call)
        return _CALLERS[name]


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


def chart(fig: go.Figure, key: str, caption: str | None = None,
          theme: str | None = "streamlit") -> None:
    """A figure and the sentence under it. ``theme=None``: exactly the chart style;
    ``"streamlit"``: Streamlit's theme on top, which also colours the text."""
    if theme is not None:
        fig.update_layout(font_color=None)
    st.plotly_chart(fig, theme=theme, key=key)
    if caption:
        st.caption(caption)


def fmt(x: float | None, missing: str = "NaN") -> str:
    """A measured number for prose and tables: 3 significant digits, ``missing`` for
    None, NaN and inf."""
    return f"{x:.3g}" if x is not None and np.isfinite(x) else missing


def open_in_playground(cfg: RunConfig, label: str = "Open in the playground") -> None:
    """A link that loads this exact config (seed included) in the live playground."""
    st.link_button(label, f"/?{cfg.to_query()}")


def open_each_in_playground(labels: Mapping[str, str]) -> None:
    """One link per preset, side by side: ``labels[preset]`` is the button's text."""
    for col, (name, label) in zip(st.columns(len(labels)), labels.items(), strict=True):
        with col:
            open_in_playground(load_preset(name), label)
