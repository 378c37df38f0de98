"""Tests for core.data: shapes, determinism, the fixed MNIST split and the task semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core import data
from core.config import DATASETS, SEQUENCE_DATASETS, ConfigError, RunConfig

TOYS = ("spiral", "circles", "xor", "blobs")


def cfg(dataset: str, **kw: object) -> RunConfig:
    """A small valid config for ``dataset`` (sequence tasks get arch=gru)."""
    base: dict[str, object] = dict(dataset=dataset, n_train=200, n_test=100, batch_size=32)
    if dataset in SEQUENCE_DATASETS:
        base.update(arch="gru", seq_len=10)
    if dataset == "teacher":
        base.update(input_dim=8)
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", DATASETS)
def test_shapes_and_dtypes(name: str) -> None:
    c = cfg(name)
    ds = data.load(c)
    assert ds.name == name and ds.description
    assert ds.task in ("classification", "regression")
    for x, y, n in ((ds.x_train, ds.y_train, c.n_train), (ds.x_test, ds.y_test, c.n_test)):
        assert x.dtype == torch.float32 and x.device.type == "cpu"
        if name in SEQUENCE_DATASETS:
            assert x.shape == (n, c.seq_len, ds.n_in)
        else:
            assert x.shape == (n, ds.n_in)
        if ds.task == "classification":
            assert y.dtype == torch.int64 and y.shape == (n,)
            assert int(y.min()) >= 0 and int(y.max()) < ds.n_out
        else:
            assert y.dtype == torch.float32 and y.shape == (n, ds.n_out)
        assert torch.isfinite(x).all()
    expected = {"mnist": (784, 10), "spiral": (2, 3), "circles": (2, 2), "xor": (2, 2),
                "blobs": (2, 4), "teacher": (8, 8), "adding": (2, 1), "recall": (5, 4),
                    "shapeset": (1024, 9)}
    assert (ds.n_in, ds.n_out) == expected[name]


@pytest.mark.parametrize("name", DATASETS)
def test_same_seed_identical(name: str) -> None:
    a, b = data.load(cfg(name, seed=3)), data.load(cfg(name, seed=3))
    for f in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "mnist"])
def test_different_seed_differs(name: str) -> None:
    a, b = data.load(cfg(name, seed=1)), data.load(cfg(name, seed=2))
    assert not torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_test, b.x_test)


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "mnist"])
def test_train_and_test_are_different_draws(name: str) -> None:
    ds = data.load(cfg(name, n_train=100, n_test=100))
    assert not torch.equal(ds.x_train, ds.x_test)


@pytest.mark.parametrize("name", [d for d in DATASETS if d != "mnist"])
def test_test_set_independent_of_n_train(name: str) -> None:
    a, b = data.load(cfg(name, n_train=100)), data.load(cfg(name, n_train=300))
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)


def test_no_global_rng_use() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    before_t, before_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(0)
    np.random.seed(0)
    for name in DATASETS:
        data.load(cfg(name))
    assert torch.equal(torch.rand(3), before_t)
    assert np.array_equal(np.random.rand(3), before_np)


def test_n_test_zero() -> None:
    ds = data.load(cfg("spiral", n_test=0))
    assert ds.x_test.shape == (0, 2) and ds.y_test.shape == (0,)


# ---- mnist ------------------------------------------------------------------------------
def test_mnist_raw_arrays() -> None:
    x, y = data.mnist_arrays()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (5000,) and np.array_equal(np.bincount(y), [500] * 10)
    assert data.mnist_arrays()[0] is x  # cached


def test_mnist_split_fixed_across_seeds() -> None:
    a = data.load(cfg("mnist", n_train=1000, n_test=1000, seed=0))
    b = data.load(cfg("mnist", n_train=1000, n_test=1000, seed=99))
    for f in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


def test_mnist_prefix_and_disjoint() -> None:
    small = data.load(cfg("mnist", n_train=100, n_test=50))
    full = data.load(cfg("mnist", n_train=4000, n_test=1000, batch_size=0))
    assert torch.equal(small.x_train, full.x_train[:100])  # "the first n training images"
    assert torch.equal(small.x_test, full.x_test[:50])
    train_idx, test_idx = data.mnist_split()
    assert len(train_idx) == 4000 and len(test_idx) == 1000
    assert np.intersect1d(train_idx, test_idx).size == 0
    assert np.array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(5000))
    # and no pixel-identical image appears in both sets
    tr = {bytes(r) for r in (full.x_train * 255).round().to(torch.uint8).numpy()}
    te = {bytes(r) for r in (full.x_test * 255).round().to(torch.uint8).numpy()}
    assert not tr & te


def test_mnist_values_and_balance() -> None:
    ds = data.load(cfg("mnist", n_train=1000, n_test=1000))
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert float(ds.x_test.min()) >= 0.0 and float(ds.x_test.max()) <= 1.0
    counts = torch.bincount(ds.y_train, minlength=10)
    assert ((counts >= 60) & (counts <= 140)).all(), counts.tolist()
    # pixels match the raw file exactly (x / 255) through the split indices
    x, y = data.mnist_arrays()
    i = int(data.mnist_split()[0][7])
    assert torch.equal(ds.x_train[7], torch.from_numpy(x[i].reshape(-1) / np.float32(255)))
    assert int(ds.y_train[7]) == int(y[i])


def test_mnist_caps() -> None:
    c = cfg("mnist", n_train=1000)
    object.__setattr__(c, "n_train", 4001)  # bypass RunConfig's own range check
    with pytest.raises(ValueError, match="n_train"):
        data.load(c)


def test_mnist_returns_copies() -> None:
    a = data.load(cfg("mnist", n_train=50, n_test=10))
    a.x_train.zero_()
    b = data.load(cfg("mnist", n_train=50, n_test=10))
    assert float(b.x_train.max()) == 1.0


def test_mnist_missing_file(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("GRADLAB_ASSETS", str(tmp_path))
    assert data.assets_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="GRADLAB_ASSETS"):
        data.load(cfg("mnist"))


# ---- 2-D toys ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", TOYS)
def test_toys_balanced_and_unit_scale(name: str) -> None:
    ds = data.load(cfg(name, n_train=1200, n_test=100))
    counts = torch.bincount(ds.y_train, minlength=ds.n_out)
    assert int(counts.max() - counts.min()) <= 1
    x = ds.x_train
    assert x.mean(0).abs().max() < 0.15
    assert 0.8 < float(x.std()) < 1.2


@pytest.mark.parametrize("name", TOYS)
def test_toys_noise_changes_inputs_not_labels(name: str) -> None:
    a, b = data.load(cfg(name, noise=0.0)), data.load(cfg(name, noise=0.5))
    assert torch.equal(a.y_train, b.y_train)
    assert not torch.allclose(a.x_train, b.x_train)


def test_toy_patterns_clean() -> None:
    xor = data.load(cfg("xor", noise=0.0, n_train=400))
    same_sign = (xor.x_train[:, 0] * xor.x_train[:, 1] > 0).long()
    assert torch.equal(same_sign, xor.y_train)
    circ = data.load(cfg("circles", noise=0.0, n_train=400))
    r = circ.x_train.norm(dim=1)
    assert r[circ.y_train == 0].min() > r[circ.y_train == 1].max() * 1.9


# ---- teacher ----------------------------------------------------------------------------
def test_teacher_exact_without_noise() -> None:
    c = cfg("teacher", noise=0.0, input_dim=16)
    ds = data.load(c)
    t = data.teacher_matrix(c)
    assert t.shape == (16, 16)
    assert torch.equal(ds.y_train, ds.x_train @ t.T)
    assert torch.equal(ds.y_test, ds.x_test @ t.T)
    assert abs(float(t.var()) - 1 / 16) < 0.03  # entries N(0, 1/d)


def test_teacher_noise_is_output_noise() -> None:
    c = cfg("teacher", noise=0.5, input_dim=16, n_train=2000, batch_size=64)
    ds = data.load(c)
    resid = ds.y_train - ds.x_train @ data.teacher_matrix(c).T
    assert abs(float(resid.std()) - 0.5) < 0.02


def test_teacher_same_map_for_train_and_test() -> None:
    c = cfg("teacher", noise=0.0)
    assert torch.equal(data.teacher_matrix(c), data.teacher_matrix(c))
    assert not torch.equal(data.teacher_matrix(c), data.teacher_matrix(c.replace(seed=1)))


# ---- adding -----------------------------------------------------------------------------
@pytest.mark.parametrize("seq_len", [2, 3, 10, 57])
def test_adding_markers_and_target(seq_len: int) -> None:
    ds = data.load(cfg("adding", seq_len=seq_len, n_train=300))
    x, y = ds.x_train, ds.y_train
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert ((markers == 0) | (markers == 1)).all()
    assert torch.equal(markers.sum(1), torch.full((300,), 2.0))
    pos = markers.nonzero()[:, 1].view(300, 2)                # (N, 2) sorted per row
    assert (pos[:, 0] < max(1, seq_len // 10)).all()          # first in the first 10%
    assert (pos[:, 1] >= seq_len // 2).all()                  # second in the second half
    rows = torch.arange(300)
    expect = values[rows, pos[:, 0]] + values[rows, pos[:, 1]]
    assert torch.equal(y[:, 0], expect)


def test_adding_chance_mse() -> None:
    ds = data.load(cfg("adding", n_train=4000, batch_size=64))
    mse = float(((ds.y_train - 1.0) ** 2).mean())
    assert abs(mse - data.ADDING_CHANCE_MSE) < 0.015
    assert math.isclose(data.ADDING_CHANCE_MSE, 1 / 6)


def test_adding_needs_two_steps() -> None:
    with pytest.raises(ConfigError, match="seq_len"):
        data.load(cfg("adding", seq_len=1))


# ---- recall -----------------------------------------------------------------------------
def test_recall_label_only_at_first_step() -> None:
    n, t, c = 2000, 12, data.RECALL_CLASSES
    ds = data.load(cfg("recall", seq_len=t, n_train=n, batch_size=64))
    x, y = ds.x_train, ds.y_train
    assert torch.equal(x[:, 0, :c].argmax(1), y)                # recoverable from t = 0
    assert torch.equal(x[:, 0, :c].sum(1), torch.ones(n))
    assert (x[:, 1:, :c] == 0).all()                            # no label channel later
    later = x[:, 1:, c]                                         # (N, T-1) pure noise
    assert abs(float(later.std()) - 1.0) < 0.05
    means = torch.stack([later[y == k].mean() for k in range(c)])
    per_class_n = (t - 1) * n / c
    assert (means.abs() < 4 / math.sqrt(per_class_n)).all(), means.tolist()
    stds = torch.stack([later[y == k].std() for k in range(c)])
    assert (stds - 1).abs().max() < 0.05
    counts = torch.bincount(y, minlength=c)
    assert int(counts.max() - counts.min()) <= 1


def test_recall_seq_len_one() -> None:
    ds = data.load(cfg("recall", seq_len=1))
    assert ds.x_train.shape == (200, 1, 5)
    assert torch.equal(ds.x_train[:, 0, :4].argmax(1), ds.y_train)


def test_device_argument_accepts_string_and_device() -> None:
    for dev in ("cpu", torch.device("cpu")):
        ds = data.load(cfg("xor"), device=dev)
        assert ds.x_train.device.type == "cpu"
