"""Per-layer statistics of one step, gathered on the device and moved to the host in ONE
transfer (``Packer``).

Cost model (measured on CPU): the number of ops matters, not their size. So layers of the
same shape are stacked and handled by one op (norms via ``torch._foreach_norm``, moments
as sum and sum of squares, histograms as one ``bincount`` over a 32-row subsample with a
per-layer offset, singular values as one batched ``svdvals`` per shape group).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.config import RunConfig
from core.models import Taps
from core.registry import ACT_RANGE, saturated_count
from core.snapshot import LayerStats

HIST_ROWS = 32                 # examples per layer that feed the histograms
GRAD_LOG10_RANGE = (-12.0, 4.0)  # fixed bins of log10 |dC/dz| per example


class Packer:
    """Collects named tensors, moves them to the host in one ``.cpu()``, splits them back."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, torch.Tensor]] = []

    def add(self, name: str, t: torch.Tensor) -> None:
        self._parts.append((name, t.detach()))

    def unpack(self) -> dict[str, np.ndarray]:
        if not self._parts:
            return {}
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
    lo, hi = ACT_RANGE["tanh" if cfg.arch == "gru" else cfg.activation]
    return np.linspace(lo, hi, cfg.hist_bins + 1)


def grad_edges(cfg: RunConfig) -> np.ndarray:
    return np.linspace(*GRAD_LOG10_RANGE, cfg.hist_bins + 1)


