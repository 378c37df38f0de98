"""Experiments behind the guided lessons 5-10: pure torch / NumPy helpers, no UI.

Each function takes plain arguments (often a ``RunConfig``), uses its own
``torch.Generator`` (never the process-wide RNG) and returns plain NumPy arrays / floats
in a small dataclass, so the app can cache the result and draw it.

* ``deep_linear_seeds``      lesson 5: one preset trained for many seeds at once (the exact
                             update of ``core.train.run``, vectorised over seeds), with
                             per-example gradient norms w.r.t. layer activations and the
                             singular values of the end-to-end map.
* ``product_spectra``        lesson 6: log singular values of products of random matrices.
* ``jacobian_spectrum``      lesson 7: input-output Jacobian spectrum of random MLPs at
                             criticality, for several depths.
* ``warp_grid``              lesson 8: a 2-D grid pushed through a deep random net.

Lessons 9 and 10 need nothing beyond ``core.train.run_all`` (gradient bars, learning
curves and ``time_grad_norms`` are in every Snapshot).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from core import data as data_mod
from core.config import RunConfig
from core.models import build
from core.registry import ACTIVATIONS

EVAL_MAX = 512   # as core.train: test examples evaluated per snapshot


# =========================================================================================
# Lesson 5: deep linear nets over many seeds (Orhan: degeneracy, not vanishing)
# =========================================================================================
@dataclass
class SeedsResult:
    """One config trained for S seeds. Arrays have a leading seed axis (S, ...)."""

    config: dict                      # the RunConfig (seed = the first seed)
    seeds: list[int]
    steps: np.ndarray                 # (K,) snapshot steps
    loss: np.ndarray                  # (S, K) training loss of the measured batch
    test_loss: np.ndarray             # (S, K) loss on the first EVAL_MAX test examples
    act_grad_norm: np.ndarray         # (S, K, L) mean over examples of ||dC_x / dh_l||
    delta_norm: np.ndarray            # (S, K, L) ||mean over batch of dC/dz_l|| (= core's)
    e2e_sv: np.ndarray                # (S, K, d) singular values of W_out ... W_1, descending
                                      # (the end-to-end map when activation is linear)
    teacher_sv: np.ndarray            # (S, d) singular values of each seed's teacher map
    diverged: np.ndarray              # (S,) bool: NaN/inf at some step
    elapsed_s: float = 0.0


def _clip_scale(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Per-seed factor min(1, max_norm / (||g|| + 1e-6)) as core.train applies it."""
    sq = sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in grads)   # (S,)
    return (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)


