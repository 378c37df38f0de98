"""Closed forms the lessons quote, in NumPy only (no torch).

* Nielsen's one-neuron-per-layer chain (Neural Networks and Deep Learning, ch. 5): the gradient
  dC/db_1 is a product of factors w_j sigma'(z_j), each at most |w_j|/4 -> vanishing, unless the
  weights are large and the z_j sit near 0 -> exploding; the window of inputs where a factor
  |w sigma'(w a + b)| >= 1 is narrow (at most ~0.45 wide, at |w| ~ 6.9).
* Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017; Pennington et al.
  2017) for W ~ N(0, sigma_w^2 / n), b ~ N(0, sigma_b^2): the length fixed point q* and the
  slope chi_1 of the Jacobian's mean squared singular value; chi_1 = 1 is the edge of chaos.
* Variance propagation (Dive into Deep Learning, "Numerical Stability and Initialization").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ArrayLike = float | np.ndarray

# ---- Nielsen's chain ---------------------------------------------------------------------------


def sigmoid(z: ArrayLike) -> ArrayLike:
    """Logistic function 1 / (1 + e^-z): no overflow, full relative precision in both tails."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))                                   # <= 1
    out = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return float(out) if out.ndim == 0 else out


def sigmoid_prime(z: ArrayLike) -> ArrayLike:
    """sigma'(z) = sigma(z) (1 - sigma(z)) = e^-|z| / (1 + e^-|z|)^2; at most 1/4, at z = 0."""
    e = np.exp(-np.abs(np.asarray(z, dtype=np.float64)))
    out = e / (1.0 + e) ** 2
    return float(out) if out.ndim == 0 else out


def chain_forward(x: float, w: Sequence[float], b: Sequence[float],
                  dc_da_last: float = 1.0) -> dict[str, Any]:
    """Forward and backward pass of Nielsen's chain a_j = sigma(w_j a_{j-1} + b_j), a_0 = x.

    Returns arrays ``z``, ``a`` (a_1..a_L), ``sigma_prime`` (sigma'(z_j)), ``factors``
    (w_j sigma'(z_j), j = 1..L), ``grad_b`` (dC/db_j for every j) and the float ``grad_b1`` =
    sigma'(z_1) * prod_{j>=2} w_j sigma'(z_j) * dC/da_L, with dC/da_L = ``dc_da_last``.
    """
    wv = np.asarray(w, dtype=np.float64).ravel()
    bv = np.asarray(b, dtype=np.float64).ravel()
    if wv.shape != bv.shape or wv.size == 0:
        raise ValueError("w and b must be non-empty and of equal length")
    n = wv.size
    z = np.empty(n)
    a = np.empty(n)
    prev = float(x)
    for j in range(n):
        z[j] = wv[j] * prev + bv[j]
        a[j] = sigmoid(z[j])
        prev = a[j]
    sp = np.asarray(sigmoid_prime(z))
    factors = wv * sp
    # dC/db_j = sigma'(z_j) * prod_{i>j} w_i sigma'(z_i) * dC/da_L
    tail = np.ones(n)
    for j in range(n - 2, -1, -1):
        tail[j] = tail[j + 1] * factors[j + 1]
    grad_b = sp * tail * dc_da_last
    return {"z": z, "a": a, "sigma_prime": sp, "factors": factors, "grad_b": grad_b,
            "grad_b1": float(grad_b[0])}


def exploding_chain_biases(w: Sequence[float], a0: float) -> np.ndarray:
    """Biases b_j = -w_j a_{j-1} that put every z_j at 0 (so a_j = 1/2 and each factor is
    w_j / 4): Nielsen's exploding-gradient example, w = 100 -> factors of 25."""
    wv = np.asarray(w, dtype=np.float64).ravel()
    prev = np.concatenate([[float(a0)], np.full(max(wv.size - 1, 0), 0.5)])   # a_{j-1}
    return -wv * prev


