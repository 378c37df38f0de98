"""Datasets: real MNIST digits, 2-D toys, a linear teacher map and two sequence tasks.

Everything is offline and deterministic. Randomness comes from private generators seeded
from ``config.seed`` through a data-specific derivation (``_stream_seed``), never from the
global torch / NumPy state, so the data never shares random numbers with the weight
initialisation or the batch order even when those are seeded with the same integer.
Train and test sets come from two independent streams: changing ``n_train`` does not
change the test set. Tensors are built on the CPU and moved to ``device`` once.

Shapes: feed-forward tasks give ``x`` of shape (N, n_in); sequence tasks give (N, T, n_in),
batch first. Classification labels are int64 class indices of shape (N,); regression
targets are float32 of shape (N, n_out). One-hot targets (for sigmoid_ce / quadratic) are
built by the training code, not here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from core.config import DATASETS, ConfigError, RunConfig

MNIST_FILE = "mnist_5k.npz"
MNIST_SPLIT_SEED = 12345     # constant: the mnist split never depends on config.seed
MNIST_N_TRAIN_POOL = 4000    # first 4000 permuted images: train pool; last 1000: test pool
RECALL_CLASSES = 4           # recall: number of classes C (inputs have C + 1 channels)
ADDING_CHANCE_MSE = 1.0 / 6.0  # adding: MSE of always predicting the mean target 1.0
BLOB_STD = 0.35              # blobs: intrinsic std of each blob (before config.noise)
SPIRAL_TURN = 4.0            # spiral: radians each arm turns from r = 0 to r = 1 (CS231n)

_STREAM_TAG = 0xDA7A         # separates data streams from any other use of config.seed
_TRAIN, _TEST, _TEACHER = 0, 1, 2


@dataclass
class Dataset:
    """A train / test split plus what the model and the UI need to know about it."""

    x_train: torch.Tensor   # (N, d_in) float32, or (N, T, d_in) for sequence tasks
    y_train: torch.Tensor   # (N,) int64 labels (classification); (N, d_out) float32 (regression)
    x_test: torch.Tensor    # (M, ...) like x_train; M = config.n_test (may be 0)
    y_test: torch.Tensor    # (M, ...) like y_train
    n_in: int               # input features per example (per time step for sequences)
    n_out: int              # classes (classification) or output dims (regression)
    task: str               # "classification" | "regression"
    name: str
    description: str        # one sentence for the UI
    # an endless source of fresh (x, y) training batches on the CPU (shapeset: the paper's
    # infinite stream); where set, training draws its batches from it, not from x_train
    train_stream: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def is_sequence(self) -> bool:
        return self.x_train.dim() == 3


# ---- seeding ----------------------------------------------------------------------------
def _stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for one data stream, derived from ``seed`` (NumPy SeedSequence)."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(_STREAM_TAG, stream))
    return int(ss.generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(_stream_seed(seed, stream))


def _balanced_labels(n: int, n_classes: int, g: torch.Generator) -> torch.Tensor:
    """(n,) int64: counts per class differ by at most one, in random order."""
    labels = torch.arange(n, dtype=torch.int64) % n_classes
    return labels[torch.randperm(n, generator=g)]


# ---- MNIST ------------------------------------------------------------------------------
def assets_dir() -> Path:
    """The assets folder: env ``GRADLAB_ASSETS`` if set, else ``<repo>/assets``."""
    env = os.environ.get("GRADLAB_ASSETS", "").strip()
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / "assets"


@lru_cache(maxsize=4)
def _read_mnist(path: str) -> tuple[np.ndarray, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"MNIST file not found: {p} (set GRADLAB_ASSETS to the folder holding {MNIST_FILE})"
        )
    with np.load(p) as z:
        x, y = np.asarray(z["x"], dtype=np.uint8), np.asarray(z["y"], dtype=np.uint8)
    if x.shape != (5000, 28, 28) or y.shape != (5000,):
        raise ValueError(f"{p}: expected x (5000, 28, 28) and y (5000,), "
                         f"got x {x.shape} and y {y.shape}")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Raw, read-only MNIST arrays: x uint8 (5000, 28, 28), y uint8 (5000,) in 0..9.

    Cached per file path (``functools.lru_cache``); the file is stored sorted by class.
    """
    return _read_mnist(str(assets_dir() / MNIST_FILE))


