"""The engine against references: a hand-written NumPy backprop, autograd Jacobians, and
its own invariants (fold rank, orthogonality, divergence, determinism, depth 1000).
Update rules, activations and initialisers against their formulas: test_core_formulas.py;
Nielsen's published speeds: test_lesson_claims_nielsen.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core import data as data_mod
from core.config import RunConfig
from core.models import build
from core.presets import preset
from core.registry import fold, haar_orthogonal, init_layer
from core.snapshot import Snapshot
from core.train import RunControl, run, run_all, steps


def _model_and_data(cfg: RunConfig):
    """The exact model and data run(cfg) starts from (same generator sequence)."""
    g = torch.Generator().manual_seed(cfg.seed)
    ds = data_mod.load(cfg, "cpu")
    return build(cfg, ds.n_in, ds.n_out, g), ds


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_delta_norm_matches_numpy_backprop() -> None:
    """Nielsen's delta^l = mean over the batch of dC/dz^l, by hand in float64 NumPy
    (BP1-BP2 of Nielsen ch. 2), against the engine's snapshot at step 0."""
    cfg = RunConfig(depth=3, width=5, activation="sigmoid", init="nielsen", bias_init="normal",
                    sigma_b=1.0, dataset="xor", n_train=32, n_test=0, loss="sigmoid_ce",
                    batch_size=0, steps=0)
    model, ds = _model_and_data(cfg)
    Ws = [lin.weight.detach().double().numpy() for lin in model.hidden] + \
         [model.out.weight.detach().double().numpy()]
    bs = [lin.bias.detach().double().numpy() for lin in model.hidden] + \
         [model.out.bias.detach().double().numpy()]
    x = ds.x_train.double().numpy()                         # (N, 2)
    y = np.eye(ds.n_out)[ds.y_train.numpy()]                 # (N, n_out)
    acts, zs = [x], []
    for W, b in zip(Ws, bs, strict=True):
        z = acts[-1] @ W.T + b
        zs.append(z)
        acts.append(_sigmoid(z))
    n = x.shape[0]
    delta = (acts[-1] - y) / n                               # cross-entropy: a - y, batch mean
    deltas = [delta]
    for W, z in zip(reversed(Ws[1:]), reversed(zs[:-1]), strict=True):
        delta = (delta @ W) * _sigmoid(z) * (1 - _sigmoid(z))
        deltas.insert(0, delta)
    want = [np.linalg.norm(d.sum(0)) for d in deltas]          # ||mean_x delta_x||
    snap = next(iter(run(cfg)))
    got = [layer.delta_norm for layer in snap.layers]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(snap.layers[0].delta_top, deltas[0].sum(0)[:5], rtol=1e-5,
                               atol=1e-9)


@pytest.mark.parametrize("norm,residual", [("none", False), ("none", True), ("layer", False),
                                           ("batch", False)])
def test_jacobian_factors_match_autograd(norm: str, residual: bool) -> None:
    """d h_L / d x from the per-layer factors == torch.autograd.functional.jacobian, and the
    engine's stable log-singular values == SVD of that Jacobian."""
    from core.spectrum import product_log_singular_values

    cfg = RunConfig(depth=4, width=6, activation="tanh", dataset="teacher", input_dim=6,
                    loss="quadratic", norm=norm, residual=residual, steps=0)
    model, ds = _model_and_data(cfg)
    model = model.double()
    if norm == "batch":   # give the running statistics non-trivial values
        with torch.no_grad():
            model.train()
            model(ds.x_train.double())
    model.eval()
    x = ds.x_test[0].double()

    def last_hidden(inp: torch.Tensor) -> torch.Tensor:
        h = inp.unsqueeze(0)
        for i, lin in enumerate(model.hidden):
            z = lin(h)
            if model.norms:
                z = model.norms[i](z)
            a = model.phi(z)
            h = h + a if (model.residual and i > 0) else a
        return h.squeeze(0)

    J = torch.autograd.functional.jacobian(last_hidden, x)       # (n, n_in)
    facs = model.jacobian_factors(x)
    P = facs[0]
    for f in facs[1:]:
        P = f @ P
    torch.testing.assert_close(P, J, rtol=1e-9, atol=1e-12)
    want = np.log(torch.linalg.svdvals(J).numpy())
    got = product_log_singular_values(facs).cpu().numpy()
    # Singular values above 1e-10 of the largest must agree; below that both are "zero"
    # (layer norm projects out the mean direction: its Jacobian is exactly singular) and
    # SVD returns round-off noise there, so only check that ours are tiny too.
    ok = want > want[0] + np.log(1e-10)
    np.testing.assert_allclose(got[ok], want[ok], atol=1e-8)
    assert np.all(got[~ok] < want[0] + np.log(1e-10))


