"""Lesson 9 — skip connections and normalisation (seeds 000 and 004).

The same 20-layer sigmoid MLP on MNIST three ways: plain (preset ``sigmoid-deep``), with
identity skips around every hidden block (``residual-deep``) and with batch norm before
every activation (``batchnorm-deep``). Gradient bars at initialisation and learning
curves, all from ``core.train.run_all``.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app import charts
from app.lessons.common import (
    compare_table,
    load_preset,
    open_in_playground,
    predict,
    run_button,
)
from core.config import RunConfig, from_json
from core.snapshot import RunResult

TITLE = "9 · Skip connections and normalisation"
ICON = ":material/alt_route:"
PRESETS = ["sigmoid-deep", "residual-deep", "batchnorm-deep"]

NAMES = {"sigmoid-deep": "plain", "residual-deep": "residual", "batchnorm-deep": "batch norm"}
COLORS = {"plain": "#c62828", "residual": "#1a9850", "batch norm": "#2166ac"}
LENGTHS = {"300 steps (~30 s the first time)": 300,
           "2000 steps, the presets (~3 min the first time)": 2000}
FONT = 16


@st.cache_data(max_entries=64, show_spinner=False)
def _result(cfg_json: str) -> RunResult:
    from core.train import run_all

    return run_all(from_json(cfg_json))


def result(cfg: RunConfig) -> RunResult:
    return _result(cfg.to_json())


def _hidden(snap) -> list:
    return [la for la in snap.layers if la.name != "output"]


def _style(fig: go.Figure, title: str, xtitle: str, ytitle: str, *, log_y: bool = False,
           height: int = 400) -> go.Figure:
    fig.update_layout(template="none", height=height, font=dict(size=FONT),
                      title=dict(text=title, font=dict(size=20), x=0.01),
                      margin=dict(l=90, r=20, t=70, b=70),
                      legend=dict(font=dict(size=FONT), orientation="h", x=0, y=-0.25))
    fig.update_xaxes(title=dict(text=xtitle, font=dict(size=18)), showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT))
    fig.update_yaxes(title=dict(text=ytitle, font=dict(size=18)), showline=True,
                     gridcolor="#e3e3e3", tickfont=dict(size=FONT),
                     type="log" if log_y else "linear", exponentformat="power")
    return fig


def profile_figure(snaps: dict) -> go.Figure:
    """||delta^l|| per hidden layer at initialisation, the three nets on one log axis."""
    fig = go.Figure()
    for name, snap in snaps.items():
        hid = _hidden(snap)
        y = [max(la.delta_norm, 1e-30) for la in hid]
        fig.add_scatter(x=[la.index for la in hid], y=y, mode="lines+markers", name=name,
                        line=dict(color=COLORS[name], width=3), marker=dict(size=8))
    return _style(fig, "Gradient per layer at initialisation", "hidden layer (1 = next to "
                  "the input)", "‖δˡ‖ = ‖∂C/∂bˡ‖  (log scale)", log_y=True)


def curves_figure(runs: dict, attr: str, ytitle: str, title: str, log_y: bool) -> go.Figure:
    fig = go.Figure()
    for name, res in runs.items():
        measured = [s for s in res.snapshots if getattr(s, attr) is not None]
        x = [s.step for s in measured]
        y = [getattr(s, attr) for s in measured]
        fig.add_scatter(x=x, y=y, mode="lines", name=name,
                        line=dict(color=COLORS[name], width=3))
    return _style(fig, title, "training step", ytitle, log_y=log_y)


def first_layer_figure(runs: dict) -> go.Figure:
    fig = go.Figure()
    for name, res in runs.items():
        x = [s.step for s in res.snapshots]
        y = [max(_hidden(s)[0].delta_norm, 1e-30) for s in res.snapshots]
        fig.add_scatter(x=x, y=y, mode="lines", name=name,
                        line=dict(color=COLORS[name], width=3))
    return _style(fig, "Speed of learning of hidden layer 1", "training step",
                  "‖δ¹‖  (log scale)", log_y=True)


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
    guess = predict("l09_guess", "Predict: at initialisation, how does the first layer's "
                    "gradient compare with the last layer's in the residual net?",
                    ["about 10⁻¹⁸ as large, like the plain net", "within a factor of ~10",
                     "exactly equal"])

    st.header("1 · Gradients at initialisation")
    st.code("gradlab run --preset residual-deep --steps 0 --json -", language="bash")
    if run_button("l09_init", "Measure the three nets at initialisation"):
        with st.spinner("Measuring…"):
            snaps = {NAMES[p]: result(load_preset(p, steps=0)).snapshots[0] for p in PRESETS}
        cols = st.columns(3)
        for col, (name, snap) in zip(cols, snaps.items(), strict=False):
            with col:
                fig = charts.gradient_bars(snap)
                fig.update_layout(title=dict(text=f"{name}: ‖δˡ‖ per layer"), height=380)
                fig.update_xaxes(title_text="layer (21 = output)")
                st.plotly_chart(fig, key=f"l09_bars_{name}")
        st.caption(charts.CAPTIONS["gradient_bars"])
        st.plotly_chart(profile_figure(snaps), key="l09_profile")
        st.caption("The plain net's gradient falls by about 16 decades from the last hidden "
                   "layer to the first; with skips or batch norm it stays within a small "
                   "factor.")
        rows = []
        for name, snap in snaps.items():
            hid = _hidden(snap)
            first, last = hid[0].delta_norm, hid[-1].delta_norm
            rows.append({"net": name, "‖δ¹‖ (first)": f"{first:.2g}",
                         "‖δᴸ‖ (last, L = 20)".replace("20", str(len(hid))): f"{last:.2g}",
                         "first / last": f"{first / last:.2g}" if last > 0 else "—"})
        compare_table(rows)
        st.caption("Seed 0 of each preset. Seed 004 states the mechanism (the identity path "
                   "carries gradient 1; batch norm keeps inputs in range); it gives no numbers.")
        if guess is not None:
            right = guess.startswith("within")
            (st.success if right else st.info)(
                f"You predicted: *{guess}*. " + ("Right." if right else "Not quite: see the "
                                                 "table."))

    st.header("2 · Does it train?")
    label = st.radio("Length of the runs", list(LENGTHS), index=0, horizontal=True,
                     key="l09_len")
    steps = LENGTHS[label]
    st.code(f"gradlab run --preset batchnorm-deep --steps {steps} --json -", language="bash")
    if run_button("l09_train", "Train the three nets"):
        runs = {}
        bar = st.progress(0.0, text="Training…")
        for i, p in enumerate(PRESETS):
            bar.progress(i / 3, text=f"Training the {NAMES[p]} net for {steps} steps…")
            runs[NAMES[p]] = result(load_preset(p, steps=steps))
        bar.empty()
        c1, c2 = st.columns(2)
        with c1:
            st.plotly_chart(curves_figure(runs, "test_accuracy", "test accuracy",
                                          "Test accuracy (512 held-out digits)", False),
                            key="l09_acc")
            acc = {k: (r.snapshots[-1].test_accuracy or 0.0) for k, r in runs.items()}
            st.caption(f"After {steps} steps: plain {acc['plain']:.0%}, residual "
                       f"{acc['residual']:.0%}, batch norm {acc['batch norm']:.0%} (chance "
                       "is 10 %): only the nets whose first layers get a gradient learn.")
        with c2:
            st.plotly_chart(first_layer_figure(runs), key="l09_first")
            st.caption("Hidden layer 1's speed of learning during training: the plain net's "
                       "stays ~16 decades below the others.")
        rows = []
        for name, res in runs.items():
            last = res.snapshots[-1]
            rows.append({"net": name, "steps": last.step,
                         "final test accuracy": f"{(last.test_accuracy or 0):.1%}",
                         "final train loss": f"{last.loss:.3g}",
                         "diverged at": res.diverged_at if res.diverged_at is not None else "—"})
        compare_table(rows)

    st.header("What it means")
    st.markdown(
        "Both remedies break the long product. A skip connection turns each factor into "
        "I + Dₗ Wₗ, so the gradient has a path down that multiplies by 1, not by ¼. Batch "
        "norm keeps every layer's pre-activations centred with unit spread, so σ′ stays near "
        "its maximum and no layer saturates. Orhan & Pitkow add a second view (lesson 5): "
        "skips also break the *degeneracies* — units that are copies of each other or always "
        "off — that make a deep net's effective dimension small. The same idea runs through "
        "time in the GRU (lesson 10).")
    cols = st.columns(3)
    for col, p in zip(cols, PRESETS, strict=False):
        with col:
            open_in_playground(load_preset(p), f"{NAMES[p]} net → playground")
