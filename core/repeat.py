"""One config over several seeds: the per-seed runs and their spread (median, quartiles).

One seed can mislead (Nielsen's first-layer speed varies 2-3x between seeds), so a study
repeats the run over seeds and reports the median with the interquartile range.

:func:`repeat` trains the N seeds as ONE batched model when the shapes allow it (a plain
MLP: no normalisation layer, no Jacobian spectrum): every weight matrix gets a leading seed
axis, each seed keeps its own data, initialisation and batch order (the same
``torch.Generator`` draws as :func:`core.train.run`), and one ``baddbmm`` per layer does all
N forward passes. The optimisers are element-wise, so one optimiser over the stacked
tensors updates each seed exactly as its own run would; the global-norm clip is taken per
seed. A small net's step is mostly dispatch overhead, which the batch pays once. For the
common activations (tanh, sigmoid, relu, linear) the backward pass is written out by hand
with the very kernels autograd's nodes call (so the gradients are the same bits; a test
compares the two), which spares the graph's bookkeeping on every step; plain SGD updates
with the one foreach op ``torch.optim.SGD`` would run, as :mod:`core.train` does. Other
configs run seed after seed through :func:`core.train.run_all`.

Batched snapshots are *light* (the scalar statistics per layer, no histograms or spectra),
like the playground's history; they agree with ``run()`` to float32 rounding (a test holds
them to it). Torch is imported only inside the functions that train: the statistics below
are NumPy and the web processes import this module without torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.config import LIMITS, ConfigError, RunConfig
from core.snapshot import LayerStats, RunResult, Snapshot

MAX_SEEDS = 100          # the CLI's cap on one --seeds range (the playground allows 10)
#: Per-layer statistics that get a median and quartiles (the JSON keys of a layer).
LAYER_KEYS = ("delta_norm", "weight_grad_norm", "bias_grad_norm", "update_ratio",
              "activation_mean", "activation_std", "saturation")
#: Per-snapshot statistics that get a median and quartiles.
RUN_KEYS = ("loss", "train_accuracy", "test_accuracy", "test_loss")


# ---- seeds ----------------------------------------------------------------------------------


def parse_seeds(text: str, max_count: int = MAX_SEEDS) -> list[int]:
    """'0-9' -> [0..9]; '1,4,7' -> [1, 4, 7]; '3' -> [3]; ranges and lists mix ('0-2,7').
    Raises ConfigError (field ``--seeds``) with a one-line message for anything else."""
    seeds: list[int] = []
    hi_seed = int(LIMITS["seed"][1])
    for part in str(text).replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError("--seeds", f"expected a range like 0-9 or a list like 1,4,7; "
                                         f"got {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ConfigError("--seeds", f"range {part} runs backwards")
        if hi > hi_seed:
            raise ConfigError("--seeds", f"seed {hi} is above the maximum {hi_seed}")
        if hi - lo + 1 + len(seeds) > max_count:
            raise ConfigError("--seeds", f"at most {max_count} seeds at once")
        seeds.extend(s for s in range(lo, hi + 1) if s not in seeds)
    if not seeds:
        raise ConfigError("--seeds", "no seeds given")
    return seeds


def seeds_text(seeds: Sequence[int]) -> str:
    """[0, 1, 2, 3] -> '0-3'; [1, 4, 7] -> '1,4,7' (what parse_seeds reads back)."""
    s = list(seeds)
    if len(s) > 1 and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}-{s[-1]}"
    return ",".join(str(x) for x in s)


# ---- statistics across seeds ----------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """Quartiles across seeds of one statistic at each step: arrays of equal length."""

    median: np.ndarray
    q1: np.ndarray
    q3: np.ndarray
    count: np.ndarray            # seeds with a finite value at that step

    def to_json(self) -> dict[str, list]:
        return {"median": _list(self.median), "q1": _list(self.q1), "q3": _list(self.q3),
                "count": [int(c) for c in self.count]}


def quartiles(values: np.ndarray | Sequence[Sequence[float]]) -> Band:
    """Median and interquartile range across seeds (axis 0) of ``values`` (seeds, ...).

    NaN / inf (a seed that diverged, or a metric not measured there) are left out per
    column; a column with no finite value gives NaN. NumPy's default ("linear")
    percentile definition, so ``median`` equals ``np.median`` of the finite values."""
    a = np.asarray(values, dtype=np.float64)
    a = np.where(np.isfinite(a), a, np.nan)
    count = np.sum(np.isfinite(a), axis=0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns -> NaN
            q1, med, q3 = np.nanpercentile(a, [25.0, 50.0, 75.0], axis=0)
    return Band(median=np.asarray(med), q1=np.asarray(q1), q3=np.asarray(q3),
                count=np.asarray(count))


@dataclass
class SeedSummary:
    """Quartiles across seeds at every common step: per run-level key, and per layer."""

    steps: np.ndarray                                    # (T,)
    runs: dict[str, Band]                                # RUN_KEYS -> Band over steps
    layers: list[dict[str, Any]]                         # per layer: index, name, KEY -> Band

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [int(s) for s in self.steps],
            **{k: b.to_json() for k, b in self.runs.items()},
            "layers": [{"index": la["index"], "name": la["name"],
                        **{k: la[k].to_json() for k in LAYER_KEYS}} for la in self.layers],
        }


def summarise(histories: Sequence[Sequence[Snapshot]]) -> SeedSummary:
    """Quartiles across the seeds' snapshot lists, step by step. The steps are those of the
    longest history; a seed without a snapshot at a step (it diverged earlier, or its
    history was thinned differently) contributes NaN there, so it is left out of that step.
    A diverged snapshot contributes NaN too (its numbers are not finite)."""
    hs = [list(h) for h in histories if h]
    if not hs:
        return SeedSummary(steps=np.zeros(0, dtype=np.int64), runs={}, layers=[])
    steps = sorted({s.step for h in hs for s in h})
    pos = {st: i for i, st in enumerate(steps)}
    n_layers = max(len(s.layers) for h in hs for s in h)
    n, t = len(hs), len(steps)
    runs = {k: np.full((n, t), np.nan) for k in RUN_KEYS}
    per_layer = {k: np.full((n, t, n_layers), np.nan) for k in LAYER_KEYS}
    names: list[tuple[int, str]] = [(i + 1, "") for i in range(n_layers)]
    for i, h in enumerate(hs):
        for s in h:
            if s.diverged:
                continue
            j = pos[s.step]
            for k in RUN_KEYS:
                v = getattr(s, k)
                runs[k][i, j] = np.nan if v is None else v
            for li, la in enumerate(s.layers):
                names[li] = (la.index, la.name)
                for k in LAYER_KEYS:
                    per_layer[k][i, j, li] = getattr(la, k)
    bands = {k: quartiles(v) for k, v in runs.items()}
    layer_bands = {k: quartiles(v) for k, v in per_layer.items()}     # each (t, L)
    layers = []
    for li, (index, name) in enumerate(names):
        d: dict[str, Any] = {"index": index, "name": name}
        for k in LAYER_KEYS:
            b = layer_bands[k]
            d[k] = Band(b.median[:, li], b.q1[:, li], b.q3[:, li], b.count[:, li])
        layers.append(d)
    return SeedSummary(steps=np.asarray(steps, dtype=np.int64), runs=bands, layers=layers)


# ---- the repeated run -----------------------------------------------------------------------


@dataclass
class RepeatResult:
    """The runs of one config over ``seeds`` (``runs[i]`` has seed ``seeds[i]``)."""

    config: dict[str, Any]                 # the config, seed field = the first seed
    seeds: list[int]
    runs: list[RunResult] = field(default_factory=list)
    batched: bool = False                  # trained as one batched model

    def summary(self) -> SeedSummary:
        return summarise([r.snapshots for r in self.runs])

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--seeds`` document: the config, each seed's run (the ``gradlab run``
        document plus its ``seed``), and ``summary``: median / q1 / q3 / count per step."""
        return {
            "config": self.config, "seeds": list(self.seeds), "batched": self.batched,
            "runs": [{"seed": s, **r.to_json()} for s, r in zip(self.seeds, self.runs,
                                                                  strict=True)],
            "summary": self.summary().to_json(),
        }


