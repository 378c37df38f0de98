"""Lesson 2 — Nielsen, ch. 5: the chain of one-neuron layers (pure theory, instant).

Seed 003. dC/db_1 = sigma'(z_1) w_2 sigma'(z_2) w_3 sigma'(z_3) w_4 sigma'(z_4) dC/da_4:
every factor w sigma'(z) is at most |w|/4, so small weights vanish, large weights at z = 0
explode (w = 100: 25 per layer), and a factor >= 1 needs |w| >= 4 and an input inside a
window at most ~0.45 wide (at |w| ~ 6.9). All numbers come from ``core.theory``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.charts import nielsen as figures
from app.lessons import common
from core.theory import (
    chain_forward,
    exploding_chain_biases,
    sigmoid_prime,
    window_width,
    window_width_max,
)

TITLE = "2 · Nielsen: the chain of one-neuron layers"
ICON = ":material/link:"
PRESETS = ["nielsen-4"]

L = 4                      # neurons in the chain
W_RANGE = (-120.0, 120.0)
B_RANGE = (-120.0, 120.0)


def _wkey(j: int) -> str:
    return f"l02_w{j}"


def _bkey(j: int) -> str:
    return f"l02_b{j}"


def _set(ws, bs, x: float | None = None) -> None:
    for j in range(L):
        st.session_state[_wkey(j)] = float(round(ws[j], 2))
        st.session_state[_bkey(j)] = float(round(bs[j], 2))
    if x is not None:
        st.session_state["l02_x"] = float(x)


def set_random() -> None:
    """Nielsen's init for one-input neurons: w, b ~ N(0, 1) (a fresh draw each press)."""
    n = int(st.session_state.get("l02_draws", 0)) + 1
    st.session_state["l02_draws"] = n
    rng = np.random.default_rng(n)
    _set(rng.normal(0, 1, L), rng.normal(0, 1, L))


def set_explode() -> None:
    """Nielsen's exploding example: w = 100 and b_j = -100 a_{j-1}, so every z_j = 0."""
    x = float(st.session_state.get("l02_x", 1.0))
    ws = [100.0] * L
    _set(ws, exploding_chain_biases(ws, x))


def set_small() -> None:
    _set([0.5] * L, [0.0] * L)


def _init_state() -> None:
    if _wkey(0) not in st.session_state:
        st.session_state["l02_x"] = 1.0
        _set([0.5] * L, [0.0] * L)


