"""Every lesson page under AppTest: render, press the Run buttons (choosing the quick run
lengths the pages offer), and check that no exception is raised and that the key numbers --
published and measured by the real core -- are on the page. The heavy pages are shrunk
through module attributes set in the test script before ``render()`` (fewer seeds / steps);
the page code itself runs unchanged. Then the real server and a real browser walk them all.
"""

from __future__ import annotations

import pytest

from tests.page_helpers import (
    check_lesson_modules,
    click_all,
    lesson_app,
    page_text,
    wait_idle,
    walk_lessons,
)

LESSON_PAGES = {
    "l01_nielsen_speed": "Nielsen: why do the first layers learn so slowly?",
    "l02_nielsen_chain": "Nielsen: a chain of one-neuron layers",
    "l03_glorot_saturation": "Glorot & Bengio: saturated units and a better initialisation",
    "l04_variance_depth": "Variance through depth: why initialisation matters",
}
LESSON_PAGES_2 = {
    "l05_degeneracy": "Orhan: is it the gradient's size, or degeneracy?",
    "l06_random_products": "Saxe: what happens to a product of random matrices?",
    "l07_dynamical_isometry": "Pennington: can a deep net's Jacobian stay an isometry?",
    "l08_input_warping": "Duvenaud: deep random nets crush input space into filaments",
    "l09_skips_and_norm": "Skip connections and normalisation: two ways around the product",
    "l10_rnn_vs_gru": "RNN vs GRU: does the gradient survive 100 time steps?",
}


def test_lesson_modules_follow_the_plugin_pattern():
    check_lesson_modules(list(LESSON_PAGES) + list(LESSON_PAGES_2))


# ---- Nielsen (lessons 1, 2) ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson1_nielsen_speed_page():
    from app.lessons import l01_nielsen_speed as m
    from core.presets import preset
    from core.train import run_all

    at = lesson_app("l01_nielsen_speed")
    assert "gradlab run --preset nielsen-4 --steps 0 --json -" in [c.value for c in at.code][0]
    at.radio(key="l01_curve_epochs").set_value(list(m.CURVE_EPOCHS)[0])
    at.radio(key="l01_acc_epochs").set_value(list(m.ACC_EPOCHS)[0])
    at.radio(key="predict_l01_speed").set_value("hidden layer 4 (next to the output)")
    click_all(at, ["btn_l01_init", "btn_l01_train", "btn_l01_acc"])
    text = page_text(at)
    assert "Nielsen measured **0.003 / 0.017 / 0.07 / 0.285**" in text
    ours = [la.delta_norm for la in
            run_all(preset("nielsen-4").replace(steps=0)).snapshots[0].layers[:-1]]
    assert "this run: **" + " / ".join(f"{v:.3g}" for v in ours) + "**" in text
    assert "96.48" in text and "96.53" in text          # Nielsen's accuracy column
    assert "after 100 epochs" in text
    assert at.success, "a right prediction is acknowledged"
    assert len(at.get("plotly_chart")) == 3


@pytest.mark.lesson
def test_lesson2_nielsen_chain_page():
    at = lesson_app("l02_nielsen_chain")
    at.button(key="l02_explode").click().run()
    assert not at.exception, at.exception
    assert at.metric[0].value == "1.56e+04"               # 25^3 = 15,625
    chain = at.dataframe[0].value
    assert list(chain["w σ′(z)"]) == ["25"] * 4
    window = at.dataframe[1].value.to_string()
    assert "6.894" in window and "0.4477" in window     # Nielsen: ~6.9 and ~0.45
    at.button(key="l02_small").click().run()
    assert not at.exception
    assert float(at.metric[0].value) < 1 / 64           # three factors below 1/4
    at.slider(key="l02_wwin").set_value(20.0).run()
    assert not at.exception


