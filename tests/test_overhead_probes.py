"""The fast probes (core/probes.measure: stacked norms, one gather, one bincount for both
histograms, host-side divisions) against a straightforward reference computed one layer
and one statistic at a time from the same model and taps, and its internal fast paths
against their slow twins bit for bit (issue 21: the instrumented step made cheaper
without changing any number it reports).

On the CPU every statistic must be *identical* (same float, same count); on another device
the float statistics agree within rtol 1e-6 (a GPU's reductions may be ordered differently
between a stacked and a single-tensor call) and the counts exactly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from core import probes
from core.config import RunConfig
from core.models import Taps
from core.registry import ACT_RANGE, saturated
from core.snapshot import Snapshot
from core.train import run

#: Shapes that take every path of measure: the whole batch histogrammed (batch <= 32) or its
#: first 32 rows (batch > 32); plain, batch-norm, layer-norm and residual nets; a full batch;
#: few activations (mask count) and many (margin count); the saturation rules that count
#: NaN both ways.
CASES = {
    "aivn_sigmoid_7x10_b32": dict(depth=7, width=10, activation="sigmoid", batch_size=32),
    "tanh_b64": dict(depth=3, width=12, activation="tanh", batch_size=64),
    "relu_batchnorm_b8": dict(depth=3, width=9, activation="relu", norm="batch",
                              batch_size=8),
    "selu_layernorm_residual_b100": dict(depth=4, width=12, activation="selu", norm="layer",
                                         residual=True, batch_size=100),
    "hardtanh_full_batch": dict(depth=2, width=6, activation="hardtanh", batch_size=0,
                                n_train=200),
    "elu_wide_b33": dict(depth=2, width=200, activation="elu", batch_size=33),
}


def _capture(cfg: RunConfig) -> list[tuple[Snapshot, dict[str, Any]]]:
    """Every snapshot of cfg with the reference statistics of the same step, computed by
    the probe hook (called after backward, before the update: the state measure sees)."""
    refs: list[dict[str, Any]] = []

    def probe(model: torch.nn.Module, taps: Taps) -> None:
        refs.append(_reference(model, taps, cfg))

    snaps = list(run(cfg, probe=probe))
    assert len(snaps) == len(refs)
    return list(zip(snaps, refs, strict=True))


def _bins(x: np.ndarray, lo: float, hi: float, nb: int) -> np.ndarray:
    """Counts of float32 values x over nb even bins of [lo, hi]: floor((x - lo) * nb /
    (hi - lo)) in float32, NaN in bin 0, the rest clipped into the end bins."""
    f = x.dtype.type
    t = np.floor((x - f(lo)) * f(nb / (hi - lo)))
    t = np.clip(np.nan_to_num(t, nan=0.0), 0, nb - 1).astype(np.int64)
    return np.bincount(t, minlength=nb)


@torch.no_grad()
def _reference(model: torch.nn.Module, taps: Taps, cfg: RunConfig) -> dict[str, Any]:
    """Each statistic of each layer on its own: the definitions in core/snapshot.py."""
    weights = model.weights()
    biases = model.delta_biases() + [model.out.bias]
    B = taps.a[0].shape[0]
    lo, hi = ACT_RANGE[cfg.activation]
    glo, ghi = probes.GRAD_LOG10_RANGE
    out: dict[str, Any] = {"layers": []}
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        wg = torch.linalg.vector_norm(w.grad).item()
        wn = torch.linalg.vector_norm(w).item()
        la = {"weight_grad_norm": wg, "weight_norm": wn,
              "bias_grad_norm": torch.linalg.vector_norm(b.grad).item(),
              "delta_top": b.grad[:6].tolist(),
              "update_ratio": cfg.lr * wg / wn if wn > 0 else 0.0,
              "weight_singular_values": torch.linalg.svdvals(w.float()).cpu().numpy()}
        if i < len(taps.a):
            a = taps.a[i].detach()
            n = a.numel()
            mean = a.sum() / n
            la["activation_mean"] = mean.item()
            sd = torch.linalg.vector_norm(a - mean, dtype=torch.float64) / math.sqrt(n)
            la["activation_std"] = sd.to(a.dtype).item()
            la["saturation"] = (saturated(cfg.activation, a).sum().to(a.dtype) / n).item()
            rows = a[:probes.HIST_ROWS].cpu().numpy().ravel()
            la["act_hist"] = _bins(rows, lo, hi, cfg.hist_bins)
            g = taps.z[i].grad[:probes.HIST_ROWS]
            lg = torch.log10(g.abs() + 1e-30 / B) + math.log10(B)
            la["grad_hist"] = _bins(lg.cpu().numpy().ravel(), glo, ghi, cfg.hist_bins)
        out["layers"].append(la)
    return out


FLOATS = ("weight_grad_norm", "weight_norm", "bias_grad_norm", "update_ratio",
          "activation_mean", "activation_std", "saturation")


@pytest.mark.parametrize("case", list(CASES))
def test_measure_equals_the_one_layer_at_a_time_reference(case: str, device: str) -> None:
    cfg = RunConfig(steps=25, every=4, spectrum_every=8, seed=5, device=device, lr=0.5,
                    **CASES[case])
    exact = device == "cpu"
    pairs = _capture(cfg)
    assert [s.step for s, _ in pairs] == [0, 4, 8, 12, 16, 20, 24, 25]
    for snap, ref in pairs:
        fresh = snap.spectrum_step == snap.step
        for got, want in zip(snap.layers, ref["layers"], strict=True):
            for key in FLOATS:
                if key in want:
                    if exact:
                        assert getattr(got, key) == want[key], (case, snap.step, got.name, key)
                    else:
                        assert getattr(got, key) == pytest.approx(want[key], rel=1e-6, abs=0)
            assert got.delta_norm == got.bias_grad_norm
            if exact:
                assert got.delta_top == want["delta_top"]
            else:
                np.testing.assert_allclose(got.delta_top, want["delta_top"], rtol=1e-6)
            if "act_hist" in want:
                np.testing.assert_array_equal(got.act_hist, want["act_hist"])
                np.testing.assert_array_equal(got.grad_hist, want["grad_hist"])
                assert got.act_hist.dtype == np.int64 and got.grad_hist.dtype == np.int64
            else:
                assert got.act_hist is None and got.grad_hist is None
                assert got.activation_mean == 0.0 and got.saturation == 0.0
            if fresh:
                np.testing.assert_allclose(got.weight_singular_values,
                                           want["weight_singular_values"], rtol=1e-6)


def _runs_equal(a: list[Snapshot], b: list[Snapshot]) -> None:
    """Bit for bit: every float, every count, every array (and its dtype)."""
    assert len(a) == len(b)
    for sa, sb in zip(a, b, strict=True):
        for key in ("step", "loss", "test_loss", "diverged", "diverged_layer"):
            x, y = getattr(sa, key), getattr(sb, key)
            assert x == y or (x != x and y != y), (key, x, y)     # NaN == NaN here
        for la, lb in zip(sa.layers, sb.layers, strict=True):
            for key in la.__dataclass_fields__:
                x, y = getattr(la, key), getattr(lb, key)
                if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                    assert x.dtype == y.dtype
                    np.testing.assert_array_equal(x, y)           # NaN == NaN there
                elif isinstance(x, list):
                    np.testing.assert_array_equal(np.array(x), np.array(y))
                else:
                    assert x == y or (x != x and y != y), (key, x, y)   # NaN == NaN here


def _slow_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The general twins of measure's fast paths: margin counts, per-bias slices of the
    neuron bars, and the one-transfer concatenation of the read-back."""
    monkeypatch.setattr(probes, "SAT_MASK_MAX", -1)
    monkeypatch.setattr(probes, "TOP_GATHER_MAX", -1)
    monkeypatch.setattr(probes.Packer, "concat", True)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "hardtanh", "tanh"])
