"""Singular values of weight matrices and of long products of Jacobians, computed accurately.

The input-output Jacobian of a deep net is a product P = F_L @ ... @ F_2 @ F_1 of per-layer
factors. Its singular values span e^{+-hundreds} to e^{+-thousands} at depth 100..1000, far past
what float64 holds (about e^{+-708}) and far past its 16 digits of relative precision: multiplying
the factors out and calling an SVD gets the top singular value right and the rest wrong by up to
hundreds of nats (rounding noise at eps * sigma_max swamps them). ``product_log_singular_values``
instead returns the natural logs of *all* of them, each as exact as the factors allow: the error
is about eps x (the factors' condition numbers, summed over layers), i.e. ~1e-13 nats for random
Gaussian or tanh/ReLU Jacobians at any depth, and ~1e-6 only if every factor had cond ~1e10
(checked against 100..700-digit mpmath in tests/test_spectrum.py).

How stability is achieved (the code below follows these four steps):

1. **Benettin's QR trick, in float64.** Never form P. Carry an orthonormal basis Q and a
   triangular factor: Z_l = F_l Q_{l-1}, Z_l = Q_l R_l, so P = Q_L R_L ... R_1 = Q_L T exactly
   and sv(P) = sv(T). Each Z_l is one well-scaled factor times a basis, so rounding is only ever
   relative to ||F_l|| (normwise backward stable per factor, the best any float algorithm can do).
   The QR is CholeskyQR (Gram matrix, Cholesky, one triangular solve: about 2x faster than
   LAPACK's Householder QR at these sizes), used only when Cholesky succeeds with
   min/max pivot > 1e-5, i.e. cond(Z_l) below roughly 1e6..1e7. Then Q_l = Z_l R_l^{-1} is
   orthonormal to ~eps*cond^2 <= 1e-2, which does not matter: the identity Q_l R_l = F_l Q_{l-1}
   holds to rounding whatever Q_l's orthogonality, each step re-orthogonalises from scratch,
   and the last Q_L gets one Householder QR whose R factor is folded into T. Ill-conditioned
   steps (saturated tanh rows, dead ReLUs, rank loss) use Householder QR with the rows sorted by
   norm (row-wise stable on graded rows); rows of Z that are exactly zero are dropped, which
   lowers the rank exactly, so exactly-zero singular values come back as -inf, not noise.
2. **T kept graded, never overflowing.** T = B @ diag(exp(c)) @ Tt: Tt has rows of max-norm 1,
   c holds each row's log scale, B is the plain product of the R's since the last "fold". A fold
   (done only when B's entries could leave [1e-150, 1e150]) rebuilds the row-scaled form with
   every factor written as exp(log|b_ij| + c_j - m_i) with m_i the row's largest exponent, so no
   exponential exceeds 1 and nothing that matters underflows: only terms below e^-745 times a
   row's largest term are dropped.
3. **Singular values of the graded T, exactly.** T's rows are graded but not orthogonal, so
   |diag| is only the asymptotic (Lyapunov) estimate. Three "transpose-QR" sweeps X <- R^T with
   X Pi = Q R (Householder QR, which is column-scaling invariant, on columns sorted by scale and
   kept normalised, their log scales carried separately) are the unshifted QR algorithm for the
   SVD: they drive coupling between singular values a gap g apart down by e^{-g} per sweep, so
   columns whose scales differ by more than a few nats become orthogonal to working precision.
4. **Windows.** Singular values are then read off overlapping windows of X's columns sorted by
   scale: a window covers the values to be read (a band of 4 nats) plus a margin of 14 nats
   each side, is rescaled so its top column is ~1 (its columns are graded and, after step 3,
   nearly orthogonal, so a float64 SVD returns even the band's values to ~1e-14 relative), and
   only the band is kept. Coupling to columns outside the window is second order, < e^{-28}.
   When the whole spectrum spans less than ~18 nats (shallow products, orthogonal products)
   this is one ordinary SVD of the rescaled product.

Cost per factor: two n x n matmuls (F_l Q, the Gram matrix), a Cholesky, a triangular solve
and a block-triangular product (B update), into reused buffers; the final step is O(n^3) once.
Singular values that are exactly zero in exact arithmetic but not exposed as zero rows (e.g. a
rank-deficient dense factor) come back as finite noise at about eps * ||F_l|| relative to the
neighbouring scale, as with any float algorithm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from core.spectrum_stats import effective_rank  # noqa: F401 - re-exported: NumPy only

_F64 = torch.float64
_CHOL_PIVOT_RATIO = 1e-5    # CholeskyQR only when min/max Cholesky pivot exceeds this
_FOLD_HI = 1e150            # fold B into the row-scaled form before |B| could pass this ...
_FOLD_LO = 1e-150           # ... or before its smallest diagonal entry could drop below this
_SWEEPS = 3                 # transpose-QR sweeps in the final step
_MARGIN = 14.0              # nats of context kept on each side of a window
_BAND = 4.0                 # nats of singular values read from one window
_ZERO_ROW = -1e300          # log scale given to rows of T that are exactly zero


class _Workspace:
    """Named float64 buffers reused across layers (fresh 0.5 MB tensors every layer cost ~25%
    in page faults), reallocated only when a shape changes."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bufs: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, *shape: int) -> torch.Tensor:
        buf = self.bufs.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = torch.zeros(shape, dtype=_F64, device=self.device)
            self.bufs[name] = buf
        return buf


