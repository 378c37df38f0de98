"""core.theory: Nielsen's chain, the |w sigma'| >= 1 window, mean-field q* / chi_1, and the
variance-propagation one-liners."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.theory import (
    MEAN_FIELD_ACTIVATIONS,
    chain_forward,
    chi_1,
    critical_sigma_w,
    exploding_chain_biases,
    forward_variance_gain,
    he_gamma,
    length_map,
    q_star,
    sigmoid,
    sigmoid_prime,
    window_width,
    window_width_max,
    xavier_gamma,
)

# ---- Nielsen's chain ---------------------------------------------------------------------------


def test_sigmoid_prime_at_most_a_quarter() -> None:
    z = np.linspace(-50, 50, 100001)
    sp = sigmoid_prime(z)
    assert np.all(sp <= 0.25) and sp.max() == pytest.approx(0.25)
    assert sigmoid_prime(0.0) == 0.25
    assert sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0          # no overflow
    np.testing.assert_allclose(sigmoid(z[::1000]), 1 / (1 + np.exp(-z[::1000])), rtol=1e-12)


def test_exploding_chain_factors_are_25() -> None:
    w = [100.0] * 4
    b = exploding_chain_biases(w, a0=0.7)
    np.testing.assert_allclose(b, [-70.0, -50.0, -50.0, -50.0])
    out = chain_forward(0.7, w, b)
    np.testing.assert_allclose(out["z"], 0.0, atol=1e-12)
    np.testing.assert_allclose(out["factors"], 25.0)
    assert out["grad_b1"] == pytest.approx(0.25 * 25.0 ** 3)


def test_chain_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    w, b, x = rng.normal(scale=4.0, size=5), rng.normal(size=5), 0.3

    def cost(b1: float) -> float:
        bb = b.copy()
        bb[0] = b1
        return 0.5 * chain_forward(x, w, bb)["a"][-1] ** 2     # C = a_L^2 / 2

    out = chain_forward(x, w, b, dc_da_last=chain_forward(x, w, b)["a"][-1])
    h = 1e-5
    fd = (cost(b[0] + h) - cost(b[0] - h)) / (2 * h)
    assert out["grad_b1"] == pytest.approx(fd, rel=1e-6)
    # vanishing: every factor is at most |w| / 4
    assert np.all(np.abs(out["factors"]) <= np.abs(w) / 4 + 1e-15)


# ---- the window where |w sigma'(w a + b)| >= 1 ---------------------------------------------------


def test_window_width_closed_form_matches_brute_force() -> None:
    a = np.linspace(-3.0, 3.0, 600001)                    # step 1e-5
    for w, b in [(4.5, 0.0), (6.9, 1.3), (-8.0, -2.0), (20.0, 5.0), (100.0, -30.0)]:
        inside = np.abs(w * sigmoid_prime(w * a + b)) >= 1.0
        assert window_width(w) == pytest.approx(inside.sum() * (a[1] - a[0]), abs=3e-5)
    assert window_width(3.9) == 0.0 and window_width(4.0) == 0.0
    ws = np.array([1.0, 5.0, 10.0])
    np.testing.assert_allclose(window_width(ws), [window_width(x) for x in ws])


def test_window_width_max() -> None:
    w_star, width = window_width_max()
    assert w_star == pytest.approx(6.9, abs=0.1)
    assert width == pytest.approx(0.45, abs=0.01)
    grid = np.linspace(4.0, 50.0, 100001)
    assert np.max(window_width(grid)) <= width + 1e-12


# ---- mean field --------------------------------------------------------------------------------


def test_criticality_points() -> None:
    assert chi_1("tanh", 1.0, 0.0) == pytest.approx(1.0, abs=1e-6)
    assert chi_1("relu", math.sqrt(2.0), 0.0) == pytest.approx(1.0, abs=1e-9)
    assert chi_1("linear", 1.0, 0.0) == pytest.approx(1.0, abs=1e-12)
    assert critical_sigma_w("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    assert critical_sigma_w("relu", 0.0) == pytest.approx(math.sqrt(2.0), abs=1e-6)
    assert chi_1("tanh", 0.8, 0.0) < 1.0 < chi_1("tanh", 1.5, 0.0)   # ordered / chaotic
    # with bias noise the edge of chaos moves to larger sigma_w (Poole et al. Fig. 1)
    crit = [critical_sigma_w("tanh", sb) for sb in (0.0, 0.1, 0.3, 0.5)]
    assert np.all(np.diff(crit) > 0)
    assert chi_1("tanh", crit[2], 0.3) == pytest.approx(1.0, abs=1e-6)


def test_q_star_is_a_fixed_point() -> None:
    for act in ("tanh", "hardtanh", "sigmoid", "scaled_sigmoid", "softsign", "relu"):
        q = q_star(act, 1.2, 0.4)
        assert 0 < q < math.inf
        assert length_map(act, 1.2, 0.4, q) == pytest.approx(q, rel=1e-9)
    assert q_star("tanh", 0.9, 0.0) == 0.0                  # ordered, no bias: signal dies
    assert q_star("relu", 1.2, 0.5) == pytest.approx(0.25 / (1 - 1.44 / 2), rel=1e-9)
    assert q_star("relu", 1.6, 0.0) == math.inf             # relu above sigma_w^2 = 2 explodes


def test_piecewise_activations_match_closed_forms() -> None:
    # hardtanh: E[phi'(sqrt(q) z)^2] = P(|z| < 1/sqrt(q)) = erf(1/sqrt(2q))
    q = q_star("hardtanh", 1.5, 0.3)
    want = 1.5 ** 2 * math.erf(1.0 / math.sqrt(2.0 * q))
    assert chi_1("hardtanh", 1.5, 0.3) == pytest.approx(want, rel=1e-10)
    for act in MEAN_FIELD_ACTIVATIONS:                      # every listed activation evaluates
        assert math.isfinite(chi_1(act, 0.9, 0.2))
    with pytest.raises(ValueError):
        chi_1("swish", 1.0, 0.0)


# ---- variance propagation ----------------------------------------------------------------------


def test_variance_propagation() -> None:
    assert forward_variance_gain(100, 0.01) == pytest.approx(1.0)
    assert forward_variance_gain(256, xavier_gamma(256, 256)) == pytest.approx(1.0)
    assert xavier_gamma(100, 300) == pytest.approx(0.005)
    assert he_gamma(50) == pytest.approx(0.04)
    assert forward_variance_gain(50, he_gamma(50)) == pytest.approx(2.0)   # relu halves it back
