"""app/charts.py: each builder's traces hold the Snapshot's numbers, log axes where the
physics needs them, the reference lines, the lecture-hall style, small JSON, and no
exception on the edge cases (empty history, divergence, zeros, depth 1 and 200, RNN).

Snapshots come from real (short) runs of the core; the precise edge cases are real
snapshots with a few fields replaced.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest

from app import charts
from core.config import RunConfig, preset
from core.snapshot import Snapshot
from core.train import run_all

PANELS = ("gradient_bars", "neuron_bars", "speed_curves", "loss_curves", "spectrum",
          "activation_panel", "grad_hist_panel", "update_ratio")
HISTORY_BUILDERS = {"speed_curves", "loss_curves", "update_ratio"}


# ---- real snapshots ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> list[Snapshot]:
    """A 6-layer tanh MLP on the spiral, 20 steps, a snapshot every 5."""
    return run_all(RunConfig(steps=20, every=5)).snapshots


@pytest.fixture(scope="module")
def deep20() -> list[Snapshot]:
    return run_all(RunConfig(depth=20, width=32, n_train=256, n_test=64, steps=10,
                             every=5)).snapshots


@pytest.fixture(scope="module")
def deep200() -> Snapshot:
    return run_all(RunConfig(depth=200, width=16, n_train=128, n_test=0, steps=0)).snapshots[0]


@pytest.fixture(scope="module")
def depth1() -> list[Snapshot]:
    return run_all(RunConfig(depth=1, steps=10, every=5)).snapshots


@pytest.fixture(scope="module")
def exploding() -> list[Snapshot]:
    res = run_all(preset("exploding-lr"))
    assert res.diverged_at is not None, "the exploding-lr preset is expected to diverge"
    return res.snapshots


@pytest.fixture(scope="module")
def rnn() -> Snapshot:
    return run_all(preset("rnn-long").replace(steps=0, seq_len=10)).snapshots[0]


# ---- helpers -------------------------------------------------------------------------------


def spec(fig: go.Figure) -> dict[str, Any]:
    """The figure as the browser receives it; NaN must not appear as a bare literal."""
    def no_nan(token: str) -> float:
        raise AssertionError(f"figure JSON holds a bare {token} (invalid JSON)")
    return json.loads(fig.to_json(), parse_constant=no_nan)


def arr(v: Any) -> np.ndarray:
    """Decode a plotly array: base64 typed-array spec, list or ndarray."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if "shape" in v:
            a = a.reshape([int(s) for s in str(v["shape"]).split(",")])
        return a.astype(np.float64)
    return np.array([np.nan if x is None else x for x in v], dtype=np.float64) \
        if isinstance(v, list) and v and not isinstance(v[0], list) else np.asarray(v, float)


def traces(fig: go.Figure, **match: Any) -> list[dict[str, Any]]:
    return [t for t in spec(fig)["data"] if all(t.get(k) == v for k, v in match.items())]


def texts(fig: go.Figure) -> list[str]:
    return [a.get("text", "") for a in spec(fig)["layout"].get("annotations", [])]


def hidden(snap: Snapshot) -> list:
    return [la for la in snap.layers if la.name != "output"]


def with_layers(snap: Snapshot, **fields: Sequence[Any]) -> Snapshot:
    """A copy of ``snap`` whose layers get the given per-layer values."""
    layers = [dataclasses.replace(la, **{k: v[i] for k, v in fields.items()})
              for i, la in enumerate(snap.layers)]
    return dataclasses.replace(snap, layers=layers)


def every_figure(history: Sequence[Snapshot]) -> dict[str, go.Figure]:
    snap = history[-1] if history else None
    return {
        "gradient_bars": charts.gradient_bars(snap),
        "gradient_bars_auto": charts.gradient_bars(snap, "weight_grad_norm", None),
        "neuron_bars": charts.neuron_bars(snap),
        "speed_curves": charts.speed_curves(history),
        "loss_curves": charts.loss_curves(history),
        "loss_curves_log": charts.loss_curves(history, log_y=True),
        "spectrum": charts.spectrum(snap),
        "activation_panel": charts.activation_panel(snap),
        "grad_hist_panel": charts.grad_hist_panel(snap),
        "update_ratio": charts.update_ratio(history),
    }


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
    assert labels[1:] == [charts._short_number(la.delta_norm) for la in layers]
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


def test_builders_are_fast(deep20) -> None:
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
    for f in build.values():
        f()
    best = []
    for _ in range(3):
        t0 = time.perf_counter()
        for f in build.values():
            f()
        best.append(time.perf_counter() - t0)
    assert min(best) < 0.5, f"all eight panels took {min(best):.3f} s"


def test_charts_imports_neither_streamlit_nor_torch() -> None:
    code = ("import sys, app.charts; bad = {'streamlit', 'torch'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
