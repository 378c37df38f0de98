"""Lesson 3 — Glorot & Bengio (2010): saturation, normalised initialisation, and the cost.

Seed 001. Part 1 (``app.lessons.glorot_shapeset``) runs the paper's own experiments:
Shapeset-3x2, 5 hidden layers of 1000 units, mini-batches of 10 (presets shapeset-*-1000),
Figures 2, 3, 4, 6-7 and Table 1's direction. Part 2 asks the same questions on MNIST with
smaller nets (presets glorot-sigmoid, glorot-standard-tanh, glorot-normalized-tanh) plus one
net of the paper's size (glorot-tanh-1000), where the tanh cascade goes the other way. Every
section shows this run's numbers beside the paper's claims and says where they differ.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import charts
from app.charts import initialisation as figures
from app.lessons import common, glorot_shapeset
from core.config import RunConfig
from core.experiments.saturation import (
    activation_percentiles,
    first_crossings,
    hist_quantile,
    saturation_order,
)
from core.snapshot import RunResult, Snapshot

TITLE = "3 · Glorot & Bengio: saturation and init"
ICON = ":material/compress:"
PRESETS = [*glorot_shapeset.PRESETS, "glorot-sigmoid", "glorot-standard-tanh",
           "glorot-normalized-tanh", "glorot-tanh-1000"]

ACTS = ("sigmoid", "tanh", "softsign")
STEPS = {"300 steps (quick look, ~10 s)": 300, "1000 steps (about ½–1 min the first time)": 1000,
         "3000 steps, the preset (2–3 min the first time)": 3000}
COST_STEPS = {"300 steps (~5 s)": 300, "1000 steps (about 15–30 s the first time)": 1000}
STATS = {
    "mean": "activation mean",
    "p98": "98th percentile of |activation|",
    "std": "activation standard deviation",
    "saturation": "fraction of saturated units",
}
SHORT = {"mean": "mean", "p98": "98th pct of |a|", "std": "std", "saturation": "saturated"}
CASCADE_PRESET = "glorot-tanh-1000"   # 5 x 1000 tanh, standard init, SGD batch 10, lr 0.1
CASCADE_LEVEL = 0.9                   # "saturated": the 98th percentile of |a| reaches this
CASCADE_WINDOW = 3                    # snapshots averaged: one batch of 10 is a noisy sample
#: Computed on an executor, by name (the module imports torch).
LAYER_VARIANCES = "core.experiments.variance:layer_variances"


def saturation_config(activation: str, steps: int) -> RunConfig:
    """glorot-sigmoid (4 x 256, standard init, SGD batch 10) with this activation."""
    return common.load_preset("glorot-sigmoid", activation=activation, steps=steps)


def cost_config(loss: str, steps: int) -> RunConfig:
    return common.load_preset("glorot-standard-tanh", loss=loss, steps=steps, every=20)


def layer_stat(s: Snapshot, stat: str) -> list[float]:
    """One statistic per hidden layer of a snapshot."""
    hidden = [la for la in s.layers if la.name != "output"]
    if stat == "mean":
        return [la.activation_mean for la in hidden]
    if stat == "std":
        return [la.activation_std for la in hidden]
    if stat == "saturation":
        return [la.saturation for la in hidden]
    return [hist_quantile(la.act_hist, s.act_edges, 0.98, absolute=True) for la in hidden]


def stat_matrix(res: RunResult, stat: str) -> np.ndarray:
    """(K, L): one statistic per hidden layer at every snapshot."""
    return np.array([layer_stat(s, stat) for s in res.snapshots])


def stats_figure(runs: dict[str, RunResult], stat: str) -> go.Figure:
    """Per net, every hidden layer's activation mean (Glorot's sigmoid plot) on top and
    ``stat`` (default: 98th percentile of |a|, his tanh/softsign plot) below."""
    series = {name: ([s.step for s in res.snapshots], stat_matrix(res, "mean"),
                     stat_matrix(res, stat)) for name, res in runs.items()}
    return figures.saturation_grid(series, SHORT[stat], STATS[stat],
                                   unit_range=stat in ("p98", "saturation"))


def first_crossing(res: RunResult, stat: str, level: float) -> list[int | None]:
    """Per hidden layer, the first step at which ``stat`` reaches ``level`` (None: never)."""
    out: list[int | None] = []
    vals = stat_matrix(res, stat)
    steps = [s.step for s in res.snapshots]
    for j in range(vals.shape[1]):
        hit = np.nonzero(vals[:, j] >= level)[0]
        out.append(steps[hit[0]] if hit.size else None)
    return out


def tanh_verdict(cross: list[int | None], steps: int) -> str:
    """One sentence: does this run show Glorot's first-layer-first cascade?"""
    hit = [(s, j) for j, s in enumerate(cross) if s is not None]
    if not hit:
        return f"No layer got there within {steps} steps; try a longer run."
    cascade = all(s is not None for s in cross) and all(
        a <= b for a, b in zip(cross, cross[1:], strict=False)) and cross[0] < cross[-1]
    if cascade:
        return "Here too the first layer gets there first: **the cascade is reproduced**."
    first = min(hit)[1] + 1
    return (f"Here layer {first} gets there first: **not** Glorot's first-layer-first "
            "cascade.")


