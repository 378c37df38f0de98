"""Lesson 3's Shapeset part (``app.lessons.glorot_shapeset``, issue 17) under AppTest: the
sample grid renders, and every figure's button trains its net through the shared executors
and puts the paper's claim beside the run's numbers. The nets are shrunk (5 x 16, 60 steps)
by replacing ``net_config`` for the test; the page code runs unchanged. The claims
themselves are checked at a faithful size in test_lesson_claims_glorot.py."""

from __future__ import annotations

import pytest

from tests.page_helpers import click_all, lesson_app, page_text


def _tiny(net: str):
    from app.lessons import common, glorot_shapeset

    return common.load_preset(glorot_shapeset.NETS[net]).replace(
        width=16, steps=60, every=10, eval_every=20, n_test=90)


@pytest.mark.slow
@pytest.mark.lesson
def test_lesson3_shapeset_sections(monkeypatch):
    from app.lessons import glorot_shapeset as g

    monkeypatch.setattr(g, "net_config", _tiny)
    at = lesson_app("l03_glorot_saturation")
    # the grid: 16 images in one Plotly image, each with its class name under it
    import json

    grid = [c for c in at.get("plotly_chart") if '"type":"image"' in c.proto.spec
            or '"image"' in c.proto.spec]
    assert len(grid) == 1, len(grid)
    spec = json.loads(grid[0].proto.spec)
    labels = [a["text"] for a in spec["layout"]["annotations"]]
    assert len(labels) == 16 and set("".join(labels)) <= set("PTE +"), labels
    assert at.number_input(key="l03_grid_seed").value == 0
    at.radio(key="predict_l03_sigmoid").set_value("its outputs are pushed towards 0 (saturation)")
    click_all(at, ["btn_l03_fig2", "btn_l03_fig3", "btn_l03_fig4", "btn_l03_fig67",
                   "btn_l03_table"])
    assert not at.exception, at.exception
    text = page_text(at)
    # Figure 2, 3, 4: the paper's claim and this run's numbers side by side
    assert "Glorot & Bengio (Fig. 2)" in text and "82.61" in text
    assert "Order in which the layers' 98th percentile reached 0.9" in text
    assert "softsign" in text and "knees" in text
    # Figures 6-7: both inits, their spreads; Table 1: all four nets and the verdicts
    assert "standard" in text and "normalised" in text and "layer 5 / layer 1" in text
    for net, err in g.PAPER_ERROR.items():
        assert net in text and f"{err:.2f}" in text
    assert "normalised init helps tanh" in text
    assert at.success, "a right prediction is acknowledged under Figure 2"
    keys = {c.proto.id for c in at.get("plotly_chart")}
    assert len(at.get("plotly_chart")) == 1 + 3 + 2 + 4 + 1, keys   # grid + figures
    # another seed draws other images
    at.number_input(key="l03_grid_seed").set_value(3).run()
    assert not at.exception


def test_shapeset_figures_share_the_style_and_read_the_numbers():
    """The Shapeset part's figures follow the one chart style (as test_chart_style checks
    for every lesson figure): no template, the body font, titled axes with the grid; the
    lines are the numbers given, one per layer / net; the grid's upscaling keeps pixels."""
    import numpy as np

    from app import charts
    from app.charts import shapeset as figs
    from tests.chart_helpers import spec

    vals = np.linspace(0, 1, 15).reshape(3, 5)
    built = {
        "layer_curves": figs.layer_curves([0, 50, 100], vals, title="t", ytitle="y",
                                          level=0.9, level_text="0.9: saturated"),
        "error_figure": figs.error_figure({"tanh": ([0, 500], [88.0, 80.0]),
                                           "sigmoid": ([0, 500], [89.0, 89.5])}, 88.9),
    }
    for name, fig in built.items():
        lay = spec(fig)["layout"]
        assert lay["font"] == {"size": charts.FONT_SIZE, "color": charts.TEXT}, name
        assert lay["title"]["font"]["size"] == charts.TITLE_SIZE, name
        for axis in (lay["xaxis"], lay["yaxis"]):
            assert axis["gridcolor"] == charts.GRID and axis["title"]["text"], name
    lines = spec(built["layer_curves"])["data"]
    assert [t["name"] for t in lines] == [f"layer {j}" for j in range(1, 6)]
    assert [t["name"] for t in spec(built["error_figure"])["data"]] == ["tanh", "sigmoid"]
    img = np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32)
    big = figs.upscale(img, 3)
    assert big.shape == (6, 6) and big.dtype == np.uint8
    assert big[0, 0] == 0 and big[2, 5] == 255 and big[5, 0] == 128 and big[3, 3] == 64


def test_table1_verdict_says_agree_disagree_or_too_close():
    """The page's Table 1 verdicts: a gap beyond REAL_GAP points agrees or disagrees with
    the paper, anything smaller is called too close (the noise of 1000 test images)."""
    from app.lessons import glorot_shapeset as g

    text = g.table1_verdict({"tanh": 85.5, "tanh, normalised init": 80.0, "softsign": 84.6,
                             "sigmoid": 81.0})
    lines = text.splitlines()
    assert "normalised init helps tanh" in lines[0] and "**agrees**" in lines[0]
    assert "softsign beats tanh" in lines[1] and "too close to call" in lines[1]
    assert "tanh beats sigmoid" in lines[2] and "**disagrees**" in lines[2]
    assert "15.60" in lines[0] and "27.15" in lines[0]
