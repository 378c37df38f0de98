"""AppTest per lesson page 5-10: render, press every Run button, and check that no exception
is raised and that the key numbers -- measured by the real core -- are on the page.

The heavy pages are shrunk through module attributes set in the test script before
``render()`` (fewer seeds / steps); the page code itself runs unchanged.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 300   # seconds per script run: the machine may be shared; runs are cached after

LESSONS = ("l05_degeneracy", "l06_random_products", "l07_dynamical_isometry",
           "l08_input_warping", "l09_skips_and_norm", "l10_rnn_vs_gru")


def _app(module: str, setup: str = "") -> AppTest:
    at = AppTest.from_string(
        "import torch\n"
        "torch.set_num_threads(1)\n"
        f"from app.lessons import {module} as lesson\n"
        f"{setup}\n"
        "lesson.render()\n",
        default_timeout=TIMEOUT,
    )
    at.run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [s.value for s in at.success] + [i.value for i in at.info]
    parts += [df.value.to_string() for df in at.dataframe]
    return "\n".join(parts)


def _click_all(at: AppTest, keys: list[str]) -> None:
    for key in keys:
        at.button(key=key).click().run()
        assert not at.exception, (key, at.exception)


def test_lesson_modules_follow_the_plugin_pattern():
    from app import lessons
    from core.config import preset

    mods = {m.__name__.rsplit(".", 1)[-1]: m for m in lessons.discover()}
    for name in LESSONS:
        m = mods[name]
        assert isinstance(m.TITLE, str) and m.TITLE.startswith(str(int(name[1:3])) + " ·")
        assert m.ICON.startswith(":material/")
        assert callable(m.render)
        for p in m.PRESETS:
            preset(p)   # raises on an unknown preset


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson5_degeneracy_page():
    # 2 seeds x 40 steps instead of 10 x the preset's steps (the page's own code path).
    setup = ("from app.lessons import common\n"
             "lesson.SEED_CHOICES = {'2 seeds': 2}\n"
             "lesson.load_preset = lambda name, **kw: common.load_preset(name, "
             "**{**kw, 'steps': 40, 'every': 10})\n")
    at = _app("l05_degeneracy", setup)
    assert "gradlab run --preset deep-linear-fold1" in at.code[0].value
    at.radio(key="predict_l05_best").set_value("Ortho")
    _click_all(at, ["btn_l05_run"])
    text = _text(at)
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
    at = _app("l06_random_products")
    at.select_slider(key="l06_n").set_value(50).run()
    at.radio(key="predict_l06_guess").set_value(
        "a few large ones and most tiny (many decades below 1)")
    _click_all(at, ["btn_l06_run"])
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
    at = _app("l07_dynamical_isometry", "lesson.DEPTHS = (2, 16)\n")
    at.select_slider(key="l07_width").set_value(64).run()
    _click_all(at, ["btn_l07_run"])
    df = at.dataframe[0].value
    assert len(df) == 5
    row = df.set_index("net")
    near = {k: float(v.rstrip("%")) for k, v in row["in [½,2] at L=16"].items()}
    assert near["hard-tanh + orthogonal"] > 80 and near["ReLU + Gaussian (He)"] < 30
    assert "init_gain=" in at.code[0].value and "jacobian=true" in at.code[0].value
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.lesson
def test_lesson8_input_warping_page():
    at = _app("l08_input_warping")
    at.select_slider(key="l08_hidden").set_value(64).run()
    _click_all(at, ["btn_l08_run"])
    df = at.dataframe[0].value
    assert list(df["layer"]) == [1, 4, 8, 16, 32]
    plain = [float(v) for v in df["plain: median s₂/s₁"]]
    ic = [float(v) for v in df["input-connected: median s₂/s₁"]]
    assert plain[-1] < 1e-3 * plain[0] and ic[-1] > 0.02
    assert len(at.get("plotly_chart")) == 4


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson9_skips_page():
    at = _app("l09_skips_and_norm", "lesson.LENGTHS = {'20 steps': 20}\n")
    at.radio(key="predict_l09_guess").set_value("within a factor of ~10")
    _click_all(at, ["btn_l09_init", "btn_l09_train"])
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
    at = _app("l10_rnn_vs_gru", "lesson.LENGTHS = {'10 steps': 10}\nlesson.TRAIN_EVERY = 5\n"
                                "lesson.INIT_SEEDS = (0, 1)\n")
    assert "gradlab run --preset gru-long --steps 0 --json -" in at.code[0].value
    _click_all(at, ["btn_l10_init", "btn_l10_train"])
    df = at.dataframe[0].value.set_index("net")
    keep = float(df.loc["GRU, keep-biased", "first / last, seed 0"])
    assert keep > 1e-2
    rnn = df.loc["tanh RNN", "first / last, seed 0"]
    assert rnn == "0 (underflow)" or float(rnn) < 1e-8
    assert "GRU, default init" in df.index
    assert len(at.dataframe[1].value) == 3
    assert len(at.get("plotly_chart")) == 3


LESSON_PAGES_2 = {
    "l05_degeneracy": "Orhan: is it the gradient's size, or degeneracy?",
    "l06_random_products": "Saxe: what happens to a product of random matrices?",
    "l07_dynamical_isometry": "Pennington: can a deep net's Jacobian stay an isometry?",
    "l08_input_warping": "Duvenaud: deep random nets crush input space into filaments",
    "l09_skips_and_norm": "Skip connections and normalisation: two ways around the product",
    "l10_rnn_vs_gru": "RNN vs GRU: does the gradient survive 100 time steps?",
}


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson_pages_2_in_the_browser(streamlit_server, page) -> None:
    """Walk lessons 5-10 in Chromium: each renders its title with no exception box and no
    page error. Screenshots: test-results/lessons/. Run buttons are covered by AppTest."""
    from tests.test_lesson_pages_1 import SHOTS, _wait_idle

    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(streamlit_server, wait_until="domcontentloaded")   # see test_lesson_pages_1
    page.get_by_text("5 · Orhan: degeneracy, not vanishing").first.wait_for(timeout=120_000)
    for slug, title in LESSON_PAGES_2.items():
        page.goto(f"{streamlit_server}/{slug}", wait_until="domcontentloaded")
        page.get_by_role("heading", name=title).wait_for(timeout=120_000)
        _wait_idle(page)
        assert page.get_by_text("Page not found").count() == 0, slug
        assert page.locator('[data-testid="stException"]').count() == 0, slug
        height = page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]')"
                               " || document.body).scrollHeight")
        page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 8000)})
        page.screenshot(path=str(SHOTS / f"{slug}.png"))
        page.set_viewport_size({"width": 1280, "height": 900})
    assert not errors, errors
