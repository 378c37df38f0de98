"""core.theory's correlation map and depth scales (Poole et al. 2016; Schoenholz et al. 2017)
against closed forms: the ReLU arc-cosine kernel, erf's arcsine kernel, and the identities
the derivation rests on (c = 1 is a fixed point; chi_c = chi_1 in the ordered phase)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import theory
from core.theory import c_star, chi_1, chi_c, correlation_map, critical_sigma_w, xi_c, xi_grad


@pytest.mark.parametrize("c", [-0.9, -0.3, 0.0, 0.4, 0.8, 0.99])
def test_two_point_means_match_closed_forms(c: float) -> None:
    q = 1.7
    relu = theory.MEAN_FIELD_ACTIVATIONS["relu"][0]
    # E[relu(u1) relu(u2)] = q / (2 pi) (sqrt(1 - c^2) + (pi - arccos c) c)   (Cho & Saul)
    want = q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)
    assert theory._gauss_mean2(relu, relu, q, c, (0.0,)) == pytest.approx(want, rel=1e-9)
    # E[erf(u1) erf(u2)] = (2 / pi) arcsin(2 q c / (1 + 2 q))                 (Williams 1997)
    erf = theory.MEAN_FIELD_ACTIVATIONS["erf"][0]
    want = 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q))
    assert theory._gauss_mean2(erf, erf, q, c) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_correlation_map_fixed_points() -> None:
    for act in ("tanh", "hardtanh", "erf", "relu", "sigmoid"):
        assert correlation_map(act, 1.3, 0.3, 1.0) == pytest.approx(1.0, abs=1e-12)
    # chaotic tanh: c* < 1 is a fixed point and attracts (slope chi_c < 1)
    sw, sb = math.sqrt(3.0), math.sqrt(0.05)
    cs = c_star("tanh", sw, sb)
    assert 0.2 < cs < 0.4
    assert correlation_map("tanh", sw, sb, cs) == pytest.approx(cs, abs=1e-9)
    h = 1e-5
    slope = (correlation_map("tanh", sw, sb, cs + h) - correlation_map("tanh", sw, sb, cs - h)) \
        / (2 * h)
    assert chi_c("tanh", sw, sb) == pytest.approx(slope, rel=1e-5)   # Price's theorem
    assert chi_c("tanh", sw, sb) < 1.0 < chi_1("tanh", sw, sb)


def test_depth_scales_in_the_ordered_phase_and_at_the_edge() -> None:
    sb = math.sqrt(0.05)
    for sw2 in (0.5, 1.0, 1.5):
        sw = math.sqrt(sw2)
        assert c_star("tanh", sw, sb) == 1.0
        assert chi_c("tanh", sw, sb) == pytest.approx(chi_1("tanh", sw, sb), rel=1e-9)
        assert xi_c("tanh", sw, sb) == pytest.approx(-1 / math.log(chi_1("tanh", sw, sb)))
        assert xi_grad("tanh", sw, sb) == pytest.approx(xi_c("tanh", sw, sb), rel=1e-9)
    crit = critical_sigma_w("tanh", sb)
    assert crit ** 2 == pytest.approx(1.761, abs=1e-3)      # the number
    assert xi_c("tanh", crit * 0.999, sb) > 200 and xi_c("tanh", crit * 1.001, sb) > 200
    # ReLU with sigma_b > 0: chi_1 = sigma_w^2 / 2, so xi_c = -1 / ln(sigma_w^2 / 2) below 2
    assert xi_c("relu", 1.0, 0.2) == pytest.approx(1 / math.log(2.0), rel=1e-9)
    assert xi_c("relu", 1.8, 0.2) == math.inf              # q* -> inf: no chaotic c* < 1
    # Schoenholz et al.'s Fig. 1 shape: xi_c peaks at the critical point
    xs = [xi_c("tanh", math.sqrt(v), sb) for v in np.linspace(1.0, 4.0, 13)]
    peak = int(np.argmax(xs))
    assert 0 < peak < 12 and abs(np.linspace(1.0, 4.0, 13)[peak] - crit ** 2) < 0.3