def test_fold_halves_rank() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 16, generator=g)
    for k, rank in [(0, 16), (1, 8), (2, 8), (3, 8)]:
        folded = fold(w, k)
        # Fold 1: the bottom half copies the top half -> rank 8; Fold k>1 folds the top block
        # again, but the bottom half still holds the top's old rows, so rank stays 8.
        assert torch.linalg.matrix_rank(folded).item() == rank, k
    assert torch.equal(fold(w, 1)[8:], fold(w, 1)[:8])


def test_fold_init_through_config() -> None:
    cfg = preset("deep-linear-fold1")
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(32, 32)
    init_layer(lin.weight, lin.bias, cfg, g)
    assert torch.linalg.matrix_rank(lin.weight).item() == 16


def test_orthogonal_init_is_orthogonal() -> None:
    g = torch.Generator().manual_seed(3)
    for n_out, n_in in [(32, 32), (16, 40), (40, 16)]:
        q = haar_orthogonal(n_out, n_in, g).double()
        gram = q @ q.T if n_out <= n_in else q.T @ q
        torch.testing.assert_close(gram, torch.eye(min(n_out, n_in), dtype=torch.float64),
                                   atol=1e-6, rtol=0)
    cfg = RunConfig(init="orthogonal", init_gain=1.5)
    lin = torch.nn.Linear(24, 24)
    init_layer(lin.weight, lin.bias, cfg, g)
    sv = torch.linalg.svdvals(lin.weight.double())
    torch.testing.assert_close(sv, torch.full((24,), 1.5, dtype=torch.float64), atol=1e-5, rtol=0)


def test_divergence_detected_and_reported() -> None:
    res = run_all(preset("exploding-lr"))
    assert res.diverged_at is not None and res.diverged_at < 200
    last = res.snapshots[-1]
    assert last.diverged and last.step == res.diverged_at
    assert res.diverged_layer and res.diverged_layer != "unknown"
    assert "NaN/inf" in (last.message or "")
    assert all(not s.diverged for s in res.snapshots[:-1])
    # the document is still valid JSON (no NaN literals)
    import json
    json.dumps(res.to_json(), allow_nan=False)


def test_deterministic_for_a_seed() -> None:
    cfg = RunConfig(depth=3, width=16, steps=30, every=10, seed=7)
    a = [s.loss for s in run(cfg)]
    b = [s.loss for s in run(cfg)]
    c = [s.loss for s in run(cfg.replace(seed=8))]
    assert a == b and a != c


def test_global_rng_untouched() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    run_all(RunConfig(depth=2, width=8, steps=5))
    assert torch.equal(before, torch.random.get_rng_state())


def test_steps0_measures_init_only() -> None:
    res = run_all(RunConfig(depth=2, width=8, steps=0))
    assert [s.step for s in res.snapshots] == [0]


def test_snapshot_cadence_and_live_lr() -> None:
    ctl = RunControl()
    taken = []
    gen = run(RunConfig(depth=2, width=8, steps=25, every=10, lr=0.1), ctl)
    for s in gen:
        taken.append(s.step)
        ctl.lr = 0.05
        if s.step > 0:
            assert s.layers[0].update_ratio > 0
    assert taken == [0, 10, 20, 25]


