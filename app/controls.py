"""The playground's settings as state: widget keys <-> RunConfig <-> the URL that
reproduces a run (``app.sidebar`` draws the widgets).

Every widget has an explicit key ``pg_<field>`` (``pg_`` keeps the playground's keys apart
from the lessons'), and keeps its value for the whole session (``persist_state="session"``),
so a control hidden for one architecture still holds the user's value. The config is
validated by ``core.config`` only (with the per-run caps in force, ``app.env.run_limits``):
an invalid combination shows the core's message next to the controls and the previous valid
config stays in force, so nothing the user had is lost.

URL: on a session's first run the query string is parsed leniently (bad keys -> a warning,
defaults for those keys); afterwards the page writes ``cfg.to_query()`` (fields that differ
from the defaults, seed included) back into ``st.query_params`` whenever it changes. This is
the only module that reads or writes the query string.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import streamlit as st

from app.env import run_limits
from core.config import ConfigError, RunConfig, field_names, from_dict, parse_query_lenient
from core.presets import PRESETS, preset

PREFIX = "pg_"
STATE = "session"          # persist_state of every control
LAST_VALID = "pg__last_valid"   # dict of the last valid config (small: plain values)
URL_LOADED = "pg__url_loaded"
URL_WRITTEN = "pg__url_written"   # the query this page last wrote
URL_WARNINGS = "pg__url_warnings"
URL_CONFIG = "pg__url_config"      # the config the URL gave (warnings show while in force)
NOTICE = "pg__notice"      # one-shot message from a callback (preset loaded, arch switched)
#: Query key of the pinned run A of a compare: its own query string (``cfg.to_query()``,
#: "default" when it has no changed field). The page's other keys are run B's.
PIN_PARAM = "a"
URL_PIN = "pg__url_pin"    # one-shot: the A config (dict) a followed link asked for

#: Query keys of presenter mode (``app.presenter``: ``present``, ``panels``): the page's
#: view, not the run.
VIEW_PARAMS = frozenset({"present", "panels"})

#: Query keys that belong to Streamlit itself or to the view, not to the config.
_IGNORED_QUERY_KEYS = {"embed", "embed_options", PIN_PARAM, *VIEW_PARAMS}


def key(name: str) -> str:
    """The widget key of a config field (or of a UI-only control)."""
    return PREFIX + name


#: How a changed field is named in the "... changed" message.
LABELS: dict[str, str] = {
    "arch": "architecture", "depth": "depth", "width": "width", "activation": "activation",
    "residual": "residual connections", "norm": "normalisation", "seq_len": "sequence length",
    "init": "initialiser", "bias_init": "bias initialiser", "init_gain": "gain",
    "sigma_w": "sigma_w", "sigma_b": "sigma_b", "fold_k": "fold count", "gate_bias":
    "gate bias", "dataset": "dataset", "n_train": "training set size", "n_test":
    "test set size", "input_dim": "input dimension", "noise": "noise", "loss": "loss",
    "optimizer": "optimiser", "lr": "learning rate", "momentum": "momentum",
    "batch_size": "batch size", "l2": "L2", "clip_norm": "clipping", "clip_value":
    "clipping", "steps": "number of steps", "every": "snapshot cadence", "seed": "seed",
    "device": "device", "jacobian": "Jacobian spectrum", "hist_bins": "histogram bins",
}
#: Fields with a widget in the sidebar (all of them): the config is built from these.
FIELDS = field_names()


@dataclass
class Controls:
    """What the sidebar produced on this run."""

    config: RunConfig                  # the config in force (the last valid one on error)
    error: str | None = None           # the core's message when the widgets are invalid
    url_warnings: list[str] = field(default_factory=list)   # from a hand-edited URL
    notice: str | None = None          # one-shot: "Loaded preset ...", "Dataset switched ..."
    preset: str | None = None          # the preset the config came from, if unchanged


# ---- state <-> config ------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _fields_of(cfg: RunConfig) -> tuple[tuple[str, Any], ...]:
    """``cfg.to_dict()`` (dataclasses.asdict: ~0.5 ms) once per config per process: every
    rerun of every session needs it several times, mostly for the same few configs."""
    return tuple(cfg.to_dict().items())


def as_dict(cfg: RunConfig) -> dict[str, Any]:
    """A fresh dict of ``cfg``'s fields (callers may keep or change it)."""
    return dict(_fields_of(cfg))


@functools.lru_cache(maxsize=256)
def _query_of(cfg: RunConfig) -> str:
    return cfg.to_query()


