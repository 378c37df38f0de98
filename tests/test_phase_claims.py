"""The phase-map lesson's claims, measured by the real engine (``core.experiments.phase``)
against mean-field theory (``core.theory``), each tolerance stated:

* where measured chi_1 crosses 1 is within 5 % of the theory's critical sigma_w^2, for tanh
  at sigma_b^2 = 0.01 and 0.05 and for ReLU (2.0);
* measured chi_1 is within 5 % of theory at 3 points on each side of the edge;
* the measured correlation depth scale is within 25 % of xi_c at 2 ordered and 2 chaotic points;
* on a small grid, cells well inside 6 xi_c train (test accuracy well above chance) and cells
  beyond 2 x 6 xi_c do not;
* the batched ensemble computes exactly the nets of the looped reference, and chunks over
  sigma_w^2 join into the one-batch map.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.experiments.phase import at_init_map, phase_theory, trainability
from core.experiments.phase_results import merge_maps, merge_trainability

SIDES = (0.7, 0.8, 0.9, 0.96, 1.04, 1.1, 1.2, 1.3)      # x the critical sigma_w^2


@pytest.mark.parametrize("activation,sigma_b2", [("tanh", 0.01), ("tanh", 0.05),
                                                 ("relu", 0.05)])
def test_critical_sigma_w2_and_chi1_match_theory(activation: str, sigma_b2: float) -> None:
    crit = phase_theory(activation, sigma_b2, [1.0]).critical_sigma_w2
    if activation == "relu":
        assert crit == pytest.approx(2.0, rel=1e-9)
    grid = tuple(crit * np.array(SIDES))
    m = at_init_map(activation, sigma_b2, grid, depth=50, width=256, nets=8, pairs=4, seed=1)
    assert m.critical_sigma_w2_measured == pytest.approx(crit, rel=0.05)      # 5 %
    below, above = m.sigma_w2 < crit, m.sigma_w2 > crit
    assert below.sum() >= 3 and above.sum() >= 3
    np.testing.assert_allclose(m.chi1_measured, m.theory.chi_1, rtol=0.05)   # 5 %
    assert np.all(m.chi1_measured[below] < 1.0) and np.all(m.chi1_measured[above] > 1.0)
    # the map itself: the gain through l layers is chi_1^l (log within 5 % at the bottom)
    ends = m.log_gain[:, -1]
    np.testing.assert_allclose(ends, 50 * np.log(m.theory.chi_1), rtol=0.05, atol=0.15)


def test_correlation_depth_scale_matches_xi_c() -> None:
    """Width 512, 16 nets x 4 pairs per sigma_w^2, 4 independent ensembles (seeds 0-3); the
    measured depth scale is the mean of their fits. The ordered points agree within a few %
    in every ensemble; a chaotic point's single fit scatters by about +-20 % (finite-width
    noise around c*), the mean of four by about +-10 %."""
    sw2 = (1.0, 1.3, 3.0, 4.0)            # ordered, ordered, chaotic, chaotic (sigma_b^2 0.05)
    th = phase_theory("tanh", 0.05, sw2)
    maps = [at_init_map("tanh", 0.05, sw2, depth=100, width=512, nets=16, pairs=4, seed=s,
                        theory_column=th) for s in range(4)]
    assert list(th.c_star[:2]) == [1.0, 1.0] and np.all(th.c_star[2:] < 0.5)
    xi = np.mean([m.xi_c_measured for m in maps], axis=0)
    np.testing.assert_allclose(xi, th.xi_c, rtol=0.25)                      # 25 %
    for m in maps:                                                          # ordered: 10 %
        np.testing.assert_allclose(m.xi_c_measured[:2], th.xi_c[:2], rtol=0.10)
    # and the correlations settle where the theory says (finite width 512: within 0.03)
    np.testing.assert_allclose(maps[0].c_star_measured, th.c_star, atol=0.03)


def test_trainability_follows_six_xi_c() -> None:
    """tanh, sigma_b^2 = 0.05, width 64, 300 SGD steps (lr 0.01, batch 32): cells with depth
    <= 0.6 x 6 xi_c reach test accuracy >= 0.5 (chance 0.1); cells deeper than 2 x 6 xi_c stay
    below 0.2."""
    sw2, depths = (0.6, 1.0, 4.0), (5, 50, 100)
    t = trainability("tanh", 0.05, sw2, depths, steps=300, width=64, lr=0.01, batch_size=32)
    six_xi = 6 * phase_theory("tanh", 0.05, sw2).xi_c          # about 8.9, 21.8, 41.9
    acc = t.test_accuracy
    well_inside = np.asarray(depths)[None, :] <= 0.6 * six_xi[:, None]
    beyond = np.asarray(depths)[None, :] > 2 * six_xi[:, None]
    assert well_inside.sum() >= 3 and beyond.sum() >= 3
    assert np.all(acc[well_inside] >= 0.5), acc
    assert np.all(np.nan_to_num(acc[beyond], nan=0.0) < 0.2), acc


def test_batched_equals_looped_and_chunks_join() -> None:
    sw2 = (0.8, 1.6, 2.4, 3.2, 4.0)
    kw = dict(depth=12, width=16, nets=2, pairs=2, seed=3)
    batched = at_init_map("tanh", 0.05, sw2, **kw)
    looped = at_init_map("tanh", 0.05, sw2, batched=False, **kw)
    np.testing.assert_allclose(batched.log_gain, looped.log_gain, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(batched.decorr, looped.decorr, rtol=1e-10, atol=1e-14)
    parts = [at_init_map("tanh", 0.05, sw2[i:i + 2], **kw) for i in (2, 0, 4)]
    joined = merge_maps(parts)
    np.testing.assert_allclose(joined.log_gain, batched.log_gain, rtol=1e-10, atol=1e-12)
    assert joined.critical_sigma_w2_measured == pytest.approx(
        batched.critical_sigma_w2_measured, rel=1e-9)
    t1 = trainability("tanh", 0.05, (1.0, 2.0), (2, 3), steps=3, width=8, n_train=64,
                      n_test=32)
    t2 = merge_trainability([trainability("tanh", 0.05, (1.0, 2.0), (d,), steps=3, width=8,
                                          n_train=64, n_test=32) for d in (3, 2)])
    np.testing.assert_array_equal(t2.depths, [2, 3])
    np.testing.assert_allclose(t1.test_accuracy, t2.test_accuracy)


def test_a_diverging_cell_is_a_result() -> None:
    """ReLU far in the chaotic phase: the loss overflows; the cell is marked, not a crash."""
    t = trainability("relu", 0.05, (1.0, 60.0), (30,), steps=20, width=16, lr=0.5,
                     n_train=256, n_test=64)
    assert t.diverged[1, 0] and np.isnan(t.test_accuracy[1, 0])
    assert not t.diverged[0, 0] and np.isfinite(t.test_accuracy[0, 0])


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="unknown activation"):
        at_init_map("swish")
    with pytest.raises(ValueError):
        at_init_map(depth=0)
    with pytest.raises(ValueError):
        trainability(depths=(0,))
