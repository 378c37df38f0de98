"""The playground's sidebar: every widget, the callbacks that keep choices compatible, and
the config they build (``app.controls`` holds the keys, the URL and the validation).

The two sections that start collapsed ("Data and loss", "More settings") draw their widgets
only while open: a first page load sends ~10 fewer elements (it matters when a class opens
one link at once), and their values still build the config while they are closed. Choice
names and the initialisers' help come from ``core.choices``, the one table the config and
the CLI read too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import streamlit as st

from app import controls
from app.controls import NOTICE, STATE, Controls, key
from app.env import run_limits
from core.choices import choices
from core.config import (
    ARCHS,
    BIAS_INITS,
    DATASETS,
    DEVICES,
    LIMITS,
    LOSSES,
    NORMS,
    SEQUENCE_DATASETS,
    ConfigError,
    validate,
)
from core.presets import PRESETS, preset, preset_descriptions

ACTIVATIONS = tuple(choices("activation"))
INIT_HELP = choices("init")            # name -> one-line help, in table order
OPTIMIZERS = tuple(choices("optimizer"))

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
GAIN_INITS = {"xavier_uniform", "xavier_normal", "he", "lecun", "orthogonal", "identity"}
REGRESSION_DATASETS = {"teacher", "adding"}


# ---- callbacks ------------------------------------------------------------------------------


def _on_preset() -> None:
    name = st.session_state.get(key("preset"))
    if not name:
        return
    try:
        cfg = preset(name)
        validate(cfg, run_limits())
    except ConfigError as e:
        st.session_state[NOTICE] = controls.clean(str(e))
        return
    controls.write_widgets(cfg)
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


def draw() -> Controls:
    """Draw every control in the sidebar and return the config in force."""
    controls.load_url_once()
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
            _selectbox("Initialiser", "init", tuple(INIT_HELP),
                       fmt=lambda n: f"{n} — {INIT_HELP[n]}")
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

    ctrl = controls.build(errbox)
    name = ss.get(key("preset"))
    if name in descriptions:
        modified = "" if ctrl.preset else "  \n*(modified)*"
        preset_caption.caption(descriptions[name] + modified)
    return ctrl