def deep_linear_seeds(cfg: RunConfig, seeds: list[int] | int = 10, steps: int | None = None,
                      every: int | None = None) -> SeedsResult:
    """Train ``cfg`` (a plain MLP: no residual, no norm) for every seed at once.

    Every seed gets exactly what ``core.train.run(cfg.replace(seed=s))`` gives it: the same
    dataset, the same initial weights (built by ``core.models.build`` from a generator
    seeded with ``s``), the same mini-batch order (``randperm`` drawn from that generator)
    and the same optimiser update; the seeds are only stacked on a leading axis so one
    batched matmul serves all of them. ``tests/test_lessons_2.py`` checks the losses
    against ``core.train.run_all``.
    """
    assert cfg.arch == "mlp" and not cfg.residual and cfg.norm == "none", \
        "deep_linear_seeds handles plain MLPs (no residual, no norm)"
    assert cfg.optimizer in ("sgd", "momentum", "adam")
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    steps = cfg.steps if steps is None else int(steps)
    every = cfg.every if every is None else int(every)
    t0 = time.perf_counter()
    S = len(seeds)
    gens, models, dsets = [], [], []
    for s in seeds:
        c = cfg.replace(seed=s)
        g = torch.Generator().manual_seed(s)
        ds = data_mod.load(c, torch.device("cpu"))
        models.append(build(c, ds.n_in, ds.n_out, g))
        gens.append(g)
        dsets.append(ds)
    classification = dsets[0].task == "classification"
    assert not classification, "deep_linear_seeds is for regression (teacher) tasks"
    # Stacked parameters: W_l (S, n_out, n_in), b_l (S, n_out), hidden layers then output.
    per_model = [list(m.hidden) + [m.out] for m in models]
    n_layers = len(per_model[0])
    Ws = [torch.stack([lins[i].weight.detach() for lins in per_model]).clone()
          .requires_grad_(True) for i in range(n_layers)]
    bs_ = [torch.stack([lins[i].bias.detach() for lins in per_model]).clone()
           .requires_grad_(True) for i in range(n_layers)]
    params = Ws + bs_
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, foreach=True)
    elif cfg.optimizer == "momentum":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, foreach=True)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, foreach=True)
    phi = ACTIVATIONS[cfg.activation]
    X = torch.stack([d.x_train for d in dsets])                    # (S, N, d_in)
    Y = torch.stack([d.y_train for d in dsets])                    # (S, N, d_out)
    Xt = torch.stack([d.x_test[:EVAL_MAX] for d in dsets])         # (S, M, d_in)
    Yt = torch.stack([d.y_test[:EVAL_MAX] for d in dsets])
    n = X.shape[1]
    bsz = n if cfg.batch_size in (0, n) else cfg.batch_size
    l2_scale = cfg.l2 / n
    if cfg.dataset == "teacher":
        teacher_sv = np.stack([torch.linalg.svdvals(
            data_mod.teacher_matrix(cfg.replace(seed=s)).double()).numpy() for s in seeds])
    else:
        teacher_sv = np.zeros((S, 0))

    def forward(x: torch.Tensor, keep: bool):
        zs = []
        h = x
        for i in range(n_layers):
            z = torch.baddbmm(bs_[i].unsqueeze(1), h, Ws[i].transpose(1, 2))   # (S, B, n)
            if i == n_layers - 1:
                return z, zs
            if keep:
                z.retain_grad()
                zs.append(z)
            h = phi(z)
        raise AssertionError("unreachable")

    def loss_fn(out, y):   # (S,) 0.5 * ||y - out||^2 summed over outputs, mean over batch
        return 0.5 * ((out - y) ** 2).sum(2).mean(1)

    rec_steps, rec_loss, rec_test, rec_agn, rec_dn, rec_sv = [], [], [], [], [], []
    diverged = torch.zeros(S, dtype=torch.bool)
    perms: list[torch.Tensor | None] = [None] * S
    pos = n
    for step in range(steps + 1):
        snap = step % every == 0 or step == steps
        if bsz == n:
            xb, yb = X, Y
        else:
            if pos + bsz > n:
                perms = [torch.randperm(n, generator=g) for g in gens]
                pos = 0
            idx = torch.stack([p[pos:pos + bsz] for p in perms])   # (S, B)
            pos += bsz
            xb = torch.gather(X, 1, idx.unsqueeze(2).expand(-1, -1, X.shape[2]))
            yb = torch.gather(Y, 1, idx.unsqueeze(2).expand(-1, -1, Y.shape[2]))
        out, zs = forward(xb, snap)
        loss = loss_fn(out, yb)                                      # (S,)
        opt.zero_grad(set_to_none=False)
        # Seeds are independent: the gradient of the sum is each seed's own gradient.
        torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss)).sum().backward()
        if l2_scale:
            with torch.no_grad():
                for w in Ws:
                    w.grad.add_(w, alpha=l2_scale)
        with torch.no_grad():
            flat = torch.cat([p.grad.reshape(S, -1) for p in params], 1)    # (S, n_params)
            bad = ~(torch.isfinite(loss) & torch.isfinite(flat).all(1))
            diverged |= bad
            if snap:
                B = xb.shape[1]
                rec_steps.append(step)
                nan = torch.full_like(loss, float("nan"))
                rec_loss.append(torch.where(diverged, nan, loss.detach()))
                tout, _ = forward(Xt, False)
                rec_test.append(torch.where(diverged, nan, loss_fn(tout, Yt)))
                G = torch.stack([z.grad for z in zs], 1) * B               # (S, L, B, n)
                rec_agn.append(torch.linalg.vector_norm(G, dim=3).mean(2))   # (S, L)
                rec_dn.append(torch.linalg.vector_norm(G.mean(2), dim=2))  # (S, L)
                prod = Ws[0].detach().double()
                for w in Ws[1:]:
                    prod = torch.bmm(w.detach().double(), prod)             # (S, d_out, d_in)
                finite = torch.isfinite(prod).all(2).all(1)
                sv = torch.full((S, min(prod.shape[1:])), float("nan"), dtype=torch.float64)
                if finite.any():
                    sv[finite] = torch.linalg.svdvals(prod[finite])
                rec_sv.append(sv)
            if step == steps:
                break
            if cfg.clip_value:
                for p in params:
                    p.grad.clamp_(-cfg.clip_value, cfg.clip_value)
            if cfg.clip_norm:
                scale = _clip_scale([p.grad for p in params], cfg.clip_norm)   # (S,)
                for p in params:
                    p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
            if diverged.any():   # a diverged seed is frozen (core stops its run)
                for p in params:
                    p.grad[diverged] = 0.0
                    p.grad.nan_to_num_(0.0, 0.0, 0.0)
        opt.step()

    def arr(xs):
        return torch.stack(xs, 1).double().numpy() if xs else np.zeros((S, 0))

    loss_a, test_a = arr(rec_loss), arr(rec_test)
    div = diverged.numpy()
    # After divergence a seed's numbers mean nothing: NaN them (as core stops the run).
    return SeedsResult(
        config=cfg.to_dict(), seeds=seeds, steps=np.asarray(rec_steps),
        loss=np.where(np.isfinite(loss_a), loss_a, np.nan),
        test_loss=np.where(np.isfinite(test_a), test_a, np.nan),
        act_grad_norm=arr(rec_agn), delta_norm=arr(rec_dn), e2e_sv=arr(rec_sv),
        teacher_sv=teacher_sv, diverged=div, elapsed_s=time.perf_counter() - t0,
    )


