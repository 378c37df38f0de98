"""The claims of lessons 1 and 2 (Nielsen, ch. 5): the speed of learning per layer at
initialisation and during training, accuracy vs depth, and the chain of one-neuron layers
(|sigma'| <= 1/4, the 0.45-wide window). Each is checked by running the real core; every
tolerance says why.

Published numbers: ../shared/SEEDS.md (seed 003).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.presets import preset
from core.train import run_all
from tests.lesson_claims_helpers import LESSON, one_torch_thread  # noqa: F401 - autouse

pytestmark = LESSON


# ---- lesson 1: Nielsen's speed of learning ---------------------------------------------------

NIELSEN = {2: (0.07, 0.31), 3: (0.012, 0.060, 0.283), 4: (0.003, 0.017, 0.070, 0.285)}
SEEDS = range(30)
#: The one tolerance for Nielsen's published speeds (and the first/last ratio): the published
#: value lies inside our 5th-95th percentile over SEEDS. Why: his numbers are ONE draw of the
#: init on his first 1000 of 50,000 images; ours are the first 1000 of a fixed 4,000-image
#: MNIST split, so a published value is one more draw from (about) our distribution. Measured
#: over these 30 seeds, the published speeds sit at our 37th-80th percentiles and the
#: first/last ratio of nielsen-4 (1/95) at the 90th. The 5-95 band is x1.6-2.6 wide, so a
#: wrong set-up (a softmax cost: x5-8; W ~ N(0,1) instead of N(0,1)/sqrt(n_in): x2.8-35)
#: falls outside it.
BAND = (5, 95)


def _init_speeds(depth: int, seed: int) -> list[float]:
    snap = run_all(preset(f"nielsen-{depth}").replace(steps=0, seed=seed)).snapshots[0]
    assert snap.step == 0 and len(snap.layers) == depth + 1
    return [la.delta_norm for la in snap.layers[:-1]]


@pytest.fixture(scope="module")
def nielsen_speeds() -> dict[int, np.ndarray]:
    """(seeds, layers) array of ||delta^l|| at initialisation for nielsen-2/3/4 (~2 s)."""
    return {d: np.array([_init_speeds(d, s) for s in SEEDS]) for d in NIELSEN}


def _inside_band(ours: np.ndarray, published: float) -> bool:
    lo, hi = np.percentile(ours, BAND)
    return bool(lo <= published <= hi)


def test_the_lesson_page_shows_the_published_speeds():
    from app.lessons import l01_nielsen_speed as l01

    assert l01.NIELSEN_SPEEDS == NIELSEN


@pytest.mark.parametrize("depth", sorted(NIELSEN))
def test_nielsen_speed_increases_with_layer_index(nielsen_speeds, depth):
    # Exact claim (no tolerance): every layer learns faster than the one below it, for
    # every one of the seeds, not only on average.
    for seed, v in zip(SEEDS, nielsen_speeds[depth], strict=True):
        assert np.all(np.diff(v) > 0), f"nielsen-{depth}, seed {seed}: speeds {v} not increasing"


@pytest.mark.parametrize("depth", sorted(NIELSEN))
def test_nielsen_speed_magnitudes_match_published(nielsen_speeds, depth):
    # Tolerance: BAND (see above), per layer.
    for j, published in enumerate(NIELSEN[depth]):
        ours = nielsen_speeds[depth][:, j]
        assert _inside_band(ours, published), (
            f"nielsen-{depth} layer {j + 1}: published {published} outside our "
            f"{BAND} percentiles {np.percentile(ours, BAND)}")


def test_nielsen_first_layer_about_100x_slower(nielsen_speeds):
    # Published: nielsen-4 first/last = 0.003 / 0.285 ~ 1/95. Tolerance: BAND, on the ratio.
    ratio = nielsen_speeds[4][:, 0] / nielsen_speeds[4][:, -1]
    assert _inside_band(ratio, 0.003 / 0.285), np.percentile(ratio, BAND)


@pytest.mark.slow
def test_depth_does_not_help_accuracy():
    """Nielsen (30 epochs on 50,000 images): 96.48 / 96.90 / 96.57 / 96.53 % for 1-4 hidden
    layers, depth does not help. Lesson 1 runs the same nets on our 4000 images and says the
    deeper nets are *behind*. Checked with the page's own configs at its "1 epoch" setting
    (400 steps of mini-batches of 10, seed 0; ~3 s). Measured, seeds 0-4: 79-84 % / 26-54 %
    / 9-11 % / 8-12 % (at 10 epochs, seed 0: 91.6 / 90.6 / 79.7 / 9.2). Tolerances: the
    1-layer net learns (>= 70 %) and leads every deeper net by >= 10 points (measured >= 25);
    each extra layer is no better than the one before (3 points of slack: the two deepest
    nets both sit at chance, 10 %, where one batch of noise decides their order)."""
    from app.lessons import l01_nielsen_speed as l01

    acc = {d: 100 * run_all(l01.accuracy_config(d, epochs=1)).snapshots[-1].test_accuracy
           for d in (1, 2, 3, 4)}
    assert acc[1] >= 70, acc
    assert all(acc[1] - acc[d] >= 10 for d in (2, 3, 4)), acc
    assert all(acc[d + 1] <= acc[d] + 3 for d in (1, 2, 3)), acc


@pytest.mark.slow
def test_nielsen_speeds_stay_ordered_during_training():
    # Nielsen: during full-batch training the speeds drop fast and stay ordered. 60 epochs
    # of nielsen-4 (of his 500) are enough for the drop; exact ordering at every snapshot.
    res = run_all(preset("nielsen-4").replace(steps=60, every=20))
    v = np.array([[la.delta_norm for la in s.layers[:-1]] for s in res.snapshots])  # (K, 4)
    assert res.diverged_at is None
    assert np.all(np.diff(v, axis=1) > 0), v
    # "drop fast": every layer's speed falls by at least 10x within 60 epochs (measured: ~50x+)
    assert np.all(v[-1] < v[0] / 10), v


# ---- lesson 2: the chain of one-neuron layers (core.theory) ---------------------------------

def test_chain_product_matches_autograd():
    # dC/db_1 = sigma'(z1) w2 sigma'(z2) w3 sigma'(z3) w4 sigma'(z4) dC/da4, checked against
    # torch autograd in float64 on random chains. Tolerance 1e-10 relative: both are exact
    # up to rounding.
    from core.theory import chain_forward

    rng = np.random.default_rng(0)
    for _ in range(20):
        x, w, b = rng.uniform(0, 1), rng.normal(0, 3, 4), rng.normal(0, 3, 4)
        out = chain_forward(x, w, b, dc_da_last=1.0)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        a = torch.tensor(x, dtype=torch.float64)
        for j in range(4):
            a = torch.sigmoid(float(w[j]) * a + bt[j])
        a.backward()                                   # C = a_4, so dC/da_4 = 1
        np.testing.assert_allclose(out["grad_b"], bt.grad.numpy(), rtol=1e-10)
        # and every factor obeys |w sigma'(z)| <= |w| / 4 (exact bound)
        assert np.all(np.abs(out["factors"]) <= np.abs(w) / 4 + 1e-15)


def test_chain_explodes_with_nielsens_setting():
    # w = 100 and b_j = -100 a_{j-1}: every z_j = 0, so every factor is exactly 100/4 = 25
    # and dC/db_1 / dC/db_4 = 25^3 (tolerance: float rounding only).
    from core.theory import chain_forward, exploding_chain_biases

    w = [100.0] * 4
    out = chain_forward(0.7, w, exploding_chain_biases(w, 0.7))
    np.testing.assert_allclose(out["z"], 0.0, atol=1e-12)
    np.testing.assert_allclose(out["factors"], 25.0, rtol=1e-12)
    assert out["grad_b"][0] / out["grad_b"][-1] == pytest.approx(25.0 ** 3, rel=1e-12)


def test_input_window_is_at_most_045_wide_near_w_69():
    # Nielsen: |w sigma'(wa + b)| >= 1 needs |w| >= 4 and holds on an interval of inputs at
    # most ~0.45 wide, widest near |w| ~ 6.9. Tolerances: the published numbers are given to
    # 2 digits, so +-0.05 on |w| and +-0.005 on the width (we get 6.894 and 0.4477).
    from core.theory import sigmoid_prime, window_width, window_width_max

    w_star, width = window_width_max()
    assert abs(w_star - 6.9) < 0.05 and abs(width - 0.45) < 0.005
    assert window_width(3.99) == 0.0
    # the closed form agrees with a brute-force count on a fine grid (+- 2 grid steps)
    for w in (4.5, 6.9, 20.0):
        a = np.linspace(-2, 2, 400_001)
        inside = np.abs(w * np.asarray(sigmoid_prime(w * a - w / 2))) >= 1
        assert abs(inside.sum() * (a[1] - a[0]) - window_width(w)) < 2e-5