@lru_cache(maxsize=1)
def mnist_split() -> tuple[np.ndarray, np.ndarray]:
    """The fixed split: (train pool indices (4000,), test pool indices (1000,)).

    A permutation from the constant ``MNIST_SPLIT_SEED`` (the file is sorted by class, so
    slicing it directly would give one digit only); independent of ``config.seed``.
    """
    perm = np.random.default_rng(MNIST_SPLIT_SEED).permutation(5000)
    train, test = perm[:MNIST_N_TRAIN_POOL].copy(), perm[MNIST_N_TRAIN_POOL:].copy()
    train.setflags(write=False)
    test.setflags(write=False)
    return train, test


@lru_cache(maxsize=4)
def _mnist_pools(path: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scaled, flattened, split pools: x (4000, 784) / (1000, 784) float32, y int64."""
    x, y = _read_mnist(path)
    train, test = mnist_split()
    xf = torch.from_numpy(x.reshape(5000, 784).astype(np.float32) / np.float32(255.0))
    yl = torch.from_numpy(y.astype(np.int64))
    tr, te = torch.tensor(train), torch.tensor(test)          # copies of read-only arrays
    return xf[tr], yl[tr], xf[te], yl[te]


def _mnist(config: RunConfig) -> Dataset:
    if config.n_train > MNIST_N_TRAIN_POOL:
        raise ConfigError("n_train", f"mnist's train split has {MNIST_N_TRAIN_POOL} images; "
                                     f"n_train={config.n_train} is too many")
    if config.n_test > 5000 - MNIST_N_TRAIN_POOL:
        raise ConfigError("n_test", f"mnist's test split has {5000 - MNIST_N_TRAIN_POOL} images; "
                                    f"n_test={config.n_test} is too many")
    xtr, ytr, xte, yte = _mnist_pools(str(assets_dir() / MNIST_FILE))
    n, m = config.n_train, config.n_test
    # clone: callers may modify their tensors in place without touching the cache
    return Dataset(
        x_train=xtr[:n].clone(), y_train=ytr[:n].clone(),     # (n, 784), (n,)
        x_test=xte[:m].clone(), y_test=yte[:m].clone(),       # (m, 784), (m,)
        n_in=784, n_out=10, task="classification", name="mnist",
        description=f"{n} real MNIST digits (28x28 pixels scaled to [0, 1]) from a fixed "
                    f"4000/1000 split, tested on {m} held-out digits.",
    )


# ---- 2-D toys ---------------------------------------------------------------------------
# Each toy draws a clean pattern of radius ~1, adds isotropic Gaussian jitter of std
# config.noise to the inputs (labels come from the clean pattern), then divides by the
# *analytic* per-coordinate std (the means are 0), so train and test share one fixed
# transformation and the inputs are ~unit scale whatever n_train is.
def _spiral(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """3 interleaved arms (CS231n): r ~ U[0, 1], angle = 2 pi k / 3 + SPIRAL_TURN * r."""
    y = _balanced_labels(n, 3, g)                                        # (n,)
    r = torch.rand(n, generator=g)                                       # (n,)
    theta = y.float() * (2 * math.pi / 3) + SPIRAL_TURN * r
    x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)     # (n, 2)
    return x, y, 1.0 / 6.0                                               # E[r^2] / 2


def _circles(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Class 0 on the unit circle, class 1 on the circle of radius 0.5 inside it."""
    y = _balanced_labels(n, 2, g)
    r = 1.0 - 0.5 * y.float()
    theta = 2 * math.pi * torch.rand(n, generator=g)
    x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)     # (n, 2)
    return x, y, (1.0 + 0.25) / 4.0                                      # E[r^2] / 2


