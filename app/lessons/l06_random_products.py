"""Lesson 6 — Saxe et al.: singular values of products of random matrices (seed 000).

The end-to-end map of a deep linear net is a product of its weight matrices. Products of
Gaussian matrices become degenerate (a few huge singular values, most near zero) as the
number of factors grows; products of orthogonal matrices stay orthogonal. Spectra come
from ``core.spectrum.random_product_spectrum`` (exact logs of every singular value, at
any depth).
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

TITLE = "6 · Saxe: products of random matrices"
ICON = ":material/grid_on:"
PRESETS = ["deep-linear-fold0", "deep-linear-ortho"]

DEPTHS = (1, 10, 100)
SPREAD_DEPTHS = (1, 2, 5, 10, 20, 50, 100)
COLORS = {"gaussian": "#2166ac", "orthogonal": "#1a9850"}
KIND_LABEL = {"gaussian": "Gaussian, N(0, 1/n)", "orthogonal": "orthogonal (Haar)"}
FONT = 16
LN10 = float(np.log(10.0))


@st.cache_data(max_entries=32, show_spinner=False)
def spectra(n: int, seed: int) -> dict:
    from core.experiments_2 import product_spectra

    return product_spectra(n, DEPTHS, ("gaussian", "orthogonal"), seed)


@st.cache_data(max_entries=32, show_spinner=False)
def spreads(n: int) -> dict:
    from core.experiments_2 import spread_vs_depth

    return {k: spread_vs_depth(n, SPREAD_DEPTHS, k, (0, 1, 2)) for k in COLORS}


def _style(fig: go.Figure, height: int = 420) -> go.Figure:
    return style_figure(fig, height, margin=dict(l=80, r=20, t=80, b=70),
                        legend_y=-0.22, font=FONT)


def histogram_figure(sp: dict, scale: str) -> go.Figure:
    """Gaussian products as histograms; the orthogonal spectrum (all n values exactly at 1)
    as one marked line, since a histogram of identical values is a single spike."""
    fig = make_subplots(rows=1, cols=len(DEPTHS), subplot_titles=[f"product of {d}"
                                                                  for d in DEPTHS],
                        horizontal_spacing=0.06)
    for j, d in enumerate(DEPTHS):
        ls = sp["gaussian"][d]
        x = ls / LN10 if scale == "log" else np.exp(ls)
        lo, hi = (min(x.min(), -0.5), max(x.max(), 0.5)) if scale == "log" else \
            (0.0, max(x.max(), 1.5))
        edges = np.linspace(lo, hi, 31)
        counts, _ = np.histogram(x, edges)
        fig.add_bar(x=0.5 * (edges[1:] + edges[:-1]), y=counts, width=np.diff(edges),
                    name=KIND_LABEL["gaussian"], legendgroup="g", showlegend=(j == 0),
                    marker=dict(color=COLORS["gaussian"], line=dict(width=0)), opacity=0.85,
                    row=1, col=j + 1)
        one = 0.0 if scale == "log" else 1.0
        fig.add_scatter(x=[one, one], y=[0, max(counts.max(), 1) * 1.05], mode="lines",
                        name=f"{KIND_LABEL['orthogonal']}: all n values at s = 1",
                        legendgroup="o", showlegend=(j == 0),
                        line=dict(color=COLORS["orthogonal"], width=4), row=1, col=j + 1)
        fig.update_xaxes(title_text="log₁₀ singular value" if scale == "log"
                         else "singular value", row=1, col=j + 1)
    fig.update_yaxes(title_text="count (of n)", row=1, col=1)
    fig.update_layout(bargap=0, title=dict(
        text="Singular values of a product of random n×n matrices", font=dict(size=20),
        x=0.01))
    _style(fig, height=440)
    fig.update_layout(margin=dict(l=80, r=20, t=80, b=120),
                      legend=dict(orientation="h", x=0, y=-0.3))
    return fig


def spread_figure(sd: dict) -> go.Figure:
    fig = go.Figure()
    for kind, arr in sd.items():
        fig.add_scatter(x=list(SPREAD_DEPTHS), y=arr.mean(1), mode="lines+markers",
                        name=KIND_LABEL[kind], line=dict(color=COLORS[kind], width=3),
                        marker=dict(size=9))
    fig.update_layout(title=dict(text="Spread of the spectrum vs number of factors",
                                 font=dict(size=20), x=0.01))
    fig.update_xaxes(title_text="number of factors (depth)", rangemode="tozero")
    fig.update_yaxes(title_text="std of ln(singular values)", rangemode="tozero")
    _style(fig)
    fig.update_layout(margin=dict(l=80, r=20, t=70, b=120),
                      legend=dict(orientation="h", x=0, y=-0.3))
    return fig


def render() -> None:
    st.title("Saxe: what happens to a product of random matrices?")
    st.markdown(
        "A deep linear net computes W_L ⋯ W_2 W_1 x. Saxe, McClelland & Ganguli (2013) "
        "looked at the singular values of such a product when every factor is a random "
        "matrix. Each factor alone is harmless: Gaussian entries of variance 1/n keep the "
        "length of a vector on average. What does the *product* do?")
    st.latex(r"P_L = W_L \cdots W_2 W_1,\qquad (W_l)_{ij} \sim \mathcal N(0, 1/n)"
             r"\quad\text{or}\quad W_l^\top W_l = I")
    guess = predict("l06_guess", "Predict: after multiplying 100 Gaussian matrices, the "
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
    if run_button("l06_run", "Multiply 1, 10 and 100 random matrices"):
        with st.spinner("Computing exact spectra…"):
            sp = spectra(n, seed)
            sd = spreads(n)
        scale = st.radio("Horizontal axis", ["log", "linear"], horizontal=True,
                         key="l06_scale",
                         format_func=lambda s: "log₁₀ s (honest for decades)" if s == "log"
                         else "s (as in Saxe's figure)")
        st.plotly_chart(histogram_figure(sp, scale), key="l06_hist")
        st.caption("Gaussian products (blue) spread over more and more decades as depth "
                   "grows; orthogonal products (green) keep every singular value at exactly 1.")
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
        compare_table(rows)
        st.caption(f"n = {n}, seed {seed}. Saxe et al. (as retold by Orhan): the product's "
                   "singular values crowd towards 0 while a few grow large.")
        st.plotly_chart(spread_figure(sd), key="l06_spread")
        g, o = sd["gaussian"].mean(1), sd["orthogonal"].mean(1)
        st.caption(f"Mean of 3 seeds: the Gaussian spread grows from {g[0]:.2g} (one factor) "
                   f"to {g[-1]:.3g} (100 factors), about in proportion to the depth; the "
                   f"orthogonal one stays at zero (at most {o.max():.1g}: rounding).")
        if guess is not None:
            right = guess.startswith("a few large")
            (st.success if right else st.info)(
                f"You predicted: *{guess}*. " + ("Right." if right else
                                                 "Not quite: look at the right-hand panel."))

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
    c1, c2 = st.columns(2)
    with c1:
        open_in_playground(load_preset("deep-linear-fold0"),
                           "Open a deep linear net (Fold 0) in the playground")
    with c2:
        open_in_playground(load_preset("deep-linear-ortho"),
                           "Open the orthogonal one in the playground")
