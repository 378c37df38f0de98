"""What the phase-map study (``core.experiments.phase``) returns: plain dataclasses of NumPy
arrays, importable without torch, so that a web process can unpickle them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: The activations of the phase map (the mean-field papers' set).
PHASE_ACTIVATIONS: tuple[str, ...] = ("tanh", "hardtanh", "relu", "sigmoid", "erf", "linear")


@dataclass
class PhaseTheory:
    """Mean-field theory along a column of sigma_w^2 values (``core.theory``), NaN-free except
    that infinite depth scales are ``inf``."""

    sigma_w2: np.ndarray          # (S,)
    q_star: np.ndarray            # (S,) fixed point of the squared length (inf: unbounded)
    chi_1: np.ndarray             # (S,) per-layer factor of the mean squared singular value
    c_star: np.ndarray            # (S,) fixed point of the correlation map (1: ordered)
    chi_c: np.ndarray             # (S,) slope of the correlation map at c*
    xi_c: np.ndarray              # (S,) correlation depth scale -1 / ln chi_c
    xi_grad: np.ndarray           # (S,) gradient depth scale 1 / |ln chi_1|
    critical_sigma_w2: float      # where chi_1 = 1 (nan if nowhere below 1e6)


@dataclass
class PhaseMap:
    """The at-initialisation map of random nets over sigma_w^2 x depth, measured by one batched
    ensemble (``core.experiments.phase.at_init_map``). Cell (s, l) reads layer l of the nets
    with sigma_w^2[s]: a depth-l net is the first l layers of the deepest one."""

    activation: str
    sigma_b2: float
    width: int
    nets: int                     # independent nets per sigma_w^2 (weights shared across s)
    pairs: int                    # input pairs per net
    c0: float                     # correlation of each pair at the input
    sigma_w2: np.ndarray          # (S,)
    depths: np.ndarray            # (L,) 1..depth
    log_gain: np.ndarray          # (S, L) ln of the Jacobian's mean squared singular value
    #                               from the input to layer l (theory: l ln chi_1)
    chi1_layer: np.ndarray        # (S, L) measured per-layer factor (ratio of squared norms)
    corr: np.ndarray              # (S, L + 1) correlation c_l of the input pairs, l = 0..L
    decorr: np.ndarray            # (S, L + 1) 1 - c_l, exact where c_l is within 1e-16 of 1
    q: np.ndarray                 # (S, L + 1) mean squared pre-activation q_l
    chi1_measured: np.ndarray     # (S,) geometric mean of chi1_layer over the layers
    c_star_measured: np.ndarray   # (S,) mean c_l over the last third of the layers
    xi_c_measured: np.ndarray     # (S,) fitted decay length of |c_l - c*| (nan: no fit)
    critical_sigma_w2_measured: float   # where measured chi_1 crosses 1 (nan: it does not)
    theory: PhaseTheory
    elapsed_s: float = 0.0


@dataclass
class TrainabilityMap:
    """Test accuracy after K SGD steps on MNIST for every (sigma_w^2, depth) cell (a chunk of
    the full map: ``core.experiments.phase.trainability``). NaN: the run diverged."""

    activation: str
    sigma_b2: float
    width: int
    steps: int
    lr: float
    batch_size: int
    sigma_w2: np.ndarray          # (S,)
    depths: np.ndarray            # (D,)
    test_accuracy: np.ndarray     # (S, D) final test accuracy (nan: diverged)
    train_loss: np.ndarray        # (S, D) mean training loss over the last 10 % of the steps
    diverged: np.ndarray          # (S, D) bool
    elapsed_s: float = 0.0
    chance: float = 0.1
    extra: dict = field(default_factory=dict)


# ---- reading and joining results (NumPy only: pages call these) -----------------------------


def crossing(x: np.ndarray, y: np.ndarray, level: float = 0.0) -> float:
    """The first x where y crosses ``level`` upwards (linear interpolation), nan if it never
    does. On ln chi_1 (level 0) it finds the critical sigma_w^2."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64) - level
    for i in range(len(x) - 1):
        if np.isfinite(y[i]) and np.isfinite(y[i + 1]) and y[i] < 0.0 <= y[i + 1]:
            return float(x[i] - y[i] * (x[i + 1] - x[i]) / (y[i + 1] - y[i]))
    return math.nan


def merge_maps(parts: Sequence[PhaseMap]) -> PhaseMap:
    """One map from chunks over sigma_w^2 (same activation, sigma_b^2, depth, width, nets,
    pairs and seed: then the chunks' nets are exactly those of one big ensemble), sorted by
    sigma_w^2, with the measured critical sigma_w^2 found on the joined column."""
    assert parts, "nothing to merge"
    first = parts[0]
    for p in parts[1:]:
        assert (p.activation, p.sigma_b2, p.width, p.nets, p.pairs, len(p.depths)) == (
            first.activation, first.sigma_b2, first.width, first.nets, first.pairs,
            len(first.depths)), "chunks of different maps"
    order = np.argsort(np.concatenate([p.sigma_w2 for p in parts]), kind="stable")

    def cat(get) -> np.ndarray:
        return np.concatenate([get(p) for p in parts])[order]

    th = PhaseTheory(**{f.name: cat(lambda p, n=f.name: getattr(p.theory, n))
                        for f in dataclasses.fields(PhaseTheory) if f.name != "critical_sigma_w2"},
                     critical_sigma_w2=first.theory.critical_sigma_w2)
    arrays = ("sigma_w2", "log_gain", "chi1_layer", "corr", "decorr", "q", "chi1_measured",
              "c_star_measured", "xi_c_measured")
    joined = {n: cat(lambda p, n=n: getattr(p, n)) for n in arrays}
    return dataclasses.replace(
        first, **joined, theory=th, elapsed_s=float(sum(p.elapsed_s for p in parts)),
        critical_sigma_w2_measured=crossing(joined["sigma_w2"], np.log(joined["chi1_measured"])))


def merge_trainability(parts: Sequence[TrainabilityMap]) -> TrainabilityMap:
    """One trainability map from chunks over depth (same sigma_w^2 column), sorted by depth."""
    assert parts, "nothing to merge"
    first = parts[0]
    for p in parts[1:]:
        assert np.array_equal(p.sigma_w2, first.sigma_w2), "chunks of different columns"
    order = np.argsort(np.concatenate([p.depths for p in parts]), kind="stable")

    def cat(n: str) -> np.ndarray:
        return np.concatenate([getattr(p, n) for p in parts], axis=1)[:, order]

    return dataclasses.replace(
        first, depths=np.concatenate([p.depths for p in parts])[order],
        test_accuracy=cat("test_accuracy"), train_loss=cat("train_loss"),
        diverged=cat("diverged"), elapsed_s=float(sum(p.elapsed_s for p in parts)))