def window_width(w: ArrayLike) -> ArrayLike:
    """Width of the set of inputs a with |w sigma'(w a + b)| >= 1 (the same for every b).

    With y = e^z, |w| y / (1 + y)^2 >= 1 is y^2 + (2 - |w|) y + 1 <= 0, whose roots multiply to
    1, so the z-interval is [-ln y+, ln y+] and the a-interval has width (2/|w|) ln y+ with
    y+ = |w| (1 + sqrt(1 - 4/|w|)) / 2 - 1. Empty (width 0) for |w| < 4.
    """
    aw = np.abs(np.asarray(w, dtype=np.float64))
    safe = np.maximum(aw, 4.0)
    yp = safe * (1.0 + np.sqrt(1.0 - 4.0 / safe)) / 2.0 - 1.0
    width = np.where(aw >= 4.0, 2.0 / safe * np.log(np.maximum(yp, 1.0)), 0.0)
    return float(width) if width.ndim == 0 else width


def window_width_max() -> tuple[float, float]:
    """(|w| maximising window_width, that maximum width), by golden-section search: about
    (6.9, 0.45), so a factor >= 1 needs the input inside a window at most ~0.45 wide."""
    lo, hi = 4.0, 40.0
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = window_width(c), window_width(d)
    while hi - lo > 1e-12:
        if fc > fd:
            hi, d, fd = d, c, fc
            c = hi - g * (hi - lo)
            fc = window_width(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + g * (hi - lo)
            fd = window_width(d)
    wm = 0.5 * (lo + hi)
    return wm, float(window_width(wm))


# ---- mean field --------------------------------------------------------------------------------

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(100)
_Z = math.sqrt(2.0) * _GH_NODES                      # E f(z), z ~ N(0,1) = sum(_W * f(_Z))
_W = _GH_WEIGHTS / math.sqrt(math.pi)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(100)
_ZMAX = 12.0                                          # P(|z| > 12) ~ 4e-33
_ERF = np.vectorize(math.erf, otypes=[np.float64])
_SELU_A, _SELU_L = 1.6732632423543772, 1.0507009873554805


def _gelu(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        y = 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)))
    return np.nan_to_num(y, nan=0.0, posinf=math.inf, neginf=-math.inf)  # gelu(-inf) = 0


def _gelu_prime(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return 0.5 * (1.0 + _ERF(x / math.sqrt(2.0))) + np.nan_to_num(x * pdf)


def _sp(x: np.ndarray) -> np.ndarray:
    return np.asarray(sigmoid_prime(x))


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


# name -> (phi, phi'); each accepts +-inf inputs (q* may be infinite) without NaN.
MEAN_FIELD_ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray],
                             Callable[[np.ndarray], np.ndarray]]] = {
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "hardtanh": (lambda x: np.clip(x, -1.0, 1.0), lambda x: (np.abs(x) < 1.0).astype(float)),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1.0, 0.01)),
    "linear": (lambda x: x, lambda x: np.ones_like(x)),
    "sigmoid": (lambda x: np.asarray(sigmoid(x)), _sp),
    "scaled_sigmoid": (lambda x: 4.0 * np.asarray(sigmoid(x)) - 2.0, lambda x: 4.0 * _sp(x)),
    "softsign": (lambda x: np.nan_to_num(x / (1.0 + np.abs(x)), nan=0.0) + np.isposinf(x)
                 - np.isneginf(x), lambda x: 1.0 / (1.0 + np.abs(x)) ** 2),
    "elu": (_elu, lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))),
    "selu": (lambda x: _SELU_L * np.where(x > 0, x, _SELU_A * np.expm1(np.minimum(x, 0.0))),
             lambda x: _SELU_L * np.where(x > 0, 1.0, _SELU_A * np.exp(np.minimum(x, 0.0)))),
    "gelu": (_gelu, _gelu_prime),
    "erf": (_ERF, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-np.square(x))),
}


# where phi or phi' is not smooth (pre-activation values)
_KINKS: dict[str, tuple[float, ...]] = {
    "hardtanh": (-1.0, 1.0), "relu": (0.0,), "leaky_relu": (0.0,), "elu": (0.0,), "selu": (0.0,),
}