def weight_singular_values(w: torch.Tensor) -> torch.Tensor:
    """Descending singular values of a 2-D matrix (a weight, an RNN recurrence, ...), on w's
    device and in w's dtype."""
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(w.shape)}")
    with torch.no_grad():
        return torch.linalg.svdvals(w.detach())                  # (min(m, n),)


# ---- step 1: one QR of Z = F_l Q_{l-1} ------------------------------------------------------

def _householder_qr(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Reduced QR of z (m, k). Rows of very different norms are first sorted by norm (Householder
    QR is then row-wise stable on graded rows), and exactly zero rows are dropped, so R has
    min(#nonzero rows, k) rows. Returns Q (m, r), R (r, k) and max |R_ij|."""
    rn = torch.linalg.vector_norm(z, dim=1)                      # (m,)
    rn_lo_hi = torch.aminmax(rn)
    if float(rn_lo_hi.min) > 1e-3 * float(rn_lo_hi.max):         # ungraded: plain QR
        q, r = torch.linalg.qr(z)                                # (m, r), (r, k)
    else:
        order = torch.argsort(rn, descending=True)
        keep = order[: int((rn > 0).sum())]
        q_s, r = torch.linalg.qr(z[keep])                        # (nz, r), (r, k)
        q = z.new_zeros(z.shape[0], q_s.shape[1])                # (m, r)
        q[keep] = q_s
    if r.numel() == 0:
        return q, r, 0.0
    lo_hi = torch.aminmax(r)
    return q, r, max(-float(lo_hi.min), float(lo_hi.max))


def _qr_step(z: torch.Tensor, ws: _Workspace) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Z = Q R with R upper triangular/trapezoidal: CholeskyQR when Z is well conditioned (Q then
    orthonormal only to ~eps*cond(Z)^2, see the module docstring), else Householder. Also
    returns a bound on max |R_ij| (the largest column norm of Z, for CholeskyQR)."""
    m, k = z.shape
    if m >= k:
        gram = torch.matmul(z.mT, z, out=ws("gram", k, k))      # (k, k)
        low, info = torch.linalg.cholesky_ex(gram)
        if int(info) == 0:
            piv = torch.aminmax(torch.diagonal(low))
            if float(piv.min) > _CHOL_PIVOT_RATIO * float(piv.max):
                r = low.mT                                       # (k, k) upper
                q = torch.linalg.solve_triangular(r, z, upper=True, left=False,
                                                  out=ws("q", m, k))                # (m, k)
                return q, r, math.sqrt(float(torch.diagonal(gram).max()))
    return _householder_qr(z)


# ---- step 2: the graded accumulator T = B diag(e^c) Tt --------------------------------------

def _triu_matmul(a: torch.Tensor, b: torch.Tensor,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b for a (m, k) and b (k, d) both upper trapezoidal (m <= k <= d), skipping most of
    the zero blocks (about half the flops of a dense product for large m)."""
    m = a.shape[0]
    if m < 96:
        return torch.matmul(a, b, out=out)
    if out is None:
        out = a.new_empty(m, b.shape[1])                         # (m, d)
    edges = [round(i * m / 4) for i in range(5)]
    for r0, r1 in zip(edges[:-1], edges[1:], strict=True):
        out[r0:r1, :r0] = 0.0
        torch.matmul(a[r0:r1, r0:], b[r0:, r0:], out=out[r0:r1, r0:])
    return out


def _fold(b: torch.Tensor, c: torch.Tensor, tt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-scaled form of B diag(e^c) Tt: returns (c', Tt') with Tt' rows of max-norm 1 (or
    exactly zero, log scale _ZERO_ROW). b (k, k0), c (k0,), tt (k0, d)."""
    lg = torch.log(b.abs()) + c[None, :]                         # (k, k0) log|b_ij| + c_j
    m = lg.amax(dim=1)                                           # (k,) largest term per row
    m = torch.where(m > -math.inf, m, 0.0)                       # zero rows of b
    a = torch.sign(b) * torch.exp(lg - m[:, None])               # (k, k0), |a| <= 1
    tn = _triu_matmul(a, tt)                                     # (k, d)
    rn = tn.abs().amax(dim=1)                                    # (k,)
    zero = rn == 0
    tn = tn / torch.where(zero, 1.0, rn)[:, None]
    return torch.where(zero, _ZERO_ROW, m + torch.log(rn)), tn


# ---- steps 3-4: singular values of the graded triangular T ----------------------------------

def _rows_of_scaled(r: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of R diag(e^t) as unit columns U (k, k) with log norms s (k,): R diag(e^t) = diag(e^s)
    U^T. Zero rows get s = -inf and a zero column."""
    lg = torch.log(r.abs()) + t[None, :]                         # (k, k)
    mx = lg.amax(dim=1)                                          # (k,)
    u = torch.sign(r) * torch.exp(lg - torch.where(mx > -math.inf, mx, 0.0)[:, None])
    u = torch.nan_to_num(u, nan=0.0)                             # (k, k), |u| <= 1
    nrm = torch.linalg.vector_norm(u, dim=1)                     # (k,)
    u = u / torch.where(nrm > 0, nrm, 1.0)[:, None]
    return u.mT, mx + torch.log(nrm)


def _graded_log_svd(c: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
    """Descending log singular values of diag(e^c) @ tt (k, d), k <= d, -inf for zero ones."""
    u = tt.mT                                                    # (d, k): X = U diag(e^t)
    nrm = torch.linalg.vector_norm(u, dim=0)                     # (k,)
    u = u / torch.where(nrm > 0, nrm, 1.0)[None, :]
    t = torch.where(nrm > 0, c + torch.log(nrm), -math.inf)      # (k,)
    for _ in range(_SWEEPS):
        order = torch.argsort(t, descending=True)
        r = torch.linalg.qr(u[:, order], mode="r").R             # (k, k): X Pi = Q R diag(e^t)
        u, t = _rows_of_scaled(r, t[order])                      # X <- (R diag(e^t))^T
    order = torch.argsort(t, descending=True)
    u, t = u[:, order], t[order]
    k = t.shape[0]
    out = torch.full((k,), -math.inf, dtype=_F64, device=t.device)
    tl = t.tolist()
    kf = sum(1 for x in tl if x > -math.inf)                     # the rest are exact zeros
    i0 = 0
    while i0 < kf:
        e = i0 + 1                                               # read [i0, e): a 4-nat band
        while e < kf and tl[e] >= tl[i0] - _BAND:
            e += 1
        a = i0                                                   # window [a, b): + margins
        while a > 0 and tl[a - 1] < tl[i0] + _MARGIN:
            a -= 1
        b = e
        while b < kf and tl[b] >= tl[e - 1] - _MARGIN:
            b += 1
        w = u[a:, a:b] * torch.exp(t[a:b] - t[a])[None, :]       # (k - a, b - a); u lower-tri
        s = torch.linalg.svdvals(w)                              # (b - a,) descending
        out[i0:e] = torch.log(s[i0 - a:e - a]) + t[a]
        i0 = e
    return out


# ---- public API ------------------------------------------------------------------------------

@torch.no_grad()
def product_log_singular_values(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Natural-log singular values, descending, float64 (on the factors' device), of
    P = F_L @ ... @ F_2 @ F_1 where ``factors[0]`` = F_1 is applied first.

    Factors may be rectangular (F_1 may be n x d_in); there are min(d_in, n_1, ..., n_L) values.
    Every value is accurate to ~eps x the factors' condition numbers (~1e-13 nats for random
    or tanh/ReLU Jacobians) at any depth (the module docstring says how); values that are
    exactly zero (a zero factor, ReLU units that are dead for this input, i.e.
    exactly zero rows of a factor) are -inf. Inputs must be finite.
    """
    if len(factors) == 0:
        raise ValueError("need at least one factor")
    mats = [torch.as_tensor(f).detach() for f in factors]
    for i, f in enumerate(mats):
        if f.ndim != 2:
            raise ValueError(f"factor {i} is not 2-D: shape {tuple(f.shape)}")
        if i and f.shape[1] != mats[i - 1].shape[0]:
            raise ValueError(f"factor {i} has {f.shape[1]} columns but factor {i - 1} has "
                             f"{mats[i - 1].shape[0]} rows")
    d = mats[0].shape[1]
    n_vals = min([d] + [f.shape[0] for f in mats])
    dev = mats[0].device
    zeros = torch.full((n_vals,), -math.inf, dtype=_F64, device=dev)
    if n_vals == 0:
        return zeros

    c = torch.zeros(d, dtype=_F64, device=dev)                   # (d,) log row scales of T
    tt = torch.eye(d, dtype=_F64, device=dev)                    # (d, d) rows of T, max-norm 1
    b: torch.Tensor | None = None                                # product of R's since a fold
    b_hi = b_lo = 1.0                                            # max|B|, min|diag B|
    q: torch.Tensor | None = None                                # (n_l, k) basis
    ws = _Workspace(dev)
    flip = False                                                 # which B buffer is current
    for f in mats:
        lo_hi = torch.aminmax(f)
        fmax = max(-float(lo_hi.min), float(lo_hi.max))
        if not math.isfinite(fmax):
            raise ValueError("factors must be finite")
        if fmax == 0.0:
            return zeros
        f = ws("f", *f.shape).copy_(f)                           # (n_l, n_{l-1}) float64
        if not 1e-100 < fmax < 1e100:                            # keep Z's Gram matrix in range
            e2 = math.frexp(fmax)[1]
            f.mul_(math.ldexp(1.0, -e2))                         # exact power-of-2 rescale
            c = c + e2 * math.log(2.0)                           # (a uniform row scale)
        z = f if q is None else torch.matmul(f, q, out=ws("z", f.shape[0], q.shape[1]))
        q, r, r_hi = _qr_step(z, ws)                             # (n_l, k'), (k', k), max|r|
        if r.shape[0] == 0:
            return zeros
        r_lo = float(torch.diagonal(r).abs().min())
        if b is not None and (b_hi * r_hi * r.shape[1] > _FOLD_HI or b_lo * r_lo < _FOLD_LO):
            c, tt = _fold(b, c, tt)
            b = None
        flip = not flip
        b_next = ws(f"b{int(flip)}", r.shape[0], r.shape[1] if b is None else b.shape[1])
        b = b_next.copy_(r) if b is None else _triu_matmul(r, b, out=b_next)   # (k', d|k0)
        lo_hi = torch.aminmax(b)
        b_hi = max(-float(lo_hi.min), float(lo_hi.max))
        b_lo = float(torch.diagonal(b).abs().min())
    assert q is not None and b is not None
    r_fix = torch.linalg.qr(q, mode="r").R                       # (k, k): make Q_L orthonormal
    b = _triu_matmul(r_fix, b)
    c, tt = _fold(b, c, tt)                                      # (k,), (k, d)
    out = _graded_log_svd(c, tt)                                 # (k,)
    if out.shape[0] < n_vals:                                    # rank lost to zero rows
        out = torch.cat([out, zeros[: n_vals - out.shape[0]]])
    return out


def product_singular_values(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """exp of ``product_log_singular_values`` (float64, descending). Values below ~1e-308
    underflow to 0 and above ~1e308 overflow to inf: plot the log version."""
    return torch.exp(product_log_singular_values(factors))


def random_product_spectrum(n: int, depth: int, kind: str, seed: int,
                            gain: float = 1.0) -> np.ndarray:
    """Log singular values (descending, float64) of a product of ``depth`` random n x n
    matrices: kind "gaussian" (entries N(0, gain^2 / n)) or "orthogonal" (gain times a Haar
    orthogonal matrix). Their spread grows with depth for Gaussian factors and stays 0 for
    orthogonal ones (Saxe et al. 2014). Uses its own generator, never the global seed."""
    if kind not in ("gaussian", "orthogonal"):
        raise ValueError(f"kind must be 'gaussian' or 'orthogonal', got {kind!r}")
    if n < 1 or depth < 1:
        raise ValueError("n and depth must be >= 1")
    g = torch.Generator().manual_seed(seed)
    factors = []
    for _ in range(depth):
        a = torch.randn(n, n, generator=g, dtype=_F64)           # (n, n)
        if kind == "gaussian":
            factors.append(a * (gain / math.sqrt(n)))
        else:
            qm, rm = torch.linalg.qr(a)
            sign = torch.where(torch.diagonal(rm) < 0, -1.0, 1.0).to(_F64)   # (n,) Haar fix
            factors.append(qm * sign[None, :] * gain)
    return product_log_singular_values(factors).cpu().numpy()
