"""The engine's building blocks against their formulas, written out here independently:
the update rules (SGD, momentum, Adam, Nielsen's L2 lambda/n, clipping by value and by
norm), every activation and its derivative, and every initialiser's distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import data as data_mod
from core.config import RunConfig
from core.models import build
from core.registry import ACTIVATIONS, INITS, act_prime, init_layer
from core.train import run

# ---- update rules ------------------------------------------------------------------------------

#: A full-batch run (no batch order to reproduce) of a few steps on the spiral data.
BASE = RunConfig(depth=2, width=8, n_train=64, n_test=0, batch_size=0, steps=5, every=5,
                 lr=0.1)


def _engine_params(cfg: RunConfig) -> list[torch.Tensor]:
    """Every parameter after cfg.steps updates of the engine (its last probe sees them)."""
    seen: list[list[torch.Tensor]] = []
    list(run(cfg, probe=lambda model, taps: seen.append(
        [p.detach().clone() for p in model.parameters()])))
    return seen[-1]


def _reference_params(cfg: RunConfig) -> tuple[list[torch.Tensor], dict[str, bool]]:
    """The same run by the textbook rules, one tensor at a time: the gradient of the mean
    cross-entropy, plus (lambda/n) W on weight matrices only (Nielsen's L2), each entry
    clipped to +-clip_value, the whole rescaled to norm <= clip_norm, then the optimiser.
    Also says whether each clip ever changed a gradient."""
    g = torch.Generator().manual_seed(cfg.seed)
    ds = data_mod.load(cfg, "cpu")
    model = build(cfg, ds.n_in, ds.n_out, g)
    params = list(model.parameters())
    weight_ids = {id(w) for w in model.weights()}
    n = ds.x_train.shape[0]
    state = [dict(buf=None, m=torch.zeros_like(p), v=torch.zeros_like(p)) for p in params]
    clipped = {"value": False, "norm": False}
    for t in range(1, cfg.steps + 1):
        out, _ = model(ds.x_train)
        grads = torch.autograd.grad(F.cross_entropy(out, ds.y_train), params)
        grads = [gr + (cfg.l2 / n) * p.detach() if id(p) in weight_ids else gr
                 for p, gr in zip(params, grads, strict=True)]
        if cfg.clip_value:
            clipped["value"] |= any(bool((gr.abs() > cfg.clip_value).any()) for gr in grads)
            grads = [gr.clamp(-cfg.clip_value, cfg.clip_value) for gr in grads]
        if cfg.clip_norm:
            total = math.sqrt(sum(float((gr ** 2).sum()) for gr in grads))
            clipped["norm"] |= total > cfg.clip_norm
            grads = [gr * min(1.0, cfg.clip_norm / (total + 1e-6)) for gr in grads]
        with torch.no_grad():
            for p, gr, s in zip(params, grads, state, strict=True):
                if cfg.optimizer == "sgd":
                    p -= cfg.lr * gr
                elif cfg.optimizer == "momentum":       # v <- mu v + g (v_1 = g); p -= lr v
                    s["buf"] = gr.clone() if s["buf"] is None else cfg.momentum * s["buf"] + gr
                    p -= cfg.lr * s["buf"]
                else:                                   # Adam, Kingma & Ba, Algorithm 1
                    b1, b2, eps = 0.9, 0.999, 1e-8
                    s["m"] = b1 * s["m"] + (1 - b1) * gr
                    s["v"] = b2 * s["v"] + (1 - b2) * gr * gr
                    m_hat, v_hat = s["m"] / (1 - b1 ** t), s["v"] / (1 - b2 ** t)
                    p -= cfg.lr * m_hat / (v_hat.sqrt() + eps)
    return [p.detach() for p in params], clipped


def _max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).norm() / y.norm()) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("changes", [
    dict(optimizer="sgd"),
    dict(optimizer="sgd", l2=5.0),
    dict(optimizer="momentum", momentum=0.9),
    dict(optimizer="adam", lr=0.01),
    dict(optimizer="sgd", clip_value=0.01),
    dict(optimizer="sgd", clip_norm=0.05),
    dict(optimizer="momentum", l2=1.0, clip_value=0.02, clip_norm=0.05),
], ids=["sgd", "sgd-l2", "momentum", "adam", "clip-value", "clip-norm", "all"])
def test_updates_follow_the_textbook_rules(changes: dict) -> None:
    """After 5 full-batch steps every parameter equals the reference's. Tolerance 1e-5
    relative: float32 rounding of the same arithmetic in another order (measured ~1e-7).
    Each variant moves the weights at least 1e-3 away from plain SGD's (so a knob that
    did nothing would fail), and each clip really clipped."""
    cfg = BASE.replace(**changes)
    want, clipped = _reference_params(cfg)
    got = _engine_params(cfg)
    assert _max_rel_diff(got, want) < 1e-5, _max_rel_diff(got, want)
    assert clipped["value"] == bool(cfg.clip_value) and clipped["norm"] == bool(cfg.clip_norm)
    if changes != {"optimizer": "sgd"}:
        plain, _ = _reference_params(BASE)
        assert _max_rel_diff(want, plain) > 1e-3


# ---- activations -----------------------------------------------------------------------------

SELU_LAMBDA, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772   # Klambauer et al. 2017
_erf = np.vectorize(math.erf)


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


#: name -> (phi, phi') in NumPy float64, from the definitions.
REFERENCE = {
    "sigmoid": (_sig, lambda x: _sig(x) * (1 - _sig(x))),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1.0, 0.01)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda x: np.where(x > 0, 1.0, np.exp(x))),
    "gelu": (lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
             lambda x: 0.5 * (1 + _erf(x / math.sqrt(2)))
             + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)),
    "selu": (lambda x: SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
             lambda x: SELU_LAMBDA * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(x))),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
    "hardtanh": (lambda x: np.clip(x, -1.0, 1.0), lambda x: (np.abs(x) < 1).astype(float)),
    "linear": (lambda x: x, np.ones_like),
    "scaled_sigmoid": (lambda x: 4 * _sig(x) - 2, lambda x: 4 * _sig(x) * (1 - _sig(x))),
}


def test_every_activation_has_a_reference() -> None:
    assert set(REFERENCE) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_and_derivative_match_their_formulas(name: str) -> None:
    """phi and phi' (the analytic Jacobian's) on a grid over [-6, 6] that avoids the kinks
    (0, +-1) by 1e-3, in float64: equal up to rounding (1e-12)."""
    x = np.linspace(-6, 6, 2401) + 0.5e-3 * math.pi                    # no grid point on a kink
    phi, dphi = REFERENCE[name]
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(ACTIVATIONS[name](xt).numpy(), phi(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(act_prime(name, xt).numpy(), dphi(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_engine_applies_the_named_activation(name: str) -> None:
    """The step-0 snapshot's per-layer activation mean and std equal a NumPy forward pass
    with the reference phi through the engine's own initial weights (float32 engine:
    tolerance 1e-5 relative)."""
    cfg = RunConfig(depth=2, width=8, activation=name, n_train=64, n_test=0, batch_size=0,
                    steps=0)
    ds = data_mod.load(cfg, "cpu")
    model = build(cfg, ds.n_in, ds.n_out, torch.Generator().manual_seed(cfg.seed))
    h = ds.x_train.double().numpy()
    phi = REFERENCE[name][0]
    want = []
    for lin in model.hidden:
        h = phi(h @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy())
        want.append((h.mean(), h.std()))
    snap = next(iter(run(cfg)))
    got = [(la.activation_mean, la.activation_std) for la in snap.layers[:-1]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---- initialisers -----------------------------------------------------------------------------

N_OUT, N_IN = 300, 500            # unequal, so that n_in / n_out / their sum are told apart
GAIN, SIGMA_W, SIGMA_B = 1.3, 1.7, 0.4
U_IN = 1 / math.sqrt(N_IN)

#: init -> (weight law, its scale, bias law, its scale). "normal": N(0, scale^2);
#: "uniform": U[-scale, scale]; "zero": exactly 0.
LAWS = {
    "nielsen_large": ("normal", 1.0, "normal", 1.0),
    "nielsen": ("normal", U_IN, "normal", 1.0),
    "glorot_standard": ("uniform", U_IN, "zero", 0.0),
    "xavier_uniform": ("uniform", GAIN * math.sqrt(6 / (N_IN + N_OUT)), "zero", 0.0),
    "xavier_normal": ("normal", GAIN * math.sqrt(2 / (N_IN + N_OUT)), "zero", 0.0),
    "he": ("normal", GAIN * math.sqrt(2 / N_IN), "zero", 0.0),
    "lecun": ("normal", GAIN * math.sqrt(1 / N_IN), "zero", 0.0),
    "gaussian": ("normal", SIGMA_W / math.sqrt(N_IN), "normal", SIGMA_B),
    "torch_default": ("uniform", U_IN, "uniform", U_IN),
}


def _check_law(x: np.ndarray, law: str, scale: float, rel: float) -> None:
    """Zero exactly; or mean ~0 (5 standard errors), std within ``rel`` of the law's, a
    uniform within +-scale, and (for 10,000+ draws, where its standard error is < 0.05)
    the shape: excess kurtosis 0 for a normal, -1.2 for a uniform."""
    if law == "zero":
        assert not x.any()
        return
    std = scale if law == "normal" else scale / math.sqrt(3)
    assert abs(x.std() / std - 1) < rel, (x.std(), std)
    assert abs(x.mean()) < 5 * std / math.sqrt(x.size)
    if law == "uniform":
        assert np.abs(x).max() <= scale * (1 + 1e-6)
    if x.size >= 10_000:
        kurt = ((x - x.mean()) ** 4).mean() / x.var() ** 2 - 3
        assert abs(kurt - (0.0 if law == "normal" else -1.2)) < 0.2, kurt


def test_every_init_has_a_formula_here() -> None:
    assert set(INITS) == set(LAWS) | {"orthogonal", "fold", "identity"}


@pytest.mark.parametrize("init", sorted(LAWS))
def test_init_draws_from_its_formula(init: str) -> None:
    """Weights (150,000 entries: std within 2 %, about 8 standard errors) and biases (300:
    within 20 %, about 5) follow the law of the init's formula, with init_gain, sigma_w and
    sigma_b away from 1 so that a formula that ignores one fails."""
    cfg = RunConfig(init=init, init_gain=GAIN, sigma_w=SIGMA_W, sigma_b=SIGMA_B)
    w, b = torch.empty(N_OUT, N_IN), torch.empty(N_OUT)
    init_layer(w, b, cfg, torch.Generator().manual_seed(0))
    w_law, w_scale, b_law, b_scale = LAWS[init]
    _check_law(w.double().numpy(), w_law, w_scale, rel=0.02)
    _check_law(b.double().numpy(), b_law, b_scale, rel=0.2)


def test_identity_and_fold_inits() -> None:
    """identity: gain x the (rectangular) identity, biases 0. fold: the uniform
    U[+-gain/sqrt(n_in)] draw with its bottom half a copy of the top (fold_k = 1)."""
    g = torch.Generator().manual_seed(0)
    w, b = torch.empty(N_OUT, N_IN), torch.empty(N_OUT)
    init_layer(w, b, RunConfig(init="identity", init_gain=GAIN), g)
    assert torch.equal(w, GAIN * torch.eye(N_OUT, N_IN)) and not b.any()
    init_layer(w, b, RunConfig(init="fold", init_gain=GAIN), g)
    assert torch.equal(w[N_OUT // 2:], w[:N_OUT // 2]) and not b.any()
    _check_law(w[:N_OUT // 2].double().numpy(), "uniform", GAIN * U_IN, rel=0.02)


@pytest.mark.parametrize("sigma_w", [0.3, 1.0])
def test_activation_std_is_right_at_any_scale(sigma_w: float) -> None:
    """Depth 50 at sigma_w = 0.3 leaves activations ~1e-27: their float32 squares underflow,
    and the std once read exactly 0. The engine's per-layer std must match a float64 NumPy
    forward pass through its own initial weights to 1e-3 relative (float32 engine, 50
    layers), tiny or not."""
    cfg = RunConfig(depth=50, width=32, activation="tanh", init="gaussian", sigma_w=sigma_w,
                    n_train=64, n_test=0, batch_size=0, steps=0, seed=3)
    ds = data_mod.load(cfg, "cpu")
    model = build(cfg, ds.n_in, ds.n_out, torch.Generator().manual_seed(cfg.seed))
    h = ds.x_train.double().numpy()
    want = []
    for lin in model.hidden:
        h = np.tanh(h @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy())
        want.append(h.std())
    got = [la.activation_std for la in next(iter(run(cfg))).layers[:-1]]
    if sigma_w == 0.3:
        assert want[-1] < 1e-15            # the case really is tiny
    assert got[-1] > 0, "the deepest layer's std underflowed to 0"
    np.testing.assert_allclose(got, want, rtol=1e-3)