_ordinal = glorot_shapeset.ordinal


def _cascade(res: RunResult) -> tuple[np.ndarray, list[int | None], list[int], np.ndarray]:
    """(98th percentiles (K, L), first crossings of the level per layer, the order the
    layers crossed in, each layer's mean over the last CASCADE_WINDOW snapshots)."""
    _, vals = activation_percentiles(res)
    cross = first_crossings(res, CASCADE_LEVEL, window=CASCADE_WINDOW)
    return vals, cross, saturation_order(cross), vals[-CASCADE_WINDOW:].mean(0)


def cascade_rows(res: RunResult) -> list[dict[str, str]]:
    """Per hidden layer: the paper's place in the cascade beside this run's numbers."""
    vals, cross, order, end = _cascade(res)
    rows = []
    for j, s in enumerate(cross):
        place = _ordinal(order.index(j + 1)) if j + 1 in order else "not within the run"
        rows.append({
            "layer": str(j + 1),
            "Glorot & Bengio (Shapeset)": f"saturates {_ordinal(j)}",
            "98th pct at init": f"{vals[0, j]:.2f}",
            "98th pct at the end": f"{end[j]:.2f}",
            f"first step ≥ {CASCADE_LEVEL}": str(s) if s is not None else "never",
            "this run": place,
        })
    return rows


def cascade_summary(res: RunResult) -> str:
    """Sentences on this run: the order, and where layer 1 ends up."""
    _, cross, order, end = _cascade(res)
    steps = res.snapshots[-1].step
    said = (f"Order in which the layers reached {CASCADE_LEVEL}: "
            + (", ".join(f"layer {j}" for j in order) if order else "none yet")
            + (f" (never: {', '.join(str(j + 1) for j, s in enumerate(cross) if s is None)})"
               if None in cross else "") + ". ")
    said += tanh_verdict(cross, steps) + " "
    lowest = int(np.argmin(end)) + 1
    said += (f"At the end (mean of the last {CASCADE_WINDOW} snapshots) layer 1's 98th "
             f"percentile is **{end[0]:.2f}**, layers 2–{len(end)}: "
             f"{' / '.join(f'{v:.2f}' for v in end[1:])}: ")
    said += ("**layer 1 is the least saturated layer, the opposite of the cascade.**"
             if lowest == 1 else f"the least saturated layer is layer {lowest}.")
    return said


