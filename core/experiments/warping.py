"""Input-space warping (lesson 8, Duvenaud et al. 2014): a 2-D grid pushed through a deep
composition of random maps, with the local Jacobian of every layer."""

from __future__ import annotations

import math

import numpy as np
import torch

from core.experiments.results import WarpResult
from core.registry import ACTIVATIONS, act_prime


def warp_grid(depth: int = 20, hidden: int = 256, act: str = "tanh", gain: float = 1.0,
              input_connected: bool = False, grid_n: int = 61, lim: float = 1.0,
              seed: int = 0) -> WarpResult:
    """Compose ``depth`` random maps f_l: R^2 -> R^2 (or R^4 -> R^2 with the input
    connection, f_l(h, x)) and track the grid and the local Jacobian of every layer.

    f_l(u) = gain * V_l act(W_l u + b_l) / sqrt(hidden), with W_l, V_l, b_l ~ N(0, 1)
    (W_l scaled by 1/sqrt(fan-in)); for ``act="cos"`` this is Rahimi-Recht random Fourier
    features, i.e. (for large ``hidden``) a draw from an SE-kernel GP as in Duvenaud et al.
    The Jacobian dh_l/dx (2 x 2) is carried forward exactly (forward-mode chain rule).
    """
    assert depth >= 1 and hidden >= 1 and grid_n >= 2
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(-lim, lim, grid_n, dtype=torch.float64)
    xx, yy = torch.meshgrid(t, t, indexing="xy")
    x = torch.stack([xx, yy], -1).reshape(-1, 2)                   # (P, 2)
    P = x.shape[0]
    if act == "cos":
        def phi(z):
            return math.sqrt(2.0) * torch.cos(z)

        def dphi(z):
            return -math.sqrt(2.0) * torch.sin(z)
    else:
        def phi(z):
            return ACTIVATIONS[act](z)

        def dphi(z):
            return act_prime(act, z)
    h = x.clone()
    J = torch.eye(2, dtype=torch.float64).expand(P, 2, 2).clone()   # (P, 2 out, 2 in)
    reps, svs = [x.clone()], [torch.ones(P, 2, dtype=torch.float64)]
    for _ in range(depth):
        u, Ju = (torch.cat([h, x], 1), torch.cat([J, torch.eye(2, dtype=torch.float64)
                                                   .expand(P, 2, 2)], 1)) \
            if input_connected else (h, J)                          # (P, k), (P, k, 2)
        k = u.shape[1]
        W = torch.randn(hidden, k, generator=g, dtype=torch.float64) / math.sqrt(k)
        if act == "cos":
            b = torch.rand(hidden, generator=g, dtype=torch.float64) * 2 * math.pi
            W = W * math.sqrt(k)            # RFF: W ~ N(0, 1/lengthscale^2), lengthscale 1
        else:
            b = torch.randn(hidden, generator=g, dtype=torch.float64) * 0.1
        V = torch.randn(2, hidden, generator=g, dtype=torch.float64)
        z = u @ W.T + b                                             # (P, hidden)
        h = gain * (phi(z) @ V.T) / math.sqrt(hidden)               # (P, 2)
        # dh/dx = gain/sqrt(H) * V diag(phi'(z)) W du/dx
        J = gain / math.sqrt(hidden) * torch.einsum(
            "oh,ph,hk,pki->poi", V, dphi(z), W, Ju)                 # (P, 2, 2)
        reps.append(h.clone())
        svs.append(torch.linalg.svdvals(J))                         # (P, 2) descending
    G = grid_n
    reps_a = torch.stack(reps).reshape(depth + 1, G, G, 2).numpy()
    sv_a = torch.stack(svs).numpy()                                 # (D+1, P, 2)
    ratio = sv_a[..., 1] / np.maximum(sv_a[..., 0], 1e-300)
    return WarpResult(
        grid=x.reshape(G, G, 2).numpy(), reps=reps_a, sv=sv_a.reshape(depth + 1, G, G, 2),
        ratio_median=np.median(ratio, 1), ratio_q10=np.quantile(ratio, 0.1, axis=1),
        depths=np.arange(depth + 1),
    )


__all__ = ["WarpResult", "warp_grid"]
