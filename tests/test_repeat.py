"""Repeat over seeds (core/repeat.py): the quartiles against NumPy, the batched model
against one run() per seed, the seed ranges, and `gradlab run --seeds`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.cli import main as cli_main
from core.config import ConfigError, RunConfig
from core.repeat import (
    _batched_group,
    _seed_losses,
    batchable,
    parse_seeds,
    quartiles,
    repeat,
    seeds_text,
    summarise,
)
from core.train import loss_function, run_all

SMALL = RunConfig(depth=3, width=16, steps=40, every=10, n_train=300, n_test=100)
LAYER_KEYS = ("delta_norm", "weight_grad_norm", "bias_grad_norm", "update_ratio",
              "activation_mean", "activation_std", "saturation")
#: Batched and per-seed runs do the same float32 ops in another order (bmm vs mm): they
#: agree to rounding, which 40 SGD steps of a 3-layer net do not amplify past this.
RTOL = 1e-5


def test_quartiles_match_numpy_percentiles():
    rng = np.random.default_rng(0)
    a = rng.lognormal(size=(7, 11))
    b = quartiles(a)
    q1, med, q3 = np.percentile(a, [25, 50, 75], axis=0)
    np.testing.assert_allclose(b.median, np.median(a, axis=0), rtol=0, atol=0)
    np.testing.assert_allclose(b.q1, q1, rtol=1e-15)
    np.testing.assert_allclose(b.q3, q3, rtol=1e-15)
    assert (b.count == 7).all()


def test_quartiles_leave_out_diverged_seeds():
    a = np.array([[1.0, np.nan], [2.0, np.inf], [4.0, 3.0], [8.0, np.nan]])
    b = quartiles(a)
    assert b.median[0] == np.median([1, 2, 4, 8])
    assert b.q1[0] == np.percentile([1, 2, 4, 8], 25)
    assert b.median[1] == 3.0 and b.q1[1] == 3.0 and b.count[1] == 1
    empty = quartiles(np.full((3, 2), np.nan))
    assert np.isnan(empty.median).all() and (empty.count == 0).all()


@pytest.mark.parametrize("changes", [
    {},
    {"activation": "sigmoid", "batch_size": 0},
    {"activation": "relu", "residual": True, "optimizer": "momentum", "l2": 0.5},
    {"optimizer": "adam", "lr": 0.01, "clip_norm": 0.5, "clip_value": 0.05},
    {"dataset": "teacher", "init": "orthogonal"},
    {"loss": "sigmoid_ce", "activation": "linear", "residual": True},
    {"loss": "quadratic", "activation": "gelu"},      # no backward by hand: autograd
])
def test_batched_equals_one_run_per_seed(changes):
    cfg = SMALL.replace(**changes)
    assert batchable(cfg)
    res = repeat(cfg, [0, 1, 2])
    assert res.batched and [r.config["seed"] for r in res.runs] == [0, 1, 2]
    for seed, got in zip(res.seeds, res.runs, strict=True):
        want = run_all(cfg.replace(seed=seed))
        assert [s.step for s in got.snapshots] == [s.step for s in want.snapshots]
        for g, w in zip(got.snapshots, want.snapshots, strict=True):
            for k in ("loss", "train_accuracy", "test_accuracy", "test_loss"):
                if getattr(w, k) is None:
                    assert getattr(g, k) is None, k
                else:
                    assert getattr(g, k) == pytest.approx(getattr(w, k), rel=RTOL), k
            for lg, lw in zip(g.layers, w.layers, strict=True):
                assert lg.name == lw.name
                for k in LAYER_KEYS:
                    assert getattr(lg, k) == pytest.approx(getattr(lw, k), rel=RTOL,
                                                           abs=1e-12), (k, lg.name)
                # entries of the mean dC/db: to rounding relative to the layer's norm
                assert len(lg.delta_top) == len(lw.delta_top)
                assert lg.delta_top == pytest.approx(lw.delta_top, rel=RTOL,
                                                     abs=RTOL * lw.delta_norm + 1e-12)


@pytest.mark.parametrize("changes", [
    {},
    {"activation": "sigmoid", "batch_size": 0, "l2": 0.3},
    {"activation": "relu", "residual": True, "optimizer": "momentum"},
    {"activation": "linear", "residual": True, "loss": "quadratic"},
    {"activation": "tanh", "residual": True, "loss": "sigmoid_ce", "clip_norm": 0.5},
    {"dataset": "teacher", "optimizer": "adam", "lr": 0.01, "clip_value": 0.05},
])
def test_backward_by_hand_is_autograd_bit_for_bit(changes):
    """The batched step's backward by hand calls the kernels autograd's nodes call, so every
    number of every snapshot is the same, bit for bit, as the autograd graph's."""
    cfg = SMALL.replace(steps=30, **changes)
    fast = _batched_group(cfg, [0, 1, 2], by_hand=True)
    slow = _batched_group(cfg, [0, 1, 2], by_hand=False)
    for f, s in zip(fast, slow, strict=True):
        assert len(f.snapshots) == len(s.snapshots) == 4
        for a, b in zip(f.snapshots, s.snapshots, strict=True):
            assert a == b, a.step
    with pytest.raises(ValueError, match="gelu"):
        _batched_group(cfg.replace(activation="gelu"), [0], by_hand=True)


