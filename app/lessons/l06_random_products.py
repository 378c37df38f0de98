"""Lesson 6 — Saxe et al.: singular values of products of random matrices (seed 000).

The end-to-end map of a deep linear net is a product of its weight matrices. Products of
Gaussian matrices become degenerate (a few huge singular values, most near zero) as the
number of factors grows; products of orthogonal matrices stay orthogonal. Spectra come
from ``core.spectrum.random_product_spectrum`` (exact logs of every singular value, at
any depth).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.charts import degeneracy as figures
from app.lessons import common

TITLE = "6 · Saxe: products of random matrices"
ICON = ":material/grid_on:"
PRESETS = ["deep-linear-fold0", "deep-linear-ortho"]

DEPTHS = (1, 10, 100)
SPREAD_DEPTHS = (1, 2, 5, 10, 20, 50, 100)
KINDS = ("gaussian", "orthogonal")
#: Computed on an executor, by name (the module imports torch).
PRODUCT_SPECTRA = "core.experiments.spectra:product_spectra"
SPREAD_VS_DEPTH = "core.experiments.spectra:spread_vs_depth"
LN10 = float(np.log(10.0))


def render() -> None:
    st.title("Saxe: what happens to a product of random matrices?")
    st.markdown(
        "A deep linear net computes W_L ⋯ W_2 W_1 x. Saxe, McClelland & Ganguli (2013) "
        "looked at the singular values of such a product when every factor is a random "
        "matrix. Each factor alone is harmless: Gaussian entries of variance 1/n keep the "
        "length of a vector on average. What does the *product* do?")
    st.latex(r"P_L = W_L \cdots W_2 W_1,\qquad (W_l)_{ij} \sim \mathcal N(0, 1/n)"
             r"\quad\text{or}\quad W_l^\top W_l = I")
    guess = common.predict("l06_guess", "Predict: after multiplying 100 Gaussian matrices, the "
                           "singular values of the product are…",
                           ["still spread around 1, like one matrix",
                            "all about equal but smaller",
                            "a few large ones and most tiny (many decades below 1)"])

    c1, c2 = st.columns(2)
    n = c1.select_slider("Matrix size n", [25, 50, 100, 200], value=100, key="l06_n")
    seed = int(c2.number_input("Seed", 0, 10_000, 0, key="l06_seed"))
    st.code("from core.spectrum import random_product_spectrum\n"
            f"random_product_spectrum(n={n}, depth=100, kind='gaussian', seed={seed})",
            language="python")
    if common.run_button("l06_run", "Multiply 1, 10 and 100 random matrices"):
        sp = common.compute(PRODUCT_SPECTRA, n, DEPTHS, KINDS, seed,
                            label="Computing exact spectra…")
        sd = {k: common.compute(SPREAD_VS_DEPTH, n, SPREAD_DEPTHS, k, (0, 1, 2),
                                label="Computing exact spectra…") for k in KINDS}
        scale = st.radio("Horizontal axis", ["log", "linear"], horizontal=True,
                         key="l06_scale",
                         format_func=lambda s: "log₁₀ s (honest for decades)" if s == "log"
                         else "s (as in Saxe's figure)")
        common.chart(figures.product_histograms(sp["gaussian"], scale), "l06_hist",
                     "Gaussian products (blue) spread over more and more decades as depth "
                     "grows; orthogonal products (green) keep every singular value at exactly "
                     "1.")
        rows = []
        for d in DEPTHS:
            g = sp["gaussian"][d]
            s = np.exp(g)
            rows.append({
                "factors": d,
                "Gaussian: largest s": f"{s.max():.3g}",
                "Gaussian: median s": f"{np.median(s):.3g}",
                "Gaussian: smallest s": f"10^{g.min() / LN10:.0f}" if g.min() < -20
                else f"{s.min():.3g}",
                "fraction below 0.1": f"{np.mean(s < 0.1):.0%}",
                "std of ln s (Gaussian)": f"{g.std():.2f}",
                "std of ln s (orthogonal)": f"{sp['orthogonal'][d].std():.1e}",
            })
        common.compare_table(rows)
        st.caption(f"n = {n}, seed {seed}. Saxe et al. (as retold by Orhan): the product's "
                   "singular values crowd towards 0 while a few grow large.")
        common.chart(figures.spread_figure(SPREAD_DEPTHS, sd), "l06_spread")
        g, o = sd["gaussian"].mean(1), sd["orthogonal"].mean(1)
        st.caption(f"Mean of 3 seeds: the Gaussian spread grows from {g[0]:.2g} (one factor) "
                   f"to {g[-1]:.3g} (100 factors), about in proportion to the depth; the "
                   f"orthogonal one stays at zero (at most {o.max():.1g}: rounding).")
        common.reveal(guess, lambda g: g.startswith("a few large"), "Right.",
                      "Not quite: look at the right-hand panel.")

    st.header("What it means")
    st.markdown(
        "Each Gaussian factor stretches some directions and squeezes others a little. In a "
        "product these differences **compound**: each singular value of the product grows or "
        "shrinks at its own steady rate per factor (its Lyapunov exponent), so on a log axis "
        "the spectrum spreads in proportion to the depth. The product becomes nearly "
        "low-rank — *degenerate* — even though no single factor is. An orthogonal factor "
        "rotates without stretching, "
        "so a product of orthogonal matrices is again orthogonal: all singular values stay 1. "
        "That is why Ortho trained so well in lesson 5, and why orthogonal init is the "
        "starting point of dynamical isometry (lesson 7)."
    )
    common.open_each_in_playground({
        "deep-linear-fold0": "Open a deep linear net (Fold 0) in the playground",
        "deep-linear-ortho": "Open the orthogonal one in the playground"})
