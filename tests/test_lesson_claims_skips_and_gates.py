"""The claims of lessons 9 and 10: residual connections and batch norm keep the first
layer's gradient in a 20-layer sigmoid net; through time, a GRU whose update gate starts in
'keep' mode carries the gradient over T = 100 steps where a tanh RNN (and a default GRU)
does not. Each is checked by running the real core; every tolerance says why.

Published numbers: ../shared/SEEDS.md (seeds 000, 004).
"""

from __future__ import annotations

import numpy as np
import pytest

from core.presets import preset
from core.train import run_all
from tests.lesson_claims_helpers import LESSON, one_torch_thread  # noqa: F401 - autouse

pytestmark = LESSON


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
