"""Lesson 11 (the phase map) under AppTest, shrunk through module attributes, and in a real
browser: the page renders, the at-init map and the trainability map come from the real core
through the executors, and the verdict paragraph and the prediction's answer show."""

from __future__ import annotations

import numpy as np
import pytest

from tests.page_helpers import check_lesson_modules, click_all, lesson_app, page_text, wait_idle

TITLE = "The phase map: where can a deep net train?"
SHRINK = ("lesson.INIT_GRID = 8\nlesson.INIT_CHUNK = 4\nlesson.INIT_DEPTH = 40\n"
          "lesson.INIT_WIDTH = 32\n"
          "lesson.TRAIN_GRIDS = {'tiny': (3, (2, 30), 40)}\n")


def test_lesson11_follows_the_plugin_pattern() -> None:
    check_lesson_modules(["l11_phase_map"])


def test_verdict_counts_cells_against_six_xi() -> None:
    from app.lessons.l11_phase_map import verdict, verdict_text
    from core.experiments.phase_results import TrainabilityMap

    t = TrainabilityMap(activation="tanh", sigma_b2=0.05, width=8, steps=10, lr=0.01,
                        batch_size=8, sigma_w2=np.array([1.0, 1.8]), depths=np.array([5, 50]),
                        test_accuracy=np.array([[0.8, 0.1], [0.9, 0.12]]),
                        train_loss=np.zeros((2, 2)), diverged=np.zeros((2, 2), dtype=bool))
    v = verdict(t, np.array([3.6, 1e9]))        # 6 xi = 21.6 and "infinite"
    assert (v["inside"], v["inside_trained"]) == (3, 2)      # (1.8, 50) inside, did not train
    assert (v["beyond"], v["beyond_failed"]) == (1, 1)       # (1.0, 50) > 43.2
    assert v["miss_inside"] == [(1.8, 50, 0.12)]
    text = verdict_text(v, 10)
    assert "2 of the 3 cells inside" in text and "What does not" in text


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson11_phase_map_page() -> None:
    at = lesson_app("l11_phase_map", SHRINK)
    assert at.title[0].value == TITLE
    assert "gradlab phase --activation tanh --set sigma_b2=0.05" in at.code[0].value
    df = at.dataframe[0].value.set_index("quantity")
    theory = float(df.loc["critical σ_w² (χ₁ = 1)", "theory"])
    assert theory == pytest.approx(1.761, abs=0.001)          # tanh, sigma_b^2 = 0.05
    measured = float(df.loc["critical σ_w² (χ₁ = 1)", "this run"])
    assert measured == pytest.approx(theory, rel=0.08)        # 8 %: width 32, 4 nets
    assert len(at.get("plotly_chart")) == 3
    at.radio(key="predict_l11_guess").set_value(
        "a band around the edge of chaos (χ₁ = 1) that narrows as depth grows")
    click_all(at, ["btn_l11_train"])
    text = page_text(at)
    assert "What agrees." in text and "cells inside 6 ξ_c trained" in text
    assert at.success and "Right" in at.success[0].value
    assert len(at.get("plotly_chart")) == 4


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson11_in_the_browser(streamlit_server, page) -> None:
    """The page in Chromium: title, no exception box, the map's figure drawn, the training
    button streams the trainability map in (the quick grid)."""
    from tests.page_helpers import SHOTS

    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(streamlit_server, wait_until="domcontentloaded")
    page.get_by_text("11 · The phase map").first.wait_for(timeout=120_000)
    page.goto(f"{streamlit_server}/l11_phase_map", wait_until="domcontentloaded")
    page.get_by_role("heading", name=TITLE).wait_for(timeout=120_000)
    wait_idle(page, 180)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= 3
    page.get_by_role("button", name="Train the grid").click()
    page.get_by_text("What agrees.").first.wait_for(timeout=300_000)
    wait_idle(page, 120)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= 4
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]')"
                           " || document.body).scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 8000)})
    page.screenshot(path=str(SHOTS / "l11_phase_map.png"))
    assert not errors, errors
