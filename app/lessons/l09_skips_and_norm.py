"""Lesson 9 — skip connections and normalisation (seeds 000 and 004).

The same 20-layer sigmoid MLP on MNIST three ways: plain (preset ``sigmoid-deep``), with
identity skips around every hidden block (``residual-deep``) and with batch norm before
every activation (``batchnorm-deep``). Gradient bars at initialisation and learning
curves, all from ``core.train.run_all``.
"""

from __future__ import annotations

import streamlit as st

from app import charts
from app.charts import remedies as figures
from app.lessons import common

TITLE = "9 · Skip connections and normalisation"
ICON = ":material/alt_route:"
PRESETS = ["sigmoid-deep", "residual-deep", "batchnorm-deep"]

NAMES = {"sigmoid-deep": "plain", "residual-deep": "residual", "batchnorm-deep": "batch norm"}
LENGTHS = {"300 steps (~30 s the first time)": 300,
           "2000 steps, the presets (~3 min the first time)": 2000}


def render() -> None:
    st.title("Skip connections and normalisation: two ways around the product")
    st.markdown(
        "A 20-layer sigmoid net multiplies 20 factors W σ′ on the way down, and σ′ ≤ ¼: the "
        "first layers' gradient vanishes (lessons 1-2). Two remedies from seed 004 (and "
        "Orhan & Pitkow's *Skip connections eliminate singularities*, seed 000):\n"
        "- **residual connections**: hₗ = hₗ₋₁ + φ(Wₗ hₗ₋₁ + bₗ), so the Jacobian of "
        "a block is I + (something): an identity path carries the gradient down unchanged;\n"
        "- **batch normalisation** before each activation: it re-centres and re-scales the "
        "pre-activations, keeping the sigmoids out of their flat, saturated parts.")
    st.latex(r"\frac{\partial h_l}{\partial h_{l-1}} = "
             r"\underbrace{I}_{\text{skip}} + D_l W_l"
             r"\qquad\text{vs.}\qquad \frac{\partial h_l}{\partial h_{l-1}} = D_l W_l,\ "
             r"\ D_l = \operatorname{diag}\sigma'(z_l) \preceq \tfrac14 I")
    guess = common.predict("l09_guess", "Predict: at initialisation, how does the first layer's "
                           "gradient compare with the last layer's in the residual net?",
                           ["about 10⁻¹⁸ as large, like the plain net", "within a factor of ~10",
                            "exactly equal"])

    if common.run_section("1 · Gradients at initialisation",
                          "gradlab run --preset residual-deep --steps 0 --json -",
                          "l09_init", "Measure the three nets at initialisation"):
        snaps = {NAMES[p]: common.compute(common.RUN_ALL, common.load_preset(p, steps=0),
                                          label="Measuring…").snapshots[0] for p in PRESETS}
        cols = st.columns(3)
        for col, (name, snap) in zip(cols, snaps.items(), strict=False):
            with col:
                fig = charts.gradient_bars(snap)
                fig.update_layout(title=dict(text=f"{name}: ‖δˡ‖ per layer"), height=380)
                fig.update_xaxes(title_text="layer (21 = output)")
                common.chart(fig, f"l09_bars_{name}")
        st.caption(charts.CAPTIONS["gradient_bars"])
        common.chart(figures.profile_figure(snaps), "l09_profile",
                     "The plain net's gradient falls by about 16 decades from the last hidden "
                     "layer to the first; with skips or batch norm it stays within a small "
                     "factor.")
        rows = []
        for name, snap in snaps.items():
            hid = [la for la in snap.layers if la.name != "output"]
            first, last = hid[0].delta_norm, hid[-1].delta_norm
            rows.append({"net": name, "‖δ¹‖ (first)": f"{first:.2g}",
                         "‖δᴸ‖ (last, L = 20)".replace("20", str(len(hid))): f"{last:.2g}",
                         "first / last": f"{first / last:.2g}" if last > 0 else "—"})
        common.compare_table(rows)
        st.caption("Seed 0 of each preset. Seed 004 states the mechanism (the identity path "
                   "carries gradient 1; batch norm keeps inputs in range); it gives no numbers.")
        common.reveal(guess, lambda g: g.startswith("within"), "Right.",
                      "Not quite: see the table.")

    st.header("2 · Does it train?")
    label = st.radio("Length of the runs", list(LENGTHS), index=0, horizontal=True,
                     key="l09_len")
    steps = LENGTHS[label]
    st.code(f"gradlab run --preset batchnorm-deep --steps {steps} --json -", language="bash")
    if common.run_button("l09_train", "Train the three nets"):
        runs = {NAMES[p]: common.compute(common.RUN_ALL, common.load_preset(p, steps=steps),
                                         label=f"Training the {NAMES[p]} net for {steps} steps…")
                for p in PRESETS}
        c1, c2 = st.columns(2)
        with c1:
            acc = {k: (r.snapshots[-1].test_accuracy or 0.0) for k, r in runs.items()}
            common.chart(figures.curves_figure(runs, "test_accuracy", "test accuracy",
                                               "Test accuracy (512 held-out digits)", False),
                         "l09_acc",
                         f"After {steps} steps: plain {acc['plain']:.0%}, residual "
                         f"{acc['residual']:.0%}, batch norm {acc['batch norm']:.0%} (chance is "
                         "10 %): only the nets whose first layers get a gradient learn.")
        with c2:
            common.chart(figures.first_layer_figure(runs), "l09_first",
                         "Hidden layer 1's speed of learning during training: the plain net's "
                         "stays ~16 decades below the others.")
        rows = []
        for name, res in runs.items():
            last = res.snapshots[-1]
            rows.append({"net": name, "steps": last.step,
                         "final test accuracy": f"{(last.test_accuracy or 0):.1%}",
                         "final train loss": f"{last.loss:.3g}",
                         "diverged at": res.diverged_at if res.diverged_at is not None else "—"})
        common.compare_table(rows)

    st.header("What it means")
    st.markdown(
        "Both remedies break the long product. A skip connection turns each factor into "
        "I + Dₗ Wₗ, so the gradient has a path down that multiplies by 1, not by ¼. Batch "
        "norm keeps every layer's pre-activations centred with unit spread, so σ′ stays near "
        "its maximum and no layer saturates. Orhan & Pitkow add a second view (lesson 5): "
        "skips also break the *degeneracies* — units that are copies of each other or always "
        "off — that make a deep net's effective dimension small. The same idea runs through "
        "time in the GRU (lesson 10).")
    common.open_each_in_playground({p: f"{NAMES[p]} net → playground" for p in PRESETS})
