"""The training loop: ``steps(config)`` yields after every optimiser step (a Snapshot or
None), ``run(config)`` only the Snapshots. Pure: no printing, no files, no threads, no
process-wide torch switches (each run draws from its own torch.Generator).

Step semantics: the snapshot for step s describes the network after s updates, measured
on the batch of update s+1 before it is applied; step 0 is the initialisation. With
``steps = N`` there are N updates and a final snapshot at step N (no update after it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core import data as data_mod
from core import progress
from core.config import RunConfig
from core.models import Taps, build
from core.probes import act_edges, grad_edges, measure
from core.registry import make_optimizer
from core.snapshot import RunResult, Snapshot

EVAL_MAX = 512   # test examples evaluated per snapshot (a fixed prefix of the test set)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (out, y) -> batch-mean loss
#: Called at every snapshot with (model, taps), after backward and before the update.
Probe = Callable[[torch.nn.Module, Taps], None]


@dataclass
class RunControl:
    """Live knobs a consumer (the app's worker) may change while a run is in flight.
    Read once per step; None means "as in the config"."""

    lr: float | None = None
    every: int | None = None


def resolve_device(name: str = "auto") -> torch.device:
    """cuda > mps > cpu for "auto"; a forced device that is absent raises ValueError."""
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for but no CUDA GPU is available")
    if name == "mps" and not has_mps:
        raise ValueError("device: mps was asked for but Apple MPS is not available")
    return torch.device(name)


def loss_function(cfg: RunConfig, task: str, n_out: int) -> LossFn:
    """(logits, y) -> scalar batch-mean loss, per Nielsen / Glorot conventions: the one
    every run and study uses (``task`` and ``n_out`` from the dataset)."""
    if task == "regression":
        # 0.5 * ||y - out||^2 summed over outputs, mean over the batch.
        return lambda out, y: 0.5 * ((out - y) ** 2).sum(1).mean()
    if cfg.loss == "softmax_ce":
        return lambda out, y: F.cross_entropy(out, y)
    if cfg.loss == "sigmoid_ce":
        # Nielsen's network2 cost: sigmoid outputs, -sum_j [y ln a + (1-y) ln(1-a)],
        # averaged over the batch; its output delta is a - y.
        return lambda out, y: F.binary_cross_entropy_with_logits(
            out, F.one_hot(y, n_out).to(out.dtype), reduction="sum") / out.shape[0]
    # quadratic: 0.5 * ||softmax(out) - onehot||^2 (Glorot & Bengio's comparison).
    return lambda out, y: 0.5 * ((torch.softmax(out, 1) - F.one_hot(y, n_out).to(out.dtype))
                                 ** 2).sum(1).mean()


def _first_bad_layer(model: torch.nn.Module, taps: Taps, loss: torch.Tensor) -> str:
    """Where NaN/inf first appears: forward activations from the input, then gradients in
    backward order (from the output), then the loss itself."""
    names = model.layer_names()
    for i, a in enumerate(taps.a):
        if not torch.isfinite(a).all():
            return f"{names[i]} (forward activations)"
    if not torch.isfinite(loss):
        return "output (loss)"
    weights = model.weights()
    for i in range(len(weights) - 1, -1, -1):
        g = weights[i].grad
        if g is not None and not torch.isfinite(g).all():
            return f"{names[i]} (gradient)"
    return "unknown"


class _Spectra:
    """The last weight / Jacobian spectra of a run and the step they were measured at."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.weights: list[np.ndarray | None] = []
        self.jlog: np.ndarray | None = None
        self.workspace: dict[str, Any] = {}     # probes' scratch tensors and plan, reused


@dataclass
class _Run:
    """What one run builds once and every step and snapshot reads: the model and its
    optimiser, the data, the loss, the fixed histogram edges, the evaluation tensors, and
    the state carried between snapshots (the last spectra, the last evaluation step)."""

    cfg: RunConfig
    g: torch.Generator                  # the run's own RNG (init, then batch order)
    ds: data_mod.Dataset
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    loss_fn: LossFn
    params: list[torch.nn.Parameter]
    weights: list[torch.Tensor]         # weight matrices: hidden layers, then the output
    batch_size: int                     # rows per step (n_train for full batch)
    x_test: torch.Tensor                # the first EVAL_MAX test examples
    y_test: torch.Tensor
    jac_x: torch.Tensor                 # the one input of the Jacobian spectrum
    act_edges: np.ndarray
    grad_edges: np.ndarray
    t0: float                           # perf_counter() at the start
    spec: _Spectra = field(default_factory=_Spectra)
    last_eval: int | None = None        # the last step the test set was evaluated at
    mode_matters: bool = True           # train()/eval() change the output (batch norm)

    @property
    def classification(self) -> bool:
        return self.ds.task == "classification"


def _start(cfg: RunConfig) -> _Run:
    device = resolve_device(cfg.device)
    g = torch.Generator().manual_seed(cfg.seed)          # this run's own RNG (CPU)
    ds = data_mod.load(cfg, device)
    model = build(cfg, ds.n_in, ds.n_out, g).to(device)
    model.train()
    n = ds.x_train.shape[0]
    return _Run(
        cfg=cfg, g=g, ds=ds, model=model, opt=make_optimizer(cfg, model.parameters()),
        loss_fn=loss_function(cfg, ds.task, ds.n_out), params=list(model.parameters()),
        weights=model.weights(), batch_size=n if cfg.batch_size in (0, n) else cfg.batch_size,
        x_test=ds.x_test[:EVAL_MAX], y_test=ds.y_test[:EVAL_MAX],
        jac_x=(ds.x_test if ds.x_test.shape[0] else ds.x_train)[0],
        act_edges=act_edges(cfg), grad_edges=grad_edges(cfg), t0=time.perf_counter(),
        mode_matters=_mode_matters(model))


def _mode_matters(model: torch.nn.Module) -> bool:
    """Whether train() and eval() compute differently in this model (batch norm, dropout).
    Where they do not, a snapshot skips the two module-tree walks that switch modes."""
    kinds = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)
    return any(isinstance(m, kinds) for m in model.modules())


