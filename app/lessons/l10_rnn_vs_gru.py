"""Lesson 10 — RNN vs GRU through time (seed 004).

The ``recall`` task: the label is the token shown at t = 0, followed by T - 1 steps of
noise (T = 100). Three nets: a tanh RNN (``rnn-long``), a GRU with PyTorch's default init
(``gru-default``) and a GRU whose update gate starts in "keep" mode (``gru-long``,
gate_bias = 4). ``time_grad_norms`` of each snapshot is ||dL/dh_t|| for t = 1..T.
"""

from __future__ import annotations

import math

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
from core.config import RunConfig, from_json
from core.snapshot import RunResult

TITLE = "10 · RNN vs GRU through time"
ICON = ":material/timeline:"
PRESETS = ["rnn-long", "gru-default", "gru-long"]

NAMES = {"rnn-long": "tanh RNN", "gru-default": "GRU, default init",
         "gru-long": "GRU, keep-biased"}
COLORS = {"tanh RNN": "#c62828", "GRU, default init": "#2166ac",
          "GRU, keep-biased": "#1a9850"}
INIT_SEEDS = tuple(range(5))
LENGTHS = {"300 steps (~1 min the first time)": 300,
           "600 steps (~2 min the first time)": 600}
TRAIN_EVERY = 50
FLOOR = 1e-45          # exact zeros are drawn here on the log axis
FONT = 16


@st.cache_data(max_entries=64, show_spinner=False)
def _result(cfg_json: str) -> RunResult:
    from core.train import run_all

    return run_all(from_json(cfg_json))


def result(cfg: RunConfig) -> RunResult:
    return _result(cfg.to_json())


def ratio(norms) -> float:
    """First / last hidden-state gradient, ||dL/dh_1|| / ||dL/dh_T|| (0 when it underflowed)."""
    v = np.asarray(norms, dtype=np.float64)
    return float(v[0] / v[-1]) if v.size and v[-1] > 0 else float("nan")


def _fmt_ratio(r: float) -> str:
    if not np.isfinite(r):
        return "—"
    return "0 (underflow)" if r == 0 else f"{r:.2g}"


def _style(fig: go.Figure, height: int = 420) -> go.Figure:
    return style_figure(fig, height, margin=dict(l=90, r=20, t=80, b=80),
                        legend_y=-0.25, font=FONT)


def init_figure(snaps: dict) -> go.Figure:
    fig = go.Figure()
    for name, snap in snaps.items():
        v = np.asarray(snap.time_grad_norms, dtype=np.float64)
        t = np.arange(1, v.size + 1)
        fig.add_scatter(x=t, y=np.maximum(v, FLOOR), mode="lines", name=name,
                        line=dict(color=COLORS[name], width=3))
    fig.update_layout(title=dict(text="‖∂L/∂hₜ‖ at initialisation (the label is at t = 1)",
                                 font=dict(size=20), x=0.01))
    fig.update_xaxes(title_text="time step t")
    fig.update_yaxes(type="log", title_text="‖∂L/∂hₜ‖  (log scale)", exponentformat="power")
    return _style(fig)


def training_figure(runs: dict) -> go.Figure:
    names = list(runs)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=names,
                        horizontal_spacing=0.03)
    for j, name in enumerate(names):
        snaps = runs[name].snapshots
        for k, s in enumerate(snaps):
            v = np.asarray(s.time_grad_norms, dtype=np.float64)
            shade = k / max(len(snaps) - 1, 1)
            color = f"rgba({int(230 - 200 * shade)},{int(200 - 140 * shade)},"\
                    f"{int(80 + 100 * shade)},0.95)"
            fig.add_scatter(x=np.arange(1, v.size + 1), y=np.maximum(v, FLOOR), mode="lines",
                            name=f"step {s.step}", legendgroup=f"s{s.step}",
                            showlegend=(j == 0), line=dict(color=color, width=2),
                            row=1, col=j + 1)
        fig.update_xaxes(title_text="time step t", row=1, col=j + 1)
    fig.update_yaxes(type="log", exponentformat="power")      # every panel (shared range)
    fig.update_yaxes(title_text="‖∂L/∂hₜ‖ (log)", row=1, col=1)
    fig.update_layout(title=dict(text="Gradient through time as training goes on "
                                 "(light: early, dark: late)", font=dict(size=20), x=0.01))
    return _style(fig, 460)


