"""Lesson 1 — Nielsen, ch. 5: the speed of learning of each layer.

Seed 003. The nets are Nielsen's ``network2`` (presets nielsen-2/3/4): sigmoid layers of 30,
weights N(0,1)/sqrt(n_in), biases N(0,1), cross-entropy on sigmoid outputs, L2 lambda = 5,
full-batch gradient descent on 1000 MNIST images.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import charts
from app.charts import nielsen as figures
from app.lessons import common
from core.config import RunConfig
from core.snapshot import RunResult

TITLE = "1 · Nielsen: speed of learning"
ICON = ":material/speed:"
PRESETS = ["nielsen-2", "nielsen-3", "nielsen-4"]

#: Nielsen's ||delta^l|| at initialisation, hidden layers 1..L (seed 003).
NIELSEN_SPEEDS: dict[int, tuple[float, ...]] = {
    2: (0.07, 0.31),
    3: (0.012, 0.060, 0.283),
    4: (0.003, 0.017, 0.070, 0.285),
}
#: Nielsen's test accuracy (%) after 30 epochs, mini-batch 10, eta 0.1, lambda 5, 50k images.
NIELSEN_ACCURACY: dict[int, float] = {1: 96.48, 2: 96.90, 3: 96.57, 4: 96.53}
SEEDS = tuple(range(9))          # seeds for the "median over seeds" column
ACC_N_TRAIN = 4000               # all of our MNIST train split
# Nielsen's lambda = 5 with n = 50,000 shrinks every weight by eta*lambda/n = 1e-5 per step;
# with n = 4000 the same per-step shrinkage needs lambda = 5 * 4000 / 50000 = 0.4.
ACC_L2 = 5.0 * ACC_N_TRAIN / 50_000
ACC_EPOCHS = {"1 epoch (a quick look, seconds)": 1,
              "10 epochs (about ½–1 min the first time)": 10,
              "30 epochs, as Nielsen (2–3 min the first time)": 30}
CURVE_EPOCHS = {"100 epochs (seconds)": 100,
                "500 epochs, as Nielsen (about 20 s the first time)": 500}


# ---- runs of the real core (computed once per process) ---------------------------------

def init_speeds(depth: int, seed: int = 0) -> list[float]:
    """||delta^l|| per hidden layer at initialisation (one measurement, no update)."""
    cfg = common.load_preset(f"nielsen-{depth}", steps=0, seed=seed)
    res = common.compute(common.RUN_ALL, cfg,
                         label="Measuring the gradients of three nets at initialisation…")
    return [la.delta_norm for la in res.snapshots[0].layers if la.name != "output"]



def accuracy_config(depth: int, epochs: int) -> RunConfig:
    """Nielsen's accuracy-vs-depth run, on our 4000 images: mini-batch 10, eta 0.1."""
    steps_per_epoch = ACC_N_TRAIN // 10
    return common.load_preset("nielsen-2", depth=depth, n_train=ACC_N_TRAIN, n_test=1000,
                              batch_size=10, l2=ACC_L2, steps=epochs * steps_per_epoch,
                              every=steps_per_epoch)


# ---- the page --------------------------------------------------------------------------------

