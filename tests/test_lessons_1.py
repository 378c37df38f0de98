"""The claims of lessons 1-4 (Nielsen; Glorot & Bengio; Dive into Deep Learning), each
checked by running the real core on a small configuration. Every tolerance says why.

Published numbers: ../shared/SEEDS.md (seeds 001, 002, 003).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.config import from_dict, preset
from core.experiments_1 import (
    activation_percentiles,
    first_crossings,
    first_divergent_lr,
    hist_quantile,
    layer_variances,
    lr_sweep,
    saturation_order,
)
from core.train import run_all

pytestmark = pytest.mark.lesson


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread, as the app runs (and faster on a busy 2-core machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---- lesson 1: Nielsen's speed of learning ---------------------------------------------------

NIELSEN = {2: (0.07, 0.31), 3: (0.012, 0.060, 0.283), 4: (0.003, 0.017, 0.070, 0.285)}
SEEDS = range(9)


def _init_speeds(depth: int, seed: int) -> list[float]:
    snap = run_all(preset(f"nielsen-{depth}").replace(steps=0, seed=seed)).snapshots[0]
    assert snap.step == 0 and len(snap.layers) == depth + 1
    return [la.delta_norm for la in snap.layers[:-1]]


@pytest.fixture(scope="module")
def nielsen_speeds() -> dict[int, np.ndarray]:
    """(seeds, layers) array of ||delta^l|| at initialisation for nielsen-2/3/4."""
    return {d: np.array([_init_speeds(d, s) for s in SEEDS]) for d in NIELSEN}


@pytest.mark.parametrize("depth", sorted(NIELSEN))
def test_nielsen_speed_increases_with_layer_index(nielsen_speeds, depth):
    # Exact claim (no tolerance): every layer learns faster than the one below it, for
    # every one of the 9 seeds, not only on average.
    for seed, v in zip(SEEDS, nielsen_speeds[depth], strict=True):
        assert np.all(np.diff(v) > 0), f"nielsen-{depth}, seed {seed}: speeds {v} not increasing"


@pytest.mark.parametrize("depth", sorted(NIELSEN))
def test_nielsen_speed_magnitudes_match_published(nielsen_speeds, depth):
    # Tolerance: the median over 9 seeds within a factor 2.5 of Nielsen's number, per layer.
    # Why 2.5: his numbers are ONE random draw; over our seeds the first-layer speed of
    # nielsen-4 spans 0.0009-0.0035 (x4), and the largest median/published gap we measure is
    # 2.0 (nielsen-4, layer 2). 2.5 still fails a wrong set-up: a softmax cost instead of
    # Nielsen's sigmoid cross-entropy is off by x5-8, the quadratic cost by x30+, W ~ N(0,1)
    # instead of N(0,1)/sqrt(n_in) by x2.8-35 (measured).
    med = np.median(nielsen_speeds[depth], axis=0)
    pub = np.array(NIELSEN[depth])
    factor = np.maximum(med / pub, pub / med)
    assert np.all(factor < 2.5), f"nielsen-{depth}: median {med} vs published {pub}"


def test_nielsen_first_layer_about_100x_slower(nielsen_speeds):
    # Published: nielsen-4 first/last = 0.003 / 0.285 ~ 1/95. Tolerance: the median ratio
    # over 9 seeds within a factor 3 of 1/95 (our seeds give 1/90 .. 1/320, median ~1/140).
    ratio = np.median(nielsen_speeds[4][:, 0] / nielsen_speeds[4][:, -1])
    assert 1 / (95 * 3) < ratio < 3 / 95, f"first/last = 1/{1 / ratio:.0f}"


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


# ---- lesson 3: Glorot & Bengio ---------------------------------------------------------------

@pytest.mark.slow
def test_sigmoid_top_hidden_layer_is_driven_to_zero_early():
    # glorot-sigmoid made smaller (width 128, 1000 images), 300 SGD steps of batch 10.
    # Glorot: the top hidden layer's sigmoid outputs are pushed towards 0 early while the
    # lower layers stay near 0.5. Measured (seeds 0-2): top mean 0.49 -> 0.35-0.36 after 300
    # steps, lower layers within 0.04 of where they started, test accuracy ~10 %.
    cfg = preset("glorot-sigmoid").replace(width=128, n_train=1000, steps=300, every=100)
    res = run_all(cfg)
    means = np.array([[la.activation_mean for la in s.layers[:-1]] for s in res.snapshots])
    top = means[:, -1]
    # Tolerances: a drop of >= 0.08 (measured 0.14) and strictly falling at every snapshot.
    assert top[-1] < top[0] - 0.08, top
    assert np.all(np.diff(top) < 0), top
    # Lower layers barely move: within 0.07 of their start (measured <= 0.04).
    assert np.all(np.abs(means[-1, :-1] - means[0, :-1]) < 0.07), means
    # ... and the net has not learned: below 30 % test accuracy (chance is 10 %).
    assert res.snapshots[-1].test_accuracy < 0.30


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


def test_layer_variances_reproduce_the_core_run():
    # The helper must build the very network core.train.run builds (same generator, same
    # data): with a full batch the forward std equals the snapshot's activation_std.
    # Tolerance 1e-4 relative: float32 sums in a different order.
    cfg = preset("nielsen-3").replace(steps=0)
    snap = run_all(cfg).snapshots[0]
    v = layer_variances(cfg, n_examples=cfg.n_train)
    core_std = np.array([la.activation_std for la in snap.layers[:-1]])
    # layer_variances uses the unbiased variance (n - 1); the core divides by n.
    n = cfg.n_train * cfg.width
    np.testing.assert_allclose(np.sqrt(v.forward * (n - 1) / n), core_std, rtol=1e-4)


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


# ---- lesson 4: variance through depth (D2L) --------------------------------------------------

def _ratios(activation: str, init: str, **extra) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer variance factors, forward (t-1 -> t) and backward (t -> t-1), at init."""
    cfg = from_dict(dict(depth=6, width=256, activation=activation, init=init,
                         dataset="mnist", n_train=1000, n_test=0, **extra))
    v = layer_variances(cfg)
    assert np.all(np.isfinite(v.forward)) and np.all(np.isfinite(v.backward))
    return v.forward[1:] / v.forward[:-1], v.backward[:-1] / v.backward[1:]


