"""The claims of lessons 6 and 7: products of random matrices spread their singular values
with depth (Saxe et al.), orthogonal products do not; orthogonal tanh nets at criticality
keep a Jacobian spectrum near 1 (Pennington, Schoenholz & Ganguli), ReLU + He does not.
Every tolerance says why. Published numbers: ../shared/SEEDS.md (seed 000).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.experiments.spectra import (
    critical_point,
    jacobian_spectrum,
    log_spread,
    product_spectra,
    spread_vs_depth,
)
from tests.lesson_claims_helpers import LESSON, one_torch_thread  # noqa: F401 - autouse

pytestmark = LESSON


# ---- lesson 6: products of random matrices (Saxe, seed 000) ----------------------------------

def test_gaussian_product_spectrum_spreads_with_depth():
    # Saxe et al.: the product's singular values spread out with the number of factors.
    # Tolerance: strictly increasing std of ln s over depths 1, 10, 100 for each of 3 seeds,
    # and at least 10x wider at 100 than at 1 (measured ~50x at n = 50: the Lyapunov
    # exponents of the product spread over ~4 nats per factor... linearly in depth).
    sp = spread_vs_depth(50, (1, 10, 100), "gaussian", (0, 1, 2))      # (3 depths, 3 seeds)
    assert np.all(np.diff(sp, axis=0) > 0), sp
    assert np.all(sp[-1] > 10 * sp[0]), sp


def test_orthogonal_product_spectrum_stays_at_one():
    # A product of orthogonal matrices is orthogonal: every singular value is 1. Tolerance
    # 1e-9 in ln s: float64 rounding over 100 factors (~100 * 1e-16 * n), not a model error.
    sp = product_spectra(50, (1, 10, 100), ("orthogonal",), seed=0)["orthogonal"]
    for d, ls in sp.items():
        assert log_spread(ls) < 1e-9, (d, log_spread(ls))
        assert np.max(np.abs(ls)) < 1e-9, d


# ---- lesson 7: dynamical isometry (Pennington et al., seed 000) ------------------------------

ISO_DEPTHS = (4, 32)
ISO_WIDTH = 64


@pytest.mark.parametrize("act", ["tanh", "hardtanh"])
def test_orthogonal_tanh_at_criticality_stays_concentrated(act):
    # Pennington et al.: orthogonal weights + tanh / hard-tanh at criticality (small q*) give
    # a depth-independent Jacobian spectrum concentrated near 1. Tolerance: >= 85 % of the
    # singular values within a factor 2 of 1 at depth 4 AND depth 32 (measured 97-100 % at
    # width 64-128; the rest are hard-tanh units saturated for this one input, exact zeros).
    r = jacobian_spectrum(act, "orthogonal", ISO_DEPTHS, ISO_WIDTH, sigma_b=0.01)
    assert r.chi_1 == pytest.approx(1.0, abs=1e-6)
    assert np.all(r.near_one >= 0.85), r.near_one


def test_relu_he_jacobian_spectrum_widens_with_depth():
    # ReLU + He (the critical ReLU net): the spread of ln s grows with depth and the mass
    # near 1 collapses. Tolerances: the q10-q90 spread of ln s (nonzero values) at depth 32
    # is > 3x that at depth 4 (measured ~3-4x, it grows ~linearly in depth), and < 20 % of
    # the singular values are within a factor 2 of 1 at depth 32 (measured ~2-5 %).
    r = jacobian_spectrum("relu", "gaussian", ISO_DEPTHS, ISO_WIDTH)
    assert r.sigma_w == pytest.approx(math.sqrt(2.0))
    assert r.spread[1] > 3 * r.spread[0], r.spread
    assert r.near_one[1] < 0.2, r.near_one
    # ... while orthogonal tanh at the same depth keeps most of its spectrum near 1.
    t = jacobian_spectrum("tanh", "orthogonal", ISO_DEPTHS, ISO_WIDTH, sigma_b=0.01)
    assert t.near_one[1] > r.near_one[1] + 0.5


def test_tanh_gaussian_at_criticality_is_not_isometric():
    # Criticality alone (chi_1 = 1) does not make the spectrum concentrated with Gaussian
    # weights. Tolerance: < 30 % within a factor 2 of 1 at depth 32 (measured ~6 %).
    r = jacobian_spectrum("tanh", "gaussian", ISO_DEPTHS, ISO_WIDTH, sigma_b=0.01)
    assert r.near_one[1] < 0.3, r.near_one
    sw, sb, q, chi = critical_point("tanh", 0.01)
    assert chi == pytest.approx(1.0, abs=1e-6) and q < 0.1
