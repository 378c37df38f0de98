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
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app import charts
from app.lessons.common import compare_table, load_preset, open_in_playground, predict, run_button
from core.config import RunConfig, from_dict, from_json
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
COLORS = {"N(0, 1)": charts.RED, "Xavier": charts.BLUE, "He": charts.GREEN,
          "custom": charts.ORANGE}
LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 50.0)
CLIP = 1.0
SWEEP_STEPS = {"50 steps per run (~10 s the first time)": 50,
               "200 steps, the preset (~30 s the first time)": 200}
FONT = 16


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


@st.cache_data(max_entries=128, show_spinner=False)
def _variances(cfg_json: str) -> dict[str, list[float]]:
    from core.experiments_1 import layer_variances

    v = layer_variances(from_json(cfg_json))
    return {"forward": v.forward.tolist(), "backward": v.backward.tolist()}


def variances(cfg: RunConfig) -> dict[str, list[float]]:
    return _variances(cfg.to_json())


@st.cache_data(max_entries=16, show_spinner=False)
def _sweep(cfg_json: str, lrs: tuple[float, ...], clip: float) -> list[dict]:
    from core.experiments_1 import lr_sweep

    return [p.__dict__ for p in lr_sweep(from_json(cfg_json), lrs, clip_norm=clip)]


def sweep(cfg: RunConfig, lrs: tuple[float, ...], clip: float) -> list[dict]:
    return _sweep(cfg.to_json(), tuple(lrs), float(clip))


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


def _clean(v: list[float]) -> list[float | None]:
    return [x if (x is not None and np.isfinite(x) and x > 0) else None for x in v]


def variance_figure(results: dict[str, dict[str, list[float]]], activation: str) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "forward: Var(h<sup>l</sup>)", "backward: Var(∂ℓ/∂h<sup>l</sup>)"))
    for name, r in results.items():
        for c, key in ((1, "forward"), (2, "backward")):
            layers = list(range(1, len(r[key]) + 1))
            fig.add_scatter(x=layers, y=_clean(r[key]), mode="lines+markers", name=name,
                            line=dict(width=3, color=COLORS.get(name, charts.ORANGE)),
                            marker=dict(size=7), legendgroup=name, showlegend=c == 1,
                            row=1, col=c)
    fig.update_yaxes(type="log", exponentformat="power", showline=True, gridcolor="#e3e3e3",
                     tickfont=dict(size=FONT), title_font=dict(size=18))
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    fig.update_xaxes(title_text="hidden layer (1 = next to the input)", showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT), title_font=dict(size=18),
                     dtick=1 if len(next(iter(results.values()))["forward"]) <= 12 else None)
    fig.update_layout(template="none", height=440, font=dict(size=FONT, color=charts.TEXT),
                      title=dict(text=f"{ACTIVATIONS[activation]}: variance through depth "
                                 "at initialisation", font=dict(size=20), x=0.01),
                      margin=dict(l=80, r=20, t=90, b=60), legend=dict(font=dict(size=FONT)))
    fig.update_annotations(font_size=18)
    return fig


def sweep_figure(points: dict[str, list[dict]]) -> go.Figure:
    """Final loss per learning rate (log-log); runs that hit NaN/inf as crosses on top."""
    fig = go.Figure()
    finite = [p["final_loss"] for pts in points.values() for p in pts
              if p["diverged_at"] is None and np.isfinite(p["final_loss"])]
    lo = math.floor(math.log10(min(finite + [0.1]))) - 0.3
    top = max(finite + [10.0]) * 10
    styles = ((charts.RED, "circle", 14, "dash"), (charts.BLUE, "square", 9, "solid"))
    for (name, pts), (color, symbol, size, dash) in zip(points.items(), styles, strict=True):
        ok = [p for p in pts if p["diverged_at"] is None]
        bad = [p for p in pts if p["diverged_at"] is not None]
        fig.add_scatter(x=[p["lr"] for p in ok], y=[p["final_loss"] for p in ok],
                        mode="lines+markers", name=name,
                        line=dict(width=3, color=color, dash=dash),
                        marker=dict(size=size, symbol=symbol),
                        hovertemplate="lr %{x:g}: loss %{y:.3g}<extra>" + name + "</extra>")
        if bad:
            fig.add_scatter(x=[p["lr"] for p in bad], y=[top] * len(bad), mode="markers",
                            name=f"{name}: NaN/inf", marker=dict(symbol="x", size=16, color=color),
                            customdata=[p["diverged_at"] for p in bad],
                            hovertemplate="lr %{x:g}: NaN/inf at step %{customdata}<extra></extra>")
    fig.add_hline(y=top, line=dict(color=charts.GREY, width=1, dash="dot"))
    fig.update_xaxes(type="log", title_text="learning rate (log scale)", showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT), title_font=dict(size=18),
                     tickvals=list(LRS), ticktext=[f"{v:g}" for v in LRS])
    fig.update_yaxes(type="log", title_text="final training loss (log scale)", showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT), title_font=dict(size=18),
                     exponentformat="power", range=[lo, math.log10(top) + 0.5], dtick=1)
    fig.update_layout(template="none", height=440, font=dict(size=FONT, color=charts.TEXT),
                      title=dict(text="Learning-rate sweep: where NaN/inf appears",
                                 font=dict(size=20), x=0.01),
                      margin=dict(l=80, r=20, t=60, b=60), legend=dict(font=dict(size=FONT)))
    return fig


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