def render() -> None:
    _init_state()
    st.title("Nielsen: a chain of one-neuron layers")
    st.markdown(
        "To see *why* the gradient vanishes, Nielsen strips the net down to four sigmoid "
        "neurons in a row, x → a₁ → a₂ → a₃ → a₄ → C, with a<sub>j</sub> = σ(z<sub>j</sub>), "
        "z<sub>j</sub> = w<sub>j</sub> a<sub>j−1</sub> + b<sub>j</sub>. Backpropagation "
        "gives a product:", unsafe_allow_html=True)
    st.latex(r"\frac{\partial C}{\partial b_1} = \sigma'(z_1)\; w_2\sigma'(z_2)\; "
             r"w_3\sigma'(z_3)\; w_4\sigma'(z_4)\; \frac{\partial C}{\partial a_4}, \qquad "
             r"|\sigma'(z)| \le \sigma'(0) = \tfrac14")
    guess = common.predict("l02_chain", "Predict: with every |w| < 1, how does ∂C/∂b₁ compare "
                           "with ∂C/∂b₄?", ["bigger", "about the same",
                                            "at least 4³ = 64 times smaller"])

    st.header("1 · Build the chain")
    b1, b2, b3 = st.columns(3)
    b1.button("Small weights (w = 0.5, b = 0)", key="l02_small", on_click=set_small)
    b2.button("Nielsen's init: w, b ~ N(0, 1)", key="l02_random", on_click=set_random)
    b3.button("Make it explode: w = 100, every z = 0", key="l02_explode", on_click=set_explode,
              type="primary")
    st.slider("input x", 0.0, 1.0, step=0.01, key="l02_x")
    cols = st.columns(L)
    for j, col in enumerate(cols):
        col.markdown(f"**neuron {j + 1}**")
        col.slider(f"w{j + 1}", *W_RANGE, step=0.1, key=_wkey(j))
        col.slider(f"b{j + 1}", *B_RANGE, step=0.1, key=_bkey(j))
    ws = [st.session_state[_wkey(j)] for j in range(L)]
    bs = [st.session_state[_bkey(j)] for j in range(L)]
    out = chain_forward(st.session_state["l02_x"], ws, bs)

    common.chart(figures.chain_figure(out["factors"], out["grad_b"]), "l02_chain_fig")
    common.compare_table([{"neuron": str(j + 1), "z": f"{out['z'][j]:.3g}",
                           "a = σ(z)": f"{out['a'][j]:.3g}",
                           "σ′(z)": f"{out['sigma_prime'][j]:.3g}",
                           "w σ′(z)": f"{out['factors'][j]:.3g}",
                           "∂C/∂b": f"{out['grad_b'][j]:.3g}"} for j in range(L)])
    g = np.abs(out["grad_b"])
    ratio = g[0] / g[-1] if g[-1] > 0 else float("nan")
    st.metric("∂C/∂b₁ ÷ ∂C/∂b₄", f"{ratio:.3g}")
    all_zero = bool(np.all(np.abs(out["z"]) < 1e-6))
    if all_zero and np.allclose(ws, 100.0):
        st.markdown(f"**Exploding:** every z = 0, so σ′ = ¼ and each factor is 100 · ¼ = **25** "
                    f"(this chain: {' · '.join(f'{v:.3g}' for v in out['factors'][1:])}); "
                    f"∂C/∂b₁ is 25³ ≈ {25 ** 3:,} times ∂C/∂b₄ — Nielsen's example.")
    elif np.all(np.abs(out["factors"][1:]) < 1):
        st.markdown("Every factor is below 1 (with |w| < 1 it is even below ¼), so the "
                    "gradient **shrinks** on its way to the first neuron: vanishing.")
    answer = "three factors w σ′(z), each below ¼ when |w| < 1, lie between them."
    common.reveal(guess, lambda g: g.startswith("at least"), "Right: " + answer,
                  "Not quite: " + answer)

    st.header("2 · Can big weights rescue it?")
    st.markdown(
        "A factor |w σ′(wa + b)| ≥ 1 needs **|w| ≥ 4** (since σ′ ≤ ¼). But a big w also "
        "pushes z = wa + b far from 0, where σ′ is tiny. Only inputs a inside a narrow "
        "window keep the factor ≥ 1 — and the window is never wider than about **0.45**:")
    st.latex(r"|w\,\sigma'(wa+b)| \ge 1 \iff a \in \text{a window of width } "
             r"\frac{2}{|w|}\ln\!\Big(\frac{|w|\,(1+\sqrt{1-4/|w|})}{2}-1\Big)")
    w_star, width_star = window_width_max()
    w_now = st.slider("|w|", 4.0, 50.0, 6.9, step=0.1, key="l02_wwin")
    ws = np.geomspace(4.0, 200.0, 400)
    a = np.linspace(-0.5, 1.5, 801)             # the input; b = -w/2 centres the window on ½
    factor = np.abs(w_now * np.asarray(sigmoid_prime(w_now * a - w_now / 2)))
    c1, c2 = st.columns(2)
    with c1:
        common.chart(figures.window_figure(ws, window_width(ws), (w_star, width_star), w_now,
                                           window_width(abs(w_now))), "l02_window_fig")
    with c2:
        common.chart(figures.factor_figure(a, factor, window_width(w_now)), "l02_factor_fig")
    common.compare_table([
        {"quantity": "|w| of the widest window", "Nielsen": "≈ 6.9",
         "core.theory": f"{w_star:.3f}"},
        {"quantity": "largest window width", "Nielsen": "≈ 0.45",
         "core.theory": f"{width_star:.4f}"},
        {"quantity": f"window width at |w| = {w_now:g}", "Nielsen": "—",
         "core.theory": f"{window_width(w_now):.4f}"},
    ])
    st.code("python -c \"from core.theory import chain_forward as c; \\\n"
            "  print(c(1.0, [100] * 4, [-100, -50, -50, -50])['factors'])\"\n"
            "python -c \"from core.theory import window_width_max; "
            "print(window_width_max())\"\n"
            "gradlab run --preset nielsen-4 --steps 0 --json -    # the real net's product",
            language="bash")

    st.header("What it means")
    st.markdown(
        "The gradient of an early layer is a **product of many factors**. Unless they all "
        "happen to be close to 1, the product vanishes (the usual case for sigmoid nets) or "
        "explodes. That is the real problem: *unstable* gradients. In a real net the same "
        "product holds with matrices:")
    st.latex(r"\delta^l = \Sigma'(z^l)\,(w^{l+1})^T\,\Sigma'(z^{l+1})\,(w^{l+2})^T \cdots "
             r"\Sigma'(z^L)\,\nabla_a C")
    common.open_in_playground(common.load_preset("nielsen-4"), "Open nielsen-4 in the playground")