def test_fast_paths_equal_their_general_twins(monkeypatch: pytest.MonkeyPatch,
                                              activation: str) -> None:
    """The mask count (small layers), the one-gather neuron bars and the CPU read-back
    without a concatenation give the same numbers as their general twins, run by run."""
    cfg = RunConfig(depth=4, width=8, activation=activation, lr=2.0, batch_size=16,
                    steps=12, every=1, spectrum_every=5)
    fast = list(run(cfg))
    _slow_paths(monkeypatch)
    _runs_equal(fast, list(run(cfg)))


def test_fast_paths_equal_their_general_twins_in_a_divergence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from core.presets import preset

    cfg = preset("exploding-lr")
    fast = list(run(cfg))
    assert fast[-1].diverged
    _slow_paths(monkeypatch)
    _runs_equal(fast, list(run(cfg)))


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "hardtanh", "tanh"])
def test_fast_paths_equal_their_twins_on_nan_and_inf(monkeypatch: pytest.MonkeyPatch,
                                                     activation: str) -> None:
    """NaN, +inf and -inf planted in the activations and the back-propagated gradients
    land in the same bins and the same saturation counts either way."""
    cfg = RunConfig(depth=3, width=8, activation=activation, batch_size=16, steps=0)
    seen: list[tuple[torch.nn.Module, Taps]] = []
    next(run(cfg, probe=lambda m, t: seen.append((m, t))))
    model, taps = seen[0]
    with torch.no_grad():
        for i, bad in enumerate((float("nan"), float("inf"), -float("inf"))):
            taps.a[i][0, :3] = bad
            taps.a[i][5, 2] = float("nan")
            taps.z[i].grad[1, :2] = bad
    fast = probes.measure(model, taps, cfg, cfg.lr, 16, {})
    _slow_paths(monkeypatch)
    slow = probes.measure(model, taps, cfg, cfg.lr, 16, {})
    snap = Snapshot(step=0, loss=0.0, train_accuracy=None, test_accuracy=None,
                    test_loss=None, layers=[])
    _runs_equal([Snapshot(**{**snap.__dict__, "layers": fast.layers})],
                [Snapshot(**{**snap.__dict__, "layers": slow.layers})])
    assert all(la.act_hist.sum() == 16 * 8 for la in fast.layers[:3])


