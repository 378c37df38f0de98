"""The claims of lesson 5 (Orhan: degeneracy, not vanishing): three inits of a 30-layer
deep linear net, trained for several seeds by ``core.experiments.deep_linear``. Each is
checked by running the real core; every tolerance says why.

Published numbers: ../shared/SEEDS.md (seed 000). Slow tests (seconds of training) are
marked ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.experiments.deep_linear import deep_linear_seeds
from core.presets import preset
from core.spectrum import effective_rank
from core.train import run_all
from tests.lesson_claims_helpers import LESSON, one_torch_thread  # noqa: F401 - autouse

pytestmark = LESSON


# ---- lesson 5: Orhan, degeneracy not vanishing (seed 000) ------------------------------------

ORHAN = {"fold0": "deep-linear-fold0", "fold1": "deep-linear-fold1", "ortho": "deep-linear-ortho"}
ORHAN_SEEDS = 6


def test_deep_linear_seeds_reproduces_core_run():
    # The lesson runs core.train.run once per seed (with its own probe and cadences). It
    # must give every seed exactly what `gradlab run` gives it. Tolerance: 1e-4 relative on
    # the loss after 30 steps -- the study evaluates the test set at every snapshot, the
    # CLI every eval_every steps, which must not move a number (in practice they agree to
    # the last digit); a wrong batch order, init or update would be off by far more.
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