def _act(name: str) -> tuple[Callable[[np.ndarray], np.ndarray],
                             Callable[[np.ndarray], np.ndarray]]:
    try:
        return MEAN_FIELD_ACTIVATIONS[name]
    except KeyError:
        known = sorted(MEAN_FIELD_ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; one of {known}") from None


def _gauss_mean(fn: Callable[[np.ndarray], np.ndarray], q: float, kinks: tuple[float, ...] = (),
                ) -> float:
    """E[fn(sqrt(q) z)], z ~ N(0, 1). Smooth fn: 100-node Gauss-Hermite quadrature. fn with
    kinks (at these pre-activation values): Gauss-Legendre on each smooth piece of [-12, 12]
    in z (Gauss-Hermite converges slowly across a kink). q = 0 is evaluated as q = 1e-300 so
    that a kink at 0 is averaged over both sides, as the limit q -> 0 is."""
    if not math.isfinite(q):
        return float(np.sum(_W * fn(np.where(_Z > 0, math.inf, -math.inf))))
    s = math.sqrt(max(q, 1e-300))
    if not kinks:
        return float(np.sum(_W * fn(s * _Z)))
    cuts = sorted({-_ZMAX, _ZMAX, *(k / s for k in kinks if abs(k / s) < _ZMAX)})
    total = 0.0
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        z = 0.5 * (hi - lo) * _GL_NODES + 0.5 * (hi + lo)
        dens = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        total += 0.5 * (hi - lo) * float(np.sum(_GL_WEIGHTS * dens * fn(s * z)))
    return total


def length_map(act: str, sigma_w: float, sigma_b: float, q: float) -> float:
    """One layer of the length map q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2."""
    phi, _ = _act(act)
    if q == 0.0:                        # exactly: phi(0)^2 (the quadrature evaluates q = 1e-300)
        return sigma_w ** 2 * float(phi(np.zeros(1))[0]) ** 2 + sigma_b ** 2
    return sigma_w ** 2 * _gauss_mean(lambda x: phi(x) ** 2, q, _KINKS.get(act, ())) + sigma_b ** 2


def q_star(act: str, sigma_w: float, sigma_b: float) -> float:
    """Stable fixed point q* of the length map (the squared length a deep random net's
    pre-activations settle to), by bracketing and bisection, so also exact where iteration
    crawls (tanh at sigma_b = 0, sigma_w <= 1: q* = 0). Returns inf when q grows without bound
    (e.g. relu with sigma_w^2 > 2) and 1.0 where every q is a fixed point (relu at exactly
    sigma_w^2 = 2, sigma_b = 0, up to 1e-9 relative)."""
    def g(q: float) -> float:
        return length_map(act, sigma_w, sigma_b, q) - q

    def flat(q: float, gq: float) -> bool:
        return abs(gq) <= 1e-9 * max(q, 1.0)

    hi = 1.0
    ghi = g(hi)
    while ghi > 0 and not flat(hi, ghi):
        hi *= 2.0
        if hi > 1e15:
            return math.inf
        ghi = g(hi)
    if flat(hi, ghi):
        return hi
    if g(0.0) > 0:
        lo = 0.0
    else:                               # f(0) = 0: is there a positive root below hi?
        lo = hi / 2.0
        while g(lo) <= 0:
            lo /= 2.0
            if lo < 1e-8:
                return 0.0
    for _ in range(200):                # g(lo) > 0 >= g(hi)
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if g(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def chi_1(act: str, sigma_w: float, sigma_b: float) -> float:
    """chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]: the factor by which a deep random net's
    Jacobian multiplies squared lengths per layer. < 1 ordered (vanishing gradients), > 1
    chaotic (exploding), = 1 critical (tanh at sigma_w = 1, sigma_b = 0; relu at
    sigma_w^2 = 2)."""
    _, dphi = _act(act)
    q = q_star(act, sigma_w, sigma_b)
    return sigma_w ** 2 * _gauss_mean(lambda x: dphi(x) ** 2, q, _KINKS.get(act, ()))


def critical_sigma_w(act: str, sigma_b: float = 0.0) -> float:
    """The sigma_w at which chi_1 = 1 (edge of chaos) for this sigma_b, by bisection; nan if
    chi_1 stays below 1 up to sigma_w = 1e3."""
    lo, hi = 1e-3, 1.0
    while chi_1(act, hi, sigma_b) < 1.0:
        lo, hi = hi, hi * 2.0
        if hi > 1e3:
            return math.nan
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if chi_1(act, mid, sigma_b) < 1.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# ---- correlations and depth scales (Poole et al. 2016; Schoenholz et al. 2017) -----------------

_GL24_NODES, _GL24_WEIGHTS = np.polynomial.legendre.leggauss(24)
_BASE_CUTS = tuple(float(x) for x in np.arange(-_ZMAX, _ZMAX + 1.0, 3.0))   # 8 pieces in z
_Q_CLAMP = (1e-12, 1e12)          # q* = 0 or inf: the limit, taken at these scales


def _pieces(cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights x N(0,1) density on the pieces between sorted ``cuts``
    (..., K) in z: returns (nodes, weights) of shape (..., (K-1) * 24)."""
    lo, hi = cuts[..., :-1, None], cuts[..., 1:, None]
    z = 0.5 * (hi - lo) * _GL24_NODES + 0.5 * (hi + lo)
    w = 0.5 * (hi - lo) * _GL24_WEIGHTS * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    shape = (*cuts.shape[:-1], -1)
    return z.reshape(shape), w.reshape(shape)


_SMOOTH_RULE = _pieces(np.array(_BASE_CUTS))     # (nodes, weights) where nothing has a kink


def _gauss_mean2(f: Callable[[np.ndarray], np.ndarray], g: Callable[[np.ndarray], np.ndarray],
                 q: float, c: float, kinks: tuple[float, ...] = ()) -> float:
    """E[f(u1) g(u2)] for (u1, u2) Gaussian with variances q and correlation c:
    u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2). Gauss-Legendre on each smooth
    piece in z1 and, for every z1 node, in z2 (the kinks of g move with z1), so ReLU and
    hard-tanh are integrated as accurately as tanh."""
    s = math.sqrt(min(max(q, _Q_CLAMP[0]), _Q_CLAMP[1]))
    c = min(max(c, -1.0), 1.0)
    r = math.sqrt(max(1.0 - c * c, 0.0))
    k1 = [k / s for k in kinks if abs(k / s) < _ZMAX]
    z1, w1 = _pieces(np.array(sorted({*_BASE_CUTS, *k1}))) if k1 else _SMOOTH_RULE
    if r < 1e-12:
        return float(np.sum(w1 * f(s * z1) * g(s * c * z1)))
    if not kinks:                       # the same rule in z2 for every z1: one outer product
        z2, w2 = _SMOOTH_RULE
        return float(w1 @ (f(s * z1) * (g(s * (c * z1[:, None] + r * z2)) @ w2)))
    # kinks of g(u2) in z2 for each z1 node: (k / s - c z1) / r, clipped to [-12, 12]
    inner = [np.clip((k / s - c * z1) / r, -_ZMAX, _ZMAX) for k in kinks]
    cuts = np.sort(np.stack([*(np.full_like(z1, b) for b in _BASE_CUTS), *inner],
                            axis=-1), axis=-1)                          # (n1, K)
    z2, w2 = _pieces(cuts)                                              # (n1, m)
    gz = np.sum(w2 * g(s * (c * z1[:, None] + r * z2)), axis=1)         # (n1,) E[g | z1]
    return float(np.sum(w1 * f(s * z1) * gz))


def _q_eff(act: str, sigma_w: float, sigma_b: float) -> float:
    q = q_star(act, sigma_w, sigma_b)
    return min(max(q, _Q_CLAMP[0]), _Q_CLAMP[1])


def correlation_map(act: str, sigma_w: float, sigma_b: float, c: float,
                    q: float | None = None) -> float:
    """One layer of the correlation map c -> c' of two inputs whose pre-activations both have
    squared length q (default q*, where the lengths settle): (sigma_w^2 E[phi(u1) phi(u2)] +
    sigma_b^2) / (sigma_w^2 E[phi(u)^2] + sigma_b^2). c = 1 is always a fixed point."""
    phi, _ = _act(act)
    qq = _q_eff(act, sigma_w, sigma_b) if q is None else min(max(q, _Q_CLAMP[0]), _Q_CLAMP[1])
    kinks = _KINKS.get(act, ())
    num = sigma_w ** 2 * _gauss_mean2(phi, phi, qq, c, kinks) + sigma_b ** 2
    den = sigma_w ** 2 * _gauss_mean2(phi, phi, qq, 1.0, kinks) + sigma_b ** 2   # same rule
    return num / den


def c_star(act: str, sigma_w: float, sigma_b: float) -> float:
    """The stable fixed point c* of the correlation map: 1 in the ordered phase (chi_1 <= 1:
    all inputs end up the same), below 1 in the chaotic phase (nearby inputs decorrelate to
    c*). Bisection of C(c) - c on [0, 1), which is >= 0 at 0 and < 0 just below 1 when
    chi_1 > 1."""
    if chi_1(act, sigma_w, sigma_b) <= 1.0:
        return 1.0
    phi, _ = _act(act)
    q = _q_eff(act, sigma_w, sigma_b)
    kinks = _KINKS.get(act, ())
    den = sigma_w ** 2 * _gauss_mean2(phi, phi, q, 1.0, kinks) + sigma_b ** 2

    def g(c: float) -> float:           # C(c) - c, as correlation_map computes C
        return (sigma_w ** 2 * _gauss_mean2(phi, phi, q, c, kinks) + sigma_b ** 2) / den - c

    lo = 0.0
    # the highest c below 1 where C(c) < c is seen above the quadrature's rounding
    hi = next((h for h in (1.0 - 1e-6, 1.0 - 1e-4, 1.0 - 1e-3) if g(h) < 0.0), None)
    if hi is None:                      # no fixed point below 1 (e.g. ReLU as q* -> inf)
        return 1.0
    if g(lo) <= 0.0:
        return 0.0
    for _ in range(45):                 # 2^-45: far below what any figure shows
        mid = 0.5 * (lo + hi)
        if g(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def chi_c(act: str, sigma_w: float, sigma_b: float) -> float:
    """Slope of the correlation map at c*: sigma_w^2 q E[phi'(u1) phi'(u2)] / q' at c = c*
    (Price's theorem), which is sigma_w^2 E[phi'(u1) phi'(u2)] when q sits at a finite q*.
    Equals chi_1 in the ordered phase (c* = 1); below 1 in the chaotic phase."""
    _, dphi = _act(act)
    phi, _ = _act(act)
    q = _q_eff(act, sigma_w, sigma_b)
    kinks = _KINKS.get(act, ())
    cs = c_star(act, sigma_w, sigma_b)
    qn = sigma_w ** 2 * _gauss_mean(lambda x: phi(x) ** 2, q, kinks) + sigma_b ** 2
    return sigma_w ** 2 * q * _gauss_mean2(dphi, dphi, q, cs, kinks) / qn


def xi_c(act: str, sigma_w: float, sigma_b: float) -> float:
    """Correlation depth scale xi_c = -1 / ln chi_c: |c_l - c*| ~ exp(-l / xi_c). Infinite at
    the edge of chaos; Schoenholz et al. found nets trainable to depths of about 6 xi_c."""
    x = chi_c(act, sigma_w, sigma_b)
    return math.inf if x >= 1.0 - 1e-12 else -1.0 / math.log(x)


def xi_grad(act: str, sigma_w: float, sigma_b: float) -> float:
    """Gradient depth scale 1 / |ln chi_1|: gradients shrink (ordered) or grow (chaotic) by a
    factor e every xi_grad layers. Infinite at chi_1 = 1."""
    x = chi_1(act, sigma_w, sigma_b)
    return math.inf if abs(math.log(x)) < 1e-12 else 1.0 / abs(math.log(x))


# ---- variance propagation (D2L 5.4) ------------------------------------------------------------


def forward_variance_gain(n_in: int, gamma: float) -> float:
    """Var[o] / Var[x] for o = sum_j w_j x_j with n_in zero-mean terms, Var[w] = gamma:
    n_in * gamma (1 keeps activations' variance constant through linear layers)."""
    return n_in * gamma


def xavier_gamma(n_in: int, n_out: int) -> float:
    """Glorot/Xavier weight variance 2 / (n_in + n_out): compromise between n_in gamma = 1
    (forward) and n_out gamma = 1 (backward)."""
    return 2.0 / (n_in + n_out)


def he_gamma(n_in: int) -> float:
    """He/Kaiming weight variance 2 / n_in: ReLU zeroes half the inputs, so twice 1 / n_in."""
    return 2.0 / n_in