def write_widgets(cfg: RunConfig) -> None:
    """Put every field of ``cfg`` into its widget's state (before the widgets render, or
    from a callback)."""
    ss = st.session_state
    for name, value in _fields_of(cfg):
        ss[key(name)] = value
    if cfg.clip_norm > 0 and cfg.clip_value > 0:
        mode = "norm and value"
    elif cfg.clip_norm > 0:
        mode = "by norm"
    elif cfg.clip_value > 0:
        mode = "by value"
    else:
        mode = "none"
    ss[key("clip_mode")] = mode
    ss[key("clip_norm")] = cfg.clip_norm if cfg.clip_norm > 0 else 1.0
    ss[key("clip_value")] = cfg.clip_value if cfg.clip_value > 0 else 1.0
    ss[LAST_VALID] = as_dict(cfg)


def read_widgets() -> dict[str, Any]:
    """The raw field values the widgets hold now (not validated)."""
    ss = st.session_state
    values = {name: ss.get(key(name), getattr(RunConfig, name)) for name in FIELDS}
    mode = ss.get(key("clip_mode"), "none")
    values["clip_norm"] = ss.get(key("clip_norm"), 1.0) if mode in ("by norm", "norm and value") \
        else 0.0
    values["clip_value"] = ss.get(key("clip_value"), 1.0) \
        if mode in ("by value", "norm and value") else 0.0
    return values


def last_valid() -> RunConfig:
    d = st.session_state.get(LAST_VALID)
    if d:
        try:
            return from_dict(d, limits=run_limits())
        except ConfigError:
            pass
    return RunConfig()


def query_items() -> dict[str, str]:
    """The page's query parameters as field -> raw string (Streamlit's own keys dropped)."""
    try:
        items = st.query_params.to_dict()
    except Exception:  # noqa: BLE001 - a URL must never crash the page
        return {}
    return {str(k): str(v) for k, v in items.items() if k not in _IGNORED_QUERY_KEYS}


def view_items() -> dict[str, str]:
    """The page's view keys in the query string (``VIEW_PARAMS``: presenter mode's), raw;
    ``app.presenter`` validates them."""
    try:
        items = st.query_params.to_dict()
    except Exception:  # noqa: BLE001 - a URL must never crash the page
        return {}
    return {str(k): str(v) for k, v in items.items() if k in VIEW_PARAMS}


def load_url_once() -> None:
    """URL -> widgets, with a warning for every bad key: on a session's first run, and
    again whenever the page arrives with a query string it did not write itself (a link
    followed inside the same session, e.g. from a lesson)."""
    ss = st.session_state
    items = query_items()
    if ss.get(URL_LOADED) and (not items or items == ss.get(URL_WRITTEN)):
        return
    ss[URL_LOADED] = True
    cfg, errors = parse_query_lenient(items, limits=run_limits())
    ss[URL_WARNINGS] = [clean(e) for e in errors]
    ss[URL_CONFIG] = as_dict(cfg)
    raw_pin = url_param(PIN_PARAM)
    if raw_pin is not None:
        pin_cfg, pin_errors = parse_query_lenient("" if raw_pin == "default" else raw_pin,
                                                  limits=run_limits())
        ss[URL_PIN] = as_dict(pin_cfg)
        ss[URL_WARNINGS] += [f"run A: {clean(e)}" for e in pin_errors]
    write_widgets(cfg)
    if "preset" in items and not any(e.startswith("preset:") for e in errors):
        ss[key("preset")] = str(items["preset"]).strip().lower().replace("_", "-")


def _pin_value(pinned: RunConfig) -> str:
    return _query_of(pinned) or "default"


def sync_url(cfg: RunConfig, pinned: RunConfig | None = None,
             view: dict[str, str] | None = None) -> None:
    """Write ``cfg`` (only the fields that differ from defaults), the pinned run A of a
    compare under ``a``, and the view's own keys (``view``: presenter mode's), into the URL
    if needed."""
    want = dict(parse_qsl(_query_of(cfg), keep_blank_values=True))
    st.session_state[URL_WRITTEN] = want
    full = dict(want)
    if pinned is not None:
        full[PIN_PARAM] = _pin_value(pinned)
    full.update({k: v for k, v in (view or {}).items() if k in VIEW_PARAMS})
    try:
        current = {str(k): str(v) for k, v in st.query_params.to_dict().items()}
    except Exception:  # noqa: BLE001
        current = {}
    if current != full:
        st.query_params.from_dict(full)


