"""The claims of lesson 3 (Glorot & Bengio 2010): saturation of sigmoid and tanh layers,
normalised initialisation, cross-entropy vs the quadratic cost. Each is checked by running
the real core; every tolerance says why.

Published numbers: ../shared/SEEDS.md (seed 001).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from core.config import from_dict
from core.experiments.saturation import (
    activation_percentiles,
    first_crossings,
    hist_quantile,
    late_test_error,
    layer_means,
    saturation_order,
    trailing_mean,
)
from core.experiments.variance import layer_variances
from core.presets import preset
from core.train import run_all
from tests.lesson_claims_helpers import LESSON, one_torch_thread  # noqa: F401 - autouse

pytestmark = LESSON


# ---- lesson 3: Glorot & Bengio ---------------------------------------------------------------

@pytest.mark.slow
def test_sigmoid_top_hidden_layer_is_driven_to_zero_early():
    """Glorot & Bengio: "very quickly at the beginning, all the sigmoid activation values of
    the last hidden layer are pushed to their lower saturation value of 0. Inversely, the
    others layers have a mean activation value that is above 0.5, and decreasing as we go
    from the output layer to the input layer." Lesson 3's net (preset glorot-sigmoid, the
    page's longest run: 3000 SGD steps of batch 10), seed 0, snapshots every 300 (~5 s).

    Measured (seeds 0-4): the top layer's mean 0.50 at step 0, 0.25-0.26 at step 300,
    0.053-0.054 at step 3000, falling at every snapshot; at the end the layers below are at
    0.50 / 0.53-0.54 / 0.68-0.69 (layers 1 / 2 / 3); test accuracy 9-10 % (chance).
    Tolerances: "early": below 0.35 by step 300 (0.1 above the measured); "to 0": below 0.1
    at the end (a fifth of its start; about twice the measured); the lower layers ordered
    3 > 2 > 1 with layer 1 within 0.03 of 0.5 (measured gaps 0.03 and 0.15); below 30 %
    accuracy."""
    res = run_all(preset("glorot-sigmoid").replace(every=300))
    means = np.array([[la.activation_mean for la in s.layers[:-1]] for s in res.snapshots])
    steps = [s.step for s in res.snapshots]
    top = means[:, -1]
    assert steps[1] == 300 and steps[-1] == 3000
    assert top[1] < 0.35, top
    assert top[-1] < 0.1, top
    assert np.all(np.diff(top) < 0), top
    below = means[-1, :-1]
    assert below[2] > below[1] > below[0] and abs(below[0] - 0.5) < 0.03, below
    assert res.snapshots[-1].test_accuracy < 0.30


@pytest.mark.slow
def test_softsign_settles_unsaturated_around_04_to_08():
    """Lesson 3: "Softsign. Glorot: no cascade; activations settle in the non-linear but
    unsaturated region (|a| around 0.4-0.8): compare the bottom row", whose statistic is the
    98th percentile of |a| per layer. The page's softsign net (glorot-sigmoid's net with
    softsign = preset glorot-softsign, 3000 SGD steps of batch 10), seed 0, snapshots every
    300 (~5 s). Measured (seeds 0-4): every layer's 98th percentile at step 0 is 0.07-0.33
    (below the band: the activations climb into it); over steps 2400-3000 it is 0.52-0.70;
    no unit ever saturates (|a| > 0.97). The tanh net of the same run ends at 0.96-0.99.
    Tolerances: the band itself, on the mean of the last three snapshots (one batch of 10
    images per snapshot is a noisy sample: +-0.05); saturation below 1 % at every snapshot."""
    assert preset("glorot-softsign") == preset("glorot-sigmoid").replace(activation="softsign")
    res = run_all(preset("glorot-softsign").replace(every=300))
    steps, p98 = activation_percentiles(res)
    assert steps[-1] == 3000 and p98.shape == (11, 4)
    assert np.all(p98[0] < 0.4), p98[0]
    settled = p98[-3:].mean(0)
    assert np.all((settled >= 0.4) & (settled <= 0.8)), settled
    sat = np.array([[la.saturation for la in s.layers[:-1]] for s in res.snapshots])
    assert np.all(sat < 0.01), sat


@pytest.mark.slow
def test_tanh_first_layer_saturates_last_on_mnist_at_the_papers_size():
    """Glorot & Bengio (Figure 3, Shapeset-3x2): tanh + standard init, the layers saturate one
    after another, layer 1 first. Lesson 3 says that on our MNIST, at the paper's size
    (preset glorot-tanh-1000: 5 x 1000, SGD batch 10, lr 0.1), it goes the other way: layer 1
    starts highest but trails every other layer during training. Checked on the first 1000
    of the preset's 3000 steps (seed 0), with the engine's own statistic (98th percentile of
    |a| from each snapshot's histogram of one training batch).

    Tolerances: at step 0 the percentiles fall strictly from layer 1 to layer 5 (exact;
    measured 0.40 / 0.22 / 0.17 / 0.11 / 0.06, same order for seeds 0-2). Averaged over the
    snapshots at steps 600-1000 (5 snapshots, to damp the one-batch noise of about +-0.05),
    layer 1 is the lowest, at least 0.04 below every other layer (measured gaps 0.100, 0.087,
    0.079, 0.068 for seeds 0-3: the margin is ~60 % of the smallest). The first layers whose
    3-snapshot mean reaches 0.7 are layers 3 or 4 in seeds 0-3; layer 1 never does by step
    1000. Runtime ~22 s on one idle core. Exploration (exact quantiles on 300 fixed images,
    3000-5000 steps): lr 0.1 (seeds 0-2) saturates layers 3 and 4 first and layer 1 last
    (never reaching 0.9); lr 0.03 goes top-down; lr 0.2 layers 3, 2 first; lr 0.3 saturates
    every layer within ~50 steps and stops learning.
    """
    cfg = preset("glorot-tanh-1000").replace(steps=1000, every=100, n_test=0,
                                             spectrum_every=1000)
    res = run_all(cfg)
    assert res.diverged_at is None
    steps, p98 = activation_percentiles(res)
    assert p98.shape == (11, 5)
    assert np.all(np.diff(p98[0]) < 0), p98[0]
    late = p98[steps >= 600].mean(0)
    assert np.argmin(late) == 0, late
    assert np.all(late[1:] - late[0] >= 0.04), late
    # Glorot's cascade would put layer 1 first: whatever crossed 0.7 by now, layer 1 did not
    # lead (measured: none or upper layers only).
    order = saturation_order(first_crossings(res, 0.7, window=3))
    assert not order or order[0] != 1, order


def test_saturation_order_helpers():
    # saturation_order: by step, ties to the lower layer, never-crossed layers left out.
    assert saturation_order([300, None, 100, 100]) == [3, 4, 1]
    assert saturation_order([None, None]) == []


def test_normalised_init_keeps_gradient_spread():
    # Glorot & Bengio at initialisation, 5 tanh layers of 256: std of the back-propagated
    # gradient dC/dz in layer 1 over layer 5. Measured (seeds 0-2): standard 0.10-0.11,
    # normalised 0.68-0.73. Tolerances: normalised within a factor 2 of equal (0.5..2);
    # standard shrinks towards the input by more than x5 and monotonically.
    std = np.sqrt(layer_variances(preset("glorot-standard-tanh")).backward_z)
    nrm = np.sqrt(layer_variances(preset("glorot-normalized-tanh")).backward_z)
    assert 0.5 < nrm[0] / nrm[-1] < 2.0, nrm
    assert std[0] / std[-1] < 0.2, std
    assert np.all(np.diff(std) > 0), std


@pytest.mark.slow
def test_quadratic_cost_plateaus_where_cross_entropy_learns():
    # Same net (4 tanh layers of 64, standard init, SGD batch 10, lr 0.1, 1000 images),
    # 300 steps, two seeds. Measured test accuracy at step 300: cross-entropy 0.75-0.82,
    # quadratic 0.14-0.36. Tolerances: CE >= 0.65, quadratic <= 0.50, gap >= 0.25.
    base = dict(depth=4, width=64, activation="tanh", init="glorot_standard", dataset="mnist",
                n_train=1000, n_test=500, lr=0.1, batch_size=10, steps=300, every=100)
    for seed in (0, 1):
        ce = run_all(from_dict(dict(base, loss="softmax_ce", seed=seed))).snapshots[-1]
        qu = run_all(from_dict(dict(base, loss="quadratic", seed=seed))).snapshots[-1]
        assert ce.test_accuracy >= 0.65, (seed, ce.test_accuracy)
        assert qu.test_accuracy <= 0.50, (seed, qu.test_accuracy)
        assert ce.test_accuracy - qu.test_accuracy >= 0.25


def test_hist_quantile_matches_numpy():
    # The 98th percentile of |a| read from a fixed-bin histogram (lesson 3's tanh plot) is
    # within one bin width (2/40 = 0.05) of NumPy's exact percentile.
    rng = np.random.default_rng(0)
    a = np.tanh(rng.normal(0, 0.8, 5000))
    edges = np.linspace(-1, 1, 42)
    counts, _ = np.histogram(a, edges)
    got = hist_quantile(counts, edges, 0.98, absolute=True)
    assert abs(got - np.quantile(np.abs(a), 0.98)) < 0.05
    assert abs(hist_quantile(counts, edges, 0.5) - np.quantile(a, 0.5)) < 0.05


# ---- issue 17: Glorot & Bengio on their own data (Shapeset-3x2, 5 x 1000) -------------------

def _at_init(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per hidden layer at step 0 of a Shapeset preset: (activation std, |dC/db|)."""
    from dataclasses import replace

    from core.train import run

    cfg = replace(preset(name), steps=0, seed=seed)
    snap = next(iter(run(cfg)))
    hidden = snap.layers[:-1]
    return (np.array([la.activation_std for la in hidden]),
            np.array([la.delta_norm for la in hidden]))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_shapeset_figs_6_7_standard_init_shrinks_normalised_keeps(seed: int):
    """Glorot & Bengio Figs. 6-7 at the paper's conditions (5 x 1000 tanh, Shapeset-3x2,
    batch 10), at initialisation: with standard init U[+-1/sqrt(n)] the activations shrink
    layer after layer going up and the back-propagated gradients shrink going down towards
    the input; with normalised init both keep about the same spread in every layer.

    Measured (seed 0): standard activation std 0.326 / 0.184 / 0.108 / 0.063 / 0.036
    (layers 1-5, ratio 9.0), |dC/db| 0.0060 ... 0.0543 (layer 5 / layer 1 = 9.0);
    normalised std 0.48 ... 0.29 (ratio 1.6), |dC/db| 0.161 ... 0.231 (max/min 1.4).
    Tolerances: standard, both ratios >= 4 and monotone (theory: each layer multiplies by
    about 1/sqrt(3) ~ 0.58, so 5 layers ~ 9x); normalised, both max/min <= 2.2 (one batch
    of 10 images measures the spread, hence the slack)."""
    std_s, d_s = _at_init("shapeset-tanh-1000", seed)
    std_n, d_n = _at_init("shapeset-tanh-1000-normalized", seed)
    assert np.all(np.diff(std_s) < 0) and std_s[0] / std_s[-1] >= 4
    assert np.all(np.diff(d_s) > 0) and d_s[-1] / d_s[0] >= 4
    assert std_n.max() / std_n.min() <= 2.2
    assert d_n.max() / d_n.min() <= 2.2


# ---- issue 17: Figures 2-4 and Table 1 on Shapeset, at a quarter of the paper's width -------
#
# The paper's conditions (Shapeset-3x2 streamed in fresh batches of 10, 5 hidden layers,
# standard init U[+-1/sqrt(n)], the presets' learning rates) at width 250 instead of 1000,
# for 6000 steps: a quarter of the width keeps every layer's initial spread (the standard
# init scales with fan-in only) and costs ~1/10 of the time (each net ~10 s on one idle
# core; the four together ~45 s). Lesson 3 runs the same presets at the full width.

SMALL = dict(width=250, steps=6000, every=100, eval_every=500, n_test=1000,
             spectrum_every=1_000_000)


@functools.cache
def _small(name: str, seed: int = 0):
    """A Shapeset preset at the small size above (cached: several claims read one run)."""
    return run_all(preset(name).replace(seed=seed, **SMALL))


def _late_error(res) -> float:
    """Test error (%) averaged over the evaluations from step 3000 on (7 of them, every
    500 steps on the same 1000 images: one evaluation swings by 2-3 points), as lesson 3
    reads it."""
    err = late_test_error(res)
    assert err is not None and res.snapshots[-1].step == 6000
    return err


@pytest.mark.slow
def test_shapeset_fig2_sigmoid_top_layer_driven_to_zero_early_and_stays():
    """Glorot & Bengio Fig. 2: with sigmoid and standard init, the top hidden layer's
    activations are pushed to 0 very early, the other layers stay above 0.5 (higher towards
    the output), and learning sits on a plateau (the exit comes much later in the paper).

    Measured (seed 0, SMALL): top-layer mean 0.51 at step 0, 0.02 at step 500, 0.01 at the
    end; layers 1-4 end at 0.50 / 0.51 / 0.60 / 0.83; late test error 89.3 % (chance 88.9).
    Seed 1: 0.51, 0.02, 0.00; 0.50 / 0.52 / 0.60 / 0.83; 89.2 %. Tolerances: step 0 within
    0.05 of 0.5 (sigmoid of a zero-mean pre-activation); below 0.1 by step 500 (5x the
    measured) and at every later snapshot (the plateau; the page says the exit is not
    reached); layers 1-4 above 0.45 and non-decreasing towards the output (0.01 slack for
    one batch's noise); late error >= 85 %."""
    res = _small("shapeset-sigmoid-1000")
    steps, means = layer_means(res)
    top = means[:, -1]
    assert abs(top[0] - 0.5) < 0.05, top[0]
    assert np.all(top[steps >= 500] < 0.1), top
    below = trailing_mean(means, 3)[:-1]
    assert np.all(below > 0.45) and np.all(np.diff(below) >= -0.01), below
    assert _late_error(res) >= 85.0


@pytest.mark.slow
def test_shapeset_fig3_tanh_crossing_order_is_layer_1_first():
    """Glorot & Bengio Fig. 3: with tanh and standard init the 98th percentiles of |a|
    saturate layer after layer, layer 1 first. The order of the layers' first crossings of
    0.9 (3-snapshot mean, as the lesson reads it), whichever way it comes out, is asserted
    here and written in lesson 3: **[1]** -- layer 1 first, and within 6000 steps only
    layer 1; the others climb in order behind it (the start of the cascade, not all of it).

    Measured (SMALL): order [1] for seeds 0 and 1, layer 1 crossing at step 3100 and 3000
    (seed 2, 8000 steps: 2300); at the full width (lesson 3's preset, seed 0) 4350. Mean of
    the last 10 snapshots (steps 5100-6000), layers 1-5: 0.97 / 0.40 / 0.30 / 0.23 / 0.18
    (seed 0), 0.96 / 0.38 / 0.30 / 0.24 / 0.20 (seed 1). Tolerances: the order exactly;
    layer 1's crossing within steps 1500-5000; at the end layer 1 >= 0.9, layers 2-5 below
    0.6 (measured <= 0.40) and strictly falling from layer to layer (measured gaps >= 0.04;
    seed 0 is the one run here, so the gaps are deterministic)."""
    res = _small("shapeset-tanh-1000")
    cross = first_crossings(res, 0.9, window=3)
    assert saturation_order(cross) == [1], cross
    assert 1500 <= cross[0] <= 5000, cross
    _, p98 = activation_percentiles(res)
    end = trailing_mean(p98, 10)
    assert end[0] >= 0.9 and np.all(end[1:] < 0.6), end
    assert np.all(np.diff(end) < 0), end


@pytest.mark.slow
def test_shapeset_fig4_softsign_no_layer_saturates_in_the_same_budget():
    """Glorot & Bengio Figs. 3-4: with softsign no cascade; the activations settle in the
    knees (non-linear, unsaturated). Same net, init, budget and statistic as the tanh test
    above, where layer 1 saturates by step ~3000.

    Measured (seed 0, SMALL): the highest 3-snapshot mean of the 98th percentile per layer
    0.77 / 0.59 / 0.39 / 0.25 / 0.20; at the end layer 1 at 0.75 (in the knees), layers 2-5
    still climbing (0.57 / 0.37 / 0.24 / 0.17). Seed 1: highest 0.77 / 0.61 / 0.41 / 0.30 /
    0.20, layer 1 at 0.76 at the end. Tolerances: no layer's
    3-snapshot mean ever reaches 0.85 (0.08 above the measured highest; the tanh net passes
    0.9); layer 1 ends in the knees, 0.4-0.8 (the page says the upper layers have not
    settled yet at this length)."""
    res = _small("shapeset-softsign-1000")
    assert saturation_order(first_crossings(res, 0.85, window=3)) == []
    _, p98 = activation_percentiles(res)
    assert 0.4 <= trailing_mean(p98, 10)[0] <= 0.8, p98[-10:]
    tanh = _small("shapeset-tanh-1000")
    assert saturation_order(first_crossings(tanh, 0.9, window=3)), "the tanh contrast"


@pytest.mark.slow
def test_shapeset_table1_direction_normalised_init_helps_sigmoid_worst():
    """Glorot & Bengio Table 1 (Shapeset-3x2 test error): tanh + normalised init 15.60 %,
    softsign 16.27 %, tanh 27.15 %, sigmoid 82.61 %. After 6000 steps (SMALL) every net is
    still near chance (88.9 %), so only the direction is compared, on the test error averaged
    over the 7 evaluations from step 3000 on.

    Measured (seed 0): tanh normalised (the preset's lr 0.03) 82.9, softsign 84.6, tanh
    85.5, sigmoid 89.3 -- the paper's order; seed 1: 81.6, 85.1, 85.1, 89.2 (at lr 0.1 the
    normalised net gives 82.8 / 81.4 here, but at the full width lr 0.1 blows it up).
    Tolerances: normalised init beats standard tanh by >= 1 point (measured 2.6, 3.5);
    sigmoid is the worst by >= 2 points (measured 3.8, 4.1) and at most 2 points under
    chance; softsign vs tanh is within noise at this length (measured 0.9 and 0.0 points
    better): held to no worse than 1.5 points, and lesson 3 says it does not separate them."""
    err = {n: _late_error(_small(n)) for n in ("shapeset-tanh-1000",
                                               "shapeset-tanh-1000-normalized",
                                               "shapeset-softsign-1000",
                                               "shapeset-sigmoid-1000")}
    tanh, tanh_n = err["shapeset-tanh-1000"], err["shapeset-tanh-1000-normalized"]
    soft, sig = err["shapeset-softsign-1000"], err["shapeset-sigmoid-1000"]
    assert tanh - tanh_n >= 1.0, err
    assert sig - max(tanh, tanh_n, soft) >= 2.0 and sig >= 100 * (1 - 1 / 9) - 2, err
    assert soft <= tanh + 1.5, err
