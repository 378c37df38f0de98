"""Lesson 5 — Orhan: degeneracy, not vanishing gradients (seed 000).

A 30-layer deep *linear* net learns a random linear teacher map y = T x. Three
initialisations of the same net: "Fold 0" (a standard random init), "Fold 1" (the same
matrices with their top half copied onto the bottom half: rank n/2) and "Ortho"
(orthogonal). Each is trained for several seeds by ``core.experiments.deep_linear.
deep_linear_seeds``, which runs ``core.train.run`` for every seed.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.charts import degeneracy as figures
from app.lessons import common
from core.config import RunConfig
from core.experiments.results import SeedsResult
from core.spectrum_stats import effective_rank

TITLE = "5 · Orhan: degeneracy, not vanishing"
ICON = ":material/stacked_line_chart:"
PRESETS = ["deep-linear-fold0", "deep-linear-fold1", "deep-linear-ortho"]

NAMES = {"deep-linear-fold0": "Fold 0", "deep-linear-fold1": "Fold 1",
         "deep-linear-ortho": "Ortho"}
#: Computed on an executor, by name (the module imports torch).
DEEP_LINEAR_SEEDS = "core.experiments.deep_linear:deep_linear_seeds"
SEED_CHOICES = {"3 seeds (quick)": 3, "10 seeds, as Orhan": 10}


def configs() -> dict[str, RunConfig]:
    """The three nets, by name."""
    return {NAMES[p]: common.load_preset(p) for p in PRESETS}


def erank(sv: np.ndarray) -> float:
    """Effective rank (core.spectrum_stats.effective_rank); NaN for a diverged seed."""
    return effective_rank(sv) if np.all(np.isfinite(sv)) else float("nan")


def eranks(r: SeedsResult) -> np.ndarray:
    """(S, K): the effective rank of each seed's end-to-end map at every snapshot."""
    return np.array([[erank(sv) for sv in seed_sv] for seed_sv in r.e2e_sv])


# ---- the page ------------------------------------------------------------------------------

def render() -> None:
    st.title("Orhan: is it the gradient's size, or degeneracy?")
    st.markdown(
        "The usual story: deep nets are hard to train because gradients **vanish**. Emin "
        "Orhan's counter-example is a **30-layer linear network** learning a random linear "
        "map y = T x. He initialised it three ways and measured the gradient (w.r.t. each "
        "layer's activations) and the training loss:\n"
        "- **Fold 0** — a standard random init (here: uniform, variance 1/n, so the signal "
        "neither shrinks nor grows on average);\n"
        "- **Fold 1** — the *same* matrices with their top half copied onto their bottom "
        "half: every matrix has rank n/2 — more *degenerate*;\n"
        "- **Ortho** — orthogonal matrices, the least degenerate of all.\n"
    )
    st.latex(r"\hat y = W_{31} W_{30} \cdots W_1\, x, \qquad "
             r"\operatorname{erank}(W) = \exp\Big(-\sum_i p_i \ln p_i\Big),\ "
             r"p_i = \frac{s_i}{\sum_j s_j}")
    st.caption("sᵢ: singular values of the end-to-end map. erank counts how many directions "
               "the map really uses (Roy & Vetterli 2007): 32 for an orthogonal 32×32 map.")

    g_best = common.predict("l05_best", "Predict: which initialisation reaches the lowest loss?",
                            ["Fold 0", "Fold 1", "Ortho"])
    g_grad = common.predict("l05_grad", "Predict: which one has the largest gradients while "
                            "training?", ["Fold 0", "Fold 1", "Ortho"])

    st.header("Run the three nets")
    label = st.radio("Seeds", list(SEED_CHOICES), index=len(SEED_CHOICES) - 1, horizontal=True,
                     key="l05_seeds")
    n_seeds = SEED_CHOICES[label]
    cfgs = configs()
    c0 = cfgs["Fold 0"]
    st.markdown(
        f"Depth {c0.depth} (+ output layer), width {c0.width}, {c0.n_train} training "
        f"examples, {c0.optimizer} (lr {c0.lr:g}), batch {c0.batch_size}, {c0.steps} steps. "
        f"One run per seed; each is exactly what the command line gives for that seed:")
    st.code("gradlab run --preset deep-linear-fold1 --seed 3 --json -", language="bash")
    if common.run_button("l05_run", f"Train Fold 0, Fold 1 and Ortho × {n_seeds} seeds"):
        results = {name: common.compute(DEEP_LINEAR_SEEDS, cfg, n_seeds,
                                        label=f"Training {name} for {n_seeds} seeds…")
                   for name, cfg in cfgs.items()}
        _results(results, g_best, g_grad)

    st.header("What it means")
    st.markdown(
        "A small gradient is not what stops a deep net from learning, and a large one does not "
        "help: while training, Fold 1's gradients are larger than Fold 0's and it learns "
        "*worse*; Ortho has the *smallest* gradients and learns best. (At step 0 the order "
        "differs: compare the table.) What predicts training is **degeneracy**: "
        "how many independent directions the product of the weight matrices really uses. "
        "Learning is slow along the degenerate directions, so a degenerate net has fewer "
        "usable degrees of freedom, whatever its gradient norm. Products of many random "
        "matrices become degenerate by themselves (lesson 6); orthogonal matrices do not."
    )
    common.open_each_in_playground({p: f"{NAMES[p]} → playground" for p in PRESETS})


