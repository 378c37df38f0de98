"""The claims of lessons 5-10 (Orhan; Saxe; Pennington et al.; Duvenaud et al.; residual /
batch norm; RNN vs GRU), each checked by running the real core on a small configuration.
Every tolerance says why. Sources: ../shared/SEEDS.md (seeds 000 and 004).

Slow tests (seconds of training) are marked ``slow``; the whole file is meant to stay
under ~90 s on 2 free cores with one torch thread.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.config import preset
from core.experiments_2 import (
    critical_point,
    deep_linear_seeds,
    jacobian_spectrum,
    log_spread,
    product_spectra,
    spread_vs_depth,
    warp_grid,
)
from core.spectrum import effective_rank
from core.train import run_all

pytestmark = pytest.mark.lesson


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread, as the app runs (and much faster on a busy 2-core machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---- lesson 5: Orhan, degeneracy not vanishing (seed 000) ------------------------------------

ORHAN = {"fold0": "deep-linear-fold0", "fold1": "deep-linear-fold1", "ortho": "deep-linear-ortho"}
ORHAN_SEEDS = 6


def test_deep_linear_seeds_reproduces_core_run():
    # The lesson trains many seeds at once (stacked, one batched matmul per layer). It must
    # give every seed exactly what `gradlab run` gives it. Tolerance: 1e-4 relative on the
    # loss after 30 steps -- float32 batched vs plain matmuls may round differently (in
    # practice they agree to the last digit); a wrong batch order, init or update would be
    # off by far more than that from the first step.
    cfg = preset("deep-linear-fold1").replace(steps=30, every=10)
    vec = deep_linear_seeds(cfg, [0, 2])
    for i, seed in enumerate([0, 2]):
        ref = run_all(cfg.replace(seed=seed))
        ref_loss = np.array([s.loss for s in ref.snapshots])
        ref_test = np.array([s.test_loss for s in ref.snapshots])
        ref_delta = np.array([[la.delta_norm for la in s.layers[:-1]] for s in ref.snapshots])
        assert list(vec.steps) == [s.step for s in ref.snapshots]
        np.testing.assert_allclose(vec.loss[i], ref_loss, rtol=1e-4)
        np.testing.assert_allclose(vec.test_loss[i], ref_test, rtol=1e-4)
        # delta_norm: same quantity as core's Snapshot (batch-mean dC/dz per layer).
        np.testing.assert_allclose(vec.delta_norm[i], ref_delta, rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize("name", sorted(ORHAN.values()))
def test_deep_linear_gradients_do_not_vanish_at_init(name):
    # Orhan's premise (seed 000): "at this point the gradients have not vanished (or
    # exploded), at least initially". So every one of the 30 layers must get a usable
    # gradient at step 0. Tolerance: per-example ||dC/dh_l|| (median of 3 seeds) above 1e-2
    # in every layer and within 1e3 between layers (measured: 0.3-30, a spread of < 100x).
    # Glorot's U[+-1/sqrt(n)] (variance 1/(3n)) would fail this: it shrinks the signal by
    # sqrt(3) per layer, 3^-15 ~ 1e-7 over 30 layers -- a vanishing, not a degeneracy, net.
    r = deep_linear_seeds(preset(name).replace(steps=0), [0, 1, 2])
    g = np.median(r.act_grad_norm[:, 0, :], axis=0)                   # (L,)
    assert g.min() > 1e-2, f"{name}: gradient vanishes at init (min {g.min():.2g})"
    assert g.max() / g.min() < 1e3, f"{name}: per-layer gradients spread {g.max() / g.min():.2g}x"


def test_fold1_is_the_degenerate_init():
    # Deterministic, no training: Fold 1 copies the top half of every matrix onto the bottom
    # half, so every matrix (and the end-to-end map) has rank <= n/2; Ortho's end-to-end map
    # is orthogonal (effective rank = n). Exact up to float rounding.
    n = preset("deep-linear-fold1").width
    r = {k: deep_linear_seeds(preset(v).replace(steps=0), [0]) for k, v in ORHAN.items()}
    sv1 = r["fold1"].e2e_sv[0, 0]
    assert np.sum(sv1 > 1e-6 * sv1[0]) <= n // 2, "Fold 1's end-to-end map is not rank n/2"
    assert effective_rank(r["ortho"].e2e_sv[0, 0]) == pytest.approx(n, rel=1e-6)
    assert effective_rank(sv1) < effective_rank(r["fold0"].e2e_sv[0, 0]) < n


@pytest.fixture(scope="module")
def orhan_runs():
    """The three presets as they are, ORHAN_SEEDS seeds each (the lesson shows 10)."""
    return {k: deep_linear_seeds(preset(v), ORHAN_SEEDS) for k, v in ORHAN.items()}


@pytest.mark.slow
def test_orhan_final_loss_ordering(orhan_runs):
    # Orhan: Ortho trains much better than Fold 0, and Fold 1 trains worse than Fold 0.
    # Tolerance: ordering of the seed means, AND the same ordering in every seed (the three
    # inits of one seed share the teacher and, for Fold 0 / Fold 1, the random draws). The
    # margins are large (measured: 0.03 / 5.5 / 9.7), so every seed is a fair demand; no
    # seed may diverge.
    fin = {k: r.test_loss[:, -1] for k, r in orhan_runs.items()}
    for k, r in orhan_runs.items():
        assert not r.diverged.any(), f"{k}: {r.diverged.sum()} seeds diverged"
    assert fin["ortho"].mean() < fin["fold0"].mean() < fin["fold1"].mean(), \
        {k: v.mean() for k, v in fin.items()}
    assert np.all(fin["ortho"] < fin["fold0"]) and np.all(fin["fold0"] < fin["fold1"]), fin
    # "much better": Ortho at least 10x lower than Fold 0 (measured ~150x).
    assert fin["ortho"].mean() * 10 < fin["fold0"].mean()


def _late_grad(r) -> np.ndarray:
    """Per seed: geometric mean over the second half of training of the gradient w.r.t.
    the activations, summed in quadrature over all layers (per example)."""
    glob = np.sqrt((r.act_grad_norm ** 2).sum(2))            # (S, K)
    k = glob.shape[1]
    return np.exp(np.log(glob[:, k // 2:]).mean(1))          # (S,)


@pytest.mark.slow
def test_orhan_gradient_norms(orhan_runs):
    # Orhan: Fold 1 has the LARGER gradient norm (w.r.t. layer activations) and trains worse;
    # Ortho the SMALLER one and trains better. Measured with our presets: 2nd-half geometric
    # means ~7.8 (Fold 1) vs ~5.9 (Fold 0) vs ~0.55 (Ortho). Tolerances: Fold 1 / Fold 0 >
    # 1.05 on the seed mean and Fold 1 > Fold 0 in at least 4 of 6 seeds (the gap is ~30 %
    # but one seed's own noise is ~15 %); Ortho below Fold 0 by 3x on the mean and in every
    # seed (measured ~10x). At step 0 the norms are NOT ordered this way (Fold 1's median is
    # lower): the claim is about training, as in Orhan's post ("after a few epochs").
    g = {k: _late_grad(r) for k, r in orhan_runs.items()}
    assert g["fold1"].mean() > 1.05 * g["fold0"].mean(), g
    assert np.sum(g["fold1"] > g["fold0"]) >= ORHAN_SEEDS - 2, g
    assert g["ortho"].mean() * 3 < g["fold0"].mean(), g
    assert np.all(g["ortho"] < g["fold0"]), g


@pytest.mark.slow
def test_orhan_effective_rank_tracks_training(orhan_runs):
    # Degeneracy, the lesson's explanation: effective rank of the end-to-end map at the end
    # is ordered like the training result (Ortho > Fold 0 > Fold 1), in every seed. Ortho's
    # ends near the teacher's own effective rank (tolerance 10 %: the fit is ~0.1 % in loss).
    er = {k: np.array([effective_rank(sv) for sv in r.e2e_sv[:, -1]])
          for k, r in orhan_runs.items()}
    assert np.all(er["ortho"] > er["fold0"]) and np.all(er["fold0"] > er["fold1"]), er
    teacher = np.array([effective_rank(t) for t in orhan_runs["ortho"].teacher_sv])
    np.testing.assert_allclose(er["ortho"], teacher, rtol=0.1)


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


# ---- lesson 8: input-space warping (Duvenaud et al.) -----------------------------------------

def test_deep_random_composition_collapses_input_space():
    # Duvenaud et al.: with depth, each input patch is squashed onto one direction. Measured
    # quantity: median over a 21x21 grid of s2/s1 of dh_l/dx (1 = no warping). Tolerances:
    # below 1e-3 of its layer-1 value at layer 32 for 3 seeds (measured: 0.14 -> ~1e-10 or
    # less), and monotone enough that layer 16 is already below layer 4.
    for seed in range(3):
        w = warp_grid(32, hidden=128, act="tanh", gain=3.0, grid_n=21, seed=seed)
        assert w.ratio_median[32] < 1e-3 * w.ratio_median[1], (seed, w.ratio_median)
        assert w.ratio_median[16] < w.ratio_median[4], (seed, w.ratio_median)


def test_input_connected_composition_does_not_collapse():
    # Duvenaud et al.'s fix: feed x to every layer. Tolerance: median s2/s1 at layer 32 stays
    # above 0.02 for 3 seeds (measured 0.1-0.3), i.e. at least 1e3x the plain composition's.
    for seed in range(3):
        ic = warp_grid(32, hidden=128, act="tanh", gain=3.0, input_connected=True,
                       grid_n=21, seed=seed)
        assert ic.ratio_median[32] > 0.02, (seed, ic.ratio_median)


# ---- lesson 9: skip connections and batch norm (seeds 000, 004) ------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residual_and_batchnorm_keep_first_layer_gradient(seed):
    # At initialisation, ||delta^1|| / ||delta^20|| (first / last hidden layer). Measured for
    # seed 0: plain 1.6e-18/0.025, residual 0.15/0.063, batch norm 0.0067/0.021.
    # Tolerances: residual and batch norm within a factor 10 either way (a "small factor":
    # measured 2.4 and 1/3); the plain net below 1e-10 (measured ~1e-16: 20 factors of at
    # most 1/4 times the weights).
    ratios = {}
    for name in ("sigmoid-deep", "residual-deep", "batchnorm-deep"):
        snap = run_all(preset(name).replace(steps=0, seed=seed)).snapshots[0]
        hid = snap.layers[:-1]
        assert len(hid) == 20
        ratios[name] = hid[0].delta_norm / hid[-1].delta_norm
    assert ratios["sigmoid-deep"] < 1e-10, ratios
    for name in ("residual-deep", "batchnorm-deep"):
        assert 0.1 < ratios[name] < 10.0, ratios


# ---- lesson 10: RNN vs GRU through time (seed 004) -------------------------------------------

def _time_ratio(name: str, seed: int) -> float:
    snap = run_all(preset(name).replace(steps=0, seed=seed)).snapshots[0]
    v = np.asarray(snap.time_grad_norms, dtype=np.float64)
    assert v.shape == (100,), v.shape
    return float(v[0] / v[-1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hidden_state_gradient_ratio_at_init(seed):
    # T = 100, H = 64, at initialisation: ||dL/dh_1|| / ||dL/dh_100||. Issue 5's thresholds:
    # keep-biased GRU >= 1e-4 (measured ~0.18-0.20: the path gives ~sigma(4)^99 = 0.17), tanh
    # RNN <= 1e-8 (measured 0 or ~2e-20). Also the honest part of the lesson: the GRU with
    # default init collapses too (<= 1e-8; measured ~3e-22, the gate at ~1/2 gives ~2^-99).
    assert _time_ratio("gru-long", seed) >= 1e-4
    assert _time_ratio("rnn-long", seed) <= 1e-8
    assert _time_ratio("gru-default", seed) <= 1e-8


RECALL_STEPS = 250


@pytest.mark.slow
def test_keep_biased_gru_solves_recall_where_rnn_does_not():
    # T = 100 (the presets' length, not shortened: at T = 50 the RNN solved the task within
    # 200 steps for one of two seeds, so T = 50 would not show the difference). Budget:
    # 250 Adam steps, seed 0. Measured: keep-biased GRU 100 % test accuracy by step 150-250
    # (seeds 0-2); tanh RNN 17-28 % at step 250-300 (seeds 0-2); with Adam the RNN can find
    # the path later (seed 0 reached 100 % at step ~550), so the claim is about a fixed
    # budget. Tolerances: GRU >= 0.9, RNN <= 0.4 (chance is 0.25, 500 test sequences).
    gru = run_all(preset("gru-long").replace(steps=RECALL_STEPS, every=RECALL_STEPS))
    rnn = run_all(preset("rnn-long").replace(steps=RECALL_STEPS, every=RECALL_STEPS))
    assert gru.snapshots[-1].test_accuracy >= 0.9, gru.snapshots[-1].test_accuracy
    assert rnn.snapshots[-1].test_accuracy <= 0.4, rnn.snapshots[-1].test_accuracy