def batchable(cfg: RunConfig) -> bool:
    """True when the seeds of ``cfg`` can train as one batched model: a plain MLP (the
    normalisation layers keep running statistics per model; the Jacobian spectrum is a
    per-model product)."""
    return cfg.arch == "mlp" and cfg.norm == "none" and not cfg.jacobian


def repeat(cfg: RunConfig, seeds: Sequence[int], *, batched: bool | None = None
           ) -> RepeatResult:
    """Train ``cfg`` once per seed. ``batched``: None = when :func:`batchable`; True
    requires it (ValueError otherwise); False runs seed after seed (full snapshots)."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("repeat needs at least one seed")
    ok = batchable(cfg)
    if batched and not ok:
        raise ValueError("this config cannot be batched over seeds (norm, RNN or Jacobian)")
    use = ok if batched is None else batched
    res = RepeatResult(config=cfg.replace(seed=seeds[0]).to_dict(), seeds=seeds, batched=use)
    if use:
        res.runs = _batched_group(cfg, seeds)
    else:
        from core import progress
        from core.train import run_all

        for i, s in enumerate(seeds):
            progress.stage(i, len(seeds))
            res.runs.append(run_all(cfg.replace(seed=s)))
    return res


def repeat_json(cfg: RunConfig, seeds: Sequence[int]) -> dict[str, Any]:
    """:func:`repeat` as its JSON document (what an executor sends back to a page)."""
    return repeat(cfg, seeds).to_json()


def _batched_group(cfg: RunConfig, seeds: Sequence[int], *, by_hand: bool | None = None
                   ) -> list[RunResult]:
    """The seeds of a plain-MLP config as ONE model with a leading seed axis. ``by_hand``:
    None = backward by hand where :func:`_act_backward` knows the activation, False =
    through autograd (the tests compare the two)."""
    import torch

    from core import data as data_mod
    from core import progress
    from core import train as train_mod
    from core.models import build
    from core.registry import ACTIVATIONS, make_optimizer, saturated_count

    due = getattr(train_mod, "due", None) or train_mod._due
    device = train_mod.resolve_device(cfg.device)
    cfgs = [cfg.replace(seed=s) for s in seeds]
    n_seeds, depth = len(cfgs), cfg.depth
    gens = [torch.Generator().manual_seed(c.seed) for c in cfgs]    # as core.train._start
    dss = [data_mod.load(c, device) for c in cfgs]
    models = [build(c, ds.n_in, ds.n_out, g) for c, ds, g in zip(cfgs, dss, gens, strict=True)]
    ds0 = dss[0]
    lins = [[*m.hidden, m.out] for m in models]
    # Stacked parameters, one leaf tensor per layer, laid out for baddbmm without a
    # transpose: W (S, in, out) = each seed's weight transposed, b (S, 1, out).
    W = [torch.stack([lin[i].weight.detach().t() for lin in lins]).contiguous().to(device)
         .requires_grad_() for i in range(depth + 1)]
    B = [torch.stack([lin[i].bias.detach() for lin in lins]).unsqueeze(1).to(device)
         .requires_grad_() for i in range(depth + 1)]
    params = [t for pair in zip(W, B, strict=True) for t in pair]
    opt = make_optimizer(cfg, params)
    loss_fn = train_mod.loss_function(cfg, ds0.task, ds0.n_out)
    phi = ACTIVATIONS[cfg.activation]
    x_train = torch.stack([d.x_train for d in dss])                  # (S, n, n_in)
    y_train = torch.stack([d.y_train for d in dss])                  # (S, n) or (S, n, d)
    x_test = torch.stack([d.x_test[:train_mod.EVAL_MAX] for d in dss])
    y_test = torch.stack([d.y_test[:train_mod.EVAL_MAX] for d in dss])
    n = x_train.shape[1]
    bs = n if cfg.batch_size in (0, n) else cfg.batch_size
    classification = ds0.task == "classification"
    l2_scale = cfg.l2 / n
    rows = torch.arange(n_seeds, device=device).unsqueeze(1)        # (S, 1)
    perm: torch.Tensor | None = None
    pos = n
    results = [RunResult(config=c.to_dict(), device=str(device)) for c in cfgs]
    names = [m.layer_names() for m in models]
    alive = [True] * n_seeds
    last_eval: int | None = None
    residual = cfg.residual
    seed_grad = torch.tensor(float(n_seeds), device=device)
    seed_loss = _seed_losses(cfg, ds0.task)
    # Plain SGD: the update torch.optim.SGD makes (p -= lr * grad, one foreach op), without
    # its per-call bookkeeping, as core.train does: the same op, the same numbers.
    plain_sgd = train_mod._plain_sgd(opt)

    def forward(x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        acts: list[torch.Tensor] = []
        h = x                                                        # (S, b, n_in)
        for i in range(depth):
            a = phi(torch.baddbmm(B[i], h, W[i]))                   # (S, b, width)
            if keep:
                acts.append(a.detach())
            h = h + a if (residual and i > 0) else a
        return torch.baddbmm(B[depth], h, W[depth]), acts

    act_backward = _act_backward(cfg.activation) if by_hand is not False else None
    if by_hand and act_backward is None:
        raise ValueError(f"no backward by hand for activation {cfg.activation!r}")
    manual_grads = act_backward is not None
    aten = torch.ops.aten
    # nll_loss's total weight: every row counts (no class weights, no ignored targets).
    ce_rows = (torch.tensor(float(n_seeds * bs), device=device)
               if classification and cfg.loss == "softmax_ce" else None)

    def by_hand(x: torch.Tensor, y: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor], list, list]:
        """Forward and backward of the whole stack without building an autograd graph: the
        ops autograd runs for it (``BaddbmmBackward``: grad @ W^T, h^T @ grad, the bias's
        sum over the batch; the activation's own ``*_backward`` kernel; the residual's
        sum; softmax cross-entropy's nll_loss and log_softmax backward), called directly,
        so the gradients are the same bits. The other losses take dC/dout from a one-node
        autograd graph. A small net's step is mostly per-op overhead, and the graph's
        bookkeeping is a sizeable part of it (about a fifth of the step here)."""
        ins: list[torch.Tensor] = []
        acts: list[torch.Tensor] = []
        with torch.no_grad():
            h = x
            for i in range(depth):
                ins.append(h)
                a = phi(torch.baddbmm(B[i], h, W[i]))
                acts.append(a)
                h = h + a if (residual and i > 0) else a
            ins.append(h)
            out = torch.baddbmm(B[depth], h, W[depth])
            if ce_rows is not None:
                # softmax cross-entropy: the kernels of its autograd nodes (nll_loss's and
                # log_softmax's backward), from the seed gradient S, as autograd runs them.
                logp = torch.log_softmax(out.view(-1, out.shape[-1]), 1)
                d = aten.nll_loss_backward.default(seed_grad, logp, y.reshape(-1), None, 1,
                                                   -100, ce_rows)
                d = aten._log_softmax_backward_data.default(d, logp, 1, logp.dtype)
                d = d.view(out.shape)
            else:
                with torch.enable_grad():
                    o = out.requires_grad_()
                    loss = loss_fn(o.reshape(-1, o.shape[-1]), y.reshape(-1, *y.shape[2:]))
                    (d,) = torch.autograd.grad(loss, o, seed_grad)
                out = o.detach()
            wg: list[torch.Tensor] = [d] * (depth + 1)
            bgr: list[torch.Tensor] = [d] * (depth + 1)
            above = d                  # dC/d(input of the layer above), for the residual
            for i in range(depth, -1, -1):                      # d = dC/dz of layer i
                wg[i] = torch.bmm(ins[i].transpose(1, 2), d)
                bgr[i] = d.sum(1, keepdim=True)
                if i == 0:
                    break
                g = torch.bmm(d, W[i].transpose(1, 2))           # dC/d(input of layer i)
                if residual and 0 < i < depth:                  # it also skips to layer i+1
                    g.add_(above)
                above = g
                d = act_backward(g, acts[i - 1])                # dC/dz of layer i - 1
            if l2_scale:
                torch._foreach_add_(wg, W, alpha=l2_scale)
        if not plain_sgd:                                       # torch's optimisers read .grad
            for t, gr in zip(params, [g for pair in zip(wg, bgr, strict=True) for g in pair],
                             strict=True):
                t.grad = gr
        return out, acts, wg, bgr

    def grads_of(x: torch.Tensor, y: torch.Tensor, keep: bool
                 ) -> tuple[torch.Tensor, list[torch.Tensor], list, list]:
        """out, the hidden activations (when ``keep``, or by hand), dC/dW, dC/db."""
        if manual_grads:
            return by_hand(x, y)
        out, acts = forward(x, keep)
        return (out, acts, *backward(out, y))

    def backward(out: torch.Tensor, y: torch.Tensor) -> tuple[list, list]:
        """Sum over seeds of each seed's batch-mean loss: every loss is a batch mean, so
        the loss of all rows at once times S is that sum (one op instead of S). The factor
        S enters as backward's starting gradient (the gradient a ``* S`` node would pass
        on, exactly), which spares that node."""
        loss = loss_fn(out.reshape(-1, out.shape[-1]), y.reshape(-1, *y.shape[2:]))
        for t in params:
            t.grad = None
        loss.backward(seed_grad)
        wg, bgr = [w.grad for w in W], [b.grad for b in B]
        if l2_scale:
            torch._foreach_add_(wg, W, alpha=l2_scale)
        return wg, bgr

    for step in range(cfg.steps + 1):
        snap = regular = step % cfg.every == 0 or step == cfg.steps
        ok = [True] * n_seeds
        if bs == n:
            xb, yb = x_train, y_train
        else:
            if pos + bs > n:
                perm = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
                pos = 0
            assert perm is not None
            idx = perm[:, pos:pos + bs]                                 # (S, bs)
            pos += bs
            xb, yb = x_train[rows, idx], y_train[rows, idx]
        out, acts, wg, bgr = grads_of(xb, yb, snap)
        # As in core.train: NaN/inf anywhere in backward reaches the first layer's
        # gradient, so one sum sees a divergence (per seed only when there is one).
        if not snap and not math.isfinite(wg[0].sum().item()):
            ok = torch.isfinite(wg[0].flatten(1).sum(1)).tolist()
            if not all(o for o, a in zip(ok, alive, strict=True) if a):
                # Only the seeds that broke get this extra snapshot (as their own run would).
                snap = True
                out, acts, wg, bgr = grads_of(xb, yb, True)
        progress.step(step, cfg.steps)
        if snap:
            evaluate = not regular or due(last_eval, step, cfg.eval_every, cfg.steps)
            if evaluate and regular:
                last_eval = step
            stats = _measure(cfg, out, yb, W, B, wg, bgr, acts, seed_loss,
                             forward if evaluate else None, x_test, y_test, classification,
                             opt.param_groups[0]["lr"], saturated_count)
            for s in range(n_seeds):
                if not alive[s] or not (regular or not ok[s]):
                    continue
                snap_s = _snapshot_of(stats, s, step, names[s])
                results[s].snapshots.append(snap_s)
                if snap_s.diverged:
                    alive[s] = False
                    results[s].diverged_at = step
                    results[s].diverged_layer = snap_s.diverged_layer
        if step == cfg.steps or not any(alive):
            break
        if cfg.clip_value:
            torch._foreach_clamp_min_(wg + bgr, -cfg.clip_value)
            torch._foreach_clamp_max_(wg + bgr, cfg.clip_value)
        if cfg.clip_norm:
            sq = sum(g.pow(2).flatten(1).sum(1) for g in wg + bgr)    # (S,) per-seed norm^2
            scale = (cfg.clip_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
            for g in wg + bgr:
                g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
        if plain_sgd:
            train_mod.sgd_update(params, [g for pair in zip(wg, bgr, strict=True)
                                          for g in pair], opt)
        else:
            opt.step()
    return results


def _seed_losses(cfg: RunConfig, task: str) -> Any:
    """(out (S, b, C), y (S, b[, d])) -> (S,): each seed's batch-mean loss, in one op chain
    for all seeds: :func:`core.train.loss_function` with the mean taken per seed (a
    per-row loss, then its mean over the batch axis). The same numbers to float rounding
    (the sums run in another order); tests/test_repeat.py holds every loss to it."""
    import torch
    import torch.nn.functional as F

    if task == "regression":
        return lambda out, y: 0.5 * ((out - y) ** 2).sum(2).mean(1)

    def onehot(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, out.shape[-1]).to(out.dtype)

    if cfg.loss == "softmax_ce":
        return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1),
                                              reduction="none").view(y.shape).mean(1)
    if cfg.loss == "sigmoid_ce":
        return lambda out, y: F.binary_cross_entropy_with_logits(
            out, onehot(out, y), reduction="none").sum((1, 2)) / out.shape[1]
    return lambda out, y: 0.5 * ((torch.softmax(out, -1) - onehot(out, y)) ** 2).sum(2).mean(1)


def _act_backward(name: str) -> Any:
    """(dC/da, a) -> dC/dz for activation ``name``, as the kernel its autograd node runs
    (torch's derivatives.yaml: tanh and sigmoid from their output, relu as a threshold at
    0 of its output), so the gradient by hand is autograd's to the bit; None for the
    others (they train through autograd)."""
    import torch

    aten = torch.ops.aten
    if name == "tanh":
        return aten.tanh_backward.default
    if name == "sigmoid":
        return aten.sigmoid_backward.default
    if name == "relu":
        return lambda g, a: aten.threshold_backward.default(g, a, 0)
    if name == "linear":
        return lambda g, a: g
    return None


def _measure(cfg, out, yb, W, B, wg, bgr, acts, seed_loss, forward, x_test, y_test, classification,
             lr, saturated_count) -> dict[str, list]:
    """Every seed's statistics of this step, moved to the host in one transfer, as nested
    lists (seed first). Each statistic is one op over all seeds (per-seed reductions
    along the trailing axes), never a loop over the seeds."""
    import torch

    with torch.no_grad():
        s = out.shape[0]
        vn = torch.linalg.vector_norm
        parts: dict[str, torch.Tensor] = {
            "loss": seed_loss(out, yb),                                               # (S,)
            "wg": torch.stack([vn(g, dim=(1, 2)) for g in wg], 1),                    # (S, L+1)
            "bg": torch.stack([vn(g, dim=(1, 2)) for g in bgr], 1),
            "wn": torch.stack([vn(w, dim=(1, 2)) for w in W], 1),
            "top": torch.stack([torch.nn.functional.pad(g[:, 0, :6],
                                                        (0, max(0, 6 - g.shape[2])))
                                for g in bgr], 1),                                    # (S, L+1, 6)
        }
        if classification:
            parts["acc"] = (out.argmax(-1) == yb).float().mean(1)
        if forward is not None and x_test.shape[1]:
            tout, _ = forward(x_test, False)
            parts["tloss"] = seed_loss(tout, y_test)
            if classification:
                parts["tacc"] = (tout.argmax(-1) == y_test).float().mean(1)
        A = torch.stack(acts, 1)                                      # (S, L, b, width)
        n_el = A.shape[2] * A.shape[3]
        A2 = A.reshape(A.shape[0] * A.shape[1], n_el)                 # (S*L, b*width)
        mean = A2.sum(1) / n_el
        parts["am"] = mean.view(s, -1)
        parts["as"] = (torch.linalg.vector_norm(A2 - mean.unsqueeze(1), dim=1,
                                                dtype=torch.float64)
                       / math.sqrt(n_el)).to(mean.dtype).view(s, -1)
        parts["sat"] = (saturated_count(cfg.activation, A2) / n_el).view(s, -1)
        keys = list(parts)
        flat = torch.cat([parts[k].reshape(-1).to(torch.float64) for k in keys]).cpu().numpy()
    host: dict[str, list] = {"lr": [float(lr)],
                             "top_k": [min(6, int(b.shape[2])) for b in B]}   # as run()
    i = 0
    for k in keys:
        size = parts[k].numel()
        host[k] = flat[i:i + size].reshape(tuple(parts[k].shape)).tolist()
        i += size
    return host


def _snapshot_of(v: dict[str, list], s: int, step: int, names: list[str]) -> Snapshot:
    """Seed ``s``'s Snapshot from the batched statistics (a light one: no histograms)."""
    lr = v["lr"][0]
    am, sd, sat = v["am"][s], v["as"][s], v["sat"][s]
    wgs, bgs, wns, tops = v["wg"][s], v["bg"][s], v["wn"][s], v["top"][s]
    depth = len(am)
    layers = []
    for i, name in enumerate(names):
        hidden = i < depth
        wg, wn = wgs[i], wns[i]
        layers.append(LayerStats(
            index=i + 1, name=name, weight_grad_norm=wg, bias_grad_norm=bgs[i],
            delta_norm=bgs[i], delta_top=tops[i][:v["top_k"][i]],
            activation_mean=am[i] if hidden else 0.0,
            activation_std=sd[i] if hidden else 0.0,
            saturation=sat[i] if hidden else 0.0,
            update_ratio=lr * wg / wn if wn > 0 else 0.0, weight_norm=wn))
    loss = v["loss"][s]
    finite = math.isfinite(loss) and all(math.isfinite(x) for x in wgs)
    bad = None
    if not finite:
        bad = next((f"{la.name} (gradient)" for la in reversed(layers)
                    if not math.isfinite(la.weight_grad_norm)), "output (loss)")
    return Snapshot(
        step=step, loss=loss,
        train_accuracy=v["acc"][s] if "acc" in v else None,
        test_accuracy=v["tacc"][s] if "tacc" in v else None,
        test_loss=v["tloss"][s] if "tloss" in v else None,
        layers=layers, diverged=not finite, diverged_layer=bad,
        message=None if finite else f"NaN/inf at step {step}, first in {bad}.")