def render() -> None:
    st.title("Glorot & Bengio: saturated units and a better initialisation")
    st.markdown(
        "Glorot and Bengio (2010) asked why plain gradient descent from a random start trained "
        "deep nets so badly. They watched, layer by layer, the **activations** and the "
        "**back-propagated gradients** during training — exactly what this app shows."
    )
    guess = common.predict(
        "l03_sigmoid",
        "Predict: in a deep sigmoid net, what happens first to the top hidden layer?",
        ["its outputs drift towards 1", "its outputs are pushed towards 0 (saturation)",
         "nothing special: it stays around 0.5"])
    glorot_shapeset.render(guess)

    # -- 3. saturation during training, on MNIST ----------------------------------------------
    st.header("3 · The same on MNIST, smaller nets: sigmoid vs tanh vs softsign")
    st.markdown("Four hidden layers of 256 units, standard init "
                "W ~ U[−1/√n, 1/√n], SGD with mini-batches of 10 on 2000 MNIST images.")
    label = st.radio("Training length", list(STEPS), index=1, horizontal=True, key="l03_steps")
    steps = STEPS[label]
    st.code(f"gradlab run --preset glorot-sigmoid --steps {steps} --json -\n"
            f"gradlab run --preset glorot-sigmoid --set activation=tanh --steps {steps} --json -\n"
            f"gradlab run --preset glorot-sigmoid --set activation=softsign --steps {steps} "
            "--json -", language="bash")
    if common.run_button("l03_sat", "Train the three nets"):
        runs = {act: common.compute(common.RUN_ALL, saturation_config(act, steps),
                                    label=f"Training the {act} net ({i + 1} of {len(ACTS)})…")
                for i, act in enumerate(ACTS)}
        stat = st.selectbox("Bottom row", [k for k in STATS if k != "mean"],
                            format_func=STATS.get, key="l03_stat")
        common.chart(stats_figure(runs, stat), "l03_stats_fig")
        sig = runs["sigmoid"]
        top0 = sig.snapshots[0].layers[-2].activation_mean
        top1 = sig.snapshots[-1].layers[-2].activation_mean
        low1 = [la.activation_mean for la in sig.snapshots[-1].layers[:-2]]
        acc = {a: 100 * (r.snapshots[-1].test_accuracy or 0.0) for a, r in runs.items()}
        st.markdown(
            f"**Sigmoid.** Glorot: the top hidden layer is driven to 0 early and leaves "
            f"saturation only slowly. This run: the top layer's mean goes from **{top0:.2f}** "
            f"to **{top1:.2f}** in {steps} steps, while the lower layers stay at "
            f"{' / '.join(f'{v:.2f}' for v in low1)}; test accuracy "
            f"**{acc['sigmoid']:.0f} %** (tanh {acc['tanh']:.0f} %, softsign "
            f"{acc['softsign']:.0f} %)."
        )
        cross = first_crossing(runs["tanh"], "p98", 0.9)
        order = ", ".join(f"layer {j + 1}: " + (f"step {s}" if s is not None else "not yet")
                          for j, s in enumerate(cross))
        st.markdown(
            "**Tanh.** Glorot (Shapeset, 1000 units per layer): the layers saturate one after "
            "another, *first layer first*. This run — first step at which the 98th percentile "
            f"of |tanh| reaches 0.9: {order}. " + tanh_verdict(cross, steps))
        st.caption("On these small MNIST nets we did not find Glorot's first-layer-first "
                   "cascade with the learning rates and batch sizes we tried. Section 3b runs "
                   "the paper's own size on MNIST; section 2 ran it on Shapeset.")
        st.markdown(
            "**Softsign.** Glorot: no cascade; activations settle in the non-linear but "
            "unsaturated region (|a| around 0.4–0.8): compare the bottom row."
        )
        if not st.session_state.get("ran_l03_fig2"):    # else revealed in section 2
            glorot_shapeset.reveal_sigmoid(guess)
    common.open_in_playground(common.load_preset("glorot-sigmoid"),
                              "Open glorot-sigmoid in the playground")

    # -- 3b. the tanh cascade at the paper's size, on MNIST ------------------------------------
    st.header("3b · MNIST: the tanh cascade at the paper's size")
    st.markdown(
        "Glorot & Bengio (Figure 3: Shapeset-3x2, 5 tanh layers of 1000 units, standard init, "
        "SGD with mini-batches of 10): during training the 98th percentiles of the "
        "activations climb to ±1 **one layer after another: layer 1 first, then layer 2, "
        "…**. Section 2 showed its beginning on Shapeset; here is the same net on our 4000 "
        "MNIST images, learning rate 0.1. At initialisation the standard init makes the "
        "activations shrink "
        "from layer to layer (Var(W)·n = 1/3), so layer 1 starts highest — the cascade has "
        "a head start.")
    st.code(f"gradlab run --preset {CASCADE_PRESET} --json -", language="bash")
    if common.run_button("l03_cascade",
                         "Train the 5 × 1000 net (3000 steps, 1–3 min the first time)"):
        res = common.compute(common.RUN_ALL, common.load_preset(CASCADE_PRESET),
                             label="Training 5 × 1000 tanh layers…")
        common.chart(figures.cascade_figure(*activation_percentiles(res), CASCADE_LEVEL),
                     "l03_cascade_fig")
        common.compare_table(cascade_rows(res))
        st.markdown(cascade_summary(res))
        st.caption(
            "The 98th percentile is read from each snapshot's histogram of one training batch "
            f"(10 images × 1000 units); a crossing counts when the mean of {CASCADE_WINDOW} "
            "consecutive snapshots reaches the level. On MNIST the first layer trails the "
            "others during training (the test suite checks this): the paper's cascade is a "
            "Shapeset result that we could not reproduce on MNIST; on Shapeset (section 2) "
            "layer 1 does saturate first.")
    common.open_in_playground(common.load_preset(CASCADE_PRESET),
                              f"Open {CASCADE_PRESET} in the playground")

    # -- 4. gradients at initialisation -------------------------------------------------------
    st.header("4 · MNIST-size nets: back-propagated gradients at initialisation")
    st.markdown("Five tanh layers of 256 units. Standard init keeps Var(W) = 1/(3 n); "
                "Glorot and Bengio's *normalised* init balances the forward and the backward "
                "pass:")
    st.latex(r"W \sim U\left[-\frac{\sqrt 6}{\sqrt{n_{in}+n_{out}}},\ "
             r"+\frac{\sqrt 6}{\sqrt{n_{in}+n_{out}}}\right]"
             r"\quad\Rightarrow\quad \mathrm{Var}(W)=\frac{2}{n_{in}+n_{out}}")
    st.code("gradlab run --preset glorot-standard-tanh --steps 0 --json -\n"
            "gradlab run --preset glorot-normalized-tanh --steps 0 --json -", language="bash")
    if common.run_button("l03_init", "Measure both inits"):
        cols = st.columns(2)
        table = []
        for col, name, label in zip(cols, ("glorot-standard-tanh", "glorot-normalized-tanh"),
                                    ("standard", "normalised"), strict=True):
            cfg = common.load_preset(name, steps=0)
            snap = common.compute(common.RUN_ALL, cfg,
                                  label=f"Measuring the {label} init…").snapshots[0]
            fig = charts.grad_hist_panel(snap)
            fig.update_layout(title_text=f"{label} init: log10 |dC/dz| per layer", height=420)
            with col:
                common.chart(fig, f"l03_gh_{label}")
            v = common.compute(LAYER_VARIANCES, cfg, label=f"Measuring the {label} init…")
            g = np.sqrt(v.backward_z)
            table.append({"init": label,
                          **{f"grad std, layer {i + 1}": common.fmt(x) for i, x in enumerate(g)},
                          "first / last": f"{g[0] / g[-1]:.2f}"})
        common.compare_table(table)
        st.markdown(
            "Glorot & Bengio: with standard init the gradients **shrink towards the input**; "
            "with normalised init every layer has about the same spread. This run: the ratio "
            f"of the gradient spread in layer 1 to layer 5 is **{table[0]['first / last']}** "
            f"(standard) vs **{table[1]['first / last']}** (normalised)."
        )
    common.open_in_playground(common.load_preset("glorot-normalized-tanh"),
                              "Open glorot-normalized-tanh in the playground")

    # -- 5. the cost ----------------------------------------------------------------------------
    st.header("5 · Cross-entropy vs quadratic cost")
    st.markdown("The same 5-layer tanh net (standard init), trained once with the softmax "
                "cross-entropy and once with the quadratic cost on the softmax outputs:")
    st.latex(r"C_{CE} = -\log \mathrm{softmax}(o)_y \qquad "
             r"C_{quad} = \tfrac12 \lVert \mathrm{softmax}(o) - e_y \rVert^2")
    clabel = st.radio("Training length", list(COST_STEPS), index=1, horizontal=True,
                      key="l03_cost_steps")
    csteps = COST_STEPS[clabel]
    st.code(f"gradlab run --preset glorot-standard-tanh --set loss=quadratic --steps {csteps} "
            "--json -", language="bash")
    if common.run_button("l03_cost", "Train with both costs"):
        costs = {"softmax_ce": "cross-entropy", "quadratic": "quadratic"}
        curves, rows = {}, []
        for loss, name in costs.items():
            res = common.compute(common.RUN_ALL, cost_config(loss, csteps),
                                 label=f"Training with the {name} cost…")
            evaluated = [s for s in res.snapshots if s.test_accuracy is not None]
            x = [s.step for s in evaluated]
            y = [100 * s.test_accuracy for s in evaluated]
            curves[name] = (x, y)
            reach = next((s for s, a in zip(x, y, strict=True) if a >= 70), None)
            rows.append({"cost": name, "test accuracy at the end (%)": f"{y[-1]:.1f}",
                         "first step with ≥ 70 %": str(reach) if reach is not None else "never"})
        common.chart(figures.cost_figure(curves), "l03_cost_fig")
        common.compare_table(rows)
        st.markdown(
            "Glorot & Bengio: the cross-entropy surface is much steeper; the quadratic cost "
            "has **plateaus** where learning crawls. Why: the quadratic cost's gradient is "
            "(p − e<sub>y</sub>) multiplied by the softmax's Jacobian, which is ≈ 0 when the "
            "net is confidently wrong; the cross-entropy's gradient is p − e<sub>y</sub> "
            "itself, largest exactly then.", unsafe_allow_html=True
        )

    st.header("What it means")
    st.markdown(
        "Watch activations and gradients **per layer** while training: saturated units pass "
        "no gradient back. A symmetric non-linearity (tanh, softsign), an initialisation that "
        "keeps the variance of activations *and* gradients the same in every layer, and the "
        "cross-entropy cost together make deep nets trainable. Lesson 4 derives that "
        "initialisation."
    )
