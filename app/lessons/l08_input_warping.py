"""Lesson 8 — Duvenaud, Rippel, Adams & Ghahramani 2014: deep random nets warp input space
into thin filaments (seed 000).

A 2-D grid of inputs is pushed through a composition of random maps R^2 -> R^2 (each a
wide random layer followed by a linear read-out to 2 units: a deep GP written as a net),
layer by layer. Computed by ``core.experiments.warping.warp_grid``; the local Jacobian of every
layer is carried forward exactly.
"""

from __future__ import annotations

import streamlit as st

from app.charts import jacobians as figures
from app.lessons import common
from core.experiments.results import WarpResult

TITLE = "8 · Duvenaud: input-space warping"
ICON = ":material/waves:"
PRESETS = ["default"]

SHOW_DEPTHS = (1, 2, 4, 8, 16, 32)
MAX_DEPTH = SHOW_DEPTHS[-1]
GRID = 81             # grid points per side of the input square [-1, 1]^2
#: Computed on an executor, by name (the module imports torch).
WARP_GRID = "core.experiments.warping:warp_grid"
ACTS = {"tanh": "tanh features", "cos": "cos features (≈ SE-kernel GP, as Duvenaud)"}


def warp(act: str, gain: float, hidden: int, input_connected: bool, seed: int) -> WarpResult:
    """The grid pushed through MAX_DEPTH random layers (computed once per process)."""
    return common.compute(WARP_GRID, MAX_DEPTH, hidden, act, gain, input_connected,
                          grid_n=GRID, seed=seed, label="Warping…")


def render() -> None:
    st.title("Duvenaud: deep random nets crush input space into filaments")
    st.markdown(
        "Lessons 6 and 7 looked at the Jacobian's spectrum. Here is what a degenerate "
        "Jacobian *looks like*. Take a 2-D grid of inputs and push it through a deep random "
        "net, layer by layer. Duvenaud et al. (2014) found that with depth the input space "
        "is folded into thin filaments: near each point only **one** direction still "
        "changes the output.")
    st.latex(r"h_l = f_l(h_{l-1}),\quad f_l(u) = \frac{g}{\sqrt H}\,V_l\,\phi(W_l u + b_l),"
             r"\qquad \frac{\partial h_l}{\partial x} \in \mathbb R^{2\times 2}"
             r"\ \text{ with singular values } s_1 \ge s_2")
    st.caption(
        "How we draw it (honestly): every layer is a random smooth map from 2-D to 2-D — a "
        "wide random layer of H units followed by a random linear read-out to 2 units. That "
        "is Duvenaud et al.'s deep Gaussian process written as a net, so the representation "
        "*is* 2-D and is drawn without any projection. s₂/s₁ = 1: the patch keeps its shape; "
        "s₂/s₁ → 0: it has been squashed onto a line.")

    guess = common.predict("l08_guess", "Predict: after 32 random layers, a small square of input "
                           "space has become…",
                           ["a slightly bent square", "a very thin strip (one direction left)",
                            "a single point"])
    c1, c2, c3, c4 = st.columns(4)
    act = c1.selectbox("Features φ", list(ACTS), format_func=ACTS.get, key="l08_act")
    gain = c2.select_slider("Gain g", [1.0, 2.0, 3.0, 4.0], value=3.0, key="l08_gain")
    hidden = c3.select_slider("Hidden units H", [64, 256, 1024], value=256, key="l08_hidden")
    seed = int(c4.number_input("Seed", 0, 10_000, 0, key="l08_seed"))
    connected = st.toggle("Also show the input-connected variant (each layer also gets x)",
                          value=True, key="l08_ic")
    st.code(f"from core.experiments.warping import warp_grid\n"
            f"warp_grid(depth={MAX_DEPTH}, hidden={hidden}, act={act!r}, gain={gain}, "
            f"input_connected=False, seed={seed})", language="python")
    if common.run_button("l08_run", f"Push the grid through {MAX_DEPTH} random layers"):
        plain = warp(act, float(gain), int(hidden), False, seed)
        ic = warp(act, float(gain), int(hidden), True, seed) if connected else None
        st.subheader("Plain composition")
        common.chart(figures.colour_figure(plain, SHOW_DEPTHS, "Input space, coloured by where "
                                           "layer l puts each point"), "l08_colour",
                     "Colour = position in the 2-D representation (red: rank of h₁, blue: "
                     "rank of h₂). With depth the colour changes across thin parallel bands "
                     "only: the filaments.")
        common.chart(figures.grid_figure(plain, SHOW_DEPTHS), "l08_grid",
                     "The same grid lines after l layers: the 2-D sheet is folded and squashed "
                     "onto a thin curve.")
        last_p = float(plain.ratio_median[MAX_DEPTH])
        if ic is not None:
            last_i = float(ic.ratio_median[MAX_DEPTH])
            st.subheader("Input-connected: every layer also gets x")
            common.chart(figures.colour_figure(ic, SHOW_DEPTHS, "Input-connected: coloured by "
                                               "where layer l puts each point"), "l08_colour_ic",
                         "With the raw input fed to every layer, the colour keeps varying in "
                         "both directions." if last_i > 0.02 else
                         "With these settings even the input-connected net flattens most "
                         "patches: compare the curves below.")
        common.chart(figures.ratio_figure(plain, ic), "l08_ratio")
        msg = (f"Median over the {GRID} × {GRID} grid of s₂/s₁: {plain.ratio_median[1]:.2g} "
               f"after one layer, {last_p:.2g} after {MAX_DEPTH} in the plain composition")
        if ic is not None:
            msg += f", {last_i:.2g} with the input connection"
        st.caption(msg + ". Values near 10⁻¹⁵ are float64's floor: s₂ is zero to working "
                   "precision.")
        rows = []
        for d in (1, 4, 8, 16, 32):
            row = {"layer": d, "plain: median s₂/s₁": f"{plain.ratio_median[d]:.2g}",
                   "plain: 10 % quantile": f"{plain.ratio_q10[d]:.2g}"}
            if ic is not None:
                row["input-connected: median s₂/s₁"] = f"{ic.ratio_median[d]:.2g}"
            rows.append(row)
        common.compare_table(rows)
        st.caption("Duvenaud et al. report the same collapse as a spectrum of the deep "
                   "GP's Jacobian in which one singular value dominates as depth grows, "
                   "and that connecting the input to every layer prevents it.")
        common.reveal(guess, lambda g: g.startswith("a very thin strip"), "Right.",
                      "Not quite: look at the last panels — still spread out, but only along "
                      "one direction.")

    st.header("What it means")
    st.markdown(
        "Every layer's Jacobian multiplies the previous ones, and — as in lesson 6 — the "
        "product of many random Jacobians has one singular value far above the others. "
        "Geometrically, each small patch of input space is stretched along one direction "
        "and squashed along every other: the net's output becomes sensitive to a single "
        "direction at each point and blind to the rest. That is the degeneracy of lesson 5 "
        "seen in input space. Feeding the input to every layer (or, in today's nets, skip "
        "connections: lesson 9) keeps a full-rank path from x to every layer and breaks the "
        "collapse. With g = 1 and tanh the maps contract instead: the whole square shrinks "
        "to a point — try it.")
    common.open_in_playground(common.load_preset("default"), "Open the playground")
