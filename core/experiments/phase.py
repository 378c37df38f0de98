"""The trainability phase map (Poole et al. 2016; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein
2017), measured by this engine beside the mean-field theory of ``core.theory``.

* :func:`at_init_map`: random nets W ~ N(0, sigma_w^2 / n), b ~ N(0, sigma_b^2) over a column
  of sigma_w^2 values, all propagated as ONE batched ensemble (one ``bmm`` per layer for every
  cell): per layer the Jacobian's mean squared singular value (forward-mode tangents, the
  Hutchinson estimate of tr(J^T J) / n), the correlation c_l of input pairs, the squared
  length q_l. Depth is read off layer by layer: a depth-l net is the first l layers of the
  deepest one. The cells share their standard-normal draws and differ only in sigma_w
  (common random numbers: a smooth map, and a sharper estimate of where chi_1 crosses 1).
* :func:`trainability`: every (sigma_w^2, depth) cell trained K steps of SGD on MNIST and
  scored by test accuracy; the cells of one depth are one batched ensemble (``bmm``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core import progress, theory
from core.config import RunConfig
from core.data import load as load_data
from core.experiments.phase_results import (
    PHASE_ACTIVATIONS,
    PhaseMap,
    PhaseTheory,
    TrainabilityMap,
    crossing,
)

Act = Callable[[torch.Tensor], torch.Tensor]
ActPair = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _tanh2(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.tanh(z)
    return a, 1.0 - a * a


def _sigmoid2(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.sigmoid(z)
    return a, a * (1.0 - a)


#: name -> (phi, z -> (phi(z), phi'(z)) computed together)
_ACTS: dict[str, tuple[Act, ActPair]] = {
    "tanh": (torch.tanh, _tanh2),
    "hardtanh": (lambda z: z.clamp(-1.0, 1.0),
                 lambda z: (z.clamp(-1.0, 1.0), (z.abs() < 1.0).to(z.dtype))),
    "relu": (torch.relu, lambda z: (torch.relu(z), (z > 0).to(z.dtype))),
    "sigmoid": (torch.sigmoid, _sigmoid2),
    "erf": (torch.erf, lambda z: (torch.erf(z), (2.0 / math.sqrt(math.pi)) * torch.exp(-z * z))),
    "linear": (lambda z: z, lambda z: (z, torch.ones_like(z))),
}
assert set(_ACTS) == set(PHASE_ACTIVATIONS), "one torch pair per phase-map activation"


def _act(name: str) -> tuple[Act, ActPair]:
    if name not in _ACTS:
        raise ValueError(f"unknown activation {name!r}; one of {', '.join(PHASE_ACTIVATIONS)}")
    return _ACTS[name]


# ---- theory along a column --------------------------------------------------------------------


def phase_theory(activation: str, sigma_b2: float, sigma_w2: Sequence[float]) -> PhaseTheory:
    """q*, chi_1, c*, chi_c, xi_c and xi_grad of ``core.theory`` at each sigma_w^2, and the
    critical sigma_w^2 (chi_1 = 1) for this sigma_b^2. NumPy only: cheap enough for a page."""
    _act(activation)
    sb = math.sqrt(sigma_b2)
    sw = [math.sqrt(float(v)) for v in sigma_w2]
    crit = theory.critical_sigma_w(activation, sb)
    return PhaseTheory(
        sigma_w2=np.asarray(sigma_w2, dtype=np.float64),
        q_star=np.array([theory.q_star(activation, w, sb) for w in sw]),
        chi_1=np.array([theory.chi_1(activation, w, sb) for w in sw]),
        c_star=np.array([theory.c_star(activation, w, sb) for w in sw]),
        chi_c=np.array([theory.chi_c(activation, w, sb) for w in sw]),
        xi_c=np.array([theory.xi_c(activation, w, sb) for w in sw]),
        xi_grad=np.array([theory.xi_grad(activation, w, sb) for w in sw]),
        critical_sigma_w2=crit ** 2 if math.isfinite(crit) else math.nan)


# ---- at initialisation ------------------------------------------------------------------------


def _start_state(q0: torch.Tensor, c0: torch.Tensor, nets: int, width: int, pairs: int,
                 g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer-0 pre-activations (R, n, S, 2P): P pairs per net with squared length q0[s] and
    correlation c0[s]; and unit tangents (R, n, S, 2P), one per input, the same for every s."""
    s = q0.numel()
    g1 = torch.randn(nets, width, 1, pairs, generator=g, dtype=torch.float64)
    g2 = torch.randn(nets, width, 1, pairs, generator=g, dtype=torch.float64)
    scale = q0.sqrt().view(1, 1, s, 1)
    c = c0.view(1, 1, s, 1)
    za = scale * g1
    zb = scale * (c * g1 + (1.0 - c * c).clamp(min=0.0).sqrt() * g2)
    z = torch.cat([za, zb], dim=-1)                                    # (R, n, S, 2P)
    t = torch.randn(nets, width, 1, 2 * pairs, generator=g, dtype=torch.float64)
    t = (t / t.norm(dim=1, keepdim=True)).expand(-1, -1, s, -1).contiguous()
    return z, t


