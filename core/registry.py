"""Name -> callable tables: activations, their flat regions, initialisers, optimisers.

The names and their one-line help come from ``core.choices`` (re-exported here as
:func:`choices`); every name there has exactly one entry in these tables, and
``tests/test_config.py`` keeps the two in step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from core.choices import choices
from core.config import RunConfig

Act = Callable[[torch.Tensor], torch.Tensor]


def _scaled_sigmoid(x: torch.Tensor) -> torch.Tensor:
    # 4*sigmoid(x) - 2: Dive into Deep Learning's fix; slope 1 and value 0 at x = 0.
    return 4.0 * torch.sigmoid(x) - 2.0


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


ACTIVATIONS: dict[str, Act] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "elu": F.elu,
    "gelu": F.gelu,
    "selu": F.selu,
    "softsign": F.softsign,
    "hardtanh": F.hardtanh,
    "linear": _identity,
    "scaled_sigmoid": _scaled_sigmoid,
}

#: Range of each activation's output for fixed-bin histograms (unbounded ones are clamped
#: into the end bins).
ACT_RANGE: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, 4.0), "leaky_relu": (-1.0, 4.0),
    "elu": (-1.0, 4.0), "gelu": (-0.5, 4.0), "selu": (-2.0, 4.0), "softsign": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0), "linear": (-4.0, 4.0), "scaled_sigmoid": (-2.0, 2.0),
}


#: The saturation thresholds, shared by ``saturated`` (the rule) and ``saturated_count`` (its
#: fast count): within 3 % of a bound of the activation's range.
SAT_FRACTION = 0.97
_SIGMOID_LOW = 0.03
_SELU_SAT = SAT_FRACTION * 1.0507 * 1.6733     # 97 % of selu's negative floor, lambda*alpha


def saturated(name: str, a: torch.Tensor) -> torch.Tensor:
    """Boolean mask of units in the flat part of the activation (its derivative < ~0.06).

    sigmoid: a < 0.03 or a > 0.97 (sigma' < 0.03); tanh / softsign / scaled sigmoid: |a| > 0.97
    of the range; relu: a == 0 (dead); hardtanh: |a| >= 1 (derivative exactly 0); elu/selu:
    the negative tail below 97 % of its floor; linear / gelu / leaky_relu never saturate.
    """
    if name == "sigmoid":
        return (a < _SIGMOID_LOW) | (a > SAT_FRACTION)
    if name in ("tanh", "softsign"):
        return a.abs() > SAT_FRACTION
    if name == "scaled_sigmoid":
        return a.abs() > 2 * SAT_FRACTION
    if name == "hardtanh":
        return a.abs() >= 1.0
    if name == "relu":
        return a <= 0.0
    if name == "elu":
        return a < -SAT_FRACTION
    if name == "selu":
        return a < -_SELU_SAT
    return torch.zeros_like(a, dtype=torch.bool)


def saturated_count(name: str, a: torch.Tensor, scratch: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """Per row of ``a`` (L, m): how many entries ``saturated`` marks, as float. Same rule,
    computed as sign(clamp(margin, 0)) summed: 3x faster than summing a boolean mask on
    CPU, and exact (in IEEE arithmetic x - t > 0 exactly when x > t). ``scratch`` (same
    shape as ``a``) is reused for the margin, to spare a large allocation per call."""
    m = a.shape[1]
    buf = torch.empty_like(a) if scratch is None else scratch

    def count(margin: torch.Tensor) -> torch.Tensor:
        return margin.clamp_(min=0).sign_().sum(1)

    if name == "sigmoid":                                     # a < 0.03 or a > 0.97
        low = count(torch.neg(a, out=buf).add_(_SIGMOID_LOW))
        return low + count(torch.sub(a, SAT_FRACTION, out=buf))
    if name in ("tanh", "softsign"):
        return count(torch.abs(a, out=buf).sub_(SAT_FRACTION))
    if name == "scaled_sigmoid":
        return count(torch.abs(a, out=buf).sub_(2 * SAT_FRACTION))
    if name == "hardtanh":                                    # |a| >= 1: m - #(|a| < 1)
        return m - count(torch.abs(a, out=buf).neg_().add_(1.0))
    if name == "relu":                                        # a <= 0: m - #(a > 0)
        return m - count(torch.clone(a) if scratch is None else buf.copy_(a))
    if name == "elu":
        return count(torch.neg(a, out=buf).sub_(SAT_FRACTION))
    if name == "selu":
        return count(torch.neg(a, out=buf).sub_(_SELU_SAT))
    return a.new_zeros(a.shape[0])


def act_prime(name: str, z: torch.Tensor) -> torch.Tensor:
    """phi'(z), elementwise, for the analytic Jacobian (same shape as z)."""
    if name == "linear":
        return torch.ones_like(z)
    if name == "tanh":
        return 1.0 - torch.tanh(z) ** 2
    if name == "sigmoid":
        s = torch.sigmoid(z)
        return s * (1.0 - s)
    if name == "scaled_sigmoid":
        s = torch.sigmoid(z)
        return 4.0 * s * (1.0 - s)
    if name == "relu":
        return (z > 0).to(z.dtype)
    if name == "hardtanh":
        return (z.abs() < 1.0).to(z.dtype)
    if name == "softsign":
        return 1.0 / (1.0 + z.abs()) ** 2
    # Everything else: exact derivative through autograd (elementwise functions only).
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(ACTIVATIONS[name](zz).sum(), zz)
    return g


# ---- initialisers --------------------------------------------------------------------------
# Each fills (weight, bias) in place for one layer: weight is (n_out, n_in).

def _normal(shape: tuple[int, ...], std: float, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g) * std


def _uniform(shape: tuple[int, ...], a: float, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=g) * 2.0 - 1.0) * a


