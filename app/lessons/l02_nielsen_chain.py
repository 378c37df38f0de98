"""Lesson 2 — Nielsen, ch. 5: the chain of one-neuron layers (pure theory, instant).

Seed 003. dC/db_1 = sigma'(z_1) w_2 sigma'(z_2) w_3 sigma'(z_3) w_4 sigma'(z_4) dC/da_4:
every factor w sigma'(z) is at most |w|/4, so small weights vanish, large weights at z = 0
explode (w = 100: 25 per layer), and a factor >= 1 needs |w| >= 4 and an input inside a
window at most ~0.45 wide (at |w| ~ 6.9). All numbers come from ``core.theory``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app import charts
from app.lessons.common import compare_table, load_preset, open_in_playground, predict
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
FONT = 16


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


def chain_figure(out: dict) -> go.Figure:
    layers = list(range(1, L + 1))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "factor |w<sub>j</sub> σ′(z<sub>j</sub>)| per layer",
        "|∂C/∂b<sub>j</sub>| (relative to ∂C/∂a<sub>4</sub>)"))
    f = np.abs(out["factors"])
    g = np.abs(out["grad_b"])
    colors = [charts.RED if v > 1 else (charts.BLUE if v < 0.25 else charts.GREEN) for v in f]
    fig.add_bar(x=layers, y=np.maximum(f, 1e-30), marker_color=colors, showlegend=False,
                opacity=0.7,
                hovertemplate="layer %{x}: %{y:.3g}<extra></extra>", row=1, col=1)
    fig.add_bar(x=layers, y=np.maximum(g, 1e-30), marker_color=charts.GREY, showlegend=False,
                hovertemplate="layer %{x}: %{y:.3g}<extra></extra>", row=1, col=2)
    for y, text, color in ((1.0, "factor = 1", charts.TEXT), (0.25, "max σ′ = ¼", charts.BLUE)):
        fig.add_scatter(x=[0.5, L + 0.5], y=[y, y], mode="lines", name=text,
                        line=dict(color=color, dash="dash", width=3), hoverinfo="skip",
                        row=1, col=1)
    logs = np.log10(np.maximum(np.concatenate([f, g]), 1e-30))
    lo = float(np.floor(min(logs.min(), -1.0) - 0.3))
    hi = float(np.ceil(max(logs.max(), 0.5) + 0.3))
    fig.update_yaxes(type="log", range=[lo, hi], exponentformat="power", showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT), title_font=dict(size=18))
    fig.update_yaxes(title_text="magnitude (log scale)", row=1, col=1)
    fig.update_xaxes(title_text="layer j", tickvals=layers, showline=True, range=[0.5, L + 0.5],
                     tickfont=dict(size=FONT), title_font=dict(size=18))
    fig.update_layout(template="none", height=430, font=dict(size=FONT, color=charts.TEXT),
                      margin=dict(l=80, r=20, t=100, b=60), bargap=0.3,
                      legend=dict(orientation="h", x=0, y=1.2, xanchor="left",
                                  yanchor="bottom", font=dict(size=FONT)))
    fig.update_annotations(font_size=18)
    return fig


def window_figure(w_now: float) -> go.Figure:
    w_star, width_star = window_width_max()
    ws = np.geomspace(4.0, 200.0, 400)
    fig = go.Figure()
    fig.add_scatter(x=ws, y=window_width(ws), mode="lines", line=dict(width=3, color=charts.BLUE),
                    name="window width", hovertemplate="|w| = %{x:.3g}: %{y:.3f}<extra></extra>")
    fig.add_scatter(x=[w_star], y=[width_star], mode="markers+text", showlegend=False,
                    marker=dict(size=14, color=charts.RED),
                    text=[f"max {width_star:.3f} at |w| = {w_star:.2f}"], cliponaxis=False,
                    textposition="top right", textfont=dict(size=FONT, color=charts.RED))
    fig.add_scatter(x=[abs(w_now)], y=[window_width(abs(w_now))], mode="markers",
                    showlegend=False, marker=dict(size=12, color=charts.ORANGE, symbol="diamond"),
                    hovertemplate="your |w|: %{y:.3f}<extra></extra>")
    fig.update_xaxes(type="log", title_text="|w| (log scale)", showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT), title_font=dict(size=18))
    fig.update_yaxes(title_text="width of the input window", range=[0, 0.55], showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT), title_font=dict(size=18))
    fig.update_xaxes(tickvals=[4, 6.9, 10, 20, 50, 100, 200],
                     ticktext=["4", "6.9", "10", "20", "50", "100", "200"])
    fig.update_layout(template="none", height=380, font=dict(size=FONT, color=charts.TEXT),
                      showlegend=False,
                      title=dict(text="Window width vs |w|", font=dict(size=20), x=0.01),
                      margin=dict(l=80, r=20, t=60, b=60))
    return fig


def factor_figure(w: float) -> go.Figure:
    """|w sigma'(w a + b)| over the input a, with b = -w/2 (window centred on a = 1/2)."""
    a = np.linspace(-0.5, 1.5, 801)
    b = -w / 2
    f = np.abs(w * np.asarray(sigmoid_prime(w * a + b)))
    width = window_width(w)
    fig = go.Figure()
    if width > 0:
        fig.add_vrect(x0=0.5 - width / 2, x1=0.5 + width / 2, fillcolor="rgba(198,40,40,0.12)",
                      line_width=0, annotation_text=f"width {width:.3f}",
                      annotation_position="bottom", annotation_font=dict(size=FONT))
    fig.add_scatter(x=a, y=f, mode="lines", line=dict(width=3, color=charts.BLUE),
                    hovertemplate="a = %{x:.3f}: %{y:.3g}<extra></extra>")
    fig.add_hline(y=1.0, line=dict(color=charts.RED, dash="dash", width=2))
    fig.update_xaxes(title_text="input activation a", showline=True, gridcolor="#e3e3e3",
                     tickfont=dict(size=FONT), title_font=dict(size=18))
    fig.update_yaxes(title_text="|w σ′(wa + b)|", showline=True, gridcolor="#e3e3e3",
                     rangemode="tozero", tickfont=dict(size=FONT), title_font=dict(size=18))
    fig.update_layout(template="none", height=380, font=dict(size=FONT, color=charts.TEXT),
                      showlegend=False,
                      title=dict(text="Factor vs input (b = −w/2)", font=dict(size=20), x=0.01),
                      margin=dict(l=80, r=20, t=60, b=60))
    return fig


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
    guess = predict("l02_chain", "Predict: with every |w| < 1, how does ∂C/∂b₁ compare "
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

    st.plotly_chart(chain_figure(out), theme=None, key="l02_chain_fig")
    compare_table([{"neuron": str(j + 1), "z": f"{out['z'][j]:.3g}",
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
    if guess is not None:
        right = guess.startswith("at least")
        (st.success if right else st.info)(
            f"You predicted: *{guess}*. " + ("Right: " if right else "Not quite: ") +
            "three factors w σ′(z), each below ¼ when |w| < 1, lie between them.")

    st.header("2 · Can big weights rescue it?")
    st.markdown(
        "A factor |w σ′(wa + b)| ≥ 1 needs **|w| ≥ 4** (since σ′ ≤ ¼). But a big w also "
        "pushes z = wa + b far from 0, where σ′ is tiny. Only inputs a inside a narrow "
        "window keep the factor ≥ 1 — and the window is never wider than about **0.45**:")
    st.latex(r"|w\,\sigma'(wa+b)| \ge 1 \iff a \in \text{a window of width } "
             r"\frac{2}{|w|}\ln\!\Big(\frac{|w|\,(1+\sqrt{1-4/|w|})}{2}-1\Big)")
    w_star, width_star = window_width_max()
    w_now = st.slider("|w|", 4.0, 50.0, 6.9, step=0.1, key="l02_wwin")
    c1, c2 = st.columns(2)
    c1.plotly_chart(window_figure(w_now), theme=None, key="l02_window_fig")
    c2.plotly_chart(factor_figure(w_now), theme=None, key="l02_factor_fig")
    compare_table([
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
    open_in_playground(load_preset("nielsen-4"), "Open nielsen-4 in the playground")
