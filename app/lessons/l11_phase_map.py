"""Lesson 11 — the trainability phase map (Poole et al. 2016; Schoenholz, Gilmer, Ganguli &
Sohl-Dickstein 2017), measured live beside mean-field theory.

Part 1: random nets over a grid of sigma_w^2 x depth at initialisation, one batched ensemble
(``core.experiments.phase.at_init_map``), in chunks of sigma_w^2 so that the first columns
show at once; theory from ``core.theory`` (chi_1 = 1, xi_c, xi_grad, 6 xi_c) drawn over it.
Part 2: every cell of a coarser grid trained K SGD steps on MNIST
(``core.experiments.phase.trainability``), one executor call per depth so that the cells
stream in, each call cached and shared by every session.
"""

from __future__ import annotations

import math
import time

import numpy as np
import streamlit as st

from app.charts import phase_map as figures
from app.lessons import common
from core.config import RunConfig, from_dict
from core.experiments.phase_results import (
    PHASE_ACTIVATIONS,
    PhaseMap,
    TrainabilityMap,
    merge_maps,
    merge_trainability,
)

TITLE = "11 · The phase map: where can a deep net train?"
ICON = ":material/grid_on:"
PRESETS: list[str] = []

#: Computed on an executor, by name (the module imports torch).
AT_INIT = "core.experiments.phase:at_init_map"
TRAIN = "core.experiments.phase:trainability"

ACTIVATION_LABELS = {"tanh": "tanh", "hardtanh": "hard-tanh", "relu": "ReLU",
                     "sigmoid": "sigmoid", "erf": "erf", "linear": "linear"}
SIGMA_B2 = (0.01, 0.05, 0.1, 0.3)
#: The at-init map: 32 sigma_w^2 in [0.5, 4] x depth 200, width 128, in chunks of 8.
SW2_RANGE = (0.5, 4.0)
INIT_GRID = 32
INIT_CHUNK = 8
INIT_DEPTH = 200
INIT_WIDTH = 128
INIT_NETS = 4
INIT_PAIRS = 2
#: The trainability grids the page offers: label -> (sigma_w^2 count, depths, SGD steps).
TRAIN_GRIDS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "6 × 5 cells, 150 steps (about 15 s on a free core)": (6, (5, 10, 20, 40, 80), 150),
    "12 × 10 cells, 300 steps (about a minute on a free core)":
        (12, (5, 10, 15, 20, 30, 40, 50, 60, 80, 100), 300),
}
TRAIN_WIDTH = 64
TRAIN_LR = 0.01
TRAIN_BATCH = 32
TRAINED = 0.3          # test accuracy that counts as "trains" (chance is 0.1)
FIRST_LAYER_COST = 12  # the 784 -> 64 layer costs about as much as 12 hidden 64 x 64 layers

GUESSES = ["every net: a few hundred SGD steps are plenty at any depth",
           "small σ_w² only: small weights are the safe choice",
           "a band around the edge of chaos (χ₁ = 1) that narrows as depth grows",
           "large σ_w² only: big weights keep the signal alive"]


def sw2_grid(n: int) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in np.linspace(*SW2_RANGE, n))


def init_map(activation: str, sigma_b2: float, on_chunk=None) -> PhaseMap:
    """The at-init map, one executor call per chunk of sigma_w^2 (identical nets to a single
    call: the chunks share their draws); ``on_chunk(partial map)`` after each."""
    grid = sw2_grid(INIT_GRID)
    parts = []
    for k in range(0, len(grid), INIT_CHUNK):
        chunk = grid[k:k + INIT_CHUNK]
        parts.append(common.compute(
            AT_INIT, activation, float(sigma_b2), chunk, depth=INIT_DEPTH, width=INIT_WIDTH,
            nets=INIT_NETS, pairs=INIT_PAIRS,
            label=f"Random nets at σ_w² = {chunk[0]:.2f}…{chunk[-1]:.2f} "
                  f"({len(chunk) * INIT_NETS} nets of depth {INIT_DEPTH} in one batch)…"))
        if on_chunk is not None:
            on_chunk(merge_maps(parts))
    return merge_maps(parts)


def theory_xi(m: PhaseMap, sw2: np.ndarray) -> np.ndarray:
    """xi_c of the theory at these sigma_w^2 (interpolated on the map's column; 1e9 for inf)."""
    xi = np.where(np.isfinite(m.theory.xi_c), m.theory.xi_c, 1e9)
    return np.interp(sw2, m.theory.sigma_w2, xi)