def test_saturation_counts_nan_as_the_margin_count_does() -> None:
    """The mask count is only used where it agrees with saturated_count on NaN and inf."""
    from core.registry import saturated_count

    a = torch.tensor([[float("nan"), 0.5, 0.99, 0.01, float("inf"), -float("inf"), -3.0]])
    for name in probes.SAT_MASK_SAME:
        assert saturated(name, a).sum(1).float().item() == saturated_count(name, a).item()


def test_packer_reads_back_the_same_values_either_way() -> None:
    parts = {"f32": torch.tensor([0.1, 1e-30, -3.5]), "i64": torch.tensor([[3, 0], [7, 1]]),
             "f64": torch.tensor([math.pi], dtype=torch.float64)}
    got = []
    for concat in (False, True):
        p = probes.Packer()
        p.concat = concat
        for k, v in parts.items():
            p.add(k, v)
        got.append(p.unpack())
    for k, v in parts.items():
        for g in got:
            assert g[k].dtype == np.float64 and g[k].shape == tuple(v.shape)
            np.testing.assert_array_equal(g[k], v.numpy().astype(np.float64))


def test_one_workspace_follows_a_new_model() -> None:
    """The cached plan (parameter lists, offsets, gather index) is rebuilt for another
    model: measuring two nets through one workspace gives each its own numbers."""
    from core import train

    ws: dict[str, Any] = {}
    for depth in (3, 5):
        cfg = RunConfig(depth=depth, width=7, batch_size=16, steps=0)
        seen: list[tuple[torch.nn.Module, Taps]] = []
        snap = next(run(cfg, probe=lambda m, t, seen=seen: seen.append((m, t))))
        model, taps = seen[0]
        again = probes.measure(model, taps, cfg, cfg.lr, 16, {}, workspace=ws)
        assert [la.weight_grad_norm for la in again.layers] == \
            [la.weight_grad_norm for la in snap.layers]
        assert len(again.layers) == depth + 1
    assert train.due(None, 5, 10, 100)                  # the public cadence rule