def _outcome(p: dict) -> str:
    """One cell of the sweep table: where it broke, or how it ended."""
    if p["diverged_at"] is not None:
        return f"NaN/inf at step {p['diverged_at']}"
    acc = p["final_test_accuracy"]
    return f"loss {p['final_loss']:.3g}" + (f", acc {100 * acc:.0f} %" if acc is not None else "")


def _f(x: float | None) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.3g}"


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
    guess = predict("l04_var", "Predict: a 10-layer linear net of width 256 with W ~ N(0, 1). "
                    "By what factor does the activation variance grow per layer?",
                    ["about 1", "about 2", "about 16", "about 256"])

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
    st.plotly_chart(variance_figure(results, act), theme=None, key="l04_var_fig")
    rows = []
    for name, r in results.items():
        init = name if name in INITS else "custom"
        th = theory_ratio(act, init, c)
        overflow = not all(np.isfinite(x) for x in r["forward"] + r["backward"])
        rows.append({"init": name,
                     "forward factor per layer": _f(geo_ratio(r["forward"], False)),
                     "backward factor per layer": _f(geo_ratio(r["backward"], True)),
                     "theory (n·γ, ×½ for ReLU)": _f(th),
                     "overflow (inf/NaN)": "yes" if overflow else "no"})
    compare_table(rows)
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
    if guess is not None:
        right = guess == "about 256"
        (st.success if right else st.info)(
            f"You predicted: *{guess}*. " + ("Right: " if right else "Not quite: ") +
            f"n·γ = {WIDTH} · 1 = {WIDTH} per layer (choose *linear* above to check); after 10 "
            "layers that is 256¹⁰ ≈ 10²⁴.")
    st.code(_cli(variance_config(act, "He", depth)), language="bash")
    open_in_playground(variance_config(act, "He", depth), "Open the He-initialised net in the "
                       "playground")

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
    cfg = load_preset("exploding-lr", steps=ssteps, every=10)
    st.code(f"gradlab run --preset exploding-lr --set lr=1 --steps {ssteps} --json -\n"
            f"gradlab run --preset exploding-lr --set lr=1 --set clip_norm={CLIP:g} "
            f"--steps {ssteps} --json -", language="bash")
    if run_button("l04_sweep", "Run the sweep"):
        with st.spinner(f"Training {2 * len(LRS)} nets…"):
            plain = sweep(cfg, LRS, 0.0)
            clipped = sweep(cfg, LRS, CLIP)
        st.plotly_chart(sweep_figure({"no clipping": plain,
                                      f"clip_norm = {CLIP:g}": clipped}),
                        theme=None, key="l04_sweep_fig")
        rows = [{"learning rate": f"{p['lr']:g}", "no clipping": _outcome(p),
                 f"clip_norm = {CLIP:g}": _outcome(q)}
                for p, q in zip(plain, clipped, strict=True)]
        compare_table(rows)
        bad = [p["lr"] for p in plain if p["diverged_at"] is not None]
        bad_c = [p["lr"] for p in clipped if p["diverged_at"] is not None]
        st.markdown(
            (f"Without clipping, NaN/inf first appears at **lr = {min(bad):g}**"
             if bad else "Without clipping no run hit NaN/inf") + "; "
            + (f"with clipping, first at lr = {min(bad_c):g}." if bad_c else
               "with clipping **no run** hit NaN/inf — though at the largest rates the loss is "
               "high: clipping bounds each step, it does not make a bad learning rate good.")
        )
    open_in_playground(load_preset("exploding-lr"), "Open exploding-lr in the playground")

    st.header("What it means")
    st.markdown(
        "Keep every layer's activations and gradients at about the same scale: pick the "
        "initialisation for the activation (Xavier for tanh, He for ReLU), prefer activations "
        "that look like the identity near 0, and keep gradients in a sane range (D2L suggests "
        "roughly 1e-6 to 1e3). When a learning rate is too large, gradient clipping keeps "
        "the run finite; the real fix is a smaller rate — D2L's advice: start small (e.g. "
        "0.003) and increase until inf/NaN appears."
    )