# =========================================================================================
# Lesson 8: input-space warping (Duvenaud et al. 2014)
# =========================================================================================
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
        from core.registry import act_prime

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


# =========================================================================================
# Lesson 6: products of random matrices (Saxe et al.)
# =========================================================================================
def product_spectra(n: int = 100, depths: tuple[int, ...] = (1, 10, 100),
                    kinds: tuple[str, ...] = ("gaussian", "orthogonal"), seed: int = 0,
                    gain: float = 1.0) -> dict[str, dict[int, np.ndarray]]:
    """{kind: {depth: natural-log singular values (n,), descending}} of a product of
    ``depth`` random n x n matrices (Gaussian entries N(0, gain^2/n), or gain x Haar
    orthogonal), via ``core.spectrum.random_product_spectrum`` (exact at any depth).
    Each depth draws a fresh product from seed + depth, so the panels are independent."""
    from core.spectrum import random_product_spectrum

    return {k: {d: random_product_spectrum(n, d, k, seed + d, gain) for d in depths}
            for k in kinds}


def log_spread(log_sv: np.ndarray) -> float:
    """Standard deviation of the natural-log singular values (0 = all equal): the width
    of the spectrum on a log axis. Exact zeros (-inf) are left out."""
    x = np.asarray(log_sv, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.std()) if x.size else float("nan")


def spread_vs_depth(n: int = 100, depths: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100),
                    kind: str = "gaussian", seeds: tuple[int, ...] = (0, 1, 2),
                    gain: float = 1.0) -> np.ndarray:
    """(len(depths), len(seeds)) ``log_spread`` of random products, one per seed."""
    from core.spectrum import random_product_spectrum

    return np.array([[log_spread(random_product_spectrum(n, d, kind, 1000 * s + d, gain))
                      for s in seeds] for d in depths])


# =========================================================================================
# Lesson 7: dynamical isometry (Pennington, Schoenholz & Ganguli 2017)
# =========================================================================================
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


def critical_point(activation: str, sigma_b: float) -> tuple[float, float, float, float]:
    """(sigma_w, sigma_b, q*, chi_1) on the critical line chi_1 = 1 (ReLU: sigma_w^2 = 2,
    sigma_b = 0, the only critical point; q* is then arbitrary and set to 1)."""
    from core import theory

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
    from core.spectrum import product_log_singular_values

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