def _layer_stats(z: torch.Tensor, t_new: torch.Tensor, pairs: int, sw2: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per cell s: the pooled ratio of squared tangent norms (the tangents in were unit
    columns; ``t_new`` is J t without the weight scale sigma_w / sqrt(n), whose square
    ``sw2`` multiplies the ratio), 1 - c of the pairs (half the squared distance of the
    normalised pair: exact far below float64's 1e-16 near c = 1), and q = mean z^2."""
    def pooled(x: torch.Tensor) -> torch.Tensor:   # sum over nets, units, columns: (S,)
        return x.sum(dim=1).sum(dim=(0, 2))         # the unit axis first: 2x faster

    cols = t_new.shape[0] * t_new.shape[-1]
    ratio = pooled(t_new.square()) * sw2 / cols                          # (S,)
    za, zb = z[..., :pairs], z[..., pairs:]
    z2 = z.square()
    sa, sb = pooled(z2[..., :pairs]), pooled(z2[..., pairs:])
    na, nb = sa.sqrt().view(1, 1, -1, 1), sb.sqrt().view(1, 1, -1, 1)
    decorr = 0.5 * pooled((za / na - zb / nb).square())                  # (S,) 1 - c
    q = (sa + sb) / (z.shape[0] * z.shape[1] * z.shape[3])               # (S,) mean z^2
    return ratio, decorr, q


def _fit_xi(decorr: np.ndarray, c0: float) -> tuple[float, float]:
    """(measured c*, fitted correlation depth scale) of one column's 1 - c_l, l = 0..L.

    c* is the mean c_l over the last third of the layers, or exactly 1 when those are within
    1e-9 of 1 (the ordered phase, where identical weights bring every pair together). The
    depth scale is -1 / slope of ln|c_l - c*| against l, fitted from where |c_l - c*| falls
    below 30 % of its start (near c*, where xi_c is defined: the first layers are skipped)
    until it reaches the floor: 8 % of its start in the chaotic phase (or 3 x the tail's
    layer-to-layer spread, the finite-width noise, if higher), 1e-12 in the ordered phase."""
    c = 1.0 - decorr
    n = len(c)
    if np.all(decorr[2 * n // 3:] < 1e-9):
        cs, dev = 1.0, decorr
        floor = 1e-12
    else:
        tail = c[2 * n // 3:]
        cs, dev = float(np.mean(tail)), np.abs(c - float(np.mean(tail)))
        floor = max(0.08 * abs(c0 - cs), 3.0 * float(np.std(tail)))
    top = 0.3 * abs(c0 - cs)
    idx = []
    for i in range(n):
        if dev[i] < floor:
            break                        # the noise (or the end of the linear regime)
        if dev[i] <= top:
            idx.append(i)
    if len(idx) < 3:
        return cs, math.nan
    slope = np.polyfit(np.asarray(idx, dtype=np.float64), np.log(dev[idx]), 1)[0]
    return cs, (-1.0 / slope if slope < 0 else math.inf)


def at_init_map(activation: str = "tanh", sigma_b2: float = 0.05,
                sigma_w2: Sequence[float] = tuple(np.linspace(0.5, 4.0, 32)), depth: int = 200,
                width: int = 128, nets: int = 4, pairs: int = 8,
                c0: float | Sequence[float] = 0.99,
                seed: int = 0, batched: bool = True, theory_column: PhaseTheory | None = None
                ) -> PhaseMap:
    """Propagate ``nets`` random nets per sigma_w^2 (sharing their standard-normal weights
    across the column) for ``depth`` layers, all cells in one ``bmm`` per layer, and measure
    per layer: the Jacobian's mean squared singular value (chi_1), the correlation c_l of
    ``pairs`` input pairs that start at correlation ``c0`` and length q*, and q_l. Float64:
    1 - c_l falls far below float32's resolution in the ordered phase. ``batched=False``
    computes the same nets one by one (the benchmark's reference); ``theory_column``: this
    column's theory if already computed (the benchmark times the ensemble alone). Every
    layer is a ``core.progress`` point."""
    if depth < 1 or width < 2 or nets < 1 or pairs < 1 or not sigma_w2:
        raise ValueError("need depth >= 1, width >= 2, nets >= 1, pairs >= 1, and sigma_w2")
    c0s = [float(c0)] * len(sigma_w2) if np.isscalar(c0) else [float(v) for v in c0]
    if len(c0s) != len(sigma_w2) or not all(-1.0 < v < 1.0 for v in c0s):
        raise ValueError(f"c0 must be in (-1, 1), one value or one per sigma_w2; got {c0}")
    if sigma_b2 < 0 or min(sigma_w2) <= 0:
        raise ValueError("sigma_b2 must be >= 0 and every sigma_w2 > 0")
    t0 = time.perf_counter()
    _, act2 = _act(activation)
    th = theory_column or phase_theory(activation, sigma_b2, sigma_w2)
    assert len(th.sigma_w2) == len(sigma_w2), "theory_column is for another column"
    s_count = len(sigma_w2)
    q0 = torch.tensor([q if 0.0 < q < math.inf else 1.0 for q in th.q_star],
                      dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    z, t = _start_state(q0, torch.tensor(c0s, dtype=torch.float64), nets, width, pairs, g)
    sw = torch.tensor([math.sqrt(v / width) for v in sigma_w2],
                      dtype=torch.float64).view(1, 1, s_count, 1)
    sb = math.sqrt(sigma_b2)
    ratio = np.empty((s_count, depth))
    decorr = np.empty((s_count, depth + 1))
    qs = np.empty((s_count, depth + 1))
    sw2 = sw.view(-1).square()                   # sigma_w^2 / n: the squared weight scale
    _, d0, q00 = _layer_stats(z, t, pairs, sw2)
    decorr[:, 0], qs[:, 0] = d0.numpy(), q00.numpy()
    layers = _batched_layers if batched else _looped_layers
    for i, (z_l, t_l) in enumerate(layers(z, t, act2, sw, sb, depth, g)):
        r, d, q = _layer_stats(z_l, t_l, pairs, sw2)
        ratio[:, i], decorr[:, i + 1], qs[:, i + 1] = r.numpy(), d.numpy(), q.numpy()
        progress.step(i + 1, depth)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(ratio)
    log_gain = np.cumsum(log_ratio, axis=1)
    chi1 = np.exp(np.mean(log_ratio, axis=1))
    fits = [_fit_xi(decorr[s], c0s[s]) for s in range(s_count)]
    return PhaseMap(
        activation=activation, sigma_b2=float(sigma_b2), width=width, nets=nets, pairs=pairs,
        c0=c0s[0] if np.isscalar(c0) else float("nan"),
        sigma_w2=np.asarray(sigma_w2, dtype=np.float64),
        depths=np.arange(1, depth + 1), log_gain=log_gain, chi1_layer=ratio,
        corr=1.0 - decorr, decorr=decorr, q=qs, chi1_measured=chi1,
        c_star_measured=np.array([f[0] for f in fits]),
        xi_c_measured=np.array([f[1] for f in fits]),
        critical_sigma_w2_measured=crossing(np.asarray(sigma_w2), np.log(chi1)),
        theory=th, elapsed_s=time.perf_counter() - t0)


def _draw(g: torch.Generator, nets: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's standard-normal weights (R, n, n) and biases (R, n, 1, 1), drawn in
    float32 (5x faster than float64 draws) and computed with in float64."""
    w = torch.randn(nets, width, width, generator=g).double()
    b = torch.randn(nets, width, 1, 1, generator=g).double()
    return w, b


def _batched_layers(z: torch.Tensor, t: torch.Tensor, act2: ActPair, sw: torch.Tensor,
                    sb: float, depth: int, g: torch.Generator):
    """Yield (z_l, J t_{l-1}) per layer, every cell of every net in one bmm: the state
    (R, n, S, C) is viewed as (R, n, S*C) columns for the layer's (R, n, n) weights."""
    nets, width, s_count, cols = z.shape
    for _ in range(depth):
        w, b = _draw(g, nets, width)
        a, d = act2(z)
        x = torch.cat([a, d.mul_(t)], dim=-1)                          # (R, n, S, 2C)
        y = torch.bmm(w, x.view(nets, width, -1)).view(nets, width, s_count, 2 * cols)
        z = torch.addcmul(sb * b, y[..., :cols], sw)                   # (R, n, S, C)
        t_new = y[..., cols:]               # J t without sigma_w / sqrt(n) (the stats put it back)
        yield z, t_new
        t = t_new / t_new.norm(dim=1, keepdim=True)                    # unit columns again


def _looped_layers(z: torch.Tensor, t: torch.Tensor, act2: ActPair, sw: torch.Tensor,
                   sb: float, depth: int, g: torch.Generator):
    """The same nets and numbers as :func:`_batched_layers`, computed one net (r, s) at a
    time through all its layers (the weights are drawn first, in the same order)."""
    nets, width, s_count, cols = z.shape
    draws = [_draw(g, nets, width) for _ in range(depth)]
    zs = torch.empty(depth, nets, width, s_count, cols, dtype=torch.float64)
    ts = torch.empty_like(zs)
    for r in range(nets):
        for s in range(s_count):
            zz, tt = z[r, :, s], t[r, :, s]                           # (n, C)
            scale = sw.view(-1)[s]
            for i, (w, b) in enumerate(draws):
                a, d = act2(zz)
                zn = scale * (w[r] @ a) + sb * b[r, :, 0]
                tn = w[r] @ (d * tt)                                   # J t / sigma_w
                zs[i, r, :, s], ts[i, r, :, s] = zn, tn
                zz, tt = zn, tn / tn.norm(dim=0, keepdim=True)
    for i in range(depth):
        yield zs[i], ts[i]


# ---- trainability -----------------------------------------------------------------------------


def trainability(activation: str = "tanh", sigma_b2: float = 0.05,
                 sigma_w2: Sequence[float] = (1.0, 2.0, 3.0), depths: Sequence[int] = (10, 30),
                 steps: int = 300, width: int = 64, lr: float = 1e-3, batch_size: int = 32,
                 n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> TrainabilityMap:
    """Train a fresh net for every (sigma_w^2, depth) cell -- W ~ N(0, sigma_w^2 / n_in),
    b ~ N(0, sigma_b^2), softmax cross-entropy -- with ``steps`` steps of SGD (``lr``,
    mini-batches of ``batch_size`` MNIST images, the same batches for every cell) and
    report the test accuracy. The cells of one depth train as one batched ensemble (one
    ``bmm`` per layer, the summed loss gives each net its own gradient). Every step is a
    ``core.progress`` point; each depth is a stage."""
    phi, _ = _act(activation)
    if steps < 0 or width < 2 or batch_size < 1 or lr <= 0 or not sigma_w2 or not depths:
        raise ValueError("need steps >= 0, width >= 2, batch_size >= 1, lr > 0, and cells")
    if min(depths) < 1:
        raise ValueError("every depth must be >= 1")
    t0 = time.perf_counter()
    ds = load_data(RunConfig(dataset="mnist", n_train=n_train, n_test=n_test, seed=seed))
    s_count = len(sigma_w2)
    acc = np.full((s_count, len(depths)), np.nan)
    loss_end = np.full((s_count, len(depths)), np.nan)
    diverged = np.zeros((s_count, len(depths)), dtype=bool)
    for j, depth in enumerate(depths):
        progress.stage(j, len(depths))
        g = torch.Generator().manual_seed(seed * 7919 + int(depth))
        a, le, dv = _train_cells(phi, sigma_w2, sigma_b2, int(depth), width, ds, steps, lr,
                                 batch_size, g)
        acc[:, j], loss_end[:, j], diverged[:, j] = a, le, dv
    return TrainabilityMap(
        activation=activation, sigma_b2=float(sigma_b2), width=width, steps=steps, lr=lr,
        batch_size=batch_size, sigma_w2=np.asarray(sigma_w2, dtype=np.float64),
        depths=np.asarray(depths, dtype=np.int64), test_accuracy=acc, train_loss=loss_end,
        diverged=diverged, elapsed_s=time.perf_counter() - t0)


def _train_cells(phi: Act, sigma_w2: Sequence[float], sigma_b2: float, depth: int, width: int,
                 ds, steps: int, lr: float, batch_size: int, g: torch.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S nets of one depth as one ensemble: weights (S, n_out, n_in) per layer."""
    s_count = len(sigma_w2)
    sw = torch.tensor([math.sqrt(v) for v in sigma_w2]).view(s_count, 1, 1)
    sb = math.sqrt(sigma_b2)
    dims = [ds.n_in] + [width] * depth + [ds.n_out]
    params: list[torch.Tensor] = []
    for n_in, n_out in zip(dims[:-1], dims[1:], strict=True):
        w = torch.randn(s_count, n_out, n_in, generator=g) * sw / math.sqrt(n_in)
        b = torch.randn(s_count, n_out, 1, generator=g) * sb
        params += [w.requires_grad_(), b.requires_grad_()]

    def forward(x: torch.Tensor) -> torch.Tensor:              # x (B, n_in) -> (S, n_out, B)
        h = x.T.unsqueeze(0).expand(s_count, -1, -1)           # (S, n_in, B)
        for i in range(0, len(params) - 2, 2):
            h = phi(torch.baddbmm(params[i + 1], params[i], h))
        return torch.baddbmm(params[-1], params[-2], h)

    n = ds.x_train.shape[0]
    bs = min(batch_size, n)
    tail = max(1, steps // 10)
    losses = torch.zeros(s_count)
    alive = torch.ones(s_count, dtype=torch.bool)
    perm, pos = torch.randperm(n, generator=g), 0
    for step in range(steps):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos:pos + bs]
        pos += bs
        out = forward(ds.x_train[idx])                           # (S, 10, B)
        y = ds.y_train[idx].expand(s_count, -1)                  # (S, B)
        per_net = F.cross_entropy(out, y, reduction="none").mean(dim=1)     # (S,)
        alive &= torch.isfinite(per_net.detach())
        grads = torch.autograd.grad(per_net.where(alive, 0.0).sum(), params)
        with torch.no_grad():
            for p, gr in zip(params, grads, strict=True):
                p.sub_(lr * torch.nan_to_num(gr, nan=0.0, posinf=0.0, neginf=0.0))
        if step >= steps - tail:
            losses += per_net.detach().where(alive, 0.0) / tail
        progress.step(step + 1, steps)
    with torch.no_grad():
        pred = forward(ds.x_test).argmax(dim=1)                  # (S, M)
        acc = (pred == ds.y_test.unsqueeze(0)).double().mean(dim=1)
        ok = alive & torch.isfinite(forward(ds.x_test)).all(dim=2).all(dim=1)
    acc_np = np.where(ok.numpy(), acc.numpy(), np.nan)
    loss_np = np.where(ok.numpy(), losses.numpy(), np.nan)
    return acc_np, loss_np, ~ok.numpy()


__all__ = ["PHASE_ACTIVATIONS", "PhaseMap", "PhaseTheory", "TrainabilityMap", "at_init_map",
           "crossing", "phase_theory", "trainability"]