def share_link(cfg: RunConfig, pinned: RunConfig | None = None,
               view: dict[str, str] | None = None) -> str:
    """The absolute link that reproduces ``cfg`` (and the pinned run A of a compare, and
    the view: presenter mode's keys) (relative if the base URL is unknown)."""
    q = _query_of(cfg)
    if pinned is not None:
        q = (q + "&" if q else "") + urlencode({PIN_PARAM: _pin_value(pinned)})
    extra = {k: v for k, v in (view or {}).items() if k in VIEW_PARAMS}
    if extra:
        q = (q + "&" if q else "") + urlencode(extra, safe=",")
    try:
        base = st.context.url or ""
    except Exception:  # noqa: BLE001
        base = ""
    base = base.split("?")[0] if base else "/"
    return f"{base}?{q}" if q else base


def clean(text: str) -> str:
    """Messages quote the user's raw input: keep them short and on one line."""
    return " ".join(str(text).replace("`", "'").split())[:300]


def describe_change(changed: Sequence[str], cfg: RunConfig) -> str:
    """'Depth changed — the run was reset.' / 'Learning rate is now 0.05 (applied live).'"""
    names: list[str] = []
    for f in changed:
        label = LABELS.get(f, f)
        if label not in names:
            names.append(label)
    if not names:
        return ""
    if set(changed) <= {"lr", "every"}:
        parts = []
        if "lr" in changed:
            parts.append(f"learning rate is now {cfg.lr:g}")
        if "every" in changed:
            parts.append(f"a snapshot every {cfg.every} steps")
        text = " and ".join(parts)
        return text[0].upper() + text[1:] + " — applied live, no reset."
    if len(names) > 3:
        what = f"{len(names)} settings"
    else:
        what = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    return f"{what[0].upper() + what[1:]} changed — the run was reset."


def toast_text(changed: Sequence[str], cfg: RunConfig, notice: str | None) -> str:
    """One message for what this rerun did: a callback's notice (preset loaded, dataset
    switched) and / or what changed and whether the run was reset."""
    note = describe_change(changed, cfg)
    if not notice:
        return note
    if note.endswith("the run was reset."):
        return notice + " The run was reset."
    return f"{notice} {note}".strip()


# ---- the config in force ------------------------------------------------------------------


def build(errbox: Any) -> Controls:
    """The config the widgets hold now, validated; on an error the last valid one, and the
    core's message in ``errbox`` (a container above the controls)."""
    ss = st.session_state
    notice = ss.pop(NOTICE, None)
    warnings = list(ss.get(URL_WARNINGS) or [])
    try:
        cfg = from_dict(read_widgets(), limits=run_limits())
        error = None
        ss[LAST_VALID] = as_dict(cfg)
    except ConfigError as e:
        cfg = last_valid()
        error = clean(str(e))
    if warnings and ss.get(URL_CONFIG) != as_dict(cfg):
        ss[URL_WARNINGS] = warnings = []       # the user has moved on from the link
    if error:
        errbox.error(f"**Not applied:** {error}  \nThe run keeps the last valid settings.",
                     icon=":material/error:")
    name = ss.get(key("preset"))
    same = bool(name) and name in PRESETS and preset(name) == cfg
    return Controls(config=cfg, error=error, url_warnings=warnings, notice=notice,
                    preset=name if same else None)


__all__ = [
    "Controls", "FIELDS", "LABELS", "NOTICE", "PIN_PARAM", "PREFIX", "STATE", "URL_PIN",
    "as_dict", "build", "clean",
    "describe_change", "key", "last_valid", "load_url_once", "query_items", "read_widgets",
    "share_link", "sync_url", "toast_text", "VIEW_PARAMS", "view_items", "write_widgets",
]


# ---- non-config URL keys (the class board's join code and tokens) ----------------------------
# They are not RunConfig settings: app.board.store validates them (format, length, lookup).


def url_param(name: str) -> str | None:
    """One raw query value (None if absent or unreadable); the caller validates it."""
    try:
        v = st.query_params.get(name)
    except Exception:  # noqa: BLE001 - a URL must never crash the page
        return None
    return None if v is None else str(v)


def drop_url_param(name: str) -> None:
    """Take one key out of the URL (a join code, once adopted)."""
    try:
        if name in st.query_params:
            del st.query_params[name]
    except Exception:  # noqa: BLE001
        pass


def replace_url(params: dict[str, str] | None = None) -> None:
    """Replace the whole query string (the board's own links)."""
    st.query_params.from_dict(params or {})
