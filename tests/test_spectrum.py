"""core.spectrum: log singular values of long matrix products, checked against exact answers
(explicit float64 products where those are accurate, mpmath at 100+ digits where they are not,
and products whose singular values are known in closed form)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import mpmath
import numpy as np
import pytest
import torch

from core.spectrum import (
    effective_rank,
    product_log_singular_values,
    product_singular_values,
    random_product_spectrum,
    weight_singular_values,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small LAPACK calls only lose to thread hand-offs (badly so on a busy 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gaussian_chain(shapes: list[tuple[int, int]], seed: int) -> list[torch.Tensor]:
    g = _gen(seed)
    return [torch.randn(m, n, generator=g, dtype=torch.float64) / math.sqrt(n) for m, n in shapes]


def _explicit(factors: list[torch.Tensor]) -> torch.Tensor:
    p = factors[0].double()
    for f in factors[1:]:
        p = f.double() @ p
    return p


def _mp_log_sv(factors: list[torch.Tensor], dps: int) -> np.ndarray:
    """Descending log singular values of the exact product, in mpmath at `dps` digits."""
    with mpmath.workdps(dps):
        p = mpmath.matrix(factors[0].double().tolist())
        for f in factors[1:]:
            p = mpmath.matrix(f.double().tolist()) * p
        s = mpmath.svd_r(p, compute_uv=False)
        return np.array(sorted((float(mpmath.log(x)) for x in s), reverse=True))


def _orthogonal(n: int, g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q * torch.where(torch.diagonal(r) < 0, -1.0, 1.0)[None, :]


@pytest.mark.parametrize("depth", [1, 2, 5, 10])
@pytest.mark.parametrize("square", [True, False])
def test_matches_explicit_product_at_small_depth(depth: int, square: bool) -> None:
    if square:
        shapes = [(12, 12)] * depth
    else:                                  # wide first factor, tall/narrow ones in the middle
        dims = [9, 14, 11, 16, 10, 13, 12, 15, 10, 17, 11]
        shapes = [(dims[i + 1], dims[i]) for i in range(depth)]
    fs = _gaussian_chain(shapes, seed=depth + 100 * square)
    got = product_log_singular_values(fs)
    assert got.dtype == torch.float64 and got.ndim == 1
    assert got.shape[0] == min([shapes[0][1]] + [m for m, _ in shapes])
    want = torch.linalg.svdvals(_explicit(fs))[: got.shape[0]]
    # float64 SVD of the explicit product is exact to ~eps * sigma_max: compare the values
    # within 1e6 of the top (relative error of the reference <= ~1e-10)
    ok = want > want[0] * 1e-6
    assert ok.sum() >= 3
    np.testing.assert_allclose(got[ok].numpy(), torch.log(want[ok]).numpy(), rtol=0, atol=1e-8)
    assert torch.all(got[:-1] >= got[1:])


def test_deep_chain_matches_mpmath_where_float64_fails() -> None:
    """Depth 100 of 6x6 Gaussian factors: the singular values span ~150 nats. The naive float64
    product is wrong by tens of nats; the engine agrees with 100-digit arithmetic to 1e-9."""
    fs = [f.float() for f in _gaussian_chain([(6, 6)] * 100, seed=7)]   # float32 inputs
    ref = _mp_log_sv(fs, dps=100)
    assert ref[0] - ref[-1] > 100                          # far beyond float64's 16 digits
    naive = np.log(torch.linalg.svdvals(_explicit(fs)).numpy())
    assert np.max(np.abs(naive - ref)) > 20                # the naive answer is badly wrong
    got = product_log_singular_values(fs).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def test_graded_saturated_chain_matches_mpmath() -> None:
    """tanh-style factors diag(1 - tanh(h)^2) W with heavily saturated units (row scales down to
    ~1e-20, float64): singular values spread over >700 nats, all exact to 1e-9 nats."""
    g = _gen(3)
    fs = []
    for _ in range(30):
        w = torch.randn(8, 8, generator=g, dtype=torch.float64) / math.sqrt(8)
        h = 8.0 * torch.randn(8, generator=g, dtype=torch.float64)
        fs.append((1.0 / torch.cosh(h) ** 2)[:, None] * w)                # (8, 8)
    ref = _mp_log_sv(fs, dps=700)
    got = product_log_singular_values(fs).numpy()
    assert ref[0] - ref[-1] > 700
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def test_known_spectrum_of_a_deep_product() -> None:
    """F_l = U_l D U_{l-1}^T with orthogonal U's: P = U_L D^L U_0^T, so log sv = L log d
    exactly, here spanning 1000 nats over depth 200."""
    g = _gen(11)
    n, depth = 16, 200
    logd = -torch.linspace(0.0, 5.0, n, dtype=torch.float64)          # (n,) descending
    us = [_orthogonal(n, g) for _ in range(depth + 1)]
    fs = [us[i + 1] @ torch.diag(torch.exp(logd)) @ us[i].T for i in range(depth)]
    got = product_log_singular_values(fs)
    np.testing.assert_allclose(got.numpy(), (depth * logd).numpy(), rtol=0, atol=1e-9)
    # entries of 1e+-120 (their Gram matrices would over/underflow): logs just shift
    for scale in (1e120, 1e-120):
        got = product_log_singular_values([f * scale for f in fs])
        want = depth * (logd + math.log(scale))                       # ~ +-55000 nats
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-8)


def test_depth_1000_tanh_chain_is_finite_and_sorted() -> None:
    """1000 float32 tanh layers of width 64 (slightly chaotic, sigma_w = 1.2): every log
    singular value finite, descending, spread far past float64's range."""
    g = _gen(5)
    n = 64
    x = torch.randn(n, generator=g)
    fs = []
    for _ in range(1000):
        w = 1.2 * torch.randn(n, n, generator=g) / math.sqrt(n)         # float32
        h = w @ x                                                         # (n,)
        x = torch.tanh(h)
        fs.append((1.0 - torch.tanh(h) ** 2)[:, None] * w)                # (n, n) float32
    got = product_log_singular_values(fs)
    assert got.shape == (n,) and got.dtype == torch.float64
    assert torch.all(torch.isfinite(got))
    assert torch.all(got[:-1] >= got[1:])
    assert float(got[0] - got[-1]) > 700