def _list(a: np.ndarray) -> list:
    return [float(x) if math.isfinite(x) else None for x in np.asarray(a, dtype=np.float64)]


__all__ = ["Band", "LAYER_KEYS", "MAX_SEEDS", "RUN_KEYS", "RepeatResult", "SeedSummary",
           "batchable", "parse_seeds", "quartiles", "repeat", "repeat_json", "seeds_text",
           "seed_table", "summarise"]


def seed_table(res: RepeatResult, key: str = "delta_norm") -> str:
    """The CLI's text summary: per layer, ``key`` at the first and the last common step
    as median [q1, q3] across the seeds."""
    summ = res.summary()
    if not len(summ.steps):
        return "no snapshots"
    lines = [f"seeds {seeds_text(res.seeds)} ({len(res.seeds)} runs, "
             f"{'batched' if res.batched else 'one after another'}): {key} median [q1, q3]",
             f"{'layer':10s} {'step ' + str(summ.steps[0]):>30s} "
             f"{'step ' + str(summ.steps[-1]):>30s}"]

    def cell(b: Band, j: int) -> str:
        return f"{b.median[j]:.3g} [{b.q1[j]:.3g}, {b.q3[j]:.3g}]"

    for la in summ.layers:
        lines.append(f"{la['name']:10s} {cell(la[key], 0):>30s} {cell(la[key], -1):>30s}")
    loss = summ.runs["loss"]
    lines.append(f"{'loss':10s} {cell(loss, 0):>30s} {cell(loss, -1):>30s}")
    diverged = [s for s, r in zip(res.seeds, res.runs, strict=True) if r.diverged_at is not None]
    if diverged:
        lines.append(f"diverged: seeds {', '.join(map(str, diverged))}")
    return "\n".join(lines)