def accuracy_figure(runs: dict) -> go.Figure:
    fig = go.Figure()
    for name, res in runs.items():
        evaluated = [s for s in res.snapshots if s.test_accuracy is not None]
        fig.add_scatter(x=[s.step for s in evaluated],
                        y=[s.test_accuracy for s in evaluated], mode="lines+markers",
                        name=name, line=dict(color=COLORS[name], width=3))
    fig.add_hline(y=0.25, line=dict(color="#6b6b6b", dash="dot"),
                  annotation_text="chance (4 classes)", annotation_font=dict(size=FONT))
    fig.update_layout(title=dict(text="Test accuracy on recall, T = 100", font=dict(size=20),
                                 x=0.01))
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="test accuracy", range=[0, 1.05])
    return _style(fig)


def render() -> None:
    st.title("RNN vs GRU: does the gradient survive 100 time steps?")
    st.markdown(
        "A recurrent net applies the same step T times, so its gradient through time is a "
        "product of T Jacobians — the vanishing gradient again, now along time. The task "
        "**recall** shows the label (one of 4 tokens) at t = 1, then 99 steps of noise; the "
        "net must answer at t = 100. The GRU (seed 004) adds an additive path:")
    st.latex(r"h_t = (1 - z_t)\odot h_{t-1} + z_t \odot \tilde h_t"
             r"\quad\Rightarrow\quad \frac{\partial h_t}{\partial h_{t-1}} "
             r"\approx \operatorname{diag}(1 - z_t) + \dots")
    st.markdown(
        "The path carries the gradient only where the update gate zₜ is near 0 (“keep”). "
        "With PyTorch's default init zₜ ≈ ½, so over 99 steps the path alone gives about "
        "½⁹⁹ ≈ 10⁻³⁰. **gru-long** starts the gate in keep mode (`gate_bias = 4`: zₜ ≈ "
        f"σ(−4) ≈ {1 / (1 + math.exp(4)):.3f}), so the path gives about "
        f"{(1 - 1 / (1 + math.exp(4))) ** 99:.2f} — like the forget-gate bias of an LSTM or "
        "chrono initialisation. (In PyTorch's GRUCell the gate is written u = 1 − z.)")
    guess = predict("l10_guess", "Predict: at initialisation, how much of the gradient at "
                    "t = 100 reaches t = 1 in the GRU with default init?",
                    ["most of it: the GRU has an additive path", "about 1 %",
                     "almost nothing (10⁻²⁰ or less), like the RNN"])

    st.header("1 · At initialisation")
    st.code("gradlab run --preset gru-long --steps 0 --json -", language="bash")
    if run_button("l10_init", "Measure the three nets at initialisation"):
        with st.spinner("Unrolling 100 steps, three nets × 5 seeds…"):
            per_seed = {NAMES[p]: [result(load_preset(p, steps=0, seed=s)).snapshots[0]
                                   for s in INIT_SEEDS] for p in PRESETS}
        st.plotly_chart(init_figure({k: v[0] for k, v in per_seed.items()}), key="l10_init_fig")
        st.caption(f"Seed 0. Values that underflowed to exactly 0 are drawn at {FLOOR:g}. "
                   "Only the keep-biased GRU keeps a usable gradient back to t = 1.")
        rows = []
        for name, snaps in per_seed.items():
            rs = [ratio(s.time_grad_norms) for s in snaps]
            rows.append({"net": name, "first / last, seed 0": _fmt_ratio(rs[0]),
                         f"median of {len(rs)} seeds": _fmt_ratio(float(np.median(rs))),
                         "largest": _fmt_ratio(max(rs)),
                         "seeds exactly 0": sum(r == 0 for r in rs)})
        compare_table(rows)
        st.caption("‖∂L/∂h₁‖ / ‖∂L/∂h₁₀₀‖ at initialisation, T = 100, H = 64. Seed 004 "
                   "explains the additive path but gives no numbers; this project measured "
                   "~1e-20 (GRU default), ~1e-21 or exactly 0 (RNN) and ~1e-2 to 0.2 "
                   "(keep-biased) when the lesson was planned.")
        if guess is not None:
            right = guess.startswith("almost nothing")
            (st.success if right else st.info)(
                f"You predicted: *{guess}*. " + ("Right: the additive path only helps "
                                                 "when the gate keeps." if right else
                                                 "Not quite: with z ≈ ½ the path decays "
                                                 "like ½ per step."))

    st.header("2 · Training opens (or does not open) the path")
    label = st.radio("Length of the runs", list(LENGTHS), index=0, horizontal=True,
                     key="l10_len")
    steps = LENGTHS[label]
    st.code(f"gradlab run --preset gru-long --steps {steps} --every {TRAIN_EVERY} --json -",
            language="bash")
    if run_button("l10_train", "Train the three nets"):
        runs = {}
        bar = st.progress(0.0, text="Training…")
        for i, p in enumerate(PRESETS):
            bar.progress(i / 3, text=f"Training the {NAMES[p]} for {steps} steps "
                                     "(100 time steps each)…")
            runs[NAMES[p]] = result(load_preset(p, steps=steps, every=TRAIN_EVERY))
        bar.empty()
        st.plotly_chart(accuracy_figure(runs), key="l10_acc")
        st.caption("Test accuracy (500 held-out sequences): chance is 25 %.")
        st.plotly_chart(training_figure(runs), key="l10_train_fig")
        st.caption("Each line is ‖∂L/∂hₜ‖ at one training step: where the gradient reaches "
                   "t = 1, the net can learn to remember the label.")
        rows = []
        for name, res in runs.items():
            evaluated = [s for s in res.snapshots if s.test_accuracy is not None]
            accs = [s.test_accuracy for s in evaluated]
            solved = next((s.step for s, a in zip(evaluated, accs, strict=True)
                           if a >= 0.9), None)
            rows.append({"net": name, "final test accuracy": f"{accs[-1]:.0%}",
                         "first step with ≥ 90 %": solved if solved is not None else "—",
                         "first / last at the end": _fmt_ratio(
                             ratio(res.snapshots[-1].time_grad_norms))})
        compare_table(rows)
        st.caption(
            "Honest note: with Adam even the tanh RNN can find the path on this simple task "
            "once training has amplified a tiny gradient (Adam rescales small gradients). In "
            "this project's runs (seeds 0-2, 600 steps) the RNN reached 100 % for one seed "
            "(at ~550 steps), ~57 % for another and stayed at chance for the third; the "
            "keep-biased GRU reached 100 % by step 150-250 for all three.")

    st.header("What it means")
    st.markdown(
        "An additive path through time is necessary but not sufficient: it carries the "
        "gradient only while the gate keeps the state. A GRU with a gate at ½ forgets half "
        "of its state every step and its gradient vanishes almost as fast as an RNN's. "
        "Biasing the gate towards keeping (gate_bias, like the LSTM's forget-gate bias) makes "
        "the path real from the first step, so the gradient of the answer reaches the label "
        "and the net learns the task quickly. Training can also open the path by itself — "
        "watch the lines move up — but only once some gradient gets through.")
    cols = st.columns(3)
    for col, p in zip(cols, PRESETS, strict=False):
        with col:
            open_in_playground(load_preset(p), f"{NAMES[p]} → playground")