def test_exact_zeros_are_minus_inf() -> None:
    g = _gen(2)
    fs = [torch.randn(8, 8, generator=g, dtype=torch.float64) for _ in range(3)]
    dead = fs[1].clone()
    dead[[1, 4, 6]] = 0.0                                  # three dead ReLU units in layer 2
    fs[1] = dead
    got = product_log_singular_values(fs)
    assert torch.all(torch.isneginf(got[5:])) and torch.all(torch.isfinite(got[:5]))
    want = torch.log(torch.linalg.svdvals(_explicit(fs))[:5])
    np.testing.assert_allclose(got[:5].numpy(), want.numpy(), rtol=0, atol=1e-10)
    # a factor that is entirely zero, or one that kills every direction
    zero = [fs[0], torch.zeros(8, 8, dtype=torch.float64), fs[2]]
    assert torch.all(torch.isneginf(product_log_singular_values(zero)))
    assert torch.all(product_singular_values(zero) == 0)


def test_product_singular_values_is_exp_of_log() -> None:
    fs = _gaussian_chain([(5, 7), (6, 5), (4, 6)], seed=4)
    s = product_singular_values(fs)
    assert s.dtype == torch.float64
    np.testing.assert_array_equal(s.numpy(), torch.exp(product_log_singular_values(fs)).numpy())
    np.testing.assert_allclose(s.numpy(), torch.linalg.svdvals(_explicit(fs)).numpy(),
                               rtol=1e-10, atol=0)


def test_accepts_numpy_and_autograd_inputs() -> None:
    fs = _gaussian_chain([(6, 6)] * 3, seed=8)
    want = product_log_singular_values(fs)
    got_np = product_log_singular_values([f.numpy() for f in fs])
    w = [f.clone().requires_grad_(True) for f in fs]
    got_ag = product_log_singular_values(w)
    assert not got_ag.requires_grad
    np.testing.assert_array_equal(got_np.numpy(), want.numpy())
    np.testing.assert_array_equal(got_ag.numpy(), want.numpy())


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        product_log_singular_values([])
    with pytest.raises(ValueError):
        product_log_singular_values([torch.ones(3, 4), torch.ones(3, 4)])   # 4 != 3
    with pytest.raises(ValueError):
        product_log_singular_values([torch.full((2, 2), math.nan)])
    with pytest.raises(ValueError):
        weight_singular_values(torch.ones(2, 2, 2))


def test_weight_singular_values() -> None:
    w = torch.randn(7, 5, generator=_gen(0))
    s = weight_singular_values(w)
    assert s.shape == (5,) and s.dtype == w.dtype
    np.testing.assert_allclose(s.numpy(), torch.linalg.svdvals(w).numpy(), rtol=1e-6)


def test_random_product_spectrum_spread() -> None:
    """Saxe et al.: the spread of log singular values grows with depth for Gaussian factors
    and stays exactly 0 for orthogonal ones."""
    stds = [np.std(random_product_spectrum(32, d, "gaussian", seed=1)) for d in (1, 10, 100)]
    assert stds[0] < stds[1] < stds[2]
    assert stds[2] > 3 * stds[1] > 3 * stds[0]
    orth = random_product_spectrum(32, 100, "orthogonal", seed=1, gain=1.1)
    assert np.std(orth) < 1e-6
    np.testing.assert_allclose(orth, 100 * math.log(1.1), atol=1e-8)
    a = random_product_spectrum(8, 5, "gaussian", seed=3)
    b = random_product_spectrum(8, 5, "gaussian", seed=3)
    np.testing.assert_array_equal(a, b)                    # own generator: reproducible
    with pytest.raises(ValueError):
        random_product_spectrum(8, 5, "uniform", seed=3)


def test_effective_rank() -> None:
    assert effective_rank(np.ones(10)) == pytest.approx(10.0)
    assert effective_rank(np.array([3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(torch.tensor([2.0, 2.0, 0.0, 0.0])) == pytest.approx(2.0)
    assert effective_rank(np.zeros(4)) == 0.0
    r = effective_rank(np.array([1.0, 0.5, 0.25, 0.0]))
    assert 1.0 < r < 3.0
