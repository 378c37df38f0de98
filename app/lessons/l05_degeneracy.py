"""Lesson 5 — Orhan: degeneracy, not vanishing gradients (seed 000).

A 30-layer deep *linear* net learns a random linear teacher map y = T x. Three
initialisations of the same net: "Fold 0" (a standard random init), "Fold 1" (the same
matrices with their top half copied onto the bottom half: rank n/2) and "Ortho"
(orthogonal). Each is trained for several seeds at once by ``core.experiments_2.
deep_linear_seeds``, which reproduces ``core.train.run`` for every seed exactly.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app.lessons.common import (
    compare_table,
    load_preset,
    open_in_playground,
    predict,
    run_button,
)
from core.config import RunConfig, from_json

TITLE = "5 · Orhan: degeneracy, not vanishing"
ICON = ":material/stacked_line_chart:"
PRESETS = ["deep-linear-fold0", "deep-linear-fold1", "deep-linear-ortho"]

NAMES = {"deep-linear-fold0": "Fold 0", "deep-linear-fold1": "Fold 1",
         "deep-linear-ortho": "Ortho"}
COLORS = {"Fold 0": "#2166ac", "Fold 1": "#c62828", "Ortho": "#1a9850"}
SEED_CHOICES = {"3 seeds (quick)": 3, "10 seeds, as Orhan": 10}
FONT = 16


# ---- cached experiment (shared by every session) -------------------------------------------

@st.cache_data(max_entries=16, show_spinner=False)
def _seeds(cfg_json: str, n_seeds: int):
    from core.experiments_2 import deep_linear_seeds

    return deep_linear_seeds(from_json(cfg_json), n_seeds)


def seeds_result(cfg: RunConfig, n_seeds: int):
    return _seeds(cfg.to_json(), n_seeds)


def erank(sv: np.ndarray) -> float:
    """Effective rank (core.spectrum.effective_rank); NaN for a diverged seed."""
    from core.spectrum import effective_rank

    return effective_rank(sv) if np.all(np.isfinite(sv)) else float("nan")


# ---- figures -------------------------------------------------------------------------------

def _style(fig: go.Figure, title: str, xtitle: str, ytitle: str, *, log_y: bool = False,
           log_x: bool = False, height: int = 400) -> go.Figure:
    fig.update_layout(template="none", height=height, font=dict(size=FONT),
                      title=dict(text=title, font=dict(size=20), x=0.01),
                      margin=dict(l=90, r=20, t=70, b=70), hovermode="x unified",
                      legend=dict(font=dict(size=FONT), orientation="h", x=0, y=-0.25))
    fig.update_xaxes(title=dict(text=xtitle, font=dict(size=18)), showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT),
                     type="log" if log_x else "linear")
    fig.update_yaxes(title=dict(text=ytitle, font=dict(size=18)), showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT),
                     type="log" if log_y else "linear", exponentformat="power")
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def _band(fig: go.Figure, x, mid, lo, hi, name: str) -> None:
    c = COLORS[name]
    fig.add_scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]),
                    fill="toself", fillcolor=_rgba(c, 0.18), line=dict(width=0),
                    hoverinfo="skip", showlegend=False)
    fig.add_scatter(x=x, y=mid, mode="lines", name=name, line=dict(color=c, width=3))


def loss_figure(results: dict, log_y: bool) -> go.Figure:
    fig = go.Figure()
    for name, r in results.items():
        m, s = np.nanmean(r.test_loss, 0), np.nanstd(r.test_loss, 0)
        lo = np.maximum(m - s, m * 0.05) if log_y else m - s
        _band(fig, r.steps, m, lo, m + s, name)
    return _style(fig, "Learning curves (mean ± 1 std over seeds)", "training step",
                  "test loss  ½‖y − ŷ‖²" + ("  (log scale)" if log_y else ""), log_y=log_y)


def _geo(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric mean and the ×/÷ one geometric-std band (for log axes)."""
    lx = np.log(np.where(x > 0, x, np.nan))
    m, s = np.nanmean(lx, axis), np.nanstd(lx, axis)
    return np.exp(m), np.exp(m - s), np.exp(m + s)


def grad_time_figure(results: dict) -> go.Figure:
    fig = go.Figure()
    for name, r in results.items():
        glob = np.sqrt((r.act_grad_norm ** 2).sum(2))            # (S, K) over all layers
        m, lo, hi = _geo(glob)
        _band(fig, r.steps, m, lo, hi, name)
    return _style(fig, "Gradient w.r.t. the activations, all layers",
                  "training step", "‖∂C/∂h‖  (log scale)", log_y=True)


def grad_layer_figure(results: dict, which: int) -> go.Figure:
    fig = go.Figure()
    for name, r in results.items():
        m, lo, hi = _geo(r.act_grad_norm[:, which, :])            # (L,)
        x = np.arange(1, m.shape[0] + 1)
        _band(fig, x, m, lo, hi, name)
    step = int(next(iter(results.values())).steps[which])
    return _style(fig, f"Per layer, at step {step}", "hidden layer l (1 = next to the input)",
                  "‖∂C/∂hₗ‖  (log scale)", log_y=True)