# ---- initialisation (lessons 3, 4) --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson3_glorot_page():
    from app.lessons import l03_glorot_saturation as m

    at = lesson_app("l03_glorot_saturation")
    at.radio(key="l03_steps").set_value(list(m.STEPS)[0])
    at.radio(key="l03_cost_steps").set_value(list(m.COST_STEPS)[0])
    click_all(at, ["btn_l03_sat", "btn_l03_init", "btn_l03_cost"])
    at.selectbox(key="l03_stat").set_value("saturation").run()
    assert not at.exception
    text = page_text(at)
    assert "the top layer's mean goes from" in text
    assert "first / last" in text and "normalised" in text
    assert "cross-entropy" in text and "quadratic" in text
    assert len(at.get("plotly_chart")) == 1 + 4     # the Shapeset sample grid + the MNIST runs
    # 1b (the 5 x 1000 net, 2-3 min) is not clicked here: its panel is tested on a tiny run
    # below and its claim in test_lesson_claims_glorot.py.
    assert at.button(key="btn_l03_cascade")


@pytest.mark.lesson
def test_lesson3_cascade_panel_on_a_tiny_run():
    from app.charts import initialisation as figures
    from app.lessons import l03_glorot_saturation as m
    from core.experiments.saturation import activation_percentiles
    from core.presets import preset
    from core.train import run_all

    res = run_all(preset(m.CASCADE_PRESET).replace(width=32, n_train=200, n_test=0, steps=40,
                                                   every=10, spectrum_every=0))
    rows = m.cascade_rows(res)
    assert [r["layer"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["Glorot & Bengio (Shapeset)"] for r in rows][:2] == ["saturates first",
                                                                  "saturates second"]
    assert all(r["this run"] for r in rows)
    text = m.cascade_summary(res)
    assert "layer 1's 98th percentile is **" in text
    fig = figures.cascade_figure(*activation_percentiles(res), m.CASCADE_LEVEL)
    assert len(fig.data) == 5


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson4_variance_page():
    from app.lessons import l04_variance_depth as m

    at = lesson_app("l04_variance_depth")
    at.selectbox(key="l04_act").set_value("linear").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("init")
    # N(0, 1) multiplies the variance by n*gamma = 256 per layer; the page shows it.
    assert abs(float(table.loc["N(0, 1)", "forward factor per layer"]) / 256 - 1) < 0.2
    assert table.loc["Xavier", "theory (n·γ, ×½ for ReLU)"] == "1"
    at.slider(key="l04_depth").set_value(50).run()   # N(0,1): 256^50 overflows float32
    assert not at.exception
    assert "yes" in list(at.dataframe[0].value["overflow (inf/NaN)"])
    at.radio(key="l04_sweep_steps").set_value(list(m.SWEEP_STEPS)[0])
    at.button(key="btn_l04_sweep").click().run()
    assert not at.exception, at.exception
    text = page_text(at)
    assert "NaN/inf first appears at **lr = 1**" in text
    assert "with clipping **no run** hit NaN/inf" in text


# ---- degeneracy and spectra (lessons 5-8) -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson5_degeneracy_page():
    # 2 seeds x 40 steps instead of 10 x the preset's steps (the page's own code path).
    setup = ("lesson.SEED_CHOICES = {'2 seeds': 2}\n"
             "full = lesson.configs\n"
             "lesson.configs = lambda: {k: c.replace(steps=40, every=10) "
             "for k, c in full().items()}\n")
    at = lesson_app("l05_degeneracy", setup)
    assert "gradlab run --preset deep-linear-fold1" in at.code[0].value
    at.radio(key="predict_l05_best").set_value("Ortho")
    click_all(at, ["btn_l05_run"])
    text = page_text(at)
    assert "This run: lowest loss **" in text
    df = at.dataframe[0].value
    assert list(df["init"]) == ["Fold 0", "Fold 1", "Ortho"]
    assert "larger gradient, worse" in text                  # Orhan's finding, beside ours
    assert len(at.get("plotly_chart")) == 5
    at.radio(key="l05_svwhen").set_value("end").run()
    at.toggle(key="l05_logy").set_value(True).run()
    assert not at.exception


@pytest.mark.lesson
def test_lesson6_random_products_page():
    at = lesson_app("l06_random_products")
    at.select_slider(key="l06_n").set_value(50).run()
    at.radio(key="predict_l06_guess").set_value(
        "a few large ones and most tiny (many decades below 1)")
    click_all(at, ["btn_l06_run"])
    df = at.dataframe[0].value
    assert list(df["factors"]) == [1, 10, 100]
    # The orthogonal spectrum stays at 1: its spread is rounding only.
    assert all(float(v) < 1e-9 for v in df["std of ln s (orthogonal)"])
    g = [float(v) for v in df["std of ln s (Gaussian)"]]
    assert g[0] < g[1] < g[2]
    assert at.success
    at.radio(key="l06_scale").set_value("linear").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson7_dynamical_isometry_page():
    at = lesson_app("l07_dynamical_isometry", "lesson.DEPTHS = (2, 16)\n")
    at.select_slider(key="l07_width").set_value(64).run()
    click_all(at, ["btn_l07_run"])
    df = at.dataframe[0].value
    assert len(df) == 5
    row = df.set_index("net")
    near = {k: float(v.rstrip("%")) for k, v in row["in [½,2] at L=16"].items()}
    assert near["hard-tanh + orthogonal"] > 80 and near["ReLU + Gaussian (He)"] < 30
    assert "init_gain=" in at.code[0].value and "jacobian=true" in at.code[0].value
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.lesson
def test_lesson8_input_warping_page():
    at = lesson_app("l08_input_warping")
    at.select_slider(key="l08_hidden").set_value(64).run()
    click_all(at, ["btn_l08_run"])
    df = at.dataframe[0].value
    assert list(df["layer"]) == [1, 4, 8, 16, 32]
    plain = [float(v) for v in df["plain: median s₂/s₁"]]
    ic = [float(v) for v in df["input-connected: median s₂/s₁"]]
    assert plain[-1] < 1e-3 * plain[0] and ic[-1] > 0.02
    assert len(at.get("plotly_chart")) == 4


# ---- remedies (lessons 9, 10) -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson9_skips_page():
    at = lesson_app("l09_skips_and_norm", "lesson.LENGTHS = {'20 steps': 20}\n")
    at.radio(key="predict_l09_guess").set_value("within a factor of ~10")
    click_all(at, ["btn_l09_init", "btn_l09_train"])
    df = at.dataframe[0].value.set_index("net")
    ratios = {k: float(v) for k, v in df["first / last"].items()}
    assert ratios["plain"] < 1e-10 and 0.1 < ratios["residual"] < 10
    assert 0.1 < ratios["batch norm"] < 10
    assert at.success
    assert list(at.dataframe[1].value["steps"]) == [20, 20, 20]
    assert len(at.get("plotly_chart")) == 3 + 1 + 2


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson10_rnn_gru_page():
    at = lesson_app("l10_rnn_vs_gru", "lesson.LENGTHS = {'10 steps': 10}\n"
                                      "lesson.TRAIN_EVERY = 5\nlesson.INIT_SEEDS = (0, 1)\n")
    assert "gradlab run --preset gru-long --steps 0 --json -" in at.code[0].value
    click_all(at, ["btn_l10_init", "btn_l10_train"])
    df = at.dataframe[0].value.set_index("net")
    keep = float(df.loc["GRU, keep-biased", "first / last, seed 0"])
    assert keep > 1e-2
    rnn = df.loc["tanh RNN", "first / last, seed 0"]
    assert rnn == "0 (underflow)" or float(rnn) < 1e-8
    assert "GRU, default init" in df.index
    assert len(at.dataframe[1].value) == 3
    assert len(at.get("plotly_chart")) == 3


# ---- the real server and a real browser ---------------------------------------------------------


def _explode(slug: str, page) -> None:
    """Lesson 2's "make it explode" works live (it needs no training)."""
    if slug == "l02_nielsen_chain":
        page.get_by_role("button", name="Make it explode").click()
        wait_idle(page)
        page.get_by_text("1.56e+04").first.wait_for(timeout=30_000)


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson_pages_in_the_browser(streamlit_server, page):
    """Walk lessons 1-4 in Chromium: each renders its title with no exception box; lesson 2's
    "make it explode" works live. The heavy Run buttons are covered by the AppTests above."""
    walk_lessons(streamlit_server, page, LESSON_PAGES, "1 · Nielsen: speed of learning",
                 on_page=_explode)


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson_pages_2_in_the_browser(streamlit_server, page) -> None:
    """Walk lessons 5-10 in Chromium: each renders its title with no exception box and no
    page error. Run buttons are covered by AppTest."""
    walk_lessons(streamlit_server, page, LESSON_PAGES_2, "5 · Orhan: degeneracy, not vanishing")
