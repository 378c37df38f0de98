"""Lesson 10 — RNN vs GRU through time (seed 004).

The ``recall`` task: the label is the token shown at t = 0, followed by T - 1 steps of
noise (T = 100). Three nets: a tanh RNN (``rnn-long``), a GRU with PyTorch's default init
(``gru-default``) and a GRU whose update gate starts in "keep" mode (``gru-long``,
gate_bias = 4). ``time_grad_norms`` of each snapshot is ||dL/dh_t|| for t = 1..T.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from app.charts import remedies as figures
from app.lessons import common

TITLE = "10 · RNN vs GRU through time"
ICON = ":material/timeline:"
PRESETS = ["rnn-long", "gru-default", "gru-long"]

NAMES = {"rnn-long": "tanh RNN", "gru-default": "GRU, default init",
         "gru-long": "GRU, keep-biased"}
INIT_SEEDS = tuple(range(5))
LENGTHS = {"300 steps (~1 min the first time)": 300,
           "600 steps (~2 min the first time)": 600}
TRAIN_EVERY = 50


def ratio(norms) -> float:
    """First / last hidden-state gradient, ||dL/dh_1|| / ||dL/dh_T|| (0 when it underflowed)."""
    v = np.asarray(norms, dtype=np.float64)
    return float(v[0] / v[-1]) if v.size and v[-1] > 0 else float("nan")


def _fmt_ratio(r: float) -> str:
    if not np.isfinite(r):
        return "—"
    return "0 (underflow)" if r == 0 else f"{r:.2g}"


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
    guess = common.predict(
        "l10_guess",
        "Predict: at initialisation, how much of the gradient at t = 100 reaches t = 1 in the "
        "GRU with default init?",
        ["most of it: the GRU has an additive path", "about 1 %",
         "almost nothing (10⁻²⁰ or less), like the RNN"])

    if common.run_section("1 · At initialisation",
                          "gradlab run --preset gru-long --steps 0 --json -",
                          "l10_init", "Measure the three nets at initialisation"):
        label = f"Unrolling 100 steps, three nets × {len(INIT_SEEDS)} seeds…"
        per_seed = {NAMES[p]: [common.compute(common.RUN_ALL,
                                              common.load_preset(p, steps=0, seed=s),
                                              label=label).snapshots[0] for s in INIT_SEEDS]
                    for p in PRESETS}
        common.chart(figures.init_figure({k: v[0] for k, v in per_seed.items()}),
                     "l10_init_fig",
                     f"Seed 0. Values that underflowed to exactly 0 are drawn at "
                     f"{figures.TIME_FLOOR:g}. Only the keep-biased GRU keeps a usable gradient "
                     "back to t = 1.")
        rows = []
        for name, snaps in per_seed.items():
            rs = [ratio(s.time_grad_norms) for s in snaps]
            rows.append({"net": name, "first / last, seed 0": _fmt_ratio(rs[0]),
                         f"median of {len(rs)} seeds": _fmt_ratio(float(np.median(rs))),
                         "largest": _fmt_ratio(max(rs)),
                         "seeds exactly 0": sum(r == 0 for r in rs)})
        common.compare_table(rows)
        st.caption("‖∂L/∂h₁‖ / ‖∂L/∂h₁₀₀‖ at initialisation, T = 100, H = 64. Seed 004 "
                   "explains the additive path but gives no numbers; this project measured "
                   "~1e-20 (GRU default), ~1e-21 or exactly 0 (RNN) and ~1e-2 to 0.2 "
                   "(keep-biased) when the lesson was planned.")
        common.reveal(guess, lambda g: g.startswith("almost nothing"),
                      "Right: the additive path only helps when the gate keeps.",
                      "Not quite: with z ≈ ½ the path decays like ½ per step.")

    st.header("2 · Training opens (or does not open) the path")
    label = st.radio("Length of the runs", list(LENGTHS), index=0, horizontal=True,
                     key="l10_len")
    steps = LENGTHS[label]
    st.code(f"gradlab run --preset gru-long --steps {steps} --every {TRAIN_EVERY} --json -",
            language="bash")
    if common.run_button("l10_train", "Train the three nets"):
        runs = {NAMES[p]: common.compute(
                    common.RUN_ALL, common.load_preset(p, steps=steps, every=TRAIN_EVERY),
                    label=f"Training the {NAMES[p]} for {steps} steps (100 time steps each)…")
                for p in PRESETS}
        common.chart(figures.accuracy_figure(runs), "l10_acc",
                     "Test accuracy (500 held-out sequences): chance is 25 %.")
        common.chart(figures.training_figure(runs), "l10_train_fig",
                     "Each line is ‖∂L/∂hₜ‖ at one training step: where the gradient reaches "
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
        common.compare_table(rows)
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
    common.open_each_in_playground({p: f"{NAMES[p]} → playground" for p in PRESETS})