def erank_figure(results: dict) -> go.Figure:
    fig = go.Figure()
    teacher = None
    for name, r in results.items():
        er = np.array([[erank(sv) for sv in seed_sv] for seed_sv in r.e2e_sv])   # (S, K)
        m, s = np.nanmean(er, 0), np.nanstd(er, 0)
        _band(fig, r.steps, m, m - s, m + s, name)
        teacher = float(np.mean([erank(t) for t in r.teacher_sv]))
    if teacher is not None:
        fig.add_hline(y=teacher, line=dict(color="#6b6b6b", dash="dash", width=2),
                      annotation_text=f"teacher T: {teacher:.1f}",
                      annotation_font=dict(size=FONT))
    return _style(fig, "Effective rank of the end-to-end map", "training step",
                  "effective rank of W_L⋯W_1")


def sv_figure(results: dict, which: int) -> go.Figure:
    fig = go.Figure()
    for name, r in results.items():
        sv = r.e2e_sv[0, which]                                     # seed 0, descending
        fig.add_scatter(x=np.arange(1, sv.size + 1), y=np.maximum(sv, 1e-12),
                        mode="lines+markers", name=name,
                        line=dict(color=COLORS[name], width=3))
    r0 = next(iter(results.values()))
    fig.add_scatter(x=np.arange(1, r0.teacher_sv.shape[1] + 1), y=r0.teacher_sv[0],
                    mode="lines", name="teacher T", line=dict(color="#6b6b6b", dash="dash",
                                                              width=2))
    step = int(r0.steps[which])
    return _style(fig, f"End-to-end singular values, step {step} (seed 0)",
                  "index (largest first)", "singular value  (log scale)", log_y=True)


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

    g_best = predict("l05_best", "Predict: which initialisation reaches the lowest loss?",
                     ["Fold 0", "Fold 1", "Ortho"])
    g_grad = predict("l05_grad", "Predict: which one has the largest gradients while "
                     "training?", ["Fold 0", "Fold 1", "Ortho"])

    st.header("Run the three nets")
    label = st.radio("Seeds", list(SEED_CHOICES), index=len(SEED_CHOICES) - 1, horizontal=True,
                     key="l05_seeds")
    n_seeds = SEED_CHOICES[label]
    cfgs = {NAMES[p]: load_preset(p) for p in PRESETS}
    c0 = cfgs["Fold 0"]
    st.markdown(
        f"Depth {c0.depth} (+ output layer), width {c0.width}, {c0.n_train} training "
        f"examples, {c0.optimizer} (lr {c0.lr:g}), batch {c0.batch_size}, {c0.steps} steps. "
        f"One run per seed; each is exactly what the command line gives for that seed:")
    st.code("gradlab run --preset deep-linear-fold1 --seed 3 --json -", language="bash")
    if run_button("l05_run", f"Train Fold 0, Fold 1 and Ortho × {n_seeds} seeds"):
        results = {}
        bar = st.progress(0.0, text="Training…")
        for i, (name, cfg) in enumerate(cfgs.items()):
            bar.progress(i / 3, text=f"Training {name} for {n_seeds} seeds…")
            results[name] = seeds_result(cfg, n_seeds)
        bar.empty()
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
    cols = st.columns(3)
    for col, p in zip(cols, PRESETS, strict=False):
        with col:
            open_in_playground(load_preset(p), f"{NAMES[p]} → playground")


def _results(results: dict, g_best: str | None, g_grad: str | None) -> None:
    r_any = next(iter(results.values()))
    K = len(r_any.steps)
    half = slice(K // 2, K)
    rows = []
    summary = {}
    for name, r in results.items():
        fin = r.test_loss[:, -1]
        glob = np.sqrt((r.act_grad_norm ** 2).sum(2))              # (S, K)
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
            "‖∂C/∂h‖ at step 0": f"{_geo(glob[:, 0])[0]:.3g}",
            "erank at start → end": f"{er0:.1f} → {er1:.1f}",
            "diverged seeds": int(r.diverged.sum()),
        })
    compare_table(rows)
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
    st.plotly_chart(loss_figure(results, log_y), key="l05_loss")
    st.caption("Ortho drops to almost zero, Fold 0 stalls on a plateau and Fold 1 stalls "
               "higher: same architecture, same data, only the initial matrices differ.")
    c1, c2 = st.columns(2)
    with c1:
        st.plotly_chart(grad_time_figure(results), key="l05_gtime")
        st.caption("Gradient size over training (geometric mean, band ×/÷ one geometric std): "
                   "the best-trained net, Ortho, has the smallest gradients.")
    with c2:
        st.plotly_chart(grad_layer_figure(results, K - 1), key="l05_glayer")
        st.caption("Per-layer gradient at the end of training: nothing vanishes towards the "
                   "input in any of the three nets.")
    c3, c4 = st.columns(2)
    with c3:
        st.plotly_chart(erank_figure(results), key="l05_erank")
        st.caption("Effective rank of W₃₁⋯W₁: Fold 1 starts lowest and stays lowest; Ortho "
                   "starts at the full 32 and settles at the teacher's own value.")
    with c4:
        which = st.radio("Singular values at", ["start", "end"], index=0, horizontal=True,
                         key="l05_svwhen")
        st.plotly_chart(sv_figure(results, 0 if which == "start" else K - 1), key="l05_sv")
        st.caption("The end-to-end spectrum (values below 10⁻¹² drawn at 10⁻¹²): Fold 0 and "
                   "Fold 1 start with a few large singular values and many tiny ones — Fold 1's "
                   "lower half is exactly 0 — while Ortho's are all 1.")
