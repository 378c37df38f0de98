"""Shapeset-3x2 (Glorot & Bengio 2010, section 2.1), generated here, vectorised.

The paper: 32 x 32 grey images holding one or two two-dimensional objects, each from 3
shape categories (parallelogram, triangle, ellipse), "placed with random shape parameters
(relative lengths and/or angles), scaling, rotation, translation and grey-scale"; a
second object may not overlap the first by more than 50 % of its area; the task is to
name the objects present without telling foreground from background, which gives nine
classes (3 single shapes + 6 unordered pairs, same-type pairs included). The paper's
training set is an infinite stream.

Choices the paper leaves open, and the ones made here:

- **Class coding**: 0 parallelogram, 1 triangle, 2 ellipse (one shape); 3 P+P, 4 P+T,
  5 P+E, 6 T+T, 7 T+E, 8 E+E (two shapes). Classes are drawn uniformly (fixed sets:
  balanced to within one image), so one image in three holds a single shape.
- **Shape parameters**: every shape is an affine image ``c + A q`` of a canonical shape in
  ``q`` coordinates: the unit disc (ellipse), the square [-1, 1]^2 (parallelogram), the
  triangle (-1, -1), (1, -1), (0, 1) (triangle). ``A = R(theta) diag(sx, sy) [[1, k],
  [0, 1]]`` with rotation theta ~ U[0, 2 pi), half-lengths sx, sy ~ U[3, 9] pixels (the
  "scaling" and "relative lengths") and shear k ~ U[-0.6, 0.6] (the "angles"; an ellipse
  sheared is still an ellipse).
- **Inside the frame**: the bounding box of ``A [-1, 1]^2`` is shrunk (A scaled down) to
  at most 15 pixels of half-extent, then the centre is drawn uniformly where that box
  lies wholly inside the 32 x 32 frame, so no shape is ever cut by the border.
- **Grey levels**: background ~ U[0, 1]; each shape's grey ~ U[0, 1] outside
  [bg - 0.25, bg + 0.25] (so it is visible); two shapes differ by at least 0.15.
- **Overlap**: the second (upper) shape may cover at most 50 % of the first shape's pixels,
  and the first keeps at least 12 visible pixels; the first shape is kept and the second
  redrawn until it passes (after 20 failures the first is redrawn too). Which type of a
  mixed pair lies underneath is random.
- **Rasterisation**: a pixel belongs to a shape when its centre does (no anti-aliasing).
- **Input scale**: pixel values in [0, 1], flattened row-major to 1024 features.

Deterministic: every image comes from ``torch.Generator`` draws seeded by the caller, in a
fixed order; ``stream_batch(seed, k, n)`` is batch ``k`` of the infinite training stream
(its own generator per batch, so any batch can be rebuilt alone).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import torch

SIZE = 32                   # image side in pixels
N_CLASSES = 9
SHAPES = ("parallelogram", "triangle", "ellipse")
CLASS_NAMES = (
    "parallelogram", "triangle", "ellipse",
    "parallelogram + parallelogram", "parallelogram + triangle", "parallelogram + ellipse",
    "triangle + triangle", "triangle + ellipse", "ellipse + ellipse",
)
# class -> (first shape, second shape or -1)
CLASS_SHAPES = ((0, -1), (1, -1), (2, -1), (0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
HALF_MIN, HALF_MAX = 3.0, 9.0   # half-lengths sx, sy in pixels
SHEAR_MAX = 0.6
MAX_HALF_EXTENT = 15.0          # bounding-box half-extent cap (frame half-width is 16)
BG_CONTRAST = 0.25              # |shape grey - background grey| >= this
PAIR_CONTRAST = 0.15            # |grey 1 - grey 2| >= this
MAX_OVERLAP = 0.5               # of the first (lower) shape's pixels
MIN_VISIBLE = 12                # pixels each shape keeps
_TAG = 0x5EA9E

_CENTRES = torch.arange(SIZE, dtype=torch.float32) + 0.5        # pixel centres
_PXY = torch.stack([_CENTRES.view(1, SIZE).expand(SIZE, SIZE).reshape(-1),      # x
                    _CENTRES.view(SIZE, 1).expand(SIZE, SIZE).reshape(-1),      # y
                    torch.ones(SIZE * SIZE)])                                   # (3, 1024)


def _seed(seed: int, *key: int) -> int:
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(_TAG, *key))
    return int(ss.generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)


def placements(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random shape placements: (A (n, 2, 2), centre c (n, 2)) in pixels, with the
    bounding box of ``c + A [-1, 1]^2`` wholly inside the 32 x 32 frame."""
    theta = 2 * math.pi * torch.rand(n, generator=g)
    sx = HALF_MIN + (HALF_MAX - HALF_MIN) * torch.rand(n, generator=g)
    sy = HALF_MIN + (HALF_MAX - HALF_MIN) * torch.rand(n, generator=g)
    k = SHEAR_MAX * (2 * torch.rand(n, generator=g) - 1)
    c, s = torch.cos(theta), torch.sin(theta)
    # A = R diag(sx, sy) [[1, k], [0, 1]]
    a00, a01 = c * sx, c * sx * k - s * sy
    a10, a11 = s * sx, s * sx * k + c * sy
    hx, hy = a00.abs() + a01.abs(), a10.abs() + a11.abs()
    shrink = torch.clamp(MAX_HALF_EXTENT / torch.maximum(hx, hy), max=1.0)
    a00, a01, a10, a11 = a00 * shrink, a01 * shrink, a10 * shrink, a11 * shrink
    hx, hy = hx * shrink, hy * shrink
    cx = hx + (SIZE - 2 * hx) * torch.rand(n, generator=g)
    cy = hy + (SIZE - 2 * hy) * torch.rand(n, generator=g)
    a = torch.stack([torch.stack([a00, a01], 1), torch.stack([a10, a11], 1)], 1)
    return a, torch.stack([cx, cy], 1)