def haar_orthogonal(n_out: int, n_in: int, g: torch.Generator) -> torch.Tensor:
    """A Haar-distributed (semi-)orthogonal (n_out, n_in) matrix: QR of a Gaussian with the
    signs of R's diagonal folded into Q (without that fix Q is not Haar)."""
    rows, cols = max(n_out, n_in), min(n_out, n_in)
    a = torch.randn(rows, cols, generator=g, dtype=torch.float64)   # (rows, cols)
    q, r = torch.linalg.qr(a)                                       # q (rows, cols)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    q = q if n_out >= n_in else q.T
    return q.to(torch.float32)


def fold(w: torch.Tensor, k: int) -> torch.Tensor:
    """Orhan's "Fold k": copy the top half of the rows onto the bottom half, k times
    (each fold works on the top block left by the previous one). Fold 1 halves the rank."""
    w = w.clone()
    rows = w.shape[0]
    for _ in range(k):
        half = rows // 2
        if half == 0:
            break
        w[half: 2 * half] = w[:half]
        rows = half
    return w


InitFn = Callable[[tuple[int, int], RunConfig, torch.Generator], tuple[torch.Tensor, str]]


def _torch_default(shape: tuple[int, int], cfg: RunConfig, g: torch.Generator):
    # nn.Linear's own default, U[+-1/sqrt(n_in)] for W and b, drawn from *our* generator
    # (nn.Linear would use the process-wide RNG, which sessions share).
    return _uniform(shape, 1.0 / math.sqrt(shape[1]), g), "uniform"


def _glorot_standard(shape: tuple[int, int], cfg: RunConfig, g: torch.Generator):
    return _uniform(shape, 1.0 / math.sqrt(shape[1]), g), "zero"


def _fold(shape: tuple[int, int], cfg: RunConfig, g: torch.Generator):
    # the standard draw scaled by init_gain (gain sqrt(3) = variance 1/n), then folded
    return fold(_uniform(shape, cfg.init_gain / math.sqrt(shape[1]), g), cfg.fold_k), "zero"


