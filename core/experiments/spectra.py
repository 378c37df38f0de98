"""Spectra of deep products (lessons 6 and 7): products of random matrices (Saxe et al.)
and the input-output Jacobian of random MLPs at criticality (Pennington, Schoenholz &
Ganguli 2017). Exact at any depth through ``core.spectrum``."""

from __future__ import annotations

import math

import numpy as np
import torch

from core import theory
from core.config import RunConfig
from core.experiments.results import ISOMETRY_COMBOS, JacobianSpectrum
from core.models import build
from core.spectrum import product_log_singular_values, random_product_spectrum
from core.spectrum_stats import log_spread


def product_spectra(n: int = 100, depths: tuple[int, ...] = (1, 10, 100),
                    kinds: tuple[str, ...] = ("gaussian", "orthogonal"), seed: int = 0,
                    gain: float = 1.0) -> dict[str, dict[int, np.ndarray]]:
    """{kind: {depth: natural-log singular values (n,), descending}} of a product of
    ``depth`` random n x n matrices (Gaussian entries N(0, gain^2/n), or gain x Haar
    orthogonal), via ``core.spectrum.random_product_spectrum`` (exact at any depth).
    Each depth draws a fresh product from seed + depth, so the panels are independent."""
    return {k: {d: random_product_spectrum(n, d, k, seed + d, gain) for d in depths}
            for k in kinds}


def spread_vs_depth(n: int = 100, depths: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100),
                    kind: str = "gaussian", seeds: tuple[int, ...] = (0, 1, 2),
                    gain: float = 1.0) -> np.ndarray:
    """(len(depths), len(seeds)) ``log_spread`` of random products, one per seed."""
    return np.array([[log_spread(random_product_spectrum(n, d, kind, 1000 * s + d, gain))
                      for s in seeds] for d in depths])


def critical_point(activation: str, sigma_b: float) -> tuple[float, float, float, float]:
    """(sigma_w, sigma_b, q*, chi_1) on the critical line chi_1 = 1 (ReLU: sigma_w^2 = 2,
    sigma_b = 0, the only critical point; q* is then arbitrary and set to 1)."""
    if activation == "relu":
        return math.sqrt(2.0), 0.0, 1.0, 1.0
    sw = theory.critical_sigma_w(activation, sigma_b)
    return sw, sigma_b, theory.q_star(activation, sw, sigma_b), \
        theory.chi_1(activation, sw, sigma_b)


def jacobian_spectrum(activation: str, init: str, depths: tuple[int, ...] = (2, 8, 32, 128),
                      width: int = 128, sigma_b: float = 0.01, seed: int = 0,
                      label: str = "") -> JacobianSpectrum:
    """Singular values of the input-output Jacobian dh_L/dx of a random MLP at criticality,
    for each depth: the net is ``core.models.MLP`` (weights N(0, sigma_w^2/n) or sigma_w x
    Haar orthogonal, biases N(0, sigma_b^2)), the Jacobian its ``jacobian_factors`` at one
    input x with |x|^2/n chosen so that layer 1's pre-activations sit at q*, and the
    spectrum ``core.spectrum.product_log_singular_values`` (exact at any depth)."""
    sw, sb, q, chi = critical_point(activation, sigma_b)
    logs, near, spread, zeros = [], [], [], []
    for d in depths:
        kw: dict = dict(arch="mlp", depth=int(d), width=width, activation=activation,
                        seed=seed, sigma_b=sb, bias_init="normal")
        kw.update(init="gaussian", sigma_w=sw) if init == "gaussian" else \
            kw.update(init="orthogonal", init_gain=sw)
        cfg = RunConfig(**kw)
        g = torch.Generator().manual_seed(seed)
        model = build(cfg, width, width, g)
        # x_i ~ N(0, (q* - sigma_b^2) / sigma_w^2): layer 1's pre-activations have length q*.
        x = torch.randn(width, generator=g) * math.sqrt(max(q - sb ** 2, 0.0) / sw ** 2)
        ls = product_log_singular_values(model.jacobian_factors(x)).numpy()
        logs.append(ls)
        s = np.exp(ls)
        near.append(float(np.mean((s >= 0.5) & (s <= 2.0))))
        fin = ls[np.isfinite(ls)]
        spread.append(float(np.subtract(*np.quantile(fin, [0.9, 0.1]))) if fin.size else
                      float("nan"))
        zeros.append(int(np.sum(~np.isfinite(ls))))
    return JacobianSpectrum(
        label=label or f"{activation} + {init}", activation=activation, init=init,
        sigma_w=sw, sigma_b=sb, q_star=q, chi_1=chi, depths=list(depths), log_sv=logs,
        near_one=np.array(near), spread=np.array(spread), n_zero=np.array(zeros))


__all__ = ["ISOMETRY_COMBOS", "JacobianSpectrum", "critical_point", "jacobian_spectrum",
           "log_spread", "product_spectra", "spread_vs_depth"]