def _xor(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """|x_i| ~ U[0, 1]; class 1 where the two coordinates share a sign, class 0 otherwise."""
    y = _balanced_labels(n, 2, g)
    mag = torch.rand(n, 2, generator=g)                                  # (n, 2)
    s0 = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1          # (n,) +-1
    s1 = torch.where(y == 1, s0, -s0)
    x = mag * torch.stack([s0, s1], 1)
    return x, y, 1.0 / 3.0                                               # E[U[0,1]^2]


def _blobs(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """4 Gaussian blobs (std BLOB_STD) centred on (+-1, +-1), one class each."""
    y = _balanced_labels(n, 4, g)
    centres = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    x = centres[y] + BLOB_STD * torch.randn(n, 2, generator=g)           # (n, 2)
    return x, y, 1.0 + BLOB_STD**2


_TOYS = {"spiral": (_spiral, 3), "circles": (_circles, 2), "xor": (_xor, 2), "blobs": (_blobs, 4)}
_TOY_TEXT = {
    "spiral": "three interleaved spiral arms (CS231n), one class per arm",
    "circles": "two concentric circles, one class each",
    "xor": "the XOR pattern: the class is whether the two coordinates share a sign",
    "blobs": "four Gaussian blobs, one class each",
}


def _toy_split(name: str, n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    fn, _ = _TOYS[name]
    x, y, var = fn(n, noise, g)
    x = x + noise * torch.randn(n, 2, generator=g)                       # input jitter
    return (x / math.sqrt(var + noise**2)).float(), y                    # (n, 2), (n,)


def _toy(config: RunConfig) -> Dataset:
    name = config.dataset
    xtr, ytr = _toy_split(name, config.n_train, config.noise, _generator(config.seed, _TRAIN))
    xte, yte = _toy_split(name, config.n_test, config.noise, _generator(config.seed, _TEST))
    return Dataset(
        x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, n_in=2, n_out=_TOYS[name][1],
        task="classification", name=name,
        description=f"2-D toy: {_TOY_TEXT[name]}, with input noise {config.noise:g} "
                    f"({config.n_train} train / {config.n_test} test points).",
    )


# ---- linear teacher ---------------------------------------------------------------------
def teacher_matrix(config: RunConfig) -> torch.Tensor:
    """The teacher map T (d, d) float32 on the CPU, entries N(0, 1/d), d = input_dim."""
    d = config.input_dim
    return torch.randn(d, d, generator=_generator(config.seed, _TEACHER)) / math.sqrt(d)


def _teacher_split(
    t: torch.Tensor, n: int, noise: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    d = t.shape[0]
    x = torch.randn(n, d, generator=g)                                   # (n, d)
    y = x @ t.T                                                          # (n, d)
    if noise > 0:
        y = y + noise * torch.randn(n, d, generator=g)
    return x, y


def _teacher(config: RunConfig) -> Dataset:
    t = teacher_matrix(config)
    xtr, ytr = _teacher_split(t, config.n_train, config.noise, _generator(config.seed, _TRAIN))
    xte, yte = _teacher_split(t, config.n_test, config.noise, _generator(config.seed, _TEST))
    d = config.input_dim
    return Dataset(
        x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, n_in=d, n_out=d,
        task="regression", name="teacher",
        description=f"Regression onto a random linear teacher y = T x (d = {d}, x ~ N(0, I), "
                    f"output noise std {config.noise:g}).",
    )


# ---- sequence tasks ---------------------------------------------------------------------
def _adding_split(n: int, seq_len: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel 0: values U[0, 1]; channel 1: markers, one in the first 10% of the steps
    (at least step 0) and one in the second half. Target: the sum of the two marked values."""
    t = seq_len
    values = torch.rand(n, t, generator=g)                               # (n, T)
    first = torch.randint(0, max(1, t // 10), (n,), generator=g)         # (n,)
    second = torch.randint(t // 2, t, (n,), generator=g)                 # (n,)
    markers = torch.zeros(n, t)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], 2)                                # (n, T, 2)
    y = (values * markers).sum(1, keepdim=True)                          # (n, 1)
    return x, y


def _adding(config: RunConfig) -> Dataset:
    t = config.seq_len
    if t < 2:
        raise ConfigError("seq_len", f"the adding task needs seq_len >= 2 (two marked "
                                     f"steps), got {t}")
    xtr, ytr = _adding_split(config.n_train, t, _generator(config.seed, _TRAIN))
    xte, yte = _adding_split(config.n_test, t, _generator(config.seed, _TEST))
    return Dataset(
        x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, n_in=2, n_out=1,
        task="regression", name="adding",
        description=f"Adding problem (T = {t}): output the sum of the two marked numbers, the "
                    f"first near the start; predicting 1.0 always gives MSE "
                    f"{ADDING_CHANCE_MSE:.3f}.",
    )


def _recall_split(n: int, seq_len: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """t = 0: one-hot of the class in channels 0..C-1 (channel C is 0); t >= 1: channels
    0..C-1 are 0 and channel C is N(0, 1) noise, independent of the label."""
    c = RECALL_CLASSES
    y = _balanced_labels(n, c, g)                                        # (n,)
    x = torch.zeros(n, seq_len, c + 1)                                   # (n, T, C+1)
    x[torch.arange(n), 0, y] = 1.0
    x[:, 1:, c] = torch.randn(n, seq_len - 1, generator=g)
    return x, y


def _recall(config: RunConfig) -> Dataset:
    t, c = config.seq_len, RECALL_CLASSES
    xtr, ytr = _recall_split(config.n_train, t, _generator(config.seed, _TRAIN))
    xte, yte = _recall_split(config.n_test, t, _generator(config.seed, _TEST))
    return Dataset(
        x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, n_in=c + 1, n_out=c,
        task="classification", name="recall",
        description=f"Recall (T = {t}): name the class shown only at the first step, after "
                    f"{t - 1} steps of pure noise; chance accuracy is 1/{c}.",
    )


# ---- Shapeset-3x2 ------------------------------------------------------------------------
def _shapeset(config: RunConfig) -> Dataset:
    """Glorot & Bengio's Shapeset-3x2 (core/shapeset.py): a fixed train set of n_train
    images (used for full-batch runs and as the reference set), a fixed test set, and with
    minibatches the paper's infinite stream: every batch is fresh images."""
    from core import shapeset

    xtr, ytr = shapeset.fixed_set(config.seed, _TRAIN, config.n_train)
    xte, yte = shapeset.fixed_set(config.seed, _TEST, config.n_test)
    bs = config.batch_size
    minibatch = 0 < bs < config.n_train
    stream = shapeset.stream(_stream_seed(config.seed, _TRAIN), bs) if minibatch else None
    how = (f"fresh images every batch of {bs} (the paper's infinite stream)" if minibatch
           else f"{config.n_train} fixed training images")
    return Dataset(
        x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, n_in=shapeset.SIZE ** 2,
        n_out=shapeset.N_CLASSES, task="classification", name="shapeset",
        description=f"Shapeset-3x2 (Glorot & Bengio 2010): 32x32 grey images of one or two "
                    f"shapes, 9 classes; {how}; tested on {config.n_test} fixed images.",
        train_stream=stream,
    )


_BUILDERS = {
    "mnist": _mnist, "spiral": _toy, "circles": _toy, "xor": _toy, "blobs": _toy,
    "teacher": _teacher, "adding": _adding, "recall": _recall, "shapeset": _shapeset,
}
assert set(_BUILDERS) == set(DATASETS), "every dataset in core.config needs a builder"


def load(config: RunConfig, device: torch.device | str = "cpu") -> Dataset:
    """Build ``config.dataset`` deterministically from ``config.seed`` on ``device``.

    Raises ConfigError (a ValueError naming the field) for sizes the data cannot meet.
    """
    if config.dataset not in _BUILDERS:
        raise ConfigError("dataset", f"unknown dataset {config.dataset!r}")
    ds = _BUILDERS[config.dataset](config)
    dev = torch.device(device)
    if dev.type != "cpu":
        ds.x_train, ds.y_train = ds.x_train.to(dev), ds.y_train.to(dev)
        ds.x_test, ds.y_test = ds.x_test.to(dev), ds.y_test.to(dev)
    return ds


__all__ = [
    "ADDING_CHANCE_MSE", "MNIST_SPLIT_SEED", "RECALL_CLASSES", "Dataset", "assets_dir", "load",
    "mnist_arrays", "mnist_split", "teacher_matrix",
]
