"""Sidebar controls -> RunConfig, presets, and the URL that reproduces a run.

Every widget has an explicit key ``pg_<field>`` (``pg_`` keeps the playground's keys apart
from the lessons'), and keeps its value for the whole session (``persist_state="session"``),
so a control hidden for one architecture still holds the user's value. The two sections
that start collapsed ("Data and loss", "More settings") draw their widgets only while open:
a first page load sends ~10 fewer elements (it matters when a class opens one link at once),
and their values still build the config while they are closed. The config is
validated by ``core.config`` only: an invalid combination shows the core's message next to
the controls and the previous valid config stays in force, so nothing the user had is lost.

URL: on a session's first run the query string is parsed leniently (bad keys -> a warning,
defaults for those keys); afterwards the page writes ``cfg.to_query()`` (fields that differ
from the defaults, seed included) back into ``st.query_params`` whenever it changes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import streamlit as st

from core.config import (
    ACTIVATIONS,
    ARCHS,
    BIAS_INITS,
    DATASETS,
    DEVICES,
    INITS,
    LIMITS,
    LOSSES,
    NORMS,
    OPTIMIZERS,
    PRESETS,
    SEQUENCE_DATASETS,
    ConfigError,
    RunConfig,
    field_names,
    from_dict,
    parse_query_lenient,
    preset,
    preset_descriptions,
)

PREFIX = "pg_"
STATE = "session"          # persist_state of every control
LAST_VALID = "pg__last_valid"   # dict of the last valid config (small: plain values)
URL_LOADED = "pg__url_loaded"
URL_WRITTEN = "pg__url_written"   # the query this page last wrote
URL_WARNINGS = "pg__url_warnings"
URL_CONFIG = "pg__url_config"      # the config the URL gave (warnings show while in force)
NOTICE = "pg__notice"      # one-shot message from a callback (preset loaded, arch switched)

#: Query keys that belong to Streamlit itself, not to the config.
_IGNORED_QUERY_KEYS = {"embed", "embed_options"}


def key(name: str) -> str:
    """The widget key of a config field (or of a UI-only control)."""
    return PREFIX + name


# ---- value grids for the sliders (the current value is always added to them) ---------------

DEPTHS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 300,
          400, 500, 700, 1000)
WIDTHS = (2, 4, 8, 16, 24, 30, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
SEQ_LENS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500)
BATCHES = (0, 1, 2, 4, 8, 10, 16, 32, 64, 128, 256, 512, 1000, 1024, 2000, 2048, 4000)
EVERY = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000)
L2S = (0.0, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: learning rates 1e-5 .. 10, log-spaced (1, 2, 3, 5 per decade); presets may add others.
LRS = tuple(float(f"{m}e{e}") for e in range(-5, 1) for m in (1, 2, 3, 5)) + (10.0,)

CLIP_MODES = ("none", "by norm", "by value", "norm and value")

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

INIT_HELP = {
    "nielsen_large": "W ~ N(0, 1): Nielsen's 'large' init",
    "nielsen": "W ~ N(0, 1/n_in), b ~ N(0, 1): Nielsen's default",
    "glorot_standard": "U[±1/√n_in]: Glorot & Bengio's 'standard'",
    "xavier_uniform": "U[±√(6/(n_in+n_out))]: Xavier, uniform",
    "xavier_normal": "N(0, 2/(n_in+n_out)): Xavier, normal",
    "he": "N(0, 2/n_in): Kaiming He, for ReLU",
    "lecun": "N(0, 1/n_in): LeCun, for SELU",
    "orthogonal": "gain × a random orthogonal matrix",
    "gaussian": "N(0, σ_w²/n_in), b ~ N(0, σ_b²): mean-field",
    "fold": "standard init folded k times (Orhan)",
    "identity": "gain × I: deep linear nets",
    "torch_default": "PyTorch's own defaults",
}
GAIN_INITS = {"xavier_uniform", "xavier_normal", "he", "lecun", "orthogonal", "identity"}
REGRESSION_DATASETS = {"teacher", "adding"}
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
            return from_dict(d)
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


def load_url_once() -> None:
    """URL -> widgets, with a warning for every bad key: on a session's first run, and
    again whenever the page arrives with a query string it did not write itself (a link
    followed inside the same session, e.g. from a lesson)."""
    ss = st.session_state
    items = query_items()
    if ss.get(URL_LOADED) and (not items or items == ss.get(URL_WRITTEN)):
        return
    ss[URL_LOADED] = True
    cfg, errors = parse_query_lenient(items)
    ss[URL_WARNINGS] = [_clean(e) for e in errors]
    ss[URL_CONFIG] = as_dict(cfg)
    write_widgets(cfg)
    if "preset" in items and not any(e.startswith("preset:") for e in errors):
        ss[key("preset")] = str(items["preset"]).strip().lower().replace("_", "-")


def sync_url(cfg: RunConfig) -> None:
    """Write ``cfg`` (only the fields that differ from defaults) into the URL if needed."""
    want = dict(parse_qsl(_query_of(cfg), keep_blank_values=True))
    st.session_state[URL_WRITTEN] = want
    if query_items() != want or set(st.query_params.to_dict()) - set(want):
        st.query_params.from_dict(want)


def share_link(cfg: RunConfig) -> str:
    """The absolute link that reproduces ``cfg`` (relative if the base URL is unknown)."""
    q = _query_of(cfg)
    try:
        base = st.context.url or ""
    except Exception:  # noqa: BLE001
        base = ""
    base = base.split("?")[0] if base else "/"
    return f"{base}?{q}" if q else base


def _clean(text: str) -> str:
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


# ---- callbacks ------------------------------------------------------------------------------


def _on_preset() -> None:
    name = st.session_state.get(key("preset"))
    if not name:
        return
    try:
        cfg = preset(name)
    except ConfigError as e:
        st.session_state[NOTICE] = _clean(str(e))
        return
    write_widgets(cfg)
    st.session_state[NOTICE] = f"Loaded the preset “{name}”."


def _on_arch() -> None:
    """Keep arch, dataset and loss compatible (the core would reject the mix)."""
    ss = st.session_state
    arch, ds = ss.get(key("arch"), "mlp"), ss.get(key("dataset"), "spiral")
    notes = []
    if arch in ("rnn", "gru") and ds not in SEQUENCE_DATASETS:
        ss[key("dataset")] = "recall"
        notes.append("dataset → recall (a sequence task)")
    elif arch == "mlp" and ds in SEQUENCE_DATASETS:
        ss[key("dataset")] = "spiral"
        notes.append("dataset → spiral")
    if arch != "mlp" and ss.get(key("loss")) == "sigmoid_ce":
        ss[key("loss")] = "softmax_ce"
        notes.append("loss → softmax_ce")
    if notes:
        ss[NOTICE] = f"Architecture {arch}: " + ", ".join(notes) + "."


# ---- widgets -------------------------------------------------------------------------------


def _grid(base: Iterable[Any], current: Any) -> list[Any]:
    """A slider's options: the base grid plus the current value (from a preset or a URL)."""
    opts = set(base)
    if current is not None and isinstance(current, (int, float)) and math.isfinite(current):
        opts.add(current)
    return sorted(opts)


