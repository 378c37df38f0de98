"""Lesson 4 — Dive into Deep Learning: variance through depth, initialisation, NaN/inf.

Seed 002. Part 1 measures, at initialisation, the variance of every hidden layer's
activations (forward) and of the per-example gradient w.r.t. them (backward) for several
initialisations and activations; part 2 sweeps the learning rate of the exploding-lr preset
until NaN/inf appears, with and without gradient clipping.
"""

from __future__ import annotations

import math
import shlex

import numpy as np
import streamlit as st

from app.charts import initialisation as figures
from app.lessons import common
from core.config import RunConfig, from_dict
from core.experiments.results import LayerVariances, SweepPoint
from core.theory import forward_variance_gain, he_gamma, xavier_gamma

TITLE = "4 · Variance through depth"
ICON = ":material/stacked_line_chart:"
PRESETS = ["exploding-lr"]

ACTIVATIONS = {
    "linear": "linear  σ(x) = x",
    "tanh": "tanh",
    "relu": "ReLU",
    "sigmoid": "sigmoid",
    "scaled_sigmoid": "scaled sigmoid  4·sigmoid(x) − 2",
}
WIDTH = 256
INITS = ("N(0, 1)", "Xavier", "He")
LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 50.0)
CLIP = 1.0
#: Computed on an executor, by name (the module imports torch).
LAYER_VARIANCES = "core.experiments.variance:layer_variances"
LR_SWEEP = "core.experiments.variance:lr_sweep"
SWEEP_STEPS = {"50 steps per run (~10 s the first time)": 50,
               "200 steps, the preset (~30 s the first time)": 200}


def variance_config(activation: str, init: str, depth: int, c: float = 1.0) -> RunConfig:
    """A depth x 256 MLP on MNIST; ``init`` is one of INITS or "custom" (N(0, c / n_in))."""
    base = dict(depth=depth, width=WIDTH, activation=activation, dataset="mnist",
                n_train=1000, n_test=500, lr=0.01, batch_size=64)
    if init == "N(0, 1)":
        extra = dict(init="nielsen_large", bias_init="zero")   # W ~ N(0, 1), b = 0
    elif init == "Xavier":
        extra = dict(init="xavier_normal")                      # N(0, 2 / (n_in + n_out))
    elif init == "He":
        extra = dict(init="he")                                 # N(0, 2 / n_in)
    else:
        extra = dict(init="gaussian", sigma_w=math.sqrt(c), bias_init="zero")  # N(0, c/n_in)
    return from_dict({**base, **extra})


def variances(cfg: RunConfig) -> LayerVariances:
    return common.compute(LAYER_VARIANCES, cfg, label="Measuring the variances…")


def sweep(cfg: RunConfig, clip: float) -> list[SweepPoint]:
    """The learning-rate sweep over LRS, gradient norm clipped to ``clip`` (0: off)."""
    how = f"with clip_norm = {clip:g}" if clip > 0 else "without clipping"
    return common.compute(LR_SWEEP, cfg, tuple(LRS), clip_norm=float(clip),
                          label=f"Training {len(LRS)} nets {how}…")


def theory_ratio(activation: str, init: str, c: float) -> float | None:
    """Per-layer variance factor n * gamma (x 1/2 for ReLU) between two hidden layers."""
    gamma = {"N(0, 1)": 1.0, "Xavier": xavier_gamma(WIDTH, WIDTH),
             "He": he_gamma(WIDTH)}.get(init, c / WIDTH)
    ng = forward_variance_gain(WIDTH, gamma)
    if activation == "linear":
        return ng
    if activation == "relu":
        return ng / 2
    return None


def geo_ratio(v: list[float], backward: bool) -> float:
    """Geometric mean of Var(layer t) / Var(layer t-1), t = 2..L (backward: the inverse,
    the factor from layer t down to t-1). NaN when a value overflowed or vanished to 0."""
    a = np.asarray(v, dtype=np.float64)
    if len(a) < 2 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        return float("nan")
    r = a[1:] / a[:-1]
    r = 1 / r if backward else r
    return float(np.exp(np.mean(np.log(r))))


def _cli(cfg: RunConfig) -> str:
    d = {k: v for k, v in cfg.to_dict().items() if v != RunConfig().to_dict()[k]
         and k not in ("lr", "batch_size", "n_test")}
    sets = " ".join(f"--set {k}={shlex.quote(str(v))}" for k, v in d.items())
    line = f"gradlab run {sets} --steps 0 --json -"
    out, cur = [], ""
    for word in line.split(" --"):          # wrap at ~70 characters, between flags
        piece = word if not cur and not out else "--" + word
        if cur and len(cur) + len(piece) > 70:
            out.append(cur + " \\")
            cur = "    " + piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    return "\n".join(out + [cur])


