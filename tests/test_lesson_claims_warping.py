"""The claims of lesson 8 (Duvenaud et al. 2014): a deep composition of random maps
squashes input space onto one direction, and feeding the input to every layer prevents
it. Every tolerance says why.
"""

from __future__ import annotations

from core.experiments.warping import warp_grid
from tests.lesson_claims_helpers import LESSON, one_torch_thread  # noqa: F401 - autouse

pytestmark = LESSON


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
