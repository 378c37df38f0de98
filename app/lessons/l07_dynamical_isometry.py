"""Lesson 7 — Pennington, Schoenholz & Ganguli 2017: dynamical isometry (seed 000).

Random MLPs at criticality (chi_1 = 1, from ``core.theory``): the *mean* squared singular
value of the input-output Jacobian is 1 at every depth, but its *spread* differs: it
grows with depth for ReLU and for Gaussian weights, and stays concentrated near 1 only
for orthogonal weights with tanh / hard-tanh at small q*. Jacobians from
``core.models.MLP.jacobian_factors``; spectra from ``core.spectrum``.
"""

from __future__ import annotations

import streamlit as st

from app.charts import jacobians as figures
from app.lessons import common
from core.experiments.results import ISOMETRY_COMBOS

TITLE = "7 · Pennington: dynamical isometry"
ICON = ":material/balance:"
PRESETS = ["relu-he"]

DEPTHS = (2, 8, 32, 128)
#: Computed on an executor, by name (the module imports torch).
CRITICAL_POINT = "core.experiments.spectra:critical_point"
JACOBIAN_SPECTRUM = "core.experiments.spectra:jacobian_spectrum"
SIGMA_B = (0.003, 0.01, 0.03, 0.1, 0.3)


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

    guess = common.predict("l07_guess", "Predict: which net keeps its Jacobian's singular values "
                           "near 1 at depth 128?",
                           ["ReLU with He init (Gaussian)", "tanh with Gaussian weights",
                            "tanh / hard-tanh with orthogonal weights", "all of them: χ₁ = 1"])

    c1, c2, c3 = st.columns(3)
    sigma_b = c1.select_slider("Bias scale σ_b (sets q*)", list(SIGMA_B), value=0.01,
                               key="l07_sb")
    width = c2.select_slider("Width n", [64, 128, 256], value=128, key="l07_width")
    seed = int(c3.number_input("Seed", 0, 10_000, 0, key="l07_seed"))
    sw = common.compute(CRITICAL_POINT, "tanh", sigma_b, label="Finding the critical point…")[0]
    st.markdown("The same measurement for one of these nets (tanh + orthogonal, depth 32) on "
                "the command line; there x is a data point rather than scaled to q*:")
    st.code(f"gradlab run --set depth=32 --set width={width} --set activation=tanh "
            f"--set init=orthogonal --set init_gain={sw:.4f} --set bias_init=normal "
            f"--set sigma_b={sigma_b:g} --set dataset=teacher --set input_dim={width} "
            "--set jacobian=true --steps 0 --json -", language="bash")
    if common.run_button("l07_run", "Compute the Jacobian spectra at depths 2, 8, 32, 128"):
        results = [common.compute(JACOBIAN_SPECTRUM, act, init, DEPTHS, width, sigma_b, seed,
                                  name, label=f"{name}…")
                   for name, act, init in ISOMETRY_COMBOS]
        common.chart(figures.jacobian_histograms(results, DEPTHS), "l07_hist",
                     "As depth grows, every spectrum but the orthogonal tanh / hard-tanh ones "
                     "smears over many decades (grey band: s within a factor 2 of 1; values "
                     "below 10⁻⁶, and exact zeros, are piled up at the left edge).")
        common.chart(figures.near_one_figure(results, DEPTHS), "l07_near",
                     "Fraction of singular values within a factor 2 of 1: it collapses with "
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
        common.compare_table(rows)
        st.caption(f"Width {width}, seed {seed}, one input x; spread = q90 − q10 of ln s over "
                   "the nonzero values. Pennington et al.: orthogonal "
                   "weights with hard-tanh (or tanh at small q*) reach a depth-independent "
                   "spectrum; ReLU cannot, whatever the weights. Exact zeros are ReLU units "
                   "that are off (and saturated hard-tanh units) for this input.")
        common.reveal(guess, lambda g: g.startswith("tanh / hard-tanh"), "Right.",
                      "Not quite: only the orthogonal tanh / hard-tanh nets stay near 1.")

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
    common.open_in_playground(common.load_preset("relu-he"),
                              "Open a deep ReLU net (He init) in the playground")