def render() -> None:
    st.title("Nielsen: why do the first layers learn so slowly?")
    st.markdown(
        "Michael Nielsen (*Neural Networks and Deep Learning*, ch. 5) trained sigmoid nets with "
        "more and more hidden layers of 30 neurons on MNIST. Deeper should be better, yet "
        "accuracy did not improve. He then measured **how fast each layer learns**."
    )
    st.latex(r"\delta^l_j = \frac{\partial C}{\partial b^l_j}, \qquad "
             r"\text{speed of learning of layer } l = \lVert \delta^l \rVert")
    st.caption("δ is averaged over the first 1000 training images, as Nielsen did.")

    guess = common.predict(
        "l01_speed", "Predict: in a net with 4 hidden layers, at initialisation, which layer "
        "learns fastest?",
        ["hidden layer 1 (next to the input)", "all about the same",
         "hidden layer 4 (next to the output)"])

    # -- 1. at initialisation -----------------------------------------------------------------
    st.header("1 · At initialisation")
    depth = st.radio("Hidden layers", [2, 3, 4], index=2, horizontal=True, key="l01_depth",
                     format_func=lambda d: f"{d}  ([784, {', '.join(['30'] * d)}, 10])")
    cfg0 = common.load_preset(f"nielsen-{depth}", steps=0)
    st.code(f"gradlab run --preset nielsen-{depth} --steps 0 --json -", language="bash")
    if common.run_button("l01_init", "Measure at initialisation"):
        res = common.compute(common.RUN_ALL, cfg0,
                             label="Measuring the gradients of three nets at initialisation…")
        per_seed = np.array([init_speeds(depth, s) for s in SEEDS])     # (seeds, layers)
        spread = f"{len(SEEDS)} seeds: median [q1 – q3]"
        snap = res.snapshots[0]
        common.chart(charts.neuron_bars(snap), "l01_bars", charts.CAPTIONS["neuron_bars"])
        this = [la.delta_norm for la in snap.layers if la.name != "output"]
        rows = []
        for i, pub in enumerate(NIELSEN_SPEEDS[depth]):
            rows.append({"hidden layer": str(i + 1), "Nielsen": f"{pub:g}",
                         "this run (seed 0)": common.fmt(this[i]),
                         spread: common.seed_spread(per_seed[:, i])})
        rows.append({"hidden layer": "first / last",
                     "Nielsen": f"1/{NIELSEN_SPEEDS[depth][-1] / NIELSEN_SPEEDS[depth][0]:.0f}",
                     "this run (seed 0)": f"1/{this[-1] / this[0]:.0f}",
                     spread: common.seed_spread(per_seed[:, -1] / per_seed[:, 0],
                                                lambda x: f"1/{x:.0f}")})
        common.compare_table(rows)
        st.markdown(
            f"Nielsen measured **{' / '.join(str(v) for v in NIELSEN_SPEEDS[depth])}**; "
            f"this run: **{' / '.join(common.fmt(v) for v in this)}**. His numbers come from one "
            "random initialisation; ours vary from seed to seed by a factor of about 2-3 in "
            "the first layer, so compare the *pattern*: every layer is several times slower "
            "than the one above it."
        )
        answer = "the layer next to the output learns fastest and the first ~100x slower."
        common.reveal(guess, lambda g: g.startswith("hidden layer 4"), "Right: " + answer,
                      "Not quite: " + answer)
        with st.expander("All three depths (seed 0)"):
            rows = []
            for d, pub in NIELSEN_SPEEDS.items():
                ours = init_speeds(d)
                rows.append({"net": f"[784, {', '.join(['30'] * d)}, 10]",
                             "Nielsen": " / ".join(str(v) for v in pub),
                             "this run": " / ".join(common.fmt(v) for v in ours)})
            common.compare_table(rows)

    # -- 2. during training -------------------------------------------------------------------
    st.header("2 · During training")
    st.markdown(
        "Nielsen then trained with full-batch gradient descent on the same 1000 images "
        "(η = 0.1, λ = 5) and followed each layer's speed. Does the ordering survive training?"
    )
    label = st.radio("Length of the run", list(CURVE_EPOCHS), index=1, horizontal=True,
                     key="l01_curve_epochs")
    epochs = CURVE_EPOCHS[label]
    cfg_t = common.load_preset(f"nielsen-{depth}", steps=epochs)
    st.code(f"gradlab run --preset nielsen-{depth} --steps {epochs} --json -", language="bash")
    if common.run_button("l01_train", f"Train the {depth}-layer net"):
        res = common.compute(common.RUN_ALL, cfg_t,
                             label=f"Training nielsen-{depth} for {epochs} epochs (full batch)…")
        fig = charts.speed_curves(res.snapshots)
        fig.update_xaxes(title_text="epoch (one full-batch step per epoch)")
        common.chart(fig, "l01_curves")
        first, last = res.snapshots[0], res.snapshots[-1]
        h0 = [la.delta_norm for la in first.layers if la.name != "output"]
        h1 = [la.delta_norm for la in last.layers if la.name != "output"]
        ordered = all(a < b for a, b in zip(h1, h1[1:], strict=False))
        v = np.array([[la.delta_norm for la in s.layers if la.name != "output"]
                      for s in res.snapshots])                       # (K, L)
        rebound = [j + 1 for j in range(v.shape[1]) if v[-1, j] > 1.5 * v[:, j].min()]
        st.markdown(
            f"Nielsen saw the speeds drop fast, partly rebound, and stay ordered. This run, "
            f"after {last.step} epochs: **{' / '.join(common.fmt(x) for x in h1)}** (at the start "
            f"{' / '.join(common.fmt(x) for x in h0)}). "
            + ("The layers are **still ordered**: the first learns slowest. "
               if ordered else "The ordering is no longer strict at the last epoch. ")
            + (f"Rebound (now > 1.5x its minimum): layer(s) {', '.join(map(str, rebound))}."
               if rebound else "No rebound in this run: the speeds drop and stay low.")
        )
    common.open_in_playground(cfg_t)

    # -- 3. accuracy vs depth -----------------------------------------------------------------
    st.header("3 · Does depth help?")
    st.markdown(
        "Nielsen's accuracies after 30 epochs (mini-batch 10, η = 0.1, λ = 5, 50,000 images): "
        "depth does **not** help. We have only 4000 training images, so our accuracy is "
        "lower; compare the *shape* of the result."
    )
    elabel = st.radio("Training length", list(ACC_EPOCHS), index=1, horizontal=True,
                      key="l01_acc_epochs")
    a_epochs = ACC_EPOCHS[elabel]
    st.code(f"gradlab run --preset nielsen-4 --set n_train=4000 --set batch_size=10 \\\n"
            f"    --set l2={ACC_L2:g} --steps {a_epochs * ACC_N_TRAIN // 10} --json -"
            "    # --set depth=1 / 2 / 3 for the others", language="bash")
    if common.run_button("l01_acc", "Train 1, 2, 3 and 4 hidden layers"):
        n = len(NIELSEN_ACCURACY)
        runs: dict[int, RunResult] = {
            d: common.compute(common.RUN_ALL, accuracy_config(d, a_epochs),
                              label=f"Training {d} hidden layer(s) ({i + 1} of {n})…")
            for i, d in enumerate(NIELSEN_ACCURACY)}
        rows, curves = [], {}
        for d, res in runs.items():
            acc = [100 * (s.test_accuracy or 0.0) for s in res.snapshots]
            curves[d] = ([s.step / (ACC_N_TRAIN // 10) for s in res.snapshots], acc)
            rows.append({"hidden layers": d, "net": f"[784, {', '.join(['30'] * d)}, 10]",
                         "Nielsen, 30 epochs (%)": NIELSEN_ACCURACY[d],
                         f"this run, {a_epochs} epoch(s) (%)": round(acc[-1], 2),
                         "best epoch (%)": round(max(acc), 2)})
        common.compare_table(rows)
        common.chart(figures.accuracy_by_depth(curves), "l01_acc_fig")
        best = max(runs, key=lambda d: 100 * (runs[d].snapshots[-1].test_accuracy or 0))
        st.markdown(
            f"Best final accuracy here: **{best} hidden layer(s)**. Nielsen's spread was "
            "0.4 points with no gain from depth. Ours, with "
            f"{30 * 50_000 / (a_epochs * ACC_N_TRAIN):.0f}x fewer updates than his 30 epochs "
            "of 50,000 images, shows the same lesson more harshly: the deeper nets are "
            "*behind*, because their first layers barely learn. λ is scaled to "
            f"{ACC_L2:g} so that each step shrinks the weights as much as Nielsen's λ = 5 "
            "did with 50,000 images."
        )

    st.header("What it means")
    st.markdown(
        "Backpropagation multiplies one factor per layer on the way down. With sigmoid "
        "neurons each factor contains σ′(z) ≤ 1/4, so the gradient shrinks layer by layer: "
        "the **vanishing gradient**. The early layers, which should learn the basic features, "
        "learn about 100 times slower — which is why adding layers did not help. Lesson 2 "
        "takes the product apart."
    )
    common.open_in_playground(common.load_preset("nielsen-4"), "Open nielsen-4 in the playground")