def _masks(kind: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(n, 1024) bool masks of random shapes of the given kinds (n,) int64 in 0..2."""
    n = kind.shape[0]
    a, c = placements(n, g)
    a00, a01, a10, a11 = a[:, 0, 0], a[:, 0, 1], a[:, 1, 0], a[:, 1, 1]
    cx, cy = c[:, 0], c[:, 1]
    det = a00 * a11 - a01 * a10
    # q = A^-1 (p - c) for every pixel p, as one matrix product: rows (i0, i1, -i.c)
    i00, i01, i10, i11 = a11 / det, -a01 / det, -a10 / det, a00 / det
    m = torch.stack([torch.stack([i00, i01, -(i00 * cx + i01 * cy)], 1),
                     torch.stack([i10, i11, -(i10 * cx + i11 * cy)], 1)], 1)  # (n, 2, 3)
    q = (m.view(2 * n, 3) @ _PXY).view(n, 2, SIZE * SIZE)              # (n, 2, 1024)
    out = torch.empty(n, SIZE * SIZE, dtype=torch.bool)
    for shape in range(3):
        idx = torch.nonzero(kind == shape).flatten()
        if idx.numel() == 0:
            continue
        q0, q1 = q[idx, 0], q[idx, 1]
        if shape == 0:                                   # parallelogram: the square
            out[idx] = torch.maximum(q0.abs(), q1.abs()) <= 1.0
        elif shape == 1:                                 # triangle (-1,-1), (1,-1), (0,1)
            out[idx] = (q1 >= -1.0) & (q1 <= 1.0 - 2.0 * q0.abs())
        else:                                            # ellipse: the unit disc
            out[idx] = q0 * q0 + q1 * q1 <= 1.0
    return out


def _grey_away(ref: torch.Tensor, gap: float, g: torch.Generator) -> torch.Tensor:
    """Uniform on [0, 1] minus [ref - gap, ref + gap] (exactly uniform, no rejection)."""
    lo = torch.clamp(ref - gap, min=0.0)
    hi = torch.clamp(ref + gap, max=1.0)
    u = (1.0 - (hi - lo)) * torch.rand(ref.shape[0], generator=g)
    return torch.where(u >= lo, u + (hi - lo), u)


def generate(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(n, 1024) float32 images in [0, 1] for the given class labels (n,) int64."""
    n = labels.shape[0]
    table = torch.tensor(CLASS_SHAPES, dtype=torch.int64)
    first, second = table[labels, 0], table[labels, 1]
    two = second >= 0
    bg = torch.rand(n, generator=g)
    g1 = _grey_away(bg, BG_CONTRAST, g)
    # pairs: either shape type of a mixed pair may lie underneath
    swap = torch.rand(n, generator=g) < 0.5
    lower = torch.where(two & swap, second, first)
    upper = torch.where(two & swap, first, second)
    m1 = _masks(lower, g)
    g2 = _grey_away(bg, BG_CONTRAST, g)
    for _ in range(200):                     # grey of the upper shape: away from the lower's
        bad = torch.nonzero(two & ((g2 - g1).abs() < PAIR_CONTRAST)).flatten()
        if bad.numel() == 0:
            break
        g2[bad] = _grey_away(bg[bad], BG_CONTRAST, g)
    todo = torch.nonzero(two).flatten()
    m2 = torch.zeros_like(m1)
    # the paper's rule: the upper shape covers at most half of the lower one; the lower
    # shape stays, the upper one is redrawn until it passes
    for attempt in range(200):
        if todo.numel() == 0:
            break
        if attempt and attempt % 20 == 0:    # a lower shape no partner fits: redraw it too
            m1[todo] = _masks(lower[todo], g)
        a = m1[todo]
        b = _masks(upper[todo], g)
        inter = (a & b).sum(1)
        area_a = a.sum(1)
        ok = (inter <= MAX_OVERLAP * area_a) & (area_a - inter >= MIN_VISIBLE)
        m2[todo[ok]] = b[ok]
        todo = todo[~ok]
    if todo.numel():
        raise RuntimeError(f"shapeset: {todo.numel()} pairs failed the overlap rule 200 times")
    img = bg[:, None].expand(n, SIZE * SIZE).clone()
    img = torch.where(m1, g1[:, None], img)
    img = torch.where(m2, g2[:, None], img)
    return img.float()


def fixed_set(seed: int, stream: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed set of ``n`` images with balanced classes: (x (n, 1024), y (n,) int64)."""
    g = torch.Generator().manual_seed(_seed(seed, 0, stream))
    y = (torch.arange(n, dtype=torch.int64) % N_CLASSES)[torch.randperm(n, generator=g)]
    return generate(y, g), y


STREAM_CHUNK = 2000   # images generated at once by the stream (per-call overhead amortised)


def stream_chunk(seed: int, index: int, n: int = STREAM_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunk ``index`` of the infinite training stream: ``n`` fresh images, uniform classes.

    Each chunk has its own generator, so any chunk can be rebuilt alone.
    """
    g = torch.Generator().manual_seed(_seed(seed, 1, index))
    y = torch.randint(0, N_CLASSES, (n,), generator=g)
    return generate(y, g), y


def stream(seed: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The paper's infinite training stream, ``batch_size`` fresh images per batch.

    Chunks of ``STREAM_CHUNK`` images are cut into batches (a remainder shorter than a
    batch is dropped), so no image is ever shown twice.
    """
    chunk = max(STREAM_CHUNK, batch_size)
    for index in itertools.count():
        x, y = stream_chunk(seed, index, chunk)
        for i in range(0, chunk - batch_size + 1, batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]


SAMPLE_STREAM = 2     # fixed_set stream of the pictures a page shows (not train, not test)


def samples(seed: int = 0, n: int = 16) -> tuple[np.ndarray, list[str]]:
    """``n`` images to look at, as a page shows them: (images (n, 32, 32) float32 in
    [0, 1], their class names). Classes balanced as in :func:`fixed_set` (16 images: every
    class at least once); a stream of their own, so they are neither training nor test
    images. Plain NumPy out: the page that shows them never imports torch."""
    if not 1 <= n <= 256:
        raise ValueError(f"samples: n must be in 1..256, got {n}")
    x, y = fixed_set(seed, SAMPLE_STREAM, n)
    return (x.numpy().reshape(n, SIZE, SIZE).astype(np.float32),
            [CLASS_NAMES[int(c)] for c in y])


__all__ = ["CLASS_NAMES", "CLASS_SHAPES", "N_CLASSES", "SHAPES", "SIZE", "STREAM_CHUNK",
           "fixed_set", "generate", "placements", "samples", "stream", "stream_chunk"]
