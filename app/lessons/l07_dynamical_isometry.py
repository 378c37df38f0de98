"""Lesson 7 — Pennington, Schoenholz & Ganguli 2017: dynamical isometry (seed 000).

Random MLPs at criticality (chi_1 = 1, from ``core.theory``): the *mean* squared singular
value of the input-output Jacobian is 1 at every depth, but its *spread* differs: it
grows with depth for ReLU and for Gaussian weights, and stays concentrated near 1 only
for orthogonal weights with tanh / hard-tanh at small q*. Jacobians from
``core.models.MLP.jacobian_factors``; spectra from ``core.spectrum``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.lessons.common import (
    compare_table,
    load_preset,
    open_in_playground,
    predict,
    run_button,
    style_figure,
)

TITLE = "7 · Pennington: dynamical isometry"
ICON = ":material/balance:"
PRESETS = ["relu-he"]

DEPTHS = (2, 8, 32, 128)
COLORS = {"relu-gaussian": "#e08214", "relu-orthogonal": "#b35806",
          "tanh-gaussian": "#2166ac", "tanh-orthogonal": "#1a9850",
          "hardtanh-orthogonal": "#5e3c99"}
SIGMA_B = (0.003, 0.01, 0.03, 0.1, 0.3)
FONT = 16
LN10 = float(np.log(10.0))


@st.cache_data(max_entries=64, show_spinner=False)
def spectrum_for(activation: str, init: str, label: str, width: int, sigma_b: float,
                 seed: int):
    from core.experiments_2 import jacobian_spectrum

    return jacobian_spectrum(activation, init, DEPTHS, width, sigma_b, seed, label)


def _combos() -> list[tuple[str, str, str]]:
    from core.experiments_2 import ISOMETRY_COMBOS

    return list(ISOMETRY_COMBOS)


def _style(fig: go.Figure, height: int = 420) -> go.Figure:
    return style_figure(fig, height, margin=dict(l=80, r=20, t=80, b=120),
                        legend_y=-0.3, font=FONT)


def histogram_figure(results: list, lo: float = -6.0, hi: float = 2.0) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(DEPTHS), shared_yaxes=True,
                        subplot_titles=[f"depth {d}" for d in DEPTHS],
                        horizontal_spacing=0.03)
    edges = np.linspace(lo, hi, 41)
    mids = 0.5 * (edges[1:] + edges[:-1])
    for j in range(len(DEPTHS)):
        for r in results:
            x = r.log_sv[j] / LN10                        # log10 s, -inf for exact zeros
            x = np.clip(np.where(np.isfinite(x), x, lo), lo, hi)
            counts, _ = np.histogram(x, edges)
            frac = counts / max(len(r.log_sv[j]), 1)
            fig.add_scatter(x=mids, y=frac, mode="lines", line_shape="hvh",
                            name=r.label, legendgroup=r.label, showlegend=(j == 0),
                            line=dict(color=COLORS[f"{r.activation}-{r.init}"], width=2.5),
                            row=1, col=j + 1)
        fig.add_vrect(x0=np.log10(0.5), x1=np.log10(2.0), fillcolor="rgba(0,0,0,0.07)",
                      line_width=0, row=1, col=j + 1)
        fig.update_xaxes(title_text="log₁₀ s", range=[lo, hi], row=1, col=j + 1)
    fig.update_yaxes(title_text="fraction of singular values", row=1, col=1)
    fig.update_layout(title=dict(text="Singular values of the input-output Jacobian",
                                 font=dict(size=20), x=0.01))
    _style(fig, height=460)
    fig.update_layout(margin=dict(l=80, r=20, t=80, b=130),
                      legend=dict(orientation="h", x=0, y=-0.32))
    return fig


def near_one_figure(results: list) -> go.Figure:
    fig = go.Figure()
    for r in results:
        fig.add_scatter(x=list(DEPTHS), y=r.near_one, mode="lines+markers", name=r.label,
                        line=dict(color=COLORS[f"{r.activation}-{r.init}"], width=3),
                        marker=dict(size=9))
    fig.update_layout(title=dict(text="How concentrated near 1 is the spectrum?",
                                 font=dict(size=20), x=0.01))
    fig.update_xaxes(type="log", title_text="depth L", tickvals=list(DEPTHS))
    fig.update_yaxes(title_text="fraction of s in [½, 2]", range=[0, 1.05])
    return _style(fig)


def render() -> None:
    st.title("Pennington: can a deep net's Jacobian stay an isometry?")
    st.markdown(
        "At the *edge of chaos* (χ₁ = 1) a random net neither shrinks nor grows a gradient "
        "**on average**: the mean of s² over the Jacobian's singular values s stays 1 at any "
        "depth. Pennington, Schoenholz & Ganguli (2017) asked about the **whole spectrum**: "
        "an average of 1 can hide a few huge and many tiny singular values (lesson 6). "
        "*Dynamical isometry* means all of them stay near 1.")
    st.latex(r"J = \frac{\partial h_L}{\partial x} = \prod_{l=L}^{1} Dₗ Wₗ,\quad "
             r"D_l = \operatorname{diag}\phi'(z_l),\qquad "
             r"\chi_1 = \sigma_w^2\,\mathbb E\big[\phi'(\sqrt{q^*}z)^2\big] = 1")
    st.caption("q*: the squared length per unit that pre-activations settle to; σ_b and "
               "σ_w are chosen on the critical line (core.theory.critical_sigma_w).")

    guess = predict("l07_guess", "Predict: which net keeps its Jacobian's singular values "
                    "near 1 at depth 128?",
                    ["ReLU with He init (Gaussian)", "tanh with Gaussian weights",
                     "tanh / hard-tanh with orthogonal weights", "all of them: χ₁ = 1"])

    c1, c2, c3 = st.columns(3)
    sigma_b = c1.select_slider("Bias scale σ_b (sets q*)", list(SIGMA_B), value=0.01,
                               key="l07_sb")
    width = c2.select_slider("Width n", [64, 128, 256], value=128, key="l07_width")
    seed = int(c3.number_input("Seed", 0, 10_000, 0, key="l07_seed"))
    from core.experiments_2 import critical_point

    sw = critical_point("tanh", sigma_b)[0]
    st.markdown("The same measurement for one of these nets (tanh + orthogonal, depth 32) on "
                "the command line; there x is a data point rather than scaled to q*:")
    st.code(f"gradlab run --set depth=32 --set width={width} --set activation=tanh "
            f"--set init=orthogonal --set init_gain={sw:.4f} --set bias_init=normal "
            f"--set sigma_b={sigma_b:g} --set dataset=teacher --set input_dim={width} "
            "--set jacobian=true --steps 0 --json -", language="bash")
    if run_button("l07_run", "Compute the Jacobian spectra at depths 2, 8, 32, 128"):
        results = []
        combos = _combos()
        bar = st.progress(0.0, text="Computing…")
        for i, (label, act, init) in enumerate(combos):
            bar.progress(i / len(combos), text=f"{label}…")
            results.append(spectrum_for(act, init, label, width, sigma_b, seed))
        bar.empty()
        st.plotly_chart(histogram_figure(results), key="l07_hist")
        st.caption("As depth grows, every spectrum but the orthogonal tanh / hard-tanh ones "
                   "smears over many decades (grey band: s within a factor 2 of 1; values "
                   "below 10⁻⁶, and exact zeros, are piled up at the left edge).")
        st.plotly_chart(near_one_figure(results), key="l07_near")
        st.caption("Fraction of singular values within a factor 2 of 1: it collapses with "
                   "depth for ReLU and for Gaussian weights, and stays high for orthogonal "
                   "tanh / hard-tanh.")
        rows = []
        for r in results:
            rows.append({
                "net": r.label, "σ_w": f"{r.sigma_w:.4f}", "σ_b": f"{r.sigma_b:g}",
                "q*": f"{r.q_star:.3g}", "χ₁": f"{r.chi_1:.3f}",
                **{f"in [½,2] at L={d}": f"{v:.0%}"
                   for d, v in zip(DEPTHS, r.near_one, strict=True)},
                f"spread of ln s at L={DEPTHS[-1]}": f"{r.spread[-1]:.2f}",
                f"zeros at L={DEPTHS[-1]}": int(r.n_zero[-1]),
            })
        compare_table(rows)
        st.caption(f"Width {width}, seed {seed}, one input x; spread = q90 − q10 of ln s over "
                   "the nonzero values. Pennington et al.: orthogonal "
                   "weights with hard-tanh (or tanh at small q*) reach a depth-independent "
                   "spectrum; ReLU cannot, whatever the weights. Exact zeros are ReLU units "
                   "that are off (and saturated hard-tanh units) for this input.")
        if guess is not None:
            right = guess.startswith("tanh / hard-tanh")
            (st.success if right else st.info)(
                f"You predicted: *{guess}*. " + ("Right." if right else
                                                 "Not quite: only the orthogonal "
                                                 "tanh / hard-tanh nets stay near 1."))

    st.header("What it means")
    st.markdown(
        "χ₁ = 1 fixes only the **mean** of s². The Jacobian is a product of Dₗ Wₗ, and two "
        "things spread its spectrum: random Gaussian Wₗ (lesson 6) and a Dₗ that is far "
        "from the identity. ReLU's Dₗ is 0 for half the units *at any scale*, so ReLU nets "
        "cannot be isometric. For tanh / hard-tanh, a small q* keeps the pre-activations in "
        "the linear part, where Dₗ ≈ I; with orthogonal Wₗ the product is then close to "
        "orthogonal at any depth. Gradients of such a net neither vanish nor explode in "
        "*any* direction, and Pennington et al. found that it trains much faster. The cost: "
        "the smaller q*, the closer the net is to a linear one.")
    open_in_playground(load_preset("relu-he"), "Open a deep ReLU net (He init) in the "
                       "playground")