def _fmt_num(v: float) -> str:
    return f"{v:g}"


def _select_slider(label: str, name: str, base: Iterable[Any], *, fmt=_fmt_num, help=None,
                   container=None) -> Any:
    c = container or st
    opts = _grid(base, st.session_state.get(key(name)))
    if st.session_state.get(key(name)) not in opts:
        st.session_state[key(name)] = opts[0]
    return c.select_slider(label, options=opts, key=key(name), format_func=fmt, help=help,
                           persist_state=STATE)


def _coerce_choice(name: str, options: Sequence[Any]) -> None:
    """Keep a choice valid for the options in force (also while its widget is not drawn)."""
    if st.session_state.get(key(name)) not in options:
        st.session_state[key(name)] = options[0]


def _lazy_expander(label: str, name: str):
    """A collapsed-by-default expander whose content runs only while it is open: its
    widgets cost nothing on a first page load (a class opening one link at once). Their
    values live on while it is closed (``persist_state``) and still build the config."""
    return st.expander(label, expanded=False, key=key(name), on_change="rerun")


def _selectbox(label: str, name: str, options: Sequence[str], *, fmt=None, help=None,
               on_change=None, disabled=False) -> Any:
    _coerce_choice(name, options)
    kwargs = {"format_func": fmt} if fmt else {}
    return st.selectbox(label, options=list(options), key=key(name), help=help,
                        on_change=on_change, persist_state=STATE, disabled=disabled, **kwargs)


