"""Per-layer statistics of one step, gathered on the device and moved to the host in ONE
transfer (``Packer``).

Cost model (measured on CPU): the number of ops matters, not their size. So layers of the
same shape are stacked and handled by one op (every norm in one stack, the neuron bars in
one gather, moments per stacked row, the activation and gradient histograms as ONE
``bincount`` over a 32-row subsample with a per-row offset, singular values as one batched
``svdvals`` per shape group), and what a run never changes (parameter lists, bin ranges,
offsets, the gather index) is built once per run (``_Plan``). The AIVN demo's 7 x 10
sigmoid net, batch 32: 87 ops and ~0.55 ms per snapshot with the test set, from 162 ops
and ~1.2 ms (tools/bench_bare.py times the whole step against a bare PyTorch loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.config import RunConfig
from core.models import Taps
from core.registry import ACT_RANGE, saturated, saturated_count
from core.snapshot import LayerStats

HIST_ROWS = 32                 # examples per layer that feed the histograms
GRAD_LOG10_RANGE = (-12.0, 4.0)  # fixed bins of log10 |dC/dz| per example


class Packer:
    """Collects named tensors, moves them to the host in one ``.cpu()``, splits them back.

    Every part comes back as float64 NumPy (an exact widening of float32 and of counts below
    2**53). On a CPU device there is nothing to transfer, so each part is read where it lies
    (``.numpy()``) instead of being concatenated first: the same values, about 30 fewer ops
    per snapshot, which is a tenth of a small net's snapshot on a CPU."""

    #: None: concatenate (one transfer) unless every part is on the CPU; True / False force
    #: it (the tests compare both ways).
    concat: bool | None = None

    def __init__(self) -> None:
        self._parts: list[tuple[str, torch.Tensor]] = []

    def add(self, name: str, t: torch.Tensor) -> None:
        self._parts.append((name, t.detach() if t.requires_grad else t))

    def unpack(self) -> dict[str, np.ndarray]:
        if not self._parts:
            return {}
        concat = self.concat
        if concat is None:
            concat = any(t.device.type != "cpu" for _, t in self._parts)
        if not concat:
            return {name: t.numpy().astype(np.float64) for name, t in self._parts}
        flat = torch.cat([t.reshape(-1).to(torch.float64) for _, t in self._parts])
        host = flat.cpu().numpy()                     # the one device -> host transfer
        out: dict[str, np.ndarray] = {}
        i = 0
        for name, t in self._parts:
            n = t.numel()
            out[name] = host[i:i + n].reshape(tuple(t.shape))
            i += n
        return out


def act_edges(cfg: RunConfig) -> np.ndarray:
    """The activation histograms' bin edges: the activation's range in ``hist_bins``."""
    lo, hi = ACT_RANGE["tanh" if cfg.arch == "gru" else cfg.activation]
    return np.linspace(lo, hi, cfg.hist_bins + 1)


def grad_edges(cfg: RunConfig) -> np.ndarray:
    """The gradient histograms' bin edges, over log10 |dC/dz| (``GRAD_LOG10_RANGE``)."""
    return np.linspace(*GRAD_LOG10_RANGE, cfg.hist_bins + 1)


def _range(edges: np.ndarray | torch.Tensor, dtype: torch.dtype) -> tuple[float, float]:
    """The first and last edge as the histogrammed tensor's dtype holds them (the binning
    arithmetic runs in that dtype)."""
    e = torch.as_tensor(np.asarray(edges)[[0, -1]]).to(dtype)
    return float(e[0]), float(e[1])


def _to_bins_(x: torch.Tensor, lo: float, hi: float, nb: int) -> torch.Tensor:
    """x -> (x - lo) * nb / (hi - lo), in place: the bin coordinate of every value."""
    return x.sub_(lo).mul_(nb / (hi - lo))


def _count(t: torch.Tensor, nb: int, offsets: torch.Tensor) -> torch.Tensor:
    """Bin coordinates t (R, m), in place -> counts (R, nb): floor, NaN to bin 0, the rest
    clamped into the end bins, one ``bincount`` for all rows (``offsets``: (R, 1) int64,
    row r's first bin at r * nb)."""
    R = t.shape[0]
    t = torch.nan_to_num_(t.floor_(), nan=0.0).clamp_(0, nb - 1).to(torch.int64)
    t += offsets
    return torch.bincount(t.reshape(-1), minlength=R * nb).reshape(R, nb)