def verdict(t: TrainabilityMap, xi: np.ndarray) -> dict[str, object]:
    """Measurement against Schoenholz et al.'s 6 xi_c rule, cell by cell (``xi`` (S,) is the
    theory's xi_c at t.sigma_w2): inside 6 xi_c should train, beyond 2 x 6 xi_c should not."""
    d = t.depths[None, :].astype(np.float64)
    bound = 6.0 * xi[:, None]
    acc = np.nan_to_num(t.test_accuracy, nan=0.0)
    trained = acc >= TRAINED
    inside, beyond = d <= bound, d > 2.0 * bound
    miss_in = [(float(t.sigma_w2[i]), int(t.depths[j]), float(acc[i, j]))
               for i, j in zip(*np.nonzero(inside & ~trained), strict=True)]
    miss_out = [(float(t.sigma_w2[i]), int(t.depths[j]), float(acc[i, j]))
                for i, j in zip(*np.nonzero(beyond & trained), strict=True)]
    return {"inside": int(inside.sum()), "inside_trained": int((inside & trained).sum()),
            "beyond": int(beyond.sum()), "beyond_failed": int((beyond & ~trained).sum()),
            "between": int((~inside & ~beyond).sum()),
            "between_trained": int((~inside & ~beyond & trained).sum()),
            "miss_inside": miss_in, "miss_beyond": miss_out}


def verdict_text(v: dict, steps: int) -> str:
    """One paragraph: what agrees with the 6 xi_c rule and what does not."""
    parts = [f"**What agrees.** {v['inside_trained']} of the {v['inside']} cells inside "
             f"6 ξ_c trained (test accuracy ≥ {TRAINED:g}; chance is 0.1), and "
             f"{v['beyond_failed']} of the {v['beyond']} cells deeper than 2 × 6 ξ_c did not."]
    if v["between"]:
        parts.append(f"Between 6 ξ_c and 12 ξ_c — the band where the paper's boundary is "
                     f"soft — {v['between_trained']} of {v['between']} cells trained.")
    miss_in, miss_out = v["miss_inside"], v["miss_beyond"]
    if miss_in or miss_out:
        parts.append("**What does not.**")
        if miss_in:
            cells = ", ".join(f"σ_w² {s:.2f} at depth {d}" for s, d, _ in miss_in[:4])
            more = f" and {len(miss_in) - 4} more" if len(miss_in) > 4 else ""
            parts.append(f"{len(miss_in)} cells inside 6 ξ_c did not train ({cells}{more}). "
                         f"Near the edge of chaos ξ_c is huge, so the theory allows any depth, "
                         f"but it speaks of signals at initialisation, not of training time: "
                         f"a very deep net needs far more than {steps} SGD steps at one "
                         "learning rate (Schoenholz et al. trained for much longer).")
        if miss_out:
            cells = ", ".join(f"σ_w² {s:.2f} at depth {d}" for s, d, _ in miss_out[:4])
            parts.append(f"{len(miss_out)} cells beyond 2 × 6 ξ_c still trained ({cells}): "
                         "the last layers train on whatever signal survives, and at small "
                         "depth a few e-folds of it are still usable.")
    else:
        parts.append("**Nothing disagrees** on this grid: every cell on either side of the "
                     "band behaved as 6 ξ_c predicts.")
    return " ".join(parts)


def playground_config(activation: str, sigma_b2: float, sigma_w2: float, depth: int
                      ) -> RunConfig:
    """One cell of the map as a playground run: gaussian init at (sigma_w^2, sigma_b^2)."""
    return from_dict(dict(depth=depth, width=TRAIN_WIDTH, activation=activation,
                          init="gaussian", sigma_w=round(math.sqrt(sigma_w2), 4),
                          bias_init="normal", sigma_b=round(math.sqrt(sigma_b2), 4),
                          dataset="mnist", n_train=4000, n_test=1000, lr=TRAIN_LR,
                          batch_size=TRAIN_BATCH, optimizer="sgd", steps=300))


def _cost(depth: int) -> float:
    return depth + FIRST_LAYER_COST