def _outcome(p: SweepPoint) -> str:
    """One cell of the sweep table: where it broke, or how it ended."""
    if p.diverged_at is not None:
        return f"NaN/inf at step {p.diverged_at}"
    acc = p.final_test_accuracy
    return f"loss {p.final_loss:.3g}" + (f", acc {100 * acc:.0f} %" if acc is not None else "")


def render() -> None:
    st.title("Variance through depth: why initialisation matters")
    st.markdown(
        "The gradient of layer *t* is a product of one Jacobian per layer above it. A product "
        "of many factors vanishes or explodes unless each factor is about 1. *Dive into Deep "
        "Learning* keeps the **variance** of every layer's output — and of its gradient — the "
        "same from layer to layer:"
    )
    st.latex(r"\mathrm{Var}(h^t_i) = n_{t-1}\,\gamma_t\,\mathrm{Var}(h^{t-1}_j), \qquad "
             r"\mathrm{Var}\Big(\frac{\partial \ell}{\partial h^{t-1}_j}\Big) = "
             r"n_t\,\gamma_t\,\mathrm{Var}\Big(\frac{\partial \ell}{\partial h^{t}_i}\Big)")
    st.markdown("Keeping both needs n<sub>t−1</sub>γ<sub>t</sub> = 1 and "
                "n<sub>t</sub>γ<sub>t</sub> = 1, hence the Xavier compromise — and He's "
                "factor 2 for ReLU, which zeroes half its inputs:", unsafe_allow_html=True)
    st.latex(r"\gamma_t^{\text{Xavier}} = \frac{2}{n_{t-1}+n_t} \qquad "
             r"\gamma_t^{\text{He}} = \frac{2}{n_{t-1}}")
    guess = common.predict("l04_var", "Predict: a 10-layer linear net of width 256 with "
                           "W ~ N(0, 1). By what factor does the activation variance grow per "
                           "layer?", ["about 1", "about 2", "about 16", "about 256"])

    # -- 1. variance through depth ------------------------------------------------------------
    st.header("1 · Forward and backward variance at initialisation")
    c1, c2, c3 = st.columns(3)
    act = c1.selectbox("Activation", list(ACTIVATIONS), format_func=ACTIVATIONS.get,
                       key="l04_act")
    depth = c2.slider("Hidden layers", 2, 50, 10, key="l04_depth")
    c = c3.select_slider("Your own init N(0, c / n_in): c = n·γ",
                         [0.25, 0.5, 1.0, 2.0, 4.0, 8.0], value=0.5, key="l04_c")
    st.caption(f"Width {WIDTH}, 256 MNIST images, biases 0. Backward: per-example gradient of "
               "the cross-entropy w.r.t. each layer's output.")
    results = {name: variances(variance_config(act, name, depth)) for name in INITS}
    results[f"N(0, {c:g}/n)"] = variances(variance_config(act, "custom", depth, c))
    title = f"{ACTIVATIONS[act]}: variance through depth at initialisation"
    pairs = {name: (v.forward, v.backward) for name, v in results.items()}
    common.chart(figures.variance_figure(pairs, title), "l04_var_fig")
    rows = []
    for name, v in results.items():
        init = name if name in INITS else "custom"
        th = theory_ratio(act, init, c)
        overflow = not np.isfinite(np.concatenate([v.forward, v.backward])).all()
        rows.append({"init": name,
                     "forward factor per layer": common.fmt(geo_ratio(v.forward, False), "—"),
                     "backward factor per layer": common.fmt(geo_ratio(v.backward, True), "—"),
                     "theory (n·γ, ×½ for ReLU)": common.fmt(th, "—"),
                     "overflow (inf/NaN)": "yes" if overflow else "no"})
    common.compare_table(rows)
    st.caption("Factor per layer = geometric mean of Var(layer t) / Var(layer t−1), t = 2…L "
               "(backward: from layer t down to t−1, towards the input); — means a value "
               "overflowed to inf or fell to 0. The "
               "theory column is exact for linear layers and ReLU; for tanh and the scaled "
               "sigmoid it holds only while the signals are small.")
    if act == "linear":
        r = rows[0]
        st.markdown(f"**N(0, 1)**: each layer multiplies the variance by n·γ = {WIDTH}; this "
                    f"run: **{r['forward factor per layer']}** forward, "
                    f"**{r['backward factor per layer']}** backward. Xavier keeps both at about "
                    f"1 (this run: {rows[1]['forward factor per layer']} / "
                    f"{rows[1]['backward factor per layer']}).")
    elif act == "sigmoid":
        st.markdown("**Sigmoid** does not look like the identity near 0: σ(0) = ½ and σ′(0) = "
                    "¼. Its outputs are not centred and every layer multiplies the backward "
                    "variance by about n·γ/16 — with Xavier, the gradient vanishes ~16× per "
                    "layer. Try the **scaled sigmoid** 4·σ(x) − 2: value 0 and slope 1 at 0.")
    elif act == "relu":
        st.markdown("**ReLU** zeroes half of its inputs, so it halves the variance: Xavier "
                    "(n·γ = 1) shrinks it by ½ per layer, He (n·γ = 2) keeps it.")
    answer = (f"n·γ = {WIDTH} · 1 = {WIDTH} per layer (choose *linear* above to check); "
              "after 10 layers that is 256¹⁰ ≈ 10²⁴.")
    common.reveal(guess, lambda g: g == "about 256", "Right: " + answer, "Not quite: " + answer)
    st.code(_cli(variance_config(act, "He", depth)), language="bash")
    common.open_in_playground(variance_config(act, "He", depth),
                              "Open the He-initialised net in the playground")

    # -- 2. NaN / inf ---------------------------------------------------------------------------
    st.header("2 · A learning-rate sweep: where does NaN/inf appear?")
    st.markdown(
        "An 8-layer ReLU net with He init on the 2-D spiral (preset **exploding-lr**), trained "
        "once per learning rate from the *same* initialisation. *inf* comes from a learning "
        "rate (or initial weights) that is too large; *NaN* follows, e.g. inf − inf or 0/0. "
        f"Then the same sweep with the gradient norm clipped to {CLIP:g}:"
    )
    st.latex(r"g \leftarrow g \cdot \min\Big(1, \frac{\theta}{\lVert g \rVert}\Big)")
    slabel = st.radio("Run length", list(SWEEP_STEPS), index=0, horizontal=True,
                      key="l04_sweep_steps")
    ssteps = SWEEP_STEPS[slabel]
    cfg = common.load_preset("exploding-lr", steps=ssteps, every=10)
    st.code(f"gradlab run --preset exploding-lr --set lr=1 --steps {ssteps} --json -\n"
            f"gradlab run --preset exploding-lr --set lr=1 --set clip_norm={CLIP:g} "
            f"--steps {ssteps} --json -", language="bash")
    if common.run_button("l04_sweep", "Run the sweep"):
        plain = sweep(cfg, 0.0)
        clipped = sweep(cfg, CLIP)
        common.chart(figures.sweep_figure({"no clipping": plain,
                                           f"clip_norm = {CLIP:g}": clipped}, LRS),
                     "l04_sweep_fig")
        rows = [{"learning rate": f"{p.lr:g}", "no clipping": _outcome(p),
                 f"clip_norm = {CLIP:g}": _outcome(q)}
                for p, q in zip(plain, clipped, strict=True)]
        common.compare_table(rows)
        bad = [p.lr for p in plain if p.diverged_at is not None]
        bad_c = [p.lr for p in clipped if p.diverged_at is not None]
        st.markdown(
            (f"Without clipping, NaN/inf first appears at **lr = {min(bad):g}**"
             if bad else "Without clipping no run hit NaN/inf") + "; "
            + (f"with clipping, first at lr = {min(bad_c):g}." if bad_c else
               "with clipping **no run** hit NaN/inf — though at the largest rates the loss is "
               "high: clipping bounds each step, it does not make a bad learning rate good.")
        )
    common.open_in_playground(common.load_preset("exploding-lr"),
                              "Open exploding-lr in the playground")

    st.header("What it means")
    st.markdown(
        "Keep every layer's activations and gradients at about the same scale: pick the "
        "initialisation for the activation (Xavier for tanh, He for ReLU), prefer activations "
        "that look like the identity near 0, and keep gradients in a sane range (D2L suggests "
        "roughly 1e-6 to 1e3). When a learning rate is too large, gradient clipping keeps "
        "the run finite; the real fix is a smaller rate — D2L's advice: start small (e.g. "
        "0.003) and increase until inf/NaN appears."
    )