def _segmented(label: str, name: str, options: Sequence[str], *, fmt=None, help=None,
               on_change=None) -> Any:
    if st.session_state.get(key(name)) not in options:
        st.session_state[key(name)] = options[0]
    kwargs = {"format_func": fmt} if fmt else {}
    return st.segmented_control(label, options=list(options), key=key(name), help=help,
                                on_change=on_change, required=True, persist_state=STATE,
                                width="stretch", **kwargs)


def _number(label: str, name: str, *, lo, hi, step, fmt=None, help=None) -> Any:
    v = st.session_state.get(key(name))
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not (lo <= v <= hi):
        st.session_state[key(name)] = type(step)(min(max(v if isinstance(v, (int, float))
                                                          and not isinstance(v, bool)
                                                          else lo, lo), hi))
    elif isinstance(step, float) and isinstance(v, int):
        st.session_state[key(name)] = float(v)
    kwargs = {"format": fmt} if fmt else {}
    return st.number_input(label, min_value=lo, max_value=hi, step=step, key=key(name),
                           help=help, persist_state=STATE, **kwargs)


def _slider(label: str, name: str, *, lo, hi, step, help=None) -> Any:
    v = st.session_state.get(key(name))
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        v = lo
    v = type(step)(min(max(v, lo), hi))
    st.session_state[key(name)] = v
    return st.slider(label, min_value=lo, max_value=hi, step=step, key=key(name), help=help,
                     persist_state=STATE)


def _toggle(label: str, name: str, *, help=None, disabled=False) -> bool:
    st.session_state[key(name)] = bool(st.session_state.get(key(name), False))
    return st.toggle(label, key=key(name), help=help, persist_state=STATE, disabled=disabled)


