"""Shapeset-3x2 (core/shapeset.py, issue 17): class balance, determinism, shapes inside the
frame, the overlap rule, grey-level contrast, and the dataset wired into ``core.data``."""

from __future__ import annotations

import torch

from core import shapeset
from core.config import from_dict
from core.data import load


def test_fixed_set_is_balanced_and_well_formed():
    """Every one of the 9 classes within one image of n/9 (balanced by construction);
    images (n, 1024) float32 in [0, 1]."""
    x, y = shapeset.fixed_set(0, 0, 900)
    assert x.shape == (900, 1024) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.bincount(y, minlength=9).tolist() == [100] * 9


def test_stream_classes_are_uniform():
    """Stream classes are drawn uniformly: each of 9 classes within 5 standard deviations
    (binomial, n = 4000, p = 1/9: sd ~ 19.9) of 444."""
    _, y = shapeset.stream_chunk(3, 0, 4000)
    counts = torch.bincount(y, minlength=9).double()
    assert (counts - 4000 / 9).abs().max() < 5 * (4000 * (1 / 9) * (8 / 9)) ** 0.5


def test_deterministic_from_the_seed():
    """Same seed, same images (bit for bit); another seed or another chunk, other images."""
    a, ya = shapeset.fixed_set(7, 0, 50)
    b, yb = shapeset.fixed_set(7, 0, 50)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, shapeset.fixed_set(8, 0, 50)[0])
    assert not torch.equal(shapeset.stream_chunk(7, 0, 50)[0], shapeset.stream_chunk(7, 1, 50)[0])


def test_stream_batches_are_fresh_and_reproducible():
    """The infinite stream: consecutive batches differ, and the stream replays exactly."""
    s1, s2 = shapeset.stream(5, 10), shapeset.stream(5, 10)
    b1 = [next(s1) for _ in range(3)]
    b2 = [next(s2) for _ in range(3)]
    assert all(torch.equal(p[0], q[0]) for p, q in zip(b1, b2, strict=True))
    assert not torch.equal(b1[0][0], b1[1][0])
    assert b1[0][0].shape == (10, 1024) and b1[0][1].shape == (10,)


def test_shapes_lie_inside_the_frame():
    """Every placement (10,000 draws): the corners of ``c + A [-1, 1]^2``, which bound all
    three canonical shapes, lie within [0, 32] in x and y (tolerance 1e-4 px, float32)."""
    a, c = shapeset.placements(10_000, torch.Generator().manual_seed(0))
    sq = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])   # (4, 2)
    corners = c[:, None, :] + torch.einsum("nij,kj->nki", a, sq)             # (n, 4, 2)
    assert float(corners.min()) >= -1e-4 and float(corners.max()) <= 32 + 1e-4


def test_single_shapes_are_visible():
    """One-shape images of each kind (1000 each): >= 12 foreground pixels (the smallest
    shape is a triangle of half-lengths >= 3 px, area >= 18 px^2), and every foreground pixel
    differs from the background by >= 0.25 (the contrast rule; tolerance 1e-6)."""
    labels = torch.arange(3).repeat_interleave(1000)
    x = shapeset.generate(labels, torch.Generator().manual_seed(0))
    bg = torch.mode(x, 1).values                       # the background is the commonest grey
    diff = (x - bg[:, None]).abs()
    fg = diff > 1e-6
    assert int(fg.sum(1).min()) >= 12
    assert float(diff[fg].min()) >= shapeset.BG_CONTRAST - 1e-6


def test_pairs_show_two_distinct_greys_each_visible():
    """Pairs (500 ellipse + ellipse images): exactly three greys (background, two shapes),
    each pair of greys >= 0.15 apart (tolerance 1e-6), and each grey covers >= 12 px: the
    lower shape keeps at least MIN_VISIBLE pixels under the paper's at-most-50 %-covered
    rule (checked exactly in test_overlap_rule_on_masks)."""
    x = shapeset.generate(torch.full((500,), 8, dtype=torch.int64),
                          torch.Generator().manual_seed(2))
    for row in x:
        u, counts = torch.unique(row, return_counts=True)
        assert len(u) == 3
        gaps = (u[:, None] - u[None, :]).abs() + torch.eye(3)
        assert float(gaps.min()) >= shapeset.PAIR_CONTRAST - 1e-6
        assert int(counts.min()) >= shapeset.MIN_VISIBLE


def test_overlap_rule_on_masks(monkeypatch):
    """The paper's rule on the generator's own masks: every accepted pair (300 images of
    each two-shape class) has the upper shape covering at most 50 % of the lower one."""
    drawn: list[torch.Tensor] = []
    real = shapeset._masks

    def record(kind: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        m = real(kind, g)
        drawn.append(m)
        return m

    monkeypatch.setattr(shapeset, "_masks", record)
    labels = torch.arange(3, 9).repeat_interleave(300)
    x = shapeset.generate(labels, torch.Generator().manual_seed(4))
    lower = drawn[0]                                   # (n, 1024): the first draw, kept
    for row, m in zip(x, lower, strict=True):
        under = row[m]                                 # the lower shape's footprint
        grey = torch.mode(under).values                # its own grey, where still visible
        visible = int((under == grey).sum())
        assert visible >= 0.5 * int(m.sum()) - 1e-9


def test_dataset_shapeset_loads_and_streams():
    """dataset=shapeset: 1024 inputs, 9 classes, a fixed test set, and with minibatches a
    training stream of fresh batches."""
    cfg = from_dict({"dataset": "shapeset", "n_train": 100, "n_test": 90, "batch_size": 10,
                     "depth": 2, "width": 16})
    ds = load(cfg)
    assert (ds.n_in, ds.n_out, ds.task) == (1024, 9, "classification")
    assert ds.x_test.shape == (90, 1024)
    assert torch.bincount(ds.y_test, minlength=9).tolist() == [10] * 9
    assert ds.train_stream is not None
    xb, yb = next(ds.train_stream)
    assert xb.shape == (10, 1024) and yb.shape == (10,)
    assert torch.equal(load(cfg).x_test, ds.x_test)


def test_training_draws_fresh_batches_from_the_stream(monkeypatch):
    """core.train takes its minibatches from ``Dataset.train_stream`` where one is set: a
    5-step run on shapeset pulls exactly 6 batches (steps 0..5) from the stream."""
    from core import data, train

    pulled: list[int] = []
    real_load = data.load

    def counting_load(cfg, device="cpu"):
        ds = real_load(cfg, device)
        inner = ds.train_stream

        def counted():
            for b in inner:
                pulled.append(b[0].shape[0])
                yield b
        ds.train_stream = counted()
        return ds

    monkeypatch.setattr(data, "load", counting_load)
    cfg = from_dict({"dataset": "shapeset", "n_train": 100, "n_test": 18, "batch_size": 10,
                     "depth": 1, "width": 8, "steps": 5, "every": 5})
    snaps = list(train.run(cfg))
    assert pulled == [10] * 6
    assert all(s.loss == s.loss for s in snaps)                   # finite, not NaN