def _results(results: dict[str, SeedsResult], g_best: str | None, g_grad: str | None) -> None:
    r_any = next(iter(results.values()))
    K = len(r_any.steps)
    half = slice(K // 2, K)
    rows = []
    summary = {}
    for name, r in results.items():
        fin = r.test_loss[:, -1]
        glob = figures.all_layers(r)                               # (S, K)
        g_late = np.exp(np.nanmean(np.log(glob[:, half])))
        er0 = np.nanmean([erank(s) for s in r.e2e_sv[:, 0]])
        er1 = np.nanmean([erank(s) for s in r.e2e_sv[:, -1]])
        summary[name] = (np.nanmean(fin), g_late)
        rows.append({
            "init": name,
            "Orhan (seed 000)": {"Fold 0": "fast start, then stuck",
                                 "Fold 1": "larger gradient, worse",
                                 "Ortho": "smaller gradient, much better"}[name],
            "final test loss (mean ± std)": f"{np.nanmean(fin):.3g} ± {np.nanstd(fin):.2g}",
            "‖∂C/∂h‖, 2nd half of training": f"{g_late:.3g}",
            "‖∂C/∂h‖ at step 0": f"{figures.geo_band(glob[:, 0])[0]:.3g}",
            "erank at start → end": f"{er0:.1f} → {er1:.1f}",
            "diverged seeds": int(r.diverged.sum()),
        })
    common.compare_table(rows)
    st.caption(f"{len(r_any.seeds)} seeds each. Gradient norms: geometric mean over seeds of "
               "‖∂C_x/∂h‖ per example, summed in quadrature over all layers; the teacher's "
               f"own effective rank is {np.mean([erank(t) for t in r_any.teacher_sv]):.1f}.")
    best = min(summary, key=lambda k: summary[k][0])
    largest = max(summary, key=lambda k: summary[k][1])
    st.markdown(
        f"This run: lowest loss **{best}**, largest gradients in the second half of training "
        f"**{largest}**. Orhan found Ortho best and Fold 1 worst, with Fold 1's gradients "
        "*larger* than Fold 0's and Ortho's *smaller*.")
    if g_best is not None or g_grad is not None:
        msg = []
        if g_best is not None:
            msg.append(f"lowest loss: you said *{g_best}*, it was **{best}**")
        if g_grad is not None:
            msg.append(f"largest gradients: you said *{g_grad}*, it was **{largest}**")
        st.info("; ".join(msg) + ".")

    log_y = st.toggle("Log scale for the loss", value=False, key="l05_logy")
    common.chart(figures.loss_figure(results, log_y), "l05_loss",
                 "Ortho drops to almost zero, Fold 0 stalls on a plateau and Fold 1 stalls "
                 "higher: same architecture, same data, only the initial matrices differ.")
    c1, c2 = st.columns(2)
    with c1:
        common.chart(figures.grad_time_figure(results), "l05_gtime",
                     "Gradient size over training (geometric mean, band ×/÷ one geometric "
                     "std): the best-trained net, Ortho, has the smallest gradients.")
    with c2:
        common.chart(figures.grad_layer_figure(results, K - 1), "l05_glayer",
                     "Per-layer gradient at the end of training: nothing vanishes towards the "
                     "input in any of the three nets.")
    c3, c4 = st.columns(2)
    with c3:
        r_last = list(results.values())[-1]
        teacher = float(np.mean([erank(t) for t in r_last.teacher_sv]))
        common.chart(figures.erank_figure({k: r.steps for k, r in results.items()},
                                          {k: eranks(r) for k, r in results.items()}, teacher),
                     "l05_erank",
                     "Effective rank of W₃₁⋯W₁: Fold 1 starts lowest and stays lowest; Ortho "
                     "starts at the full 32 and settles at the teacher's own value.")
    with c4:
        which = st.radio("Singular values at", ["start", "end"], index=0, horizontal=True,
                         key="l05_svwhen")
        common.chart(figures.sv_figure(results, 0 if which == "start" else K - 1), "l05_sv",
                     "The end-to-end spectrum (values below 10⁻¹² drawn at 10⁻¹²): Fold 0 "
                     "and Fold 1 start with a few large singular values and many tiny ones — "
                     "Fold 1's lower half is exactly 0 — while Ortho's are all 1.")