def steps(cfg: RunConfig, control: RunControl | None = None, *,
          probe: Probe | None = None) -> Iterator[Snapshot | None]:
    """Train cfg's network one optimiser step per item: for each step 0..cfg.steps, one
    item once that step's batch has been forward- and back-propagated (before its update):
    the Snapshot when one is taken there (every ``every`` steps, the first and the last
    step), else None. A run that does not diverge yields ``cfg.steps + 1`` items; on
    NaN/inf the last item is a Snapshot with ``diverged=True``.

    ``probe(model, taps)``, if given, is called at every snapshot after backward and before
    the update (gradients in place): a study measures there what a Snapshot does not carry.
    Every step is also a ``core.progress`` point (a no-op unless someone listens).
    """
    r = _start(cfg)
    ds, model, opt, loss_fn, weights = r.ds, r.model, r.opt, r.loss_fn, r.weights
    l2_scale = cfg.l2 / ds.x_train.shape[0]
    n, bs = ds.x_train.shape[0], r.batch_size
    perm: torch.Tensor | None = None
    pos = n
    lr = cfg.lr
    plain_sgd = _plain_sgd(opt)
    params = r.params
    w0 = weights[0]

    for step in range(cfg.steps + 1):
        every = (control.every if control and control.every else None) or cfg.every
        if control and control.lr is not None and control.lr != lr:
            lr = float(control.lr)
            for group in opt.param_groups:
                group["lr"] = lr
        snap = step % every == 0 or step == cfg.steps
        if ds.train_stream is not None:       # fresh batches (shapeset's infinite stream)
            xb, yb = (t.to(ds.x_train.device) for t in next(ds.train_stream))
        elif bs == n:
            xb, yb = ds.x_train, ds.y_train
        else:
            if pos + bs > n:
                perm = torch.randperm(n, generator=r.g).to(ds.x_train.device)
                pos = 0
            idx = perm[pos:pos + bs]
            pos += bs
            xb, yb = ds.x_train[idx], ds.y_train[idx]

        out, taps = model(xb, taps=snap)
        loss = loss_fn(out, yb)
        for p in params:                      # zero_grad(set_to_none=True) without the
            p.grad = None                     # optimiser's profiler scope: fresh grads
        loss.backward()
        if l2_scale:
            torch._foreach_add_([w.grad for w in weights], weights, alpha=l2_scale)
        grads: list[torch.Tensor] | None = None
        gnorm = None
        norms: dict[int, torch.Tensor] | None = None
        if snap or cfg.clip_norm:
            grads = [p.grad for p in params if p.grad is not None]
            per = torch._foreach_norm(grads)
            norms = {id(t): n for t, n in zip(grads, per, strict=True)}
            gnorm = torch.linalg.vector_norm(torch.stack(per))
            finite = bool(torch.isfinite(loss) & torch.isfinite(gnorm))
        else:
            # Between snapshots a cheap check: NaN/inf anywhere in backward reaches the first
            # layer's gradient (it is computed last, from all the others), so the loss and
            # that one sum see every divergence. loss + 0 * sum is NaN exactly when either is
            # NaN/inf (0 * inf = NaN) and equals the loss otherwise: 2 ops and one sync.
            finite = math.isfinite(torch.add(loss.detach(), w0.grad.sum(), alpha=0).item())

        if not finite and taps is None:
            # Re-run this step with taps (weights unchanged) to see where it broke.
            out, taps = model(xb, taps=True)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grads = None
            norms = None
        progress.step(step, cfg.steps)
        if snap or not finite:
            if probe is not None:
                probe(model, taps)
            yield _snapshot(r, taps=taps, out=out, yb=yb, loss=loss, lr=lr, step=step,
                            finite=finite, grad_norms=norms)
            if not finite:
                return
        else:
            yield None
        if step == cfg.steps:
            return
        if plain_sgd and not (cfg.clip_value or cfg.clip_norm):
            # Plain SGD (no momentum, no decay): the update torch.optim.SGD(foreach=True)
            # makes, p -= lr * grad, without its per-call bookkeeping (about a sixth of a
            # 7 x 10 net's step on a CPU). Same op, same numbers, bit for bit
            # (tests/test_device_check.py).
            ps = [p for p in params if p.grad is not None]
            sgd_update(ps, [p.grad for p in ps], opt)
            continue
        if grads is None:
            grads = [p.grad for p in params if p.grad is not None]
        if cfg.clip_value:
            torch._foreach_clamp_min_(grads, -cfg.clip_value)
            torch._foreach_clamp_max_(grads, cfg.clip_value)
            if cfg.clip_norm:
                gnorm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if cfg.clip_norm:
            scale = (cfg.clip_norm / (gnorm + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(grads, scale)
        opt.step()


def _plain_sgd(opt: torch.optim.Optimizer) -> bool:
    """True for torch.optim.SGD with one group, no momentum, no weight decay, not
    maximising: its step is then exactly ``p -= lr * grad`` for every parameter."""
    if type(opt) is not torch.optim.SGD or len(opt.param_groups) != 1:
        return False
    g = opt.param_groups[0]
    return (g["momentum"] == 0 and g["weight_decay"] == 0 and not g["maximize"]
            and not g.get("nesterov") and not isinstance(g["lr"], torch.Tensor))


def sgd_update(params: list[torch.Tensor], grads: list[torch.Tensor],
               opt: torch.optim.Optimizer) -> None:
    """The step of a plain SGD optimiser (:func:`_plain_sgd` holds): ``p -= lr * grad``
    as the one foreach op torch.optim.SGD(foreach=True) runs, without its bookkeeping."""
    with torch.no_grad():
        torch._foreach_add_(params, grads, alpha=-opt.param_groups[0]["lr"])


def run(cfg: RunConfig, control: RunControl | None = None, *,
        probe: Probe | None = None) -> Iterator[Snapshot]:
    """Train cfg's network, yielding a Snapshot every ``every`` steps (and at step 0 and
    the last step): :func:`steps` without its Nones. Stops cleanly after a snapshot with
    ``diverged=True`` on NaN/inf."""
    for snap in steps(cfg, control, probe=probe):
        if snap is not None:
            yield snap


def due(last: int | None, step: int, every_n: int, final_step: int) -> bool:
    """A slow statistic (spectra, test metrics) is measured at the first snapshot, at the
    last step, and at the first snapshot of every block of ``every_n`` steps (0: always)."""
    if last is None or every_n == 0 or step == final_step:
        return True
    return step // every_n > last // every_n


def _snapshot(r: _Run, *, taps: Taps, out: torch.Tensor, yb: torch.Tensor,
              loss: torch.Tensor, lr: float, step: int, finite: bool,
              grad_norms: dict[int, torch.Tensor] | None) -> Snapshot:
    """Measure step ``step`` (after backward, before the update). Spectra and the test set
    follow their own cadences (``due``); on NaN/inf the test set is always evaluated."""
    cfg, model, spec = r.cfg, r.model, r.spec
    fresh = finite and due(spec.step, step, cfg.spectrum_every, cfg.steps)
    evaluate = not finite or due(r.last_eval, step, cfg.eval_every, cfg.steps)
    if evaluate:
        r.last_eval = step
    extra: dict[str, torch.Tensor] = {"loss": loss.detach()}
    if r.classification:
        extra["train_acc"] = (out.detach().argmax(1) == yb).float().mean()
    if evaluate and r.x_test.shape[0]:
        was_training = model.training
        if r.mode_matters:
            model.eval()
        with torch.no_grad():
            tout, _ = model(r.x_test)
            extra["test_loss"] = r.loss_fn(tout, r.y_test).detach()
            if r.classification:
                extra["test_acc"] = (tout.argmax(1) == r.y_test).float().mean()
        if r.mode_matters:
            model.train(was_training)
    jlog = None
    if fresh and cfg.jacobian and cfg.arch == "mlp":
        from core.spectrum import product_log_singular_values

        if r.mode_matters:
            model.eval()
        jlog = product_log_singular_values(model.jacobian_factors(r.jac_x))
        if r.mode_matters:
            model.train()
    m = measure(model, taps, cfg, lr, r.batch_size, extra, jlog, spectra=fresh,
                workspace=spec.workspace, grad_norms=grad_norms)
    v = m.values
    if fresh:
        spec.step = step
        spec.weights = [la.weight_singular_values for la in m.layers]
        spec.jlog = v.get("jlog")
    else:
        for la, sv in zip(m.layers, spec.weights, strict=False):
            la.weight_singular_values = sv
    diverged_layer = None if finite else _first_bad_layer(model, taps, loss)
    jl = spec.jlog if cfg.jacobian else None
    return Snapshot(
        step=step,
        loss=float(v["loss"]),
        train_accuracy=float(v["train_acc"]) if "train_acc" in v else None,
        test_accuracy=float(v["test_acc"]) if "test_acc" in v else None,
        test_loss=float(v["test_loss"]) if "test_loss" in v else None,
        layers=m.layers,
        elapsed_s=time.perf_counter() - r.t0,
        jacobian_log_singular_values=jl,
        jacobian_singular_values=None if jl is None else _exp(jl),
        spectrum_step=spec.step,
        time_grad_norms=v.get("time"),
        act_edges=r.act_edges, grad_edges=r.grad_edges,
        diverged=not finite,
        diverged_layer=diverged_layer,
        message=None if finite else
        f"NaN/inf at step {step}, first in {diverged_layer}: the run stopped; "
        f"the charts keep the last good values.",
    )


def _exp(logs: np.ndarray) -> np.ndarray:
    return np.exp(np.clip(logs, -745.0, 709.0))


def run_all(cfg: RunConfig) -> RunResult:
    """Run to the end and collect every snapshot (the CLI's and the tests' entry point)."""
    res = RunResult(config=cfg.to_dict(), device=str(resolve_device(cfg.device)))
    for s in run(cfg):
        res.snapshots.append(s)
        if s.diverged:
            res.diverged_at, res.diverged_layer = s.step, s.diverged_layer
    return res


__all__ = ["EVAL_MAX", "LossFn", "Probe", "RunControl", "due", "loss_function", "resolve_device",
           "run", "run_all", "steps"]
