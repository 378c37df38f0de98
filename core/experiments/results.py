"""What the studies of ``core.experiments`` return, and the lesson tables they share: plain
dataclasses of NumPy arrays and floats, importable without torch.

A web process receives these results pickled from a training executor; unpickling imports
the module that defines their class, so they live here and not beside the torch code that
computes them (which re-exports them under their old names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---- variance (lessons 3 and 4) --------------------------------------------------------------


@dataclass
class LayerVariances:
    """Per hidden layer l = 1..L at initialisation, over a batch of training inputs."""

    forward: np.ndarray        # (L,) Var(h^l): the layer's activations (after phi)
    backward: np.ndarray       # (L,) Var(dl/dh^l): per-example gradient w.r.t. h^l
    backward_z: np.ndarray     # (L,) Var(dl/dz^l): Glorot's "back-propagated gradient"
    input_var: float           # Var(x) of the inputs that fed layer 1


@dataclass
class SweepPoint:
    lr: float
    clip_norm: float
    diverged_at: int | None     # first step with NaN/inf (None: never)
    diverged_layer: str | None
    final_loss: float           # loss of the last snapshot (NaN if diverged)
    final_test_accuracy: float | None


# ---- deep linear nets over many seeds (lesson 5) ----------------------------------------------


@dataclass
class SeedsResult:
    """One config trained for S seeds. Arrays have a leading seed axis (S, ...); a seed's
    entries from the step it diverged at onwards are NaN (its run stops there)."""

    config: dict                      # the RunConfig (seed = the first seed)
    seeds: list[int]
    steps: np.ndarray                 # (K,) snapshot steps
    loss: np.ndarray                  # (S, K) training loss of the measured batch
    test_loss: np.ndarray             # (S, K) loss on the first EVAL_MAX test examples
    act_grad_norm: np.ndarray         # (S, K, L) mean over examples of ||dC_x / dz_l||
    delta_norm: np.ndarray            # (S, K, L) ||mean over batch of dC/dz_l|| (= core's)
    e2e_sv: np.ndarray                # (S, K, d) singular values of W_out ... W_1, descending
    #                                   (the end-to-end map when activation is linear)
    teacher_sv: np.ndarray            # (S, d) singular values of each seed's teacher map
    diverged: np.ndarray              # (S,) bool: NaN/inf at some step
    elapsed_s: float = 0.0


# ---- Jacobian spectra at criticality (lesson 7) -----------------------------------------------

#: The activation / initialisation pairs of the lesson: (label, activation, init).
ISOMETRY_COMBOS: tuple[tuple[str, str, str], ...] = (
    ("ReLU + Gaussian (He)", "relu", "gaussian"),
    ("ReLU + orthogonal", "relu", "orthogonal"),
    ("tanh + Gaussian", "tanh", "gaussian"),
    ("tanh + orthogonal", "tanh", "orthogonal"),
    ("hard-tanh + orthogonal", "hardtanh", "orthogonal"),
)


@dataclass
class JacobianSpectrum:
    label: str
    activation: str
    init: str
    sigma_w: float              # weight scale at criticality (chi_1 = 1)
    sigma_b: float
    q_star: float               # fixed point of the pre-activation length
    chi_1: float
    depths: list[int]
    log_sv: list[np.ndarray]    # per depth: natural-log singular values (width,), -inf = 0
    near_one: np.ndarray        # (len(depths),) fraction of singular values in [1/2, 2]
    spread: np.ndarray          # (len(depths),) q90 - q10 of ln s over the nonzero values
    n_zero: np.ndarray          # (len(depths),) exactly-zero singular values (rank lost)


# ---- input-space warping (lesson 8) -----------------------------------------------------------


@dataclass
class WarpResult:
    """A 2-D grid pushed through a composition of random maps R^2 -> R^2, layer by layer.

    Layer l is one random wide layer followed by a linear read-out to 2 units (Duvenaud's
    deep GP seen as a net: wide random features alternating with a 2-D bottleneck), so the
    hidden representation *is* 2-D: no projection is needed to draw it.
    """

    grid: np.ndarray            # (G, G, 2) input points x
    reps: np.ndarray            # (D+1, G, G, 2) representation h_l(x); reps[0] = x
    sv: np.ndarray              # (D+1, G, G, 2) singular values s1 >= s2 of dh_l/dx
    ratio_median: np.ndarray    # (D+1,) median over the grid of s2 / s1 (1 = no warping)
    ratio_q10: np.ndarray       # (D+1,) its 10 % quantile
    depths: np.ndarray          # (D+1,) 0..D


__all__ = ["ISOMETRY_COMBOS", "JacobianSpectrum", "LayerVariances", "SeedsResult",
           "SweepPoint", "WarpResult"]