def render() -> None:
    st.title("The phase map: where can a deep net train?")
    st.markdown(
        "A random net with weights W ~ N(0, σ_w²/n) and biases b ~ N(0, σ_b²) has two "
        "phases (Poole et al. 2016). **Ordered** (small σ_w²): every input is pulled towards "
        "the same output and gradients shrink layer by layer. **Chaotic** (large σ_w²): "
        "nearby inputs are torn apart and gradients grow. Between them lies the *edge of "
        "chaos*, χ₁ = 1. Schoenholz et al. (2017) turned this into depth scales: signals "
        "about input correlations survive about ξ_c layers, and a net trains only if its "
        "depth is below about **6 ξ_c**.")
    st.latex(r"\chi_1 = \sigma_w^2\,\mathbb E\big[\phi'(\sqrt{q^*}z)^2\big],\qquad "
             r"\chi_c = \sigma_w^2\,\mathbb E\big[\phi'(u_1)\phi'(u_2)\big]_{c^*},\qquad "
             r"\xi_c = -\frac{1}{\ln \chi_c},\qquad \xi_\nabla = \frac{1}{|\ln \chi_1|}")
    st.caption("q*: the squared length pre-activations settle to; c*: the correlation two "
               "inputs settle to (1 in the ordered phase, where χ_c = χ₁); u₁, u₂: Gaussian "
               "with variance q* and correlation c*. Computed in core.theory.")
    guess = common.predict(
        "l11_guess", "Predict: tanh nets, σ_b² = 0.05, trained a few hundred SGD steps on MNIST. "
        "Which of them train, as depth grows?", GUESSES)

    c1, c2 = st.columns(2)
    act = c1.selectbox("Activation", list(PHASE_ACTIVATIONS), format_func=ACTIVATION_LABELS.get,
                       key="l11_act")
    sb2 = c2.select_slider("Bias variance σ_b²", list(SIGMA_B2), value=0.05, key="l11_sb2")

    # -- 1. at initialisation ------------------------------------------------------------------
    st.header("1 · At initialisation: the whole grid in one batch")
    st.markdown(
        f"{INIT_GRID} values of σ_w² × depth 1…{INIT_DEPTH}, width {INIT_WIDTH}, "
        f"{INIT_NETS} nets per σ_w²: every layer of every net is one batched matrix product "
        "(a depth-l net is the first l layers of the deepest). Colour: how much the net "
        "multiplies a squared gradient between the input and layer l — the Jacobian's mean "
        "squared singular value, measured with random tangent vectors.")
    st.code(f"gradlab phase --activation {act} --set sigma_b2={sb2:g} --depth {INIT_DEPTH} "
            f"--grid {INIT_GRID} --json -", language="bash")
    slot = st.empty()

    def show(partial: PhaseMap) -> None:
        with slot.container():
            common.chart(figures.init_map_figure(partial),
                         f"l11_map_{len(partial.sigma_w2)}")

    m = init_map(act, sb2, on_chunk=show)
    st.caption("Blue: gradients vanish (ordered); red: they explode (chaotic); white: "
               "neither. Green dashed: χ₁ = 1 from theory. Black (grey on a dark page): "
               "ξ_c (dashed) and "
               "6 ξ_c (solid) from theory; orange dotted: ξ_∇; white circles: ξ_c fitted to "
               "this run's correlations where the fit is clean.")
    common.chart(figures.chi1_figure(m), "l11_chi1",
                 caption="χ₁ measured (the geometric mean over the layers of the per-layer "
                         "factor) against the theory line; green lines: where χ₁ crosses 1.")
    picks = [int(np.argmin(np.abs(m.sigma_w2 - v))) for v in (1.0, 2.5, 4.0)]
    common.chart(figures.correlation_figure(m, picks), "l11_corr",
                 caption="Ordered (σ_w² = 1): two different inputs become the same (c → 1). "
                         "Chaotic: they decorrelate to c* < 1. Dotted: c* from theory.")
    th = m.theory
    err = (m.critical_sigma_w2_measured / th.critical_sigma_w2 - 1.0) \
        if math.isfinite(th.critical_sigma_w2) else math.nan
    rows = [{"quantity": "critical σ_w² (χ₁ = 1)", "theory": common.fmt(th.critical_sigma_w2),
             "this run": common.fmt(m.critical_sigma_w2_measured),
             "difference": f"{100 * err:+.1f} %" if math.isfinite(err) else "—"}]
    for v in (1.0, 2.5, 4.0):
        i = int(np.argmin(np.abs(m.sigma_w2 - v)))
        rows.append({"quantity": f"χ₁ at σ_w² = {m.sigma_w2[i]:.2f}",
                     "theory": f"{th.chi_1[i]:.4f}", "this run": f"{m.chi1_measured[i]:.4f}",
                     "difference": f"{100 * (m.chi1_measured[i] / th.chi_1[i] - 1):+.1f} %"})
        xi_m = m.xi_c_measured[i]
        rows.append({"quantity": f"ξ_c at σ_w² = {m.sigma_w2[i]:.2f}",
                     "theory": common.fmt(th.xi_c[i], "∞"),
                     "this run": common.fmt(xi_m, "no clean fit"),
                     "difference": f"{100 * (xi_m / th.xi_c[i] - 1):+.0f} %"
                     if math.isfinite(xi_m) and math.isfinite(th.xi_c[i]) else "—"})
    common.compare_table(rows)
    st.caption(f"Measured in {m.elapsed_s:.2f} s of executor time. ξ_c is fitted to "
               "|c_l − c*| from 30 % of its start down to 8 % (or the finite-width "
               "noise); near the edge of chaos ξ_c exceeds the depth and no fit is possible.")

    # -- 2. trainability -----------------------------------------------------------------------
    st.header("2 · Trainability: does each cell learn MNIST?")
    st.markdown(
        f"Every cell is a fresh net (width {TRAIN_WIDTH}) trained with plain SGD "
        f"(learning rate {TRAIN_LR:g}, batches of {TRAIN_BATCH}) on 4000 MNIST digits and "
        "scored on 1000 held-out ones. All nets of one depth train together as one batched "
        "ensemble; cells appear as each depth finishes.")
    glabel = st.radio("Grid", list(TRAIN_GRIDS), index=0, horizontal=True, key="l11_grid")
    n_sw, depths, steps = TRAIN_GRIDS[glabel]
    tsw2 = sw2_grid(n_sw)
    st.code(f"gradlab phase --activation {act} --set sigma_b2={sb2:g} --depth {depths[-1]} "
            f"--grid {INIT_GRID} --train-steps {steps} --set train_grid={n_sw} "
            f"--set train_depths={len(depths)} --json out.json", language="bash")
    if not common.run_button("l11_train", "Train the grid"):
        return
    xi_train = theory_xi(m, np.asarray(tsw2))
    slot = st.empty()
    bar = st.progress(0.0, text="Starting…")
    parts: list[TrainabilityMap] = []
    total = sum(_cost(d) for d in depths)
    done = 0.0
    t0 = time.perf_counter()
    for d in depths:                       # shallow first: the first cells arrive soonest
        parts.append(common.compute(TRAIN, act, float(sb2), tsw2, (d,), steps=steps,
                                    width=TRAIN_WIDTH, lr=TRAIN_LR, batch_size=TRAIN_BATCH,
                                    label=f"Training {n_sw} nets of depth {d} at once…"))
        done += _cost(d)
        t = merge_trainability(parts)
        left = (time.perf_counter() - t0) / done * (total - done)
        bar.progress(done / total, text=f"{len(parts) * n_sw} of {len(depths) * n_sw} cells "
                                        + (f"· about {left:.0f} s left" if done < total
                                           else "· done"))
        with slot.container():
            common.chart(figures.trainability_figure(
                t, np.asarray(tsw2), np.asarray(depths), th.sigma_w2, th.xi_c,
                th.critical_sigma_w2), f"l11_train_{len(parts)}")
    bar.empty()
    st.caption("Green: the net learned (darker is better); pale: stuck at chance. "
               "Black (grey on a dark page): "
               "6 ξ_c (solid) and 2 × 6 ξ_c (dotted) from theory; green dashed: χ₁ = 1.")
    v = verdict(t, xi_train)
    st.markdown(verdict_text(v, steps))
    common.reveal(guess, lambda g: g == GUESSES[2],
                  "Right: a band around the edge of chaos, as wide as 6 ξ_c allows.",
                  "Not quite: the trainable region is a band around the edge of chaos "
                  "(χ₁ = 1) that narrows with depth, bounded by about 6 ξ_c on both sides.")
    best = int(np.argmin(np.abs(np.asarray(tsw2) - th.critical_sigma_w2))) \
        if math.isfinite(th.critical_sigma_w2) else 0
    common.open_in_playground(playground_config(act, sb2, tsw2[best], 50),
                              "Open a depth-50 net near the edge of chaos in the playground")

    st.header("What it means")
    st.markdown(
        "Initialisation decides whether information can cross the net at all. In the "
        "ordered phase, inputs merge within a few ξ_c layers and the gradient dies; in the "
        "chaotic phase, they are scrambled and the gradient explodes. Only near χ₁ = 1 do "
        "both survive deep nets — which is why the He and Xavier initialisations, and "
        "critical σ_w for tanh, let deep nets train at all. The theory is about signals at "
        "initialisation: it bounds where training *can* work, not how long it takes.")