#: init name -> (shape (n_out, n_in), cfg, generator) -> (weight, default bias kind).
#: Bias kinds: "zero", "uniform" (U[+-1/sqrt(n_in)]), "normal1" (N(0, 1)), "normal_sigma_b".
INITS: dict[str, InitFn] = {
    "nielsen_large": lambda sh, cfg, g: (_normal(sh, 1.0, g), "normal1"),
    "nielsen": lambda sh, cfg, g: (_normal(sh, 1.0 / math.sqrt(sh[1]), g), "normal1"),
    "glorot_standard": _glorot_standard,
    "xavier_uniform": lambda sh, cfg, g: (
        _uniform(sh, cfg.init_gain * math.sqrt(6.0 / (sh[1] + sh[0])), g), "zero"),
    "xavier_normal": lambda sh, cfg, g: (
        _normal(sh, cfg.init_gain * math.sqrt(2.0 / (sh[1] + sh[0])), g), "zero"),
    "he": lambda sh, cfg, g: (_normal(sh, cfg.init_gain * math.sqrt(2.0 / sh[1]), g), "zero"),
    "lecun": lambda sh, cfg, g: (_normal(sh, cfg.init_gain * math.sqrt(1.0 / sh[1]), g),
                                 "zero"),
    "orthogonal": lambda sh, cfg, g: (cfg.init_gain * haar_orthogonal(sh[0], sh[1], g), "zero"),
    "gaussian": lambda sh, cfg, g: (_normal(sh, cfg.sigma_w / math.sqrt(sh[1]), g),
                                    "normal_sigma_b"),
    "fold": _fold,
    "identity": lambda sh, cfg, g: (cfg.init_gain * torch.eye(sh[0], sh[1]), "zero"),
    "torch_default": _torch_default,
}


def init_layer(
    weight: torch.Tensor, bias: torch.Tensor | None, cfg: RunConfig, g: torch.Generator
) -> None:
    """Fill one layer's weight (n_out, n_in) and bias (n_out,) in place according to cfg."""
    n_out, n_in = weight.shape
    w, bias_default = INITS[cfg.init]((n_out, n_in), cfg, g)
    with torch.no_grad():
        weight.copy_(w)
        if bias is not None:
            bias.copy_(_bias(cfg, n_in, n_out, bias_default, g))


def _bias(cfg: RunConfig, n_in: int, n_out: int, default: str, g: torch.Generator) -> torch.Tensor:
    kind = cfg.bias_init
    if kind == "auto":
        if default == "normal1":
            return _normal((n_out,), 1.0, g)
        if default == "normal_sigma_b":
            return _normal((n_out,), cfg.sigma_b, g)
        if default == "uniform":
            return _uniform((n_out,), 1.0 / math.sqrt(n_in), g)
        return torch.zeros(n_out)
    if kind == "zero":
        return torch.zeros(n_out)
    if kind == "normal":
        return _normal((n_out,), cfg.sigma_b, g)
    return _uniform((n_out,), 1.0 / math.sqrt(n_in), g)  # "uniform": PyTorch-like range


# ---- optimisers -----------------------------------------------------------------------------

#: optimiser name -> (cfg, params) -> torch optimiser. L2 is added to the gradients by
#: train.py (Nielsen's lambda/n), not through weight_decay, so one formula holds for all.
OPTIMIZERS: dict[str, Callable[[RunConfig, list], torch.optim.Optimizer]] = {
    "sgd": lambda cfg, ps: torch.optim.SGD(ps, lr=cfg.lr, foreach=True),
    "momentum": lambda cfg, ps: torch.optim.SGD(ps, lr=cfg.lr, momentum=cfg.momentum,
                                                foreach=True),
    "adam": lambda cfg, ps: torch.optim.Adam(ps, lr=cfg.lr, foreach=True),
}


def make_optimizer(cfg: RunConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names, over ``params``."""
    return OPTIMIZERS[cfg.optimizer](cfg, list(params))


__all__ = [
    "ACTIVATIONS", "ACT_RANGE", "INITS", "OPTIMIZERS", "SAT_FRACTION", "act_prime", "choices",
    "fold", "haar_orthogonal", "init_layer", "make_optimizer", "saturated", "saturated_count",
]
