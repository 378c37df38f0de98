"""app.charts, what every figure shares: the one lecture-hall style (playground panels and
lesson figures alike), small and valid JSON, a stable ``uirevision`` per panel, no exception
on the edge cases (empty history, divergence, zeros, depth 1 and 200, RNN), and speed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Callable

import plotly.graph_objects as go
import pytest

from app import charts
from tests.chart_helpers import PANELS, arr, every_figure, spec, texts, traces, with_layers

#: The real runs (module-scoped fixtures: small, deep20, deep200, depth1, exploding, rnn).
pytest_plugins = ("tests.chart_fixtures",)


# ---- all panels: style, size, validity, edge cases -----------------------------------------


def test_captions_cover_every_panel() -> None:
    assert set(charts.CAPTIONS) == set(PANELS)
    for key, text in charts.CAPTIONS.items():
        assert 20 < len(text) < 200, key
        assert text.endswith("."), key


def _check_style(name: str, fig: go.Figure) -> None:
    lay = spec(fig)["layout"]
    assert lay.get("template") in ({}, {"data": {"scatter": [{"type": "scatter"}]}}), name
    assert lay["font"]["size"] >= 16, name
    assert lay["title"]["font"]["size"] >= 18, name
    assert lay["uirevision"], name
    assert lay["paper_bgcolor"] == "white" and lay["plot_bgcolor"] == "white", name
    for axis_name, axis in lay.items():
        if not axis_name.startswith(("xaxis", "yaxis")) or axis.get("visible") is False:
            continue
        if axis.get("showticklabels") is False:     # a subplot sharing another's labels
            continue
        title = axis.get("title", {})
        assert title.get("text") is not None, f"{name}.{axis_name} has no title"
        assert title.get("font", {}).get("size", 0) >= 18, f"{name}.{axis_name}"
        assert axis.get("tickfont", {}).get("size", 0) >= 16, f"{name}.{axis_name}"
    main_titles = [lay.get(a, {}).get("title", {}).get("text") for a in ("xaxis", "yaxis")]
    if lay.get("xaxis", {}).get("visible") is not False:
        assert all(main_titles), f"{name}: main axes need titles, got {main_titles}"


@pytest.mark.parametrize("which", ["small", "deep20", "depth1", "exploding"])
def test_every_builder_style_size_and_validity(which, request) -> None:
    history = request.getfixturevalue(which)
    for name, fig in every_figure(history).items():
        _check_style(name, fig)
        size = len(fig.to_json())
        assert size < 20_000, f"{name} on {which}: {size} bytes of JSON"
        # everything we emit is valid plotly (the builders skip validation for speed)
        go.Figure(json.loads(fig.to_json()))


def test_uirevision_is_stable_per_panel(small) -> None:
    a, b = every_figure(small[:2]), every_figure(small)
    for name in a:
        assert spec(a[name])["layout"]["uirevision"] == spec(b[name])["layout"]["uirevision"]
    revs = {spec(f)["layout"]["uirevision"] for f in b.values()}
    assert len(revs) == len(PANELS)     # one per panel (variants of a panel share theirs)


def test_depth_200_sizes(deep200) -> None:
    for name, fig in every_figure([deep200]).items():
        assert len(fig.to_json()) < 30_000, name


@pytest.mark.parametrize("empty", [[], None])
def test_empty_history_says_press_play(empty) -> None:
    for name, fig in every_figure(empty or []).items():
        assert charts.PLACEHOLDER_TEXT in texts(fig), name
        assert spec(fig)["data"] == [], name
    assert charts.PLACEHOLDER_TEXT == "Press ▶ Play to start"


def test_divergence_never_crashes_and_is_marked(exploding) -> None:
    last = exploding[-1]
    assert last.diverged
    figs = every_figure(exploding)
    assert "(diverged)" in spec(figs["gradient_bars"])["layout"]["title"]["text"]
    assert traces(figs["gradient_bars"], name="NaN / inf")
    assert any("diverged at step" in t for t in texts(figs["loss_curves"]))
    # a snapshot made of nothing but NaN and inf
    nan = dict.fromkeys(("delta_norm", "weight_grad_norm", "update_ratio", "saturation"),
                        [math.nan] * len(last.layers))
    bad = with_layers(last, delta_top=[[math.nan, math.inf, -math.inf]] * len(last.layers), **nan)
    bad = dataclasses.replace(bad, loss=math.nan, test_loss=math.inf)
    for name, fig in every_figure([bad, bad]).items():
        spec(fig)
        assert name


def test_zero_gradients_on_log_axes(small) -> None:
    hist = [with_layers(s, delta_norm=[0.0] * 7, update_ratio=[0.0] * 7) for s in small]
    for name, fig in every_figure(hist).items():
        lay = spec(fig)["layout"]
        if lay.get("yaxis", {}).get("type") == "log":
            assert lay["yaxis"].get("range", [0])[0] > -30, name   # no squashing to 1e-30
    (zero,) = traces(charts.gradient_bars(hist[-1]), name="exactly 0")
    assert len(arr(zero["x"])) == 7
    names = [t["name"] for t in traces(charts.speed_curves(hist), type="scatter")]
    assert all(n.endswith("(now 0)") for n in names), names


def test_depth_one(depth1) -> None:
    figs = every_figure(depth1)
    (bar,) = traces(figs["gradient_bars"], type="bar")
    assert len(arr(bar["y"])) == 2
    assert all(len(arr(b["y"])) == 1 for b in traces(figs["neuron_bars"], type="bar"))
    assert len(traces(figs["speed_curves"], type="scatter")) == 1


def test_rnn_and_sequence_snapshots_render(rnn) -> None:
    for name, fig in every_figure([rnn]).items():
        _check_style(name, fig)


def test_callers_can_still_edit_and_are_validated(small) -> None:
    """Builders skip validation for speed; later edits must behave as on any figure."""
    fig = charts.gradient_bars(small[-1])
    fig.update_layout(title="frame 3", height=300)
    assert spec(fig)["layout"]["title"] == {"text": "frame 3"}
    fig.layout.xaxis.title = "x"
    assert spec(fig)["layout"]["xaxis"]["title"] == {"text": "x"}
    with pytest.raises(ValueError):
        fig.update_layout(not_a_property=1)


def test_every_panel_builds_from_a_deep_history(deep20) -> None:
    """Several panels are redrawn a few times a second on a 2-core box."""
    build: dict[str, Callable[[], go.Figure]] = {
        "gradient_bars": lambda: charts.gradient_bars(deep20[-1]),
        "neuron_bars": lambda: charts.neuron_bars(deep20[-1]),
        "speed_curves": lambda: charts.speed_curves(deep20),
        "loss_curves": lambda: charts.loss_curves(deep20),
        "spectrum": lambda: charts.spectrum(deep20[-1]),
        "activation_panel": lambda: charts.activation_panel(deep20[-1]),
        "grad_hist_panel": lambda: charts.grad_hist_panel(deep20[-1]),
        "update_ratio": lambda: charts.update_ratio(deep20),
    }
    for f in build.values():       # every panel builds from a 20-layer history (its cost is
        assert f() is not None     # measured where speed belongs: make bench, redraws)


def test_charts_imports_neither_streamlit_nor_torch() -> None:
    code = ("import sys, app.charts; bad = {'streamlit', 'torch'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- the lessons' figures: the same style, from small real results ----------------------------


@pytest.fixture(scope="module")
def lesson_figures(small, rnn) -> dict[str, go.Figure]:
    """Every lesson figure builder, fed by small real runs and experiments of the core."""
    import numpy as np

    from app.charts import degeneracy, initialisation, jacobians, nielsen, remedies
    from core.experiments.deep_linear import deep_linear_seeds
    from core.experiments.saturation import activation_percentiles
    from core.experiments.spectra import jacobian_spectrum, product_spectra, spread_vs_depth
    from core.experiments.variance import layer_variances, lr_sweep
    from core.experiments.warping import warp_grid
    from core.presets import preset
    from core.snapshot import RunResult
    from core.theory import chain_forward, sigmoid_prime, window_width

    run = RunResult(config={}, device="cpu", snapshots=list(small))
    out = chain_forward(1.0, [100.0] * 4, [-100.0, -50.0, -50.0, -50.0])
    ws, a = np.geomspace(4.0, 200.0, 50), np.linspace(-0.5, 1.5, 101)
    var = layer_variances(preset("relu-he").replace(depth=3, width=16, n_train=64))
    sweep = lr_sweep(preset("exploding-lr").replace(steps=5, every=5), (0.1, 50.0))
    seeds = {name: deep_linear_seeds(preset(p).replace(depth=4, steps=10, every=5), 2)
             for name, p in (("Fold 0", "deep-linear-fold0"), ("Ortho", "deep-linear-ortho"))}
    spectra = [jacobian_spectrum("tanh", "orthogonal", (2, 4), 16, 0.01, 0, "tanh + orthogonal")]
    warp = warp_grid(4, 16, "tanh", 3.0, False, grid_n=17)
    return {
        "accuracy_by_depth": nielsen.accuracy_by_depth({1: ([0, 1], [50.0, 80.0])}),
        "chain_figure": nielsen.chain_figure(out["factors"], out["grad_b"]),
        "window_figure": nielsen.window_figure(ws, window_width(ws), (6.9, 0.45), 10.0, 0.3),
        "factor_figure": nielsen.factor_figure(a, np.abs(6.9 * sigmoid_prime(6.9 * (a - 0.5))),
                                               window_width(6.9)),
        "saturation_grid": initialisation.saturation_grid(
            {"tanh": ([s.step for s in small], np.ones((len(small), 6)),
                      np.zeros((len(small), 6)))}, "saturated", "saturation", True),
        "cascade_figure": initialisation.cascade_figure(*activation_percentiles(run), 0.9),
        "cost_figure": initialisation.cost_figure({"cross-entropy": ([0, 10], [10, 50]),
                                                   "quadratic": ([0, 10], [10, 20])}),
        "variance_figure": initialisation.variance_figure({"He": (var.forward, var.backward)},
                                                          "ReLU"),
        "sweep_figure": initialisation.sweep_figure({"plain": sweep, "clipped": sweep},
                                                    (0.1, 50.0)),
        "loss_figure": degeneracy.loss_figure(seeds, log_y=True),
        "grad_time_figure": degeneracy.grad_time_figure(seeds),
        "grad_layer_figure": degeneracy.grad_layer_figure(seeds, -1),
        "erank_figure": degeneracy.erank_figure({k: r.steps for k, r in seeds.items()},
                                                {k: r.test_loss for k, r in seeds.items()},
                                                3.0),
        "sv_figure": degeneracy.sv_figure(seeds, 0),
        "product_histograms": degeneracy.product_histograms(
            product_spectra(10, (1, 5), ("gaussian",), 0)["gaussian"], "log"),
        "spread_figure": degeneracy.spread_figure((1, 5), {"gaussian": spread_vs_depth(
            10, (1, 5), "gaussian", (0, 1))}),
        "jacobian_histograms": jacobians.jacobian_histograms(spectra, (2, 4)),
        "near_one_figure": jacobians.near_one_figure(spectra, (2, 4)),
        "colour_figure": jacobians.colour_figure(warp, (1, 4), "Input space"),
        "grid_figure": jacobians.grid_figure(warp, (1, 4)),
        "ratio_figure": jacobians.ratio_figure(warp, warp),
        "profile_figure": remedies.profile_figure({"plain": small[0], "residual": small[-1]}),
        "curves_figure": remedies.curves_figure({"plain": run}, "test_accuracy", "accuracy",
                                                "Test accuracy", False),
        "first_layer_figure": remedies.first_layer_figure({"plain": run}),
        "init_figure": remedies.init_figure({"tanh RNN": rnn}),
        "training_figure": remedies.training_figure(
            {"tanh RNN": RunResult(config={}, device="cpu", snapshots=[rnn, rnn])}),
        "accuracy_figure": remedies.accuracy_figure({"GRU, keep-biased": run}),
    }


def test_lesson_figures_share_the_style(lesson_figures) -> None:
    """The lessons' figures: no template, the body font and text colour, the title size,
    and on every axis a line, the light grid and readable ticks and titles."""
    for name, fig in lesson_figures.items():
        lay = spec(fig)["layout"]
        assert lay.get("template") in ({}, {"data": {"scatter": [{"type": "scatter"}]}}), name
        assert lay["font"] == {"size": charts.FONT_SIZE, "color": charts.TEXT}, name
        if "title" in lay:
            assert lay["title"]["font"]["size"] == charts.TITLE_SIZE, name
        axes = [a for k, a in lay.items() if k.startswith(("xaxis", "yaxis"))]
        assert axes, name
        for axis in axes:
            assert axis["gridcolor"] == charts.GRID, name
            assert axis["tickfont"]["size"] >= 14 and axis["title"]["font"]["size"] >= 16, name
        go.Figure(json.loads(fig.to_json()))                 # valid plotly


def test_caption_of_a_panel_and_of_its_sequence_variant() -> None:
    assert charts.caption("spectrum") == charts.CAPTIONS["spectrum"]
    assert charts.caption("spectrum", sequence=True).startswith("How much gradient ||dL/dh_t||")
    assert charts.caption("loss_curves", sequence=True) == charts.CAPTIONS["loss_curves"]
    assert set(charts.SEQUENCE_CAPTIONS) <= set(PANELS)