def _offsets(rows: int, nb: int, device: torch.device) -> torch.Tensor:
    return torch.arange(0, rows * nb, nb, device=device).unsqueeze(1)


def _hist(x: torch.Tensor, edges: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """x (L, m) -> counts (L, nb) over fixed, evenly spaced edges, bins [e_i, e_i+1) (the
    last one closed, as ``np.histogram``); values outside the range, inf included, count in
    the end bins; NaN counts in the first bin. Arithmetic binning: 5 elementwise ops and
    one ``bincount`` for all layers (``bucketize`` was 6x slower). ``inplace``: x is a
    temporary that may be overwritten."""
    nb = edges.numel() - 1
    lo, hi = float(edges[0]), float(edges[-1])
    t = _to_bins_(x if inplace else x.clone(), lo, hi, nb)
    return _count(t, nb, _offsets(x.shape[0], nb, x.device))


def _grouped(mats: list[torch.Tensor]) -> list[tuple[list[int], torch.Tensor]]:
    """Indices and stacked tensors of equal-shaped matrices: one op per shape group."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, m in enumerate(mats):
        groups.setdefault(tuple(m.shape), []).append(i)
    return [(ix, torch.stack([mats[i] for i in ix])) for ix in groups.values()]


def _scratch(ws: dict[str, Any], key: str, shape: tuple[int, ...],
             like: torch.Tensor) -> torch.Tensor:
    """A reusable tensor of this shape / dtype / device from the workspace."""
    t = ws.get(key)
    if t is None or tuple(t.shape) != tuple(shape) or t.dtype != like.dtype \
            or t.device != like.device:
        t = ws[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return t


#: Up to this many bias entries in all, the neuron bars' first six per layer are gathered
#: by one ``cat`` and one ``index_select``; above it (deep, wide nets) by slicing each bias,
#: so that a snapshot never copies every bias of a large net.
TOP_GATHER_MAX = 1 << 16
#: Up to this many activations in all, the saturated units are counted on a boolean mask
#: (4 ops); above it by ``saturated_count``'s margins, 3x faster on large tensors.
SAT_MASK_MAX = 1 << 12
#: The activations whose mask count equals ``saturated_count`` for every value, NaN and inf
#: included (relu and hardtanh count the complement there, which places NaN the other way).
SAT_MASK_SAME = frozenset({"sigmoid", "tanh", "softsign", "scaled_sigmoid", "elu", "selu"})
TOP_K = 6


@dataclass
class _Plan:
    """What every snapshot of one run reads and nothing in it changes: the parameter lists,
    the names, the histogram ranges in the activations' dtype, the bins' row offsets and the
    gather index of the neuron bars. Built at the first snapshot, kept in the workspace."""

    key: tuple[Any, ...]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    names: list[str]
    hidden: int                         # hidden layers with activations (len(taps.a))
    nb: int
    act_range: tuple[float, float]
    grad_range: tuple[float, float]
    offsets: torch.Tensor               # (2 * hidden, 1): activation rows, then gradient rows
    top_k: list[int]                    # neuron bars per layer: min(6, bias size)
    top_index: torch.Tensor | None      # into cat(bias grads); None: slice each bias
    np_dtype: np.dtype                  # the activations' dtype, in NumPy


def _plan(ws: dict[str, Any], model: nn.Module, taps: Taps, cfg: RunConfig,
          dtype: torch.dtype, device: torch.device) -> _Plan:
    key = (id(model), len(taps.a), dtype, device, cfg.hist_bins, cfg.activation, cfg.arch)
    plan = ws.get("plan")
    if isinstance(plan, _Plan) and plan.key == key:
        return plan
    biases = model.delta_biases() + [model.out.bias]
    sizes = [b.numel() for b in biases]
    top_k = [min(TOP_K, n) for n in sizes]
    top_index = None
    if sum(sizes) <= TOP_GATHER_MAX:
        starts = np.cumsum([0] + sizes[:-1])
        top_index = torch.as_tensor(np.concatenate(
            [np.arange(s, s + k) for s, k in zip(starts, top_k, strict=True)]),
            dtype=torch.int64, device=device)
    nb = cfg.hist_bins
    plan = ws["plan"] = _Plan(
        key=key, weights=model.weights(), biases=biases, names=model.layer_names(),
        hidden=len(taps.a), nb=nb, act_range=_range(act_edges(cfg), dtype),
        grad_range=_range(grad_edges(cfg), dtype),
        offsets=_offsets(2 * len(taps.a), nb, device), top_k=top_k, top_index=top_index,
        np_dtype=torch.empty((), dtype=dtype).numpy().dtype)
    return plan


@dataclass
class Measured:
    layers: list[LayerStats]
    values: dict[str, np.ndarray]


@torch.no_grad()
def measure(
    model: nn.Module,
    taps: Taps,
    cfg: RunConfig,
    lr: float,
    batch_size: int,
    extra: dict[str, torch.Tensor],
    jacobian_log_sv: torch.Tensor | None = None,
    spectra: bool = True,
    workspace: dict[str, Any] | None = None,
    grad_norms: dict[int, torch.Tensor] | None = None,
) -> Measured:
    """All statistics of this step (after backward, before the optimiser step).

    ``extra`` holds scalars computed by the caller (loss, accuracies) that must travel in
    the same transfer. With ``spectra=False`` the weight singular values are skipped (the
    caller carries earlier ones forward) and ``LayerStats.weight_singular_values`` is None.
    ``workspace`` (a dict the caller keeps for the run) holds the large scratch tensors
    between calls (a fresh multi-MB CPU allocation per snapshot costs its page faults) and
    the run's fixed ``_Plan``. ``grad_norms`` maps ``id(param.grad)`` to that gradient's norm
    when the caller has them already (it needs the global norm first); the others are
    computed here.

    A small net's snapshot is launch-bound (every op costs microseconds, whatever its size),
    so the statistics are gathered in as few ops as the numbers allow: all norms in one
    stack, the neuron bars in one gather, both histograms (activations and back-propagated
    gradients) binned by one chain of elementwise ops and one ``bincount``. The arithmetic
    of every reported number is unchanged (tests/test_overhead_probes.py checks the values
    bit for bit against the one-statistic-at-a-time computation).
    """
    ws: dict[str, Any] = {} if workspace is None else workspace
    a0 = taps.a[0]
    plan = _plan(ws, model, taps, cfg, a0.dtype, a0.device)
    p = Packer()
    for k, v in extra.items():
        p.add(k, v)
    weights, biases, L = plan.weights, plan.biases, plan.hidden
    wgrads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
    bgrads = [b.grad if b.grad is not None else torch.zeros_like(b) for b in biases]

    # Norms: the gradients' from the caller where it has them, the rest in one foreach.
    grads = wgrads + bgrads
    known = grad_norms or {}
    missing = [g for g in grads if id(g) not in known]
    fresh = dict(zip(map(id, missing), torch._foreach_norm(missing), strict=True)) \
        if missing else {}
    norms = [known[id(g)] if id(g) in known else fresh[id(g)] for g in grads]
    p.add("norms", torch.stack(norms + list(torch._foreach_norm(weights))))   # (3 (L+1),)
    if plan.top_index is not None:
        p.add("top", torch.cat(bgrads).index_select(0, plan.top_index))     # (sum top_k,)
    else:
        p.add("top", torch.cat([b[:k] for b, k in zip(bgrads, plan.top_k, strict=True)]))

    # Activations of hidden layers: moments, saturation; the histograms' rows.
    gz = [z.grad for z in taps.z] if cfg.arch == "mlp" else []
    with_grads = bool(gz) and all(g is not None for g in gz)
    rows = min(a0.shape[0], HIST_ROWS)
    m = rows * a0.shape[1]
    H = _scratch(ws, "hist", (2 * L if with_grads else L, m), a0)     # histogram rows
    direct = rows == a0.shape[0]           # the whole batch is histogrammed: stack into H
    A = torch.stack(taps.a, out=H[:L].view(L, *a0.shape) if direct else
                    _scratch(ws, "acts", (L, *a0.shape), a0))            # (L, B, n)
    n_el = A.shape[1] * A.shape[2]
    A2 = A.view(L, n_el)
    mean = A2.sum(1) / n_el
    # Two-pass std, ||A - mean|| / sqrt(n), its squares summed in float64: float32 squares of
    # activations ~1e-23 underflow to 0 (any float32 value squared fits float64), and the
    # one-pass E[a^2] - E[a]^2 loses every digit when std << |mean|.
    # The divisions by n_el of the std and of the saturated count are done on the host, in
    # the same IEEE arithmetic (float64, then rounded to the activations' dtype; float32):
    # the same numbers, two ops fewer.
    margin = _scratch(ws, "margin", A2.shape, A2)
    centred = torch.sub(A2, mean.unsqueeze(1), out=margin)
    p.add("am", mean)
    p.add("as_norm", torch.linalg.vector_norm(centred, dim=1, dtype=torch.float64))
    act_name = "tanh" if cfg.arch == "gru" else cfg.activation
    if A2.numel() <= SAT_MASK_MAX and act_name in SAT_MASK_SAME:
        # few elements: 4 ops on a mask beat 10 on margins, and count the same
        p.add("sat_count", saturated(act_name, A2).sum(1))
    else:
        p.add("sat_count", saturated_count(act_name, A2, margin))
    if not direct:
        H[:L].view(L, rows, a0.shape[1]).copy_(A[:, :rows])
    _to_bins_(H[:L], *plan.act_range, plan.nb)

    # Back-propagated gradients dC_x/dz per example (x batch size: the loss is a batch mean).
    if with_grads:
        G = H[L:]
        torch.stack([g[:rows] for g in gz] if not direct else gz,
                    out=G.view(L, rows, a0.shape[1]))
        # log10(|g| * B + 1e-30), in place
        G.abs_().add_(1e-30 / batch_size).log10_().add_(math.log10(batch_size))
        _to_bins_(G, *plan.grad_range, plan.nb)
    counts = _count(H, plan.nb, plan.offsets[:H.shape[0]])               # (L or 2L, nb)
    p.add("ah", counts[:L])
    if with_grads:
        p.add("gh", counts[L:])
    if taps.h_time and taps.h_time[0].grad is not None:
        Hg = torch.stack([h.grad for h in taps.h_time], 1)      # (B, T, H)
        p.add("time", torch.linalg.vector_norm(Hg, dim=2).mean(0) * batch_size)   # (T,)
        Hs = Hg[:HIST_ROWS].permute(1, 0, 2).reshape(1, -1) * batch_size
        ge = torch.as_tensor(grad_edges(cfg), dtype=Hs.dtype, device=Hs.device)
        p.add("gh", _hist(torch.log10(Hs.abs() + 1e-30), ge).expand(L, -1))

    # Singular values of every weight matrix, one batched svdvals per shape group.
    groups = _grouped([w.detach().float() for w in weights]) if spectra else []
    for gi, (_, stack) in enumerate(groups):
        p.add(f"sv{gi}", torch.linalg.svdvals(stack))          # (k, min(m, n))
    if jacobian_log_sv is not None:
        p.add("jlog", jacobian_log_sv)

    v = p.unpack()
    dt = plan.np_dtype
    v["as"] = (v.pop("as_norm") / math.sqrt(n_el)).astype(dt).astype(np.float64)
    v["sat"] = (v.pop("sat_count").astype(dt) / dt.type(n_el)).astype(np.float64)
    return Measured(layers=_layers(plan, v, groups, lr), values=v)


def _layers(plan: _Plan, v: dict[str, np.ndarray],
            groups: list[tuple[list[int], torch.Tensor]], lr: float) -> list[LayerStats]:
    """The host side: one LayerStats per layer (hidden ones first, the output last)."""
    svs: dict[int, np.ndarray] = {}
    for gi, (ix, _) in enumerate(groups):
        for row, i in enumerate(ix):
            svs[i] = v[f"sv{gi}"][row]
    n = len(plan.names)
    wg, bg, wn = (v["norms"][j * n:(j + 1) * n].tolist() for j in range(3))
    top = v["top"].tolist()
    am, sd, sat = v["am"].tolist(), v["as"].tolist(), v["sat"].tolist()
    ah = v["ah"].astype(np.int64)
    gh = v["gh"].astype(np.int64) if "gh" in v else None
    L = plan.hidden
    layers = []
    j = 0
    for i, name in enumerate(plan.names):
        hidden = i < L
        k = plan.top_k[i]
        layers.append(LayerStats(
            index=i + 1, name=name,
            weight_grad_norm=wg[i], bias_grad_norm=bg[i], delta_norm=bg[i],
            delta_top=top[j:j + k],
            activation_mean=am[i] if hidden else 0.0,
            activation_std=sd[i] if hidden else 0.0,
            saturation=sat[i] if hidden else 0.0,
            update_ratio=lr * wg[i] / wn[i] if wn[i] > 0 else 0.0,
            weight_norm=wn[i],
            act_hist=ah[i] if hidden else None,
            grad_hist=gh[i] if hidden and gh is not None else None,
            weight_singular_values=svs.get(i),
        ))
        j += k
    return layers