def sidebar() -> Controls:
    """Draw every control in the sidebar and return the config in force."""
    load_url_once()
    ss = st.session_state
    with st.sidebar:
        errbox = st.container()
        descriptions = preset_descriptions()
        names = list(PRESETS)
        if ss.get(key("preset")) not in names:
            ss[key("preset")] = None
        st.selectbox("Preset", names, key=key("preset"), index=None,
                     placeholder="Choose a preset…", on_change=_on_preset,
                     help="Named experiments from the papers; loading one resets the run.",
                     persist_state=STATE)
        preset_caption = st.empty()

        with st.expander("Network", expanded=True, key=key("exp_network")):
            _segmented("Architecture", "arch", ARCHS, fmt=str.upper, on_change=_on_arch,
                       help="MLP: a stack of layers. RNN / GRU: one cell unrolled over time.")
            arch = ss[key("arch")]
            _select_slider("Depth (hidden layers)" if arch == "mlp" else "Depth (stacked layers)",
                           "depth", DEPTHS, fmt=str,
                           help="1 to 1000. Deep nets are where gradients vanish or explode.")
            _select_slider("Width (units per layer)", "width", WIDTHS, fmt=str)
            if arch == "gru":
                st.caption("GRU gates use fixed sigmoid / tanh: the activation is not used.")
            else:
                _selectbox("Activation", "activation", ACTIVATIONS)
            if arch == "mlp":
                _toggle("Residual connections", "residual",
                        help="Identity skip around every hidden block after the first.")
                _segmented("Normalisation", "norm", NORMS,
                           help="Applied before the activation.")
            else:
                _select_slider("Sequence length", "seq_len", SEQ_LENS, fmt=str,
                               help="Time steps the gradient must travel back through.")

        with st.expander("Initialisation", expanded=True, key=key("exp_init")):
            _selectbox("Initialiser", "init", INITS,
                       fmt=lambda n: f"{n} — {INIT_HELP.get(n, '')}")
            init = ss[key("init")]
            if init in GAIN_INITS:
                _slider("Gain", "init_gain", lo=0.0, hi=10.0, step=0.05,
                        help="Multiplies the initial weights.")
            if init == "gaussian":
                _slider("σ_w (weight scale)", "sigma_w", lo=0.0, hi=10.0, step=0.05,
                        help="Mean-field: order for small σ_w, chaos for large.")
            if init == "gaussian" or ss.get(key("bias_init")) == "normal":
                _slider("σ_b (bias scale)", "sigma_b", lo=0.0, hi=10.0, step=0.05)
            if init == "fold":
                _slider("Fold count k", "fold_k", lo=0, hi=10, step=1,
                        help="Each matrix is folded k times: rank drops, gradients degrade.")
            if arch == "gru":
                _slider("Update-gate bias", "gate_bias", lo=-10.0, hi=10.0, step=0.5,
                        help="Positive: the gate starts in 'keep' mode (long memory).")
            _selectbox("Bias initialiser", "bias_init", BIAS_INITS,
                       help="auto = what the initialiser prescribes.")

        data = _lazy_expander("Data and loss", "exp_data")
        ds_options = [d for d in DATASETS if (d in SEQUENCE_DATASETS) == (arch != "mlp")]
        losses = [x for x in LOSSES if arch == "mlp" or x != "sigmoid_ce"]
        if data.open:
            with data:
                _selectbox("Dataset", "dataset", ds_options)
                if ss[key("dataset")] in REGRESSION_DATASETS:
                    st.caption("A regression task: the loss is squared error.")
                else:
                    _selectbox("Loss", "loss", losses)
        else:
            _coerce_choice("dataset", ds_options)
            if ss[key("dataset")] not in REGRESSION_DATASETS:
                _coerce_choice("loss", losses)

        with st.expander("Optimiser", expanded=True, key=key("exp_opt")):
            _segmented("Optimiser", "optimizer", OPTIMIZERS)
            if ss[key("optimizer")] == "momentum":
                _slider("Momentum", "momentum", lo=0.0, hi=0.999, step=0.001)
            _select_slider("Learning rate", "lr", LRS,
                           help="Log scale. Changes apply live, without a reset.")
            _select_slider("Batch size", "batch_size", BATCHES,
                           fmt=lambda b: "full batch" if b == 0 else str(b))
            st.segmented_control("Gradient clipping", CLIP_MODES, key=key("clip_mode"),
                                 required=True, persist_state=STATE, width="stretch")
            mode = ss.get(key("clip_mode"), "none")
            if mode in ("by norm", "norm and value"):
                _number("Clip the gradient norm to", "clip_norm", lo=0.001,
                        hi=LIMITS["clip_norm"][1], step=0.1, fmt="%g")
            if mode in ("by value", "norm and value"):
                _number("Clip each gradient entry to ±", "clip_value", lo=0.001,
                        hi=LIMITS["clip_value"][1], step=0.1, fmt="%g")
            _select_slider("L2 (weight decay λ)", "l2", L2S,
                           help="Nielsen's λ: C += λ/(2n) Σ W².")

        with st.expander("Run", expanded=True, key=key("exp_run")):
            _number("Seed", "seed", lo=0, hi=int(LIMITS["seed"][1]), step=1,
                    help="Same seed, same run: data, init and batches.")
            _select_slider("Snapshot every … steps", "every", EVERY, fmt=str,
                           help="How often statistics are measured; applies live.")
            _number("Steps", "steps", lo=0, hi=int(LIMITS["steps"][1]), step=100)
            _toggle("Jacobian spectrum", "jacobian", disabled=arch != "mlp",
                    help="Singular values of the input-output Jacobian (MLP; costs time).")

        more = _lazy_expander("More settings", "exp_more")
        if more.open:
            with more:
                _number("Training examples", "n_train", lo=int(LIMITS["n_train"][0]),
                        hi=int(LIMITS["n_train"][1]), step=100)
                _number("Test examples", "n_test", lo=0, hi=int(LIMITS["n_test"][1]),
                        step=100)
                _slider("Data noise", "noise", lo=0.0, hi=5.0, step=0.05)
                _number("Input dimension (teacher)", "input_dim",
                        lo=int(LIMITS["input_dim"][0]), hi=int(LIMITS["input_dim"][1]), step=1)
                _slider("Histogram bins", "hist_bins", lo=8, hi=128, step=1)
                _selectbox("Device", "device", DEVICES,
                           help="auto = a GPU when there is one.")
        else:
            _coerce_choice("device", DEVICES)

    ctrl = _build(errbox)
    name = ss.get(key("preset"))
    if name in descriptions:
        modified = "" if ctrl.preset else "  \n*(modified)*"
        preset_caption.caption(descriptions[name] + modified)
    return ctrl


def _build(errbox) -> Controls:
    ss = st.session_state
    notice = ss.pop(NOTICE, None)
    warnings = list(ss.get(URL_WARNINGS) or [])
    try:
        cfg = from_dict(read_widgets())
        error = None
        ss[LAST_VALID] = as_dict(cfg)
    except ConfigError as e:
        cfg = last_valid()
        error = _clean(str(e))
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
    "BATCHES", "Controls", "DEPTHS", "EVERY", "LABELS", "LRS", "PREFIX", "WIDTHS",
    "describe_change", "key", "last_valid", "load_url_once", "read_widgets", "share_link",
    "sidebar", "sync_url", "toast_text", "write_widgets",
]