def _hist(x: torch.Tensor, edges: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """x (L, m) -> counts (L, nb) over fixed, evenly spaced edges, bins [e_i, e_i+1) (the
    last one closed, as ``np.histogram``); values outside the range, inf included, count in
    the end bins; NaN counts in the first bin. Arithmetic binning: 5 elementwise ops and
    one ``bincount`` for all layers (``bucketize`` was 6x slower). ``inplace``: x is a
    temporary that may be overwritten."""
    L = x.shape[0]
    nb = edges.numel() - 1
    lo, hi = float(edges[0]), float(edges[-1])
    t = (x.sub_(lo) if inplace else x - lo).mul_(nb / (hi - lo)).floor_()
    t = torch.nan_to_num_(t, nan=0.0).clamp_(0, nb - 1).to(torch.int64)     # (L, m)
    t += torch.arange(0, L * nb, nb, device=x.device).unsqueeze(1)
    return torch.bincount(t.reshape(-1), minlength=L * nb).reshape(L, nb)


def _grouped(mats: list[torch.Tensor]) -> list[tuple[list[int], torch.Tensor]]:
    """Indices and stacked tensors of equal-shaped matrices: one op per shape group."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, m in enumerate(mats):
        groups.setdefault(tuple(m.shape), []).append(i)
    return [(ix, torch.stack([mats[i] for i in ix])) for ix in groups.values()]


def _norms(ts: list[torch.Tensor], known: dict[int, torch.Tensor] | None) -> torch.Tensor:
    """Stacked 2-norms of ``ts``, reusing those in ``known`` (keyed by tensor id)."""
    if known and all(id(t) in known for t in ts):
        return torch.stack([known[id(t)] for t in ts])
    return torch.stack(torch._foreach_norm(ts))


def _scratch(ws: dict[str, torch.Tensor], key: str, shape: tuple[int, ...],
             like: torch.Tensor) -> torch.Tensor:
    """A reusable tensor of this shape / dtype / device from the workspace."""
    t = ws.get(key)
    if t is None or tuple(t.shape) != tuple(shape) or t.dtype != like.dtype \
            or t.device != like.device:
        t = ws[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return t


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
    workspace: dict[str, torch.Tensor] | None = None,
    grad_norms: dict[int, torch.Tensor] | None = None,
) -> Measured:
    """All statistics of this step (after backward, before the optimiser step).

    ``extra`` holds scalars computed by the caller (loss, accuracies) that must travel in
    the same transfer. With ``spectra=False`` the weight singular values are skipped (the
    caller carries earlier ones forward) and ``LayerStats.weight_singular_values`` is None.
    ``workspace`` (a dict the caller keeps for the run) holds the large scratch tensors
    between calls: a fresh multi-MB CPU allocation per snapshot costs its page faults.
    ``grad_norms`` maps ``id(param.grad)`` to that gradient's norm when the caller has
    them already (it needs the global norm first); the others are computed here.
    """
    ws = {} if workspace is None else workspace
    p = Packer()
    for k, v in extra.items():
        p.add(k, v)
    weights = model.weights()                       # hidden..., output
    biases = model.delta_biases() + [model.out.bias]
    names = model.layer_names()
    wgrads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
    bgrads = [b.grad if b.grad is not None else torch.zeros_like(b) for b in biases]
    p.add("wg", _norms(wgrads, grad_norms))                      # (L+1,)
    p.add("bg", _norms(bgrads, grad_norms))                      # (L+1,)
    p.add("wn", torch.stack(torch._foreach_norm(weights)))     # (L+1,)
    top = [b[:6] for b in bgrads]
    top = [torch.nn.functional.pad(t, (0, 6 - t.numel())) if t.numel() < 6 else t for t in top]
    p.add("top", torch.stack(top))                             # (L+1, 6)

    # Activations of hidden layers: moments, saturation, fixed-bin histograms.
    a0 = taps.a[0]
    shape = (len(taps.a), *a0.shape)
    A = torch.stack(taps.a, out=_scratch(ws, "acts", shape, a0))   # (L, B, n)
    L = A.shape[0]
    n_el = A.shape[1] * A.shape[2]
    A2 = A.view(L, n_el)
    mean = A2.sum(1) / n_el
    # Two-pass std, ||A - mean|| / sqrt(n), its squares summed in float64: float32 squares of
    # activations ~1e-23 underflow to 0 (any float32 value squared fits float64), and the
    # one-pass E[a^2] - E[a]^2 loses every digit when std << |mean|.
    centred = torch.sub(A2, mean.unsqueeze(1), out=_scratch(ws, "margin", A2.shape, A2))
    p.add("am", mean)
    p.add("as", torch.linalg.vector_norm(centred, dim=1, dtype=torch.float64)
          .div_(math.sqrt(n_el)).to(mean.dtype))
    act_name = "tanh" if cfg.arch == "gru" else cfg.activation
    p.add("sat", saturated_count(act_name, A2, _scratch(ws, "margin", A2.shape, A2)) / n_el)
    sub = A[:, :HIST_ROWS].reshape(A.shape[0], -1)             # (L, m); A is scratch
    ae = torch.as_tensor(act_edges(cfg), dtype=sub.dtype, device=sub.device)
    p.add("ah", _hist(sub, ae, inplace=True))

    # Back-propagated gradients dC_x/dz per example (x batch size: the loss is a batch mean).
    gz = [z.grad for z in taps.z] if cfg.arch == "mlp" else []
    if gz and all(g is not None for g in gz):
        G = torch.stack([g[:HIST_ROWS] for g in gz]).reshape(len(gz), -1)   # a copy
        ge = torch.as_tensor(grad_edges(cfg), dtype=G.dtype, device=G.device)
        # log10(|g| * B + 1e-30), in place on the copy
        G.abs_().add_(1e-30 / batch_size).log10_().add_(math.log10(batch_size))
        p.add("gh", _hist(G, ge, inplace=True))
    if taps.h_time and taps.h_time[0].grad is not None:
        Hg = torch.stack([h.grad for h in taps.h_time], 1)      # (B, T, H)
        p.add("time", torch.linalg.vector_norm(Hg, dim=2).mean(0) * batch_size)   # (T,)
        Hs = Hg[:HIST_ROWS].permute(1, 0, 2).reshape(1, -1) * batch_size
        ge = torch.as_tensor(grad_edges(cfg), dtype=Hs.dtype, device=Hs.device)
        p.add("gh", _hist(torch.log10(Hs.abs() + 1e-30), ge).expand(len(taps.a), -1))

    # Singular values of every weight matrix, one batched svdvals per shape group.
    groups = _grouped([w.detach().float() for w in weights]) if spectra else []
    for gi, (_, stack) in enumerate(groups):
        p.add(f"sv{gi}", torch.linalg.svdvals(stack))          # (k, min(m, n))
    if jacobian_log_sv is not None:
        p.add("jlog", jacobian_log_sv)

    v = p.unpack()
    svs: dict[int, np.ndarray] = {}
    for gi, (ix, _) in enumerate(groups):
        for row, i in enumerate(ix):
            svs[i] = v[f"sv{gi}"][row]
    L = len(taps.a)
    layers = []
    for i, name in enumerate(names):
        hidden = i < L
        wg, wn = float(v["wg"][i]), float(v["wn"][i])
        layers.append(LayerStats(
            index=i + 1, name=name,
            weight_grad_norm=wg, bias_grad_norm=float(v["bg"][i]),
            delta_norm=float(v["bg"][i]),
            delta_top=[float(x) for x in v["top"][i][: min(6, biases[i].numel())]],
            activation_mean=float(v["am"][i]) if hidden else 0.0,
            activation_std=float(v["as"][i]) if hidden else 0.0,
            saturation=float(v["sat"][i]) if hidden else 0.0,
            update_ratio=lr * wg / wn if wn > 0 else 0.0,
            weight_norm=wn,
            act_hist=v["ah"][i].astype(np.int64) if hidden else None,
            grad_hist=v["gh"][i].astype(np.int64) if hidden and "gh" in v else None,
            weight_singular_values=svs.get(i),
        ))
    return Measured(layers=layers, values=v)
