"""app.charts, the playground's panels one by one: each builder's traces hold the
Snapshot's numbers, log axes where the physics needs them, the reference lines, and the
marks for zeros, NaN and divergence (tests/test_chart_style.py: what all figures share).

Snapshots come from real (short) runs of the core; the precise edge cases are real
snapshots with a few fields replaced.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from app import charts
from app.charts.bars import short_number
from core.config import RunConfig
from core.presets import preset
from core.train import run_all
from tests.chart_helpers import arr, hidden, spec, texts, traces, with_layers

#: The real runs (module-scoped fixtures: small, deep20, deep200, depth1, exploding, rnn).
pytest_plugins = ("tests.chart_fixtures",)


# ---- 1. gradient bars ------------------------------------------------------------------------


def test_gradient_bars_heights_are_the_delta_norms_on_a_log_axis(small) -> None:
    snap = small[-1]
    fig = charts.gradient_bars(snap)
    (bar,) = traces(fig, type="bar")
    np.testing.assert_allclose(arr(bar["y"]), [la.delta_norm for la in snap.layers], rtol=1e-12)
    np.testing.assert_array_equal(arr(bar["x"]), [la.index for la in snap.layers])
    lay = spec(fig)["layout"]
    assert lay["yaxis"]["type"] == "log"
    assert lay["yaxis"]["range"] == [-8, 4]          # the default fixed range, in decades
    assert lay["xaxis"]["ticktext"][-1] == "out"
    assert lay["uirevision"] == "gradient_bars"


def test_gradient_bars_deep_net_axis_says_where_the_output_is(deep20) -> None:
    xaxis = spec(charts.gradient_bars(deep20[-1]))["layout"]["xaxis"]
    assert "21 = output" in xaxis["title"]["text"]
    assert "tickvals" not in xaxis          # plotly's own ticks: readable when zoomed


def test_gradient_bars_weight_metric(small) -> None:
    snap = small[-1]
    (bar,) = traces(charts.gradient_bars(snap, metric="weight_grad_norm"), type="bar")
    np.testing.assert_allclose(arr(bar["y"]), [la.weight_grad_norm for la in snap.layers])
    with pytest.raises(ValueError, match="metric"):
        charts.gradient_bars(snap, metric="nope")


def test_gradient_bars_band_and_colours(small) -> None:
    """Blue below 1e-6, green in the healthy band, red above 1e3; both zones drawn."""
    snap = with_layers(small[-1], delta_norm=[1e-9, 1e-7, 1e-2, 1.0, 10.0, 1e5, 3e-3])
    fig = charts.gradient_bars(snap)
    (bar,) = traces(fig, type="bar")
    colors = bar["marker"]["color"]
    assert colors[0] == colors[1] == charts.BLUE
    assert colors[2] == colors[3] == charts.GREEN
    assert colors[5] == charts.RED
    lay = spec(fig)["layout"]
    lines = [s for s in lay["shapes"] if s["type"] == "line"]
    assert sorted(s["y0"] for s in lines) == [charts.VANISH, charts.EXPLODE]   # data values
    rects = [s for s in lay["shapes"] if s["type"] == "rect"]
    assert len(rects) == 2
    assert "vanishing < 1e-6" in texts(fig) and "exploding > 1e3" in texts(fig)
    # 1e5 sits inside the fixed range; 1e-9 lies below it: the axis grows to whole decades
    assert lay["yaxis"]["range"] == [-9, 5]


def test_gradient_bars_autoscale_follows_the_data(small) -> None:
    snap = with_layers(small[-1], delta_norm=[1e-2] * 7)
    lay = spec(charts.gradient_bars(snap, fixed_range=None))["layout"]
    lo, hi = lay["yaxis"]["range"]
    assert lo <= -6 and hi >= 3          # the band is always in view
    assert lo > -8                        # but not the fixed default


def test_gradient_bars_zero_and_nan_are_marked_not_fatal(small) -> None:
    snap = with_layers(small[-1], delta_norm=[0.0, 1e-3, math.nan, math.inf, 1.0, 2.0, 3.0])
    fig = charts.gradient_bars(snap)
    (bar,) = traces(fig, type="bar")
    y = arr(bar["y"])
    assert y[0] == charts.ZERO_FLOOR
    assert math.isnan(y[2]) and math.isnan(y[3])      # gaps, not bars
    (zero,) = traces(fig, name="exactly 0")
    np.testing.assert_array_equal(arr(zero["x"]), [1])
    (bad,) = traces(fig, name="NaN / inf")
    np.testing.assert_array_equal(arr(bad["x"]), [3, 4])
    lo, hi = spec(fig)["layout"]["yaxis"]["range"]
    assert lo > -30          # the floor value does not drag the axis down to 1e-30


def test_gradient_bars_depth_200_is_a_line(deep200) -> None:
    fig = charts.gradient_bars(deep200)
    (line,) = traces(fig, type="scatter", mode="lines+markers")
    assert len(arr(line["y"])) == len(deep200.layers) == 201
    assert len(fig.to_json()) < 20_000


# ---- 2. neuron bars ----------------------------------------------------------------------------


def test_neuron_bars_are_delta_top_on_one_shared_scale() -> None:
    snaps = run_all(preset("nielsen-4").replace(steps=0, n_train=200, n_test=0)).snapshots
    snap = snaps[0]
    fig = charts.neuron_bars(snap)
    bars = traces(fig, type="bar")
    assert [b["name"] for b in bars] == [f"neuron {j}" for j in range(1, 7)]
    layers = hidden(snap)
    for j, bar in enumerate(bars):          # bar j holds neuron j of every hidden layer
        np.testing.assert_allclose(arr(bar["y"]), [la.delta_top[j] for la in layers],
                                   rtol=1e-12)
    lay = spec(fig)["layout"]
    assert lay["barmode"] == "group"
    assert lay["xaxis"]["ticktext"] == ["1", "2", "3", "4"]
    assert lay["xaxis"]["title"]["text"].startswith("hidden layer")
    lo, hi = lay["yaxis"]["range"]
    assert lo == -hi and hi >= max(abs(v) for la in layers for v in la.delta_top)
    assert lay["yaxis"].get("type") != "log"                 # signed values, linear
    # each group is labelled with its layer's ||delta||: Nielsen's speeds
    labels = texts(fig)
    assert labels[0] == "||δ||"
    assert labels[1:] == [short_number(la.delta_norm) for la in layers]
    # Nielsen: the first layer learns much more slowly than the last
    assert layers[0].delta_norm < layers[-1].delta_norm


def test_neuron_bars_deep_net_shows_first_last_and_spaced(deep20) -> None:
    fig = charts.neuron_bars(deep20[-1], max_layers=6)
    bars = traces(fig, type="bar")
    assert all(len(arr(b["y"])) == 6 for b in bars)
    ticks = spec(fig)["layout"]["xaxis"]["ticktext"]
    assert len(ticks) == 6 and ticks[0] == "1" and ticks[-1] == "20"
    assert "6 of 20" in spec(fig)["layout"]["xaxis"]["title"]["text"]


def test_neuron_bars_narrow_layers_and_nan(depth1, exploding) -> None:
    narrow = dataclasses.replace(
        depth1[-1], layers=[dataclasses.replace(depth1[-1].layers[0], delta_top=[0.1, -0.2]),
                            depth1[-1].layers[-1]])
    bars = traces(charts.neuron_bars(narrow), type="bar")
    assert [b["name"] for b in bars] == ["neuron 1", "neuron 2"]
    fig = charts.neuron_bars(exploding[-1])
    assert traces(fig, name="NaN / inf")


# ---- 3. speed of learning ------------------------------------------------------------------


def test_speed_curves_follow_each_layer_over_steps(small) -> None:
    fig = charts.speed_curves(small)
    lines = traces(fig, type="scatter")
    assert len(lines) == 6
    for i, line in enumerate(lines):
        np.testing.assert_array_equal(arr(line["x"]), [s.step for s in small])
        np.testing.assert_allclose(arr(line["y"]), [hidden(s)[i].delta_norm for s in small])
    lay = spec(fig)["layout"]
    assert lay["yaxis"]["type"] == "log"
    assert lay["legend"]["title"]["text"] == "hidden layer"


def test_speed_curves_subset_for_deep_nets(deep20) -> None:
    fig = charts.speed_curves(deep20)
    lines = traces(fig, type="scatter")
    assert len(lines) == charts.MAX_LINES
    names = [t["name"] for t in lines]
    assert names[0] == "layer 1" and names[-1] == "layer 20"
    assert spec(fig)["layout"]["legend"]["title"]["text"] == "8 of 20 layers"


# ---- 4. loss -------------------------------------------------------------------------------


def test_loss_curves(small) -> None:
    fig = charts.loss_curves(small)
    by_name = {t["name"]: t for t in spec(fig)["data"]}
    np.testing.assert_allclose(arr(by_name["train loss"]["y"]), [s.loss for s in small])
    # Test metrics are measured every eval_every (10) steps, snapshots come every 5: the test
    # series holds only the measured points (a line through them), never None-made gaps.
    evaluated = [s for s in small if s.test_loss is not None]
    assert [s.step for s in evaluated] == [0, 10, 20]
    np.testing.assert_array_equal(arr(by_name["test loss"]["x"]), [s.step for s in evaluated])
    np.testing.assert_allclose(arr(by_name["test loss"]["y"]), [s.test_loss for s in evaluated])
    np.testing.assert_allclose(arr(by_name["test acc."]["y"]),
                               [s.test_accuracy for s in evaluated])
    np.testing.assert_array_equal(arr(by_name["train loss"]["x"]), [s.step for s in small])
    assert by_name["train acc."]["yaxis"] == "y2"
    lay = spec(fig)["layout"]
    assert lay["yaxis2"]["range"][0] == 0 and 1 <= lay["yaxis2"]["range"][1] <= 1.05
    assert lay["yaxis"].get("type") != "log"
    assert spec(charts.loss_curves(small, log_y=True))["layout"]["yaxis"]["type"] == "log"


def test_loss_curves_without_test_set(depth1) -> None:
    hist = [dataclasses.replace(s, test_loss=None, test_accuracy=None) for s in depth1]
    names = [t["name"] for t in spec(charts.loss_curves(hist))["data"]]
    assert names == ["train loss", "train acc."]


# ---- 5. spectrum ---------------------------------------------------------------------------


def test_spectrum_pools_hidden_weight_singular_values(small) -> None:
    snap = small[-1]
    fig = charts.spectrum(snap)
    (w,) = traces(fig, type="bar")
    n = sum(len(la.weight_singular_values) for la in hidden(snap))
    assert f"({n})" in w["name"]
    assert arr(w["y"]).sum() == pytest.approx(1.0, abs=1e-5)     # fractions
    lay = spec(fig)["layout"]
    assert lay["xaxis"]["title"]["text"] == "log10 singular value"
    (line,) = lay["shapes"]
    assert line["x0"] == line["x1"] == 0            # sigma = 1
    assert any("σ = 1" in t for t in texts(fig))
    # the histogram covers the log10 of the largest singular value
    top = max(float(la.weight_singular_values[0]) for la in hidden(snap))
    lo, hi = lay["xaxis"]["range"]
    assert lo < math.log10(top) < hi


def test_spectrum_jacobian_natural_logs_become_log10(small) -> None:
    ln = np.log(np.array([1e-3, 1.0, 10.0]))            # natural logs, as the core stores them
    snap = dataclasses.replace(small[-1], jacobian_log_singular_values=ln)
    fig = charts.spectrum(snap)
    jac = [t for t in traces(fig, type="bar") if "Jacobian" in t["name"]]
    assert len(jac) == 1
    x, y = arr(jac[0]["x"]), arr(jac[0]["y"])
    filled = x[y > 0]
    width = x[1] - x[0]
    for target in (-3.0, 0.0, 1.0):
        assert np.min(np.abs(filled - target)) <= width / 2 + 1e-6


def test_spectrum_title_says_when_carried_forward_spectra_were_measured() -> None:
    snaps = run_all(RunConfig(steps=20, every=5, spectrum_every=10)).snapshots
    by_step = {s.step: s for s in snaps}
    assert by_step[5].spectrum_step == 0 and by_step[10].spectrum_step == 10
    carried = spec(charts.spectrum(by_step[5]))["layout"]["title"]["text"]
    fresh = spec(charts.spectrum(by_step[10]))["layout"]["title"]["text"]
    assert carried.endswith("· from step 0") and fresh.endswith("· from step 10")
    assert "step 5" not in carried


def test_spectrum_rnn_shows_gradient_through_time(rnn) -> None:
    fig = charts.spectrum(rnn)
    lay = spec(fig)["layout"]
    assert "gradient reaching each time step" in lay["title"]["text"].lower()
    assert lay["yaxis"]["type"] == "log"
    (line,) = traces(fig, type="scatter")
    np.testing.assert_allclose(arr(line["y"]), rnn.time_grad_norms)
    np.testing.assert_array_equal(arr(line["x"]), np.arange(1, len(rnn.time_grad_norms) + 1))


# ---- 6./7. histograms --------------------------------------------------------------------------


def test_activation_panel_lines_and_saturation(small) -> None:
    snap = small[-1]
    fig = charts.activation_panel(snap)
    lines = traces(fig, type="scatter")
    assert len(lines) == 6
    for line, layer in zip(lines, hidden(snap), strict=True):
        want = layer.act_hist / layer.act_hist.sum()
        np.testing.assert_allclose(arr(line["y"]), want, rtol=1e-6, atol=1e-7)
    (sat,) = traces(fig, type="bar")
    np.testing.assert_allclose(arr(sat["x"]), [la.saturation for la in hidden(snap)], atol=1e-7)
    lay = spec(fig)["layout"]
    assert lay["xaxis"]["title"]["text"] == "activation value"
    assert lay["xaxis2"]["title"]["text"] == "saturated"


def test_activation_panel_heatmap_for_deep_nets(deep20) -> None:
    snap = deep20[-1]
    fig = charts.activation_panel(snap)
    (heat,) = traces(fig, type="heatmap")
    z = arr(heat["z"])
    assert z.shape == (20, len(snap.act_edges) - 1)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(z[3], hidden(snap)[3].act_hist / hidden(snap)[3].act_hist.sum(),
                               atol=1e-6)


def test_grad_hist_panel(small, deep20) -> None:
    snap = small[-1]
    fig = charts.grad_hist_panel(snap)
    lines = traces(fig, type="scatter")
    for line, layer in zip(lines, hidden(snap), strict=True):
        np.testing.assert_allclose(arr(line["y"]), layer.grad_hist / layer.grad_hist.sum(),
                                   atol=1e-6)
    centers = (snap.grad_edges[:-1] + snap.grad_edges[1:]) / 2
    np.testing.assert_allclose(arr(lines[0]["x"]), centers, atol=1e-5)
    assert spec(fig)["layout"]["xaxis"]["title"]["text"] == "log10 |dC/dz|"
    assert {"1e-6", "1e3"} <= set(texts(fig))
    assert traces(charts.grad_hist_panel(deep20[-1]), type="heatmap")


# ---- 8. update ratio -------------------------------------------------------------------------


def test_update_ratio_lines_and_karpathy_line(small) -> None:
    fig = charts.update_ratio(small)
    lines = traces(fig, type="scatter")
    for i, line in enumerate(lines):
        np.testing.assert_allclose(arr(line["y"]), [hidden(s)[i].update_ratio for s in small])
    lay = spec(fig)["layout"]
    assert lay["yaxis"]["type"] == "log"
    assert any(s["type"] == "line" and s["y0"] == s["y1"] == charts.KARPATHY
               for s in lay["shapes"])
    assert "Karpathy's ~1e-3" in texts(fig)
    lo, hi = lay["yaxis"]["range"]
    assert lo < -3 < hi
