"""Compare A/B: the config diff, `gradlab compare`, and the A/B and seed-band figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.charts import compare as cmp
from core.cli import main as cli_main
from core.compare import config_diff, diff_labels, diff_line, layer_table
from core.config import RunConfig
from core.repeat import repeat
from core.train import run_all

SMALL = RunConfig(depth=3, width=16, steps=20, every=10, n_train=300, n_test=100)


def test_diff_names_what_differs():
    a = SMALL.replace(activation="sigmoid").to_dict()
    b = SMALL.replace(activation="relu").to_dict()
    assert config_diff(a, b) == [("activation", "sigmoid", "relu")]
    assert diff_labels(a, b) == ("sigmoid", "relu")
    assert diff_line(a, b) == "activation: sigmoid → relu"
    c = SMALL.replace(depth=20, lr=0.01, residual=True).to_dict()
    la, lb = diff_labels(a, c)
    assert la.startswith("depth=3") and lb.startswith("depth=20") and "+" in la
    assert diff_labels(a, a) == ("same settings", "same settings")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    pa, pb = d / "a.json", d / "b.json"
    for path, act in ((pa, "sigmoid"), (pb, "relu")):
        assert cli_main(["run", "--set", "depth=3", "--set", "width=16", "--set",
                         f"activation={act}", "--steps", "20", "--every", "10",
                         "--json", str(path)]) == 0
    return pa, pb


def test_cli_compare_files(two_runs, capsys):
    pa, pb = two_runs
    capsys.readouterr()
    assert cli_main(["compare", str(pa), str(pb), "--at", "first"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("A: sigmoid") and "B: relu" in out[0]
    assert "activation: sigmoid → relu" in out[1]
    a, b = json.loads(pa.read_text()), json.loads(pb.read_text())
    _, _, rows = layer_table(a, b, at="first")
    assert len(rows) == 4 and rows[0]["layer"] == "hidden1"
    want = b["snapshots"][0]["layers"][0]["delta_norm"] / a["snapshots"][0]["layers"][0][
        "delta_norm"]
    assert rows[0]["B/A delta_norm"] == pytest.approx(want)
    hidden1 = next(line for line in out if line.startswith("hidden1"))
    assert f"{a['snapshots'][0]['layers'][0]['delta_norm']:.3g}" in hidden1


def test_cli_compare_trains_two_groups(capsys):
    assert cli_main(["compare", "--set", "depth=3", "--set", "width=16", "--set",
                     "activation=sigmoid", "--b-set", "activation=relu", "--steps", "0",
                     "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["a"] == "sigmoid" and doc["b"] == "relu"
    want = run_all(RunConfig(depth=3, width=16, activation="relu", steps=0))
    assert doc["rows"][0]["B delta_norm"] == want.snapshots[0].layers[0].delta_norm


@pytest.mark.parametrize("argv, words", [
    (["only_one.json"], "two run files"),
    (["/nonexistent/a.json", "/nonexistent/b.json"], "cannot read"),
    (["--at", "soon"], "first, last or a step"),
    (["--b-set", "depth"], "KEY=VALUE"),
    (["--b-set", "activation=bogus", "--steps", "0"], "activation"),
])
def test_cli_compare_bad_input(argv, words, capsys):
    assert cli_main(["compare", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


def test_cli_compare_rejects_a_non_run_document(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    assert cli_main(["compare", str(bad), str(bad)]) == 2
    assert "not a `gradlab run --json` document" in capsys.readouterr().err


def _names(fig) -> list[str]:
    return [t.name or "" for t in fig.data]


def test_ab_figures_show_both_runs():
    ha = list(run_all(SMALL.replace(activation="sigmoid")).snapshots)
    hb = list(run_all(SMALL.replace(activation="relu")).snapshots)
    labels = ("sigmoid", "relu")
    bars = cmp.gradient_bars_ab(ha[-1], hb[-1], labels)
    assert _names(bars) == ["A: sigmoid (step 20)", "B: relu (step 20)"]
    assert list(bars.data[1].y) == pytest.approx([la.delta_norm for la in hb[-1].layers])
    assert bars.layout.barmode == "group"
    for fig in (cmp.layer_curves_ab(ha, hb, labels, "delta_norm"),
                cmp.layer_curves_ab(ha, hb, labels, "update_ratio"),
                cmp.loss_curves_ab(ha, hb, labels), cmp.spectrum_ab(ha[-1], hb[-1], labels)):
        names = _names(fig)
        assert any(n.startswith("A") for n in names) and any(n.startswith("B") for n in names)
        colors = {t.line.color if t.type == "scatter" else t.marker.color for t in fig.data}
        assert {cmp.A_COLOR, cmp.B_COLOR} <= colors
    assert cmp.retitle(cmp.gradient_bars_ab(None, hb[-1], labels), "B: relu"
                       ).layout.title.text.startswith("B: relu")


def test_band_figures_draw_quartiles():
    res = repeat(SMALL, range(5))
    summ = res.summary()
    speed = cmp.layer_curves_band(summ, "delta_norm", n_seeds=5)
    fills = [t for t in speed.data if t.fill == "tonexty"]
    assert fills, "no interquartile band"
    band = summ.layers[0]["delta_norm"]
    upper, lower, median = speed.data[0], speed.data[1], speed.data[2]
    np.testing.assert_allclose(upper.y, band.q3)
    np.testing.assert_allclose(lower.y, band.q1)
    np.testing.assert_allclose(median.y, band.median)
    bars = cmp.gradient_bars_band(summ, n_seeds=5)
    med = np.array([la["delta_norm"].median[-1] for la in summ.layers])
    q3 = np.array([la["delta_norm"].q3[-1] for la in summ.layers])
    np.testing.assert_allclose(bars.data[0].y, med)
    np.testing.assert_allclose(np.asarray(bars.data[0].error_y.array), q3 - med)
    assert "5 seeds" in bars.layout.title.text
    assert any(t.fill == "tonexty" for t in cmp.loss_curves_band(summ, 5).data)