@pytest.mark.parametrize("task, loss", [("classification", "softmax_ce"),
                                        ("classification", "sigmoid_ce"),
                                        ("classification", "quadratic"),
                                        ("regression", "softmax_ce")])
def test_seed_losses_are_each_seeds_loss(task, loss):
    """One op chain over the seed axis gives each seed's own batch-mean loss (to float
    rounding: the sums run in another order)."""
    import torch

    cfg = SMALL.replace(loss=loss)
    g = torch.Generator().manual_seed(1)
    out = torch.randn(4, 33, 5, generator=g) * 3
    y = (torch.randn(4, 33, 5, generator=g) if task == "regression"
         else torch.randint(0, 5, (4, 33), generator=g))
    got = _seed_losses(cfg, task)(out, y)
    one = loss_function(cfg, task, 5)
    assert got.shape == (4,)
    for i in range(4):
        assert float(got[i]) == pytest.approx(float(one(out[i], y[i])), rel=1e-6)


def test_batched_divergence_stops_only_that_seed():
    cfg = SMALL.replace(lr=8.0, activation="relu", init="he", init_gain=3.0, steps=60)
    res = repeat(cfg, [0, 1])
    # seed 0 blows up at step 4, seed 1 does not: the batch must not tie them together
    assert res.runs[0].diverged_at is not None and res.runs[1].diverged_at is None
    for seed, got in zip(res.seeds, res.runs, strict=True):
        want = run_all(cfg.replace(seed=seed))
        assert got.diverged_at == want.diverged_at, seed
        assert len(got.snapshots) == len(want.snapshots)


def test_unbatchable_configs_run_seed_after_seed():
    cfg = SMALL.replace(norm="batch", steps=10)
    assert not batchable(cfg)
    res = repeat(cfg, [4, 5])
    assert not res.batched
    want = run_all(cfg.replace(seed=5))
    assert res.runs[1].snapshots[-1].loss == want.snapshots[-1].loss
    with pytest.raises(ValueError):
        repeat(cfg, [0], batched=True)


def test_summary_is_numpy_across_seeds():
    res = repeat(SMALL, range(5))
    summ = summarise([r.snapshots for r in res.runs])
    steps = [s.step for s in res.runs[0].snapshots]
    assert list(summ.steps) == steps
    for j in range(len(steps)):
        vals = [r.snapshots[j].layers[0].delta_norm for r in res.runs]
        b = summ.layers[0]["delta_norm"]
        assert b.median[j] == np.median(vals)
        assert b.q1[j] == np.percentile(vals, 25) and b.q3[j] == np.percentile(vals, 75)
        losses = [r.snapshots[j].loss for r in res.runs]
        assert summ.runs["loss"].median[j] == np.median(losses)


@pytest.mark.parametrize("text, seeds", [("0-3", [0, 1, 2, 3]), ("1,4,7", [1, 4, 7]),
                                         ("0-2,7", [0, 1, 2, 7]), ("5", [5])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds
    assert parse_seeds(seeds_text(seeds)) == seeds


@pytest.mark.parametrize("text", ["", "a-b", "3-1", "0-1000", "1;2", "-1"])
def test_parse_seeds_rejects(text):
    with pytest.raises(ConfigError):
        parse_seeds(text)


def test_cli_seeds_document(tmp_path, capsys):
    out = tmp_path / "seeds.json"
    code = cli_main(["run", "--set", "depth=3", "--set", "width=16", "--steps", "20",
                     "--every", "10", "--seeds", "0-3", "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["seeds"] == [0, 1, 2, 3] and len(doc["runs"]) == 4
    assert [r["config"]["seed"] for r in doc["runs"]] == [0, 1, 2, 3]
    summ = doc["summary"]
    assert summ["steps"] == [0, 10, 20]
    for j in range(3):
        vals = [r["snapshots"][j]["layers"][1]["delta_norm"] for r in doc["runs"]]
        band = summ["layers"][1]["delta_norm"]
        assert band["median"][j] == np.median(vals)
        assert band["q1"][j] == np.percentile(vals, 25)
        assert band["q3"][j] == np.percentile(vals, 75)
    assert "median [q1, q3]" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["--seeds", "9-2"], "backwards"),
    (["--seeds", "0-3", "--seed", "1"], "not both"),
    (["--seeds", "x"], "range like"),
])
def test_cli_seeds_bad_input(argv, words, capsys):
    assert cli_main(["run", "--steps", "1", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