@pytest.mark.parametrize("init, extra, n_gamma", [
    ("nielsen_large", dict(bias_init="zero"), 256.0),   # N(0, 1): n * gamma = 256
    ("xavier_normal", {}, 1.0),                         # 2 / (n_in + n_out) = 1/256
    ("he", {}, 2.0),                                    # 2 / n_in
])
def test_linear_variance_factor_is_n_gamma(init, extra, n_gamma):
    # D2L: Var(h^t) = n_{t-1} gamma_t Var(h^{t-1}), and the same factor n_t gamma_t backward.
    # Tolerance +-20 % on EVERY layer: a 256 x 256 Gaussian matrix scales the norm of a
    # random vector by 1 +- sqrt(2/256) ~ 9 % (1 sigma); over 5 seeds we measured 0.92-1.07
    # of the theory. 20 % still tells N(0,1) from Xavier (x256) and Xavier from He (x2).
    fwd, bwd = _ratios("linear", init, **extra)
    np.testing.assert_allclose(fwd, n_gamma, rtol=0.2)
    np.testing.assert_allclose(bwd, n_gamma, rtol=0.2)


@pytest.mark.parametrize("init, extra, factor", [
    ("nielsen_large", dict(bias_init="zero"), 128.0),   # ReLU halves: 256 / 2
    ("xavier_normal", {}, 0.5),                         # Xavier under ReLU: shrinks by 1/2
    ("he", {}, 1.0),                                    # He: kept
])
def test_relu_variance_factor_is_half_n_gamma(init, extra, factor):
    # ReLU zeroes half its inputs: the factor is n*gamma/2, so He (gamma = 2/n) keeps it.
    # Tolerance: geometric mean over the layers within +-25 % (ReLU outputs are not centred,
    # which moves single layers by up to 25 %; measured geometric means 0.96-1.04 x theory).
    fwd, bwd = _ratios("relu", init, **extra)
    for r in (fwd, bwd):
        g = math.exp(np.mean(np.log(r)))
        assert abs(g / factor - 1) < 0.25, (init, r)


def test_sigmoid_backward_variance_vanishes_and_scaled_sigmoid_fixes_it():
    # D2L: sigmoid is not the identity near 0 (sigma'(0) = 1/4), so with Xavier the backward
    # variance shrinks by about n*gamma*(1/4)^2 = 1/16 per layer; 4*sigmoid - 2 has slope 1
    # at 0 and keeps it. Measured factors: 0.056 vs 0.94. Tolerances: sigmoid below 1/8,
    # scaled sigmoid within 0.75..1.33.
    _, bwd_sig = _ratios("sigmoid", "xavier_normal")
    _, bwd_scaled = _ratios("scaled_sigmoid", "xavier_normal")
    g_sig = math.exp(np.mean(np.log(bwd_sig)))
    g_scaled = math.exp(np.mean(np.log(bwd_scaled)))
    assert g_sig < 1 / 8, bwd_sig
    assert 0.75 < g_scaled < 1.33, bwd_scaled


@pytest.mark.slow
def test_lr_sweep_finds_nan_and_clipping_prevents_it():
    # exploding-lr (8 ReLU layers, He, spiral), 50 steps per run from the same init.
    # Measured (seeds 0-2): finite up to lr = 0.3; NaN/inf at lr = 1 (step 4), 3, 10.
    cfg = preset("exploding-lr").replace(steps=50, every=10)
    plain = lr_sweep(cfg, [0.1, 0.3, 1.0, 3.0])
    assert first_divergent_lr(plain) == 1.0, [(p.lr, p.diverged_at) for p in plain]
    bad = [p for p in plain if p.lr >= 1.0]
    # NaN/inf within the first few updates (measured step 3-4): exact-ish bound of 10 steps.
    assert all(p.diverged_at is not None and p.diverged_at <= 10 for p in bad)
    assert all(math.isnan(p.final_loss) or math.isinf(p.final_loss) for p in bad)
    # Clipping the global gradient norm to 1 keeps every run finite, up to lr = 50
    # (exact claim: no NaN/inf at all).
    clipped = lr_sweep(cfg, [1.0, 3.0, 50.0], clip_norm=1.0)
    assert first_divergent_lr(clipped) is None, [(p.lr, p.diverged_at) for p in clipped]
    assert all(math.isfinite(p.final_loss) for p in clipped)