def _same_snapshot(a: Snapshot, b: Snapshot) -> None:
    """Equal in every measured number (the wall-clock ``elapsed_s`` aside)."""
    ja, jb = a.to_json(), b.to_json()
    ja.pop("elapsed_s"), jb.pop("elapsed_s")
    assert ja == jb, a.step


@pytest.mark.parametrize("cfg", [
    RunConfig(depth=2, width=8, steps=25, every=10, n_train=64, n_test=16, batch_size=16),
    RunConfig(depth=3, width=8, steps=7, every=3, jacobian=True, clip_norm=0.5,
              optimizer="adam", n_train=64, n_test=16, batch_size=0),
], ids=["minibatch", "full-batch-clipped"])
def test_steps_yields_once_per_step_and_run_is_its_snapshots(cfg: RunConfig) -> None:
    """``steps()`` yields after every optimiser step (cfg.steps + 1 items for a run that does
    not diverge), a Snapshot where one is taken and None elsewhere; ``run()`` is exactly
    those Snapshots, step for step."""
    items = list(steps(cfg))
    assert len(items) == cfg.steps + 1
    assert isinstance(items[0], Snapshot) and items[0].step == 0
    taken = [k for k, s in enumerate(items) if s is not None]
    assert taken == sorted(set(range(0, cfg.steps + 1, cfg.every)) | {cfg.steps})
    assert all(items[k].step == k for k in taken)
    snaps = [s for s in items if s is not None]
    ref = list(run(cfg))
    assert [s.step for s in snaps] == [s.step for s in ref]
    for a, b in zip(snaps, ref, strict=True):
        _same_snapshot(a, b)


def test_steps_stops_at_the_diverged_snapshot() -> None:
    cfg = preset("exploding-lr").replace(every=10_000)
    items = list(steps(cfg))
    res = run_all(cfg)
    assert res.diverged_at is not None
    assert len(items) == res.diverged_at + 1 and items[-1].diverged
    assert [s.step for s in items if s is not None] == [0, res.diverged_at]


def test_probe_sees_every_snapshot_before_the_update() -> None:
    """The probe runs at each snapshot with the gradients in place and the weights of that
    step (the update comes after): its view of layer 1 matches the snapshot's."""
    cfg = RunConfig(depth=2, width=8, steps=6, every=3, n_train=64, n_test=16,
                    batch_size=16, l2=0.0)
    seen: list[tuple[float, float]] = []

    def probe(model: torch.nn.Module, taps) -> None:
        w = model.weights()[0]
        seen.append((float(w.grad.norm()), float(w.detach().norm())))

    snaps = list(run(cfg, probe=probe))
    assert len(seen) == len(snaps) == 3
    for (gn, wn), s in zip(seen, snaps, strict=True):
        assert gn == pytest.approx(s.layers[0].weight_grad_norm, rel=1e-5)
        assert wn == pytest.approx(s.layers[0].weight_norm, rel=1e-5)


def test_depth_1000_one_instrumented_step() -> None:
    """A depth-1000 width-64 tanh MLP: one instrumented step, Jacobian spectrum finite."""
    cfg = RunConfig(depth=1000, width=64, activation="tanh", init="orthogonal",
                    dataset="teacher", input_dim=64, loss="quadratic", n_train=64, n_test=16,
                    batch_size=64, steps=1, every=1, jacobian=True)
    snaps = list(run(cfg))
    assert len(snaps) == 2 and not snaps[-1].diverged
    jl = snaps[0].jacobian_log_singular_values
    assert jl is not None and len(jl) == 64 and np.all(np.isfinite(jl))
    assert len(snaps[0].layers) == 1001
    assert all(math.isfinite(layer.delta_norm) for layer in snaps[0].layers)


def test_rnn_time_grad_norms() -> None:
    cfg = preset("gru-long").replace(steps=0, seq_len=12, n_train=64, n_test=16, batch_size=32)
    snap = next(iter(run(cfg)))
    assert snap.time_grad_norms is not None and len(snap.time_grad_norms) == 12
    assert np.all(np.isfinite(snap.time_grad_norms))


def test_clipping_prevents_divergence() -> None:
    base = preset("exploding-lr")
    assert run_all(base).diverged_at is not None
    assert run_all(base.replace(clip_norm=1.0)).diverged_at is None


def test_spectra_refresh_every_spectrum_every_steps_and_carry_forward() -> None:
    """Weight/Jacobian spectra are measured at step 0, at the first snapshot of every block
    of ``spectrum_every`` steps and at the last step; between, each snapshot carries the last
    ones and says how old they are (``spectrum_step``)."""
    cfg = RunConfig(depth=2, width=8, steps=95, every=10, spectrum_every=30, jacobian=True,
                    n_train=64, n_test=16)
    snaps = list(run(cfg))
    assert [(s.step, s.spectrum_step) for s in snaps] == [
        (0, 0), (10, 0), (20, 0), (30, 30), (40, 30), (50, 30), (60, 60), (70, 60), (80, 60),
        (90, 90), (95, 95)]
    by_step = {s.step: s for s in snaps}
    for s in snaps:
        src = by_step[s.spectrum_step]
        for la, lb in zip(s.layers, src.layers, strict=True):
            np.testing.assert_array_equal(la.weight_singular_values, lb.weight_singular_values)
        np.testing.assert_array_equal(s.jacobian_log_singular_values,
                                      src.jacobian_log_singular_values)
    # a refreshed spectrum is the SVD of the weights at that step: compare with every=0 runs
    exact = list(run(cfg.replace(spectrum_every=0)))
    assert [s.spectrum_step for s in exact] == [s.step for s in exact]
    for a, b in zip(snaps, exact, strict=True):
        assert a.loss == b.loss                      # the cadence changes no training
        if a.spectrum_step == a.step:
            for la, lb in zip(a.layers, b.layers, strict=True):
                np.testing.assert_allclose(la.weight_singular_values,
                                           lb.weight_singular_values, rtol=1e-6)
    # and the SVD is the real one
    w_last = exact[-1].layers[0].weight_singular_values
    assert np.all(np.diff(w_last) <= 0) and w_last[0] > 0


def test_divergence_found_at_the_same_step_between_snapshots() -> None:
    """Between snapshots the engine checks only the loss and the first layer's gradient; it
    must find the same step (and name the same layer) as the full per-tensor check."""
    cfg = preset("exploding-lr")
    full = run_all(cfg.replace(every=1))
    cheap = run_all(cfg.replace(every=10_000))
    assert full.diverged_at is not None
    assert cheap.diverged_at == full.diverged_at
    assert cheap.diverged_layer == full.diverged_layer
    assert [s.step for s in cheap.snapshots] == [0, full.diverged_at]


def test_histograms_match_numpy_including_nan_and_inf() -> None:
    from core.probes import _hist

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.2, (3, 500)).astype(np.float32)
    x[0, :5] = [np.inf, -np.inf, 7.0, -7.0, np.nan]
    edges = np.linspace(-1.0, 1.0, 21)
    got = _hist(torch.from_numpy(x), torch.from_numpy(edges).float()).numpy()
    for row, counts in zip(x, got, strict=True):
        finite = np.clip(np.nan_to_num(row, nan=-1.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        ref, _ = np.histogram(finite, edges)
        np.testing.assert_array_equal(counts, ref)
        assert counts.sum() == row.size


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softsign", "scaled_sigmoid", "hardtanh",
                                  "relu", "elu", "selu", "linear", "gelu", "leaky_relu"])
def test_saturated_count_equals_the_mask(name: str) -> None:
    """The fast count (sign of a clamped margin) counts exactly what ``saturated`` marks,
    thresholds themselves included."""
    from core.registry import ACTIVATIONS, saturated, saturated_count

    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3000, generator=g) * 4
    a = ACTIVATIONS[name](z)
    edge = torch.tensor([0.0, 0.03, 0.97, -0.97, 1.0, -1.0, 1.94, -1.94, 0.47, 0.53,
                         -0.97 * 1.0507 * 1.6733])
    a = torch.cat([a, edge.expand(4, -1)], 1)
    np.testing.assert_array_equal(saturated_count(name, a).numpy(),
                                  saturated(name, a).sum(1).float().numpy())
