"""The bench's timed parts: a plain PyTorch step and the engine's step, timed in
alternating blocks on one clock, and the three engine sections (ratio, deep, Jacobian).

Clock: on a CPU device the step timings use the process's CPU time (one torch thread: the
step's own work, not the time spent waiting for a core another process holds); on a GPU the
wall clock after a synchronize. ``GRADLAB_BENCH_CLOCK=wall`` forces the wall clock.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCALE_ENV = "GRADLAB_BENCH_SCALE"       # "tiny": every size shrunk (tests/test_bench.py)
CLOCK_ENV = "GRADLAB_BENCH_CLOCK"       # "cpu" | "wall"; default: cpu on a CPU device

CLOCKS = ("cpu", "wall")                # a timing is a (process CPU, wall) seconds pair
_CLOCK = {"primary": "cpu"}             # the clock ratios are taken on: see use_clock()


def _now() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _per(t0: tuple[float, float], n: int) -> tuple[float, float]:
    c, w = _now()
    return (c - t0[0]) / n, (w - t0[1]) / n


def use_clock(device: Any) -> str:
    """Take ratios on the CPU clock on a CPU device, else the wall clock (or CLOCK_ENV's)."""
    want = os.environ.get(CLOCK_ENV, "").strip().lower()
    _CLOCK["primary"] = want if want in CLOCKS else ("cpu" if device.type == "cpu" else "wall")
    return _CLOCK["primary"]


def primary_clock() -> str:
    """The clock of the reported ratios and step times: "cpu" or "wall"."""
    return _CLOCK["primary"]


@dataclass
class Sizes:
    """Every size and repetition count of one bench run (written to the JSON)."""

    head: tuple[int, int, int] = (50, 128, 256)          # depth, width, batch
    grid_depths: tuple[int, ...] = (10, 200)
    grid_widths: tuple[int, ...] = (32, 512)
    grid_batch: int = 256
    deep: tuple[int, int, int] = (1000, 64, 64)
    shallow_depth: int = 10                              # per-layer ratio: depth 1000 vs this
    jac: tuple[int, int, int] = (200, 256, 64)           # depth, width, plain-step batch
    reps: int = 5                                        # interleaved repetitions (median)
    block_s: float = 0.25                                # target seconds of one timed block
    cell_budget_s: float = 30.0                          # stop adding reps to a cell after this
    browser: bool = True
    stream_s: float = 20.0                               # browser session after the first chart
    mounts_s: float = 10.0                               # mount counting window (within it)
    headless_s: float = 8.0                              # headless reference, split before/after
    n_train: int = 1000

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        scale = os.environ.get(SCALE_ENV, "").strip().lower()
        if scale == "tiny":
            return cls(head=(3, 8, 16), grid_depths=(2,), grid_widths=(4, 8), grid_batch=16,
                       deep=(12, 8, 16), shallow_depth=2, jac=(6, 8, 16), reps=1,
                       block_s=0.005, cell_budget_s=2.0, browser=False, n_train=64)
        if quick:
            return cls(grid_depths=(10,), grid_widths=(32,), deep=(1000, 64, 64), reps=3,
                       block_s=0.1, cell_budget_s=6.0, browser=False)
        return cls()


# ---- the two kinds of step ---------------------------------------------------------------


#: The device every timed step runs on: "auto" (cuda > mps > cpu) unless ``make bench
#: --device`` says otherwise (set once by tools.bench.main through :func:`use_device`).
_DEVICE = {"name": "auto"}


def use_device(name: str) -> str:
    """Run every bench step on ``name`` (auto | cpu | cuda | mps); returns the resolved
    device ("cpu", "cuda", ...). A forced device that is absent raises ValueError."""
    from core.train import resolve_device

    dev = resolve_device(name)
    _DEVICE["name"] = dev.type
    return dev.type


def bench_device() -> str:
    """The device the bench steps run on (after :func:`use_device`; "auto" before)."""
    return _DEVICE["name"]


def _config(depth: int, width: int, batch: int, every: int, sizes: Sizes, **kw: Any):
    from core.config import RunConfig

    kw.setdefault("activation", "tanh")
    kw.setdefault("device", _DEVICE["name"])
    return RunConfig(depth=depth, width=width, batch_size=batch, every=every,
                     steps=1_000_000, dataset="spiral", n_train=max(sizes.n_train, batch),
                     **kw)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


class PlainStep:
    """The reference: what anyone would write. nn.Sequential(Linear, Tanh, ..., Linear)
    (Sigmoid / ReLU where cfg.activation says so),
    cross-entropy, torch.optim.SGD (PyTorch's defaults), zero_grad (set_to_none), backward,
    step. Initial weights copied from the engine's own ``build`` for the same config, so
    both start from the same net; same data tensors, same batch size, same device."""

    def __init__(self, cfg) -> None:
        import torch
        from torch import nn

        from core import data as data_mod
        from core.models import build
        from core.train import resolve_device

        self.device = resolve_device(cfg.device)
        ds = data_mod.load(cfg, self.device)
        ref = build(cfg, ds.n_in, ds.n_out, torch.Generator().manual_seed(cfg.seed))
        act = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}[cfg.activation]
        layers: list[nn.Module] = []
        for lin in ref.hidden:
            layers += [nn.Linear(lin.in_features, lin.out_features), act()]
        layers.append(nn.Linear(ref.out.in_features, ref.out.out_features))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            lins = [m for m in self.net if isinstance(m, nn.Linear)]
            for mine, theirs in zip(lins, list(ref.hidden) + [ref.out], strict=True):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
        self.net.to(self.device)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=cfg.lr)
        self.loss_fn = nn.CrossEntropyLoss()
        self.x, self.y = ds.x_train, ds.y_train
        self.bs = cfg.batch_size
        self.g = torch.Generator().manual_seed(cfg.seed + 1)
        self.perm = None
        self.pos = self.x.shape[0]
        self.block(2)                                   # warm up (allocator, kernels)

    def _batch(self):
        import torch

        n = self.x.shape[0]
        if self.pos + self.bs > n:
            self.perm = torch.randperm(n, generator=self.g).to(self.device)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.bs]
        self.pos += self.bs
        return self.x[idx], self.y[idx]

    def step(self) -> None:
        xb, yb = self._batch()
        self.opt.zero_grad()
        loss = self.loss_fn(self.net(xb), yb)
        loss.backward()
        self.opt.step()

    def block(self, n_steps: int) -> tuple[float, float]:
        """Run n steps; (CPU, wall) seconds per step."""
        _sync(self.device)
        t = _now()
        for _ in range(n_steps):
            self.step()
        _sync(self.device)
        return _per(t, n_steps)


class EngineStep:
    """``core.train.run(cfg)`` consumed like the app does: one ``next()`` = ``every`` full
    steps (the optimiser step of the previous snapshot's step, ``every`` forward/backward
    passes, one Snapshot with every statistic)."""

    def __init__(self, cfg) -> None:
        from core.train import resolve_device

        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.restarts = 0
        self._start()
        self.block(1)                                   # warm up past the first snapshot

    def _start(self) -> None:
        from core.train import run

        self.gen = run(self.cfg)
        next(self.gen)                                  # step 0 (no update before it)

    def block(self, n_snapshots: int) -> tuple[float, float]:
        """Run n snapshot periods; (CPU, wall) seconds per training step."""
        while True:
            t = _now()
            try:
                for _ in range(n_snapshots):
                    s = next(self.gen)
                    if s.diverged:
                        raise StopIteration
            except StopIteration:                       # diverged / ended: time again
                self.restarts += 1
                if self.restarts > 3:
                    raise RuntimeError(
                        f"the run keeps diverging: {self.cfg.to_query()}") from None
                self._start()
                continue
            _sync(self.device)
            return _per(t, n_snapshots * self.cfg.every)


class EngineSteps:
    """``core.train.steps(cfg)`` one optimiser step per ``next()``: the engine's own step,
    with a Snapshot wherever cfg's cadence puts one (``every``, ``spectrum_every``,
    ``eval_every``). With every = 100000 it is the uninstrumented step (one snapshot per
    100000 steps)."""

    def __init__(self, cfg) -> None:
        from core.train import resolve_device

        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.restarts = 0
        self._start()
        self.block(2 * cfg.every if cfg.every < 1000 else 20)      # warm up

    def _start(self) -> None:
        from core.train import steps

        self.gen = steps(self.cfg)
        next(self.gen)                                  # step 0 (no update before it)

    def block(self, n_steps: int) -> tuple[float, float]:
        """Run n optimiser steps; (CPU, wall) seconds per step."""
        while True:
            _sync(self.device)
            t = _now()
            try:
                for _ in range(n_steps):
                    s = next(self.gen)
                    if s is not None and s.diverged:
                        raise StopIteration
            except StopIteration:
                self.restarts += 1
                if self.restarts > 3:
                    raise RuntimeError(
                        f"the run keeps diverging: {self.cfg.to_query()}") from None
                self._start()
                continue
            _sync(self.device)
            return _per(t, n_steps)


#: The AIVN demo's net: 7 hidden sigmoid layers of width 10, batch 32, SGD lr 0.1, on the
#: spiral data (2 inputs), compared with a bare nn.Sequential loop of the same net.
BARE_SHAPE = {"depth": 7, "width": 10, "batch": 32, "activation": "sigmoid"}


def bench_bare(sizes: Sizes) -> dict[str, Any]:
    """Our uninstrumented step and our step instrumented at the UI cadence (every=10,
    spectrum_every=100, eval_every=10) over a bare nn.Sequential + SGD loop of the same net,
    same data, same batch, same device: ``plain_over_bare``, ``instrumented_over_bare``."""
    d, w, b, act = (BARE_SHAPE[k] for k in ("depth", "width", "batch", "activation"))
    bare = PlainStep(_config(d, w, b, 1, sizes, activation=act))
    plain = EngineSteps(_config(d, w, b, 100_000, sizes, activation=act))
    instr = EngineSteps(_config(d, w, b, 10, sizes, activation=act,
                                spectrum_every=100, eval_every=10))
    t = bare.block(20)[1]
    n = 10 * max(1, _n_for(t * 10, sizes.block_s, hi=100))      # whole snapshot periods
    res = _interleave({"bare": lambda: bare.block(n), "plain": lambda: plain.block(n),
                       "instrumented": lambda: instr.block(n)},
                      {"plain": ("plain", "bare"), "instrumented": ("instrumented", "bare")},
                      max(sizes.reps, 5), sizes.cell_budget_s)
    return {"plain_over_bare": res.ratios["plain"],
            "instrumented_over_bare": res.ratios["instrumented"],
            "bare_steps_per_s": 1.0 / res.times["bare"],
            "ms": res.ms(), "steps_per_block": n,
            "restarts": plain.restarts + instr.restarts}


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


Timing = tuple[float, float]          # (CPU, wall) seconds


@dataclass
class Interleaved:
    """Medians over the reps of one interleaved measurement, for the primary clock (and
    the other one, kept for the details)."""

    times: dict[str, float]                  # block -> median seconds per step (primary)
    ratios: dict[str, float]                 # numerator -> median of per-rep ratios (primary)
    other: dict[str, dict[str, float]]       # the other clock: {"times": ..., "ratios": ...}
    reps: int

    def ms(self) -> dict[str, Any]:
        other = _CLOCKS_OTHER[_CLOCK["primary"]]
        return {**{k: v * 1e3 for k, v in self.times.items()},
                f"{other}_clock": {k: v * 1e3 for k, v in self.other["times"].items()},
                f"{other}_clock_ratios": self.other["ratios"], "reps": self.reps}


_CLOCKS_OTHER = {"cpu": "wall", "wall": "cpu"}


def _interleave(blocks: dict[str, Callable[[], Timing]], pairs: dict[str, tuple[str, str]],
                reps: int, budget_s: float) -> Interleaved:
    """Run every block once per rep (rotating and alternating the order), at least 2 reps,
    at most ``reps``, fewer once ``budget_s`` of wall time is spent. ``pairs``: label ->
    (numerator block, denominator block); each ratio is taken per rep, then the median."""
    names = list(blocks)
    idx = CLOCKS.index(_CLOCK["primary"])
    times: dict[str, list[Timing]] = {k: [] for k in names}
    t0 = time.perf_counter()
    n = 0
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        if r % 2:
            order.reverse()
        for k in order:
            times[k].append(blocks[k]())
        n = r + 1
        if r >= 1 and time.perf_counter() - t0 > budget_s:
            break

    def summary(i: int) -> tuple[dict[str, float], dict[str, float]]:
        med = {k: _median([t[i] for t in v]) for k, v in times.items()}
        rat = {lab: _median([a[i] / b[i] for a, b in zip(times[num], times[den], strict=True)
                             if b[i] > 0]) for lab, (num, den) in pairs.items()}
        return med, rat

    med, rat = summary(idx)
    omed, orat = summary(1 - idx)
    return Interleaved(med, rat, {"times": omed, "ratios": orat}, n)


def _n_for(seconds_per_step: float, target_s: float, lo: int = 1, hi: int = 200) -> int:
    return int(min(hi, max(lo, round(target_s / max(seconds_per_step, 1e-6)))))


#: Snapshot cadences timed by bench_ratio: name -> (every, extra RunConfig fields). "every1"
#: and "every10" keep the engine's default slow-statistic cadence (weight/Jacobian spectra
#: every ``spectrum_every`` = 100 steps, test metrics every ``eval_every`` = 10 steps);
#: "every1_all" recomputes every statistic, spectra and test metrics included, every step.
CADENCES: dict[str, tuple[int, dict[str, Any]]] = {
    "every1": (1, {}), "every10": (10, {}),
}
ALL_STATS = {"every1_all": (1, {"spectrum_every": 0, "eval_every": 0})}


def bench_ratio(depth: int, width: int, batch: int, sizes: Sizes,
                cadences: dict[str, tuple[int, dict[str, Any]]] | None = None
                ) -> dict[str, Any]:
    """instrumented / plain step time for each snapshot cadence in ``cadences``."""
    cadences = cadences or CADENCES
    plain = PlainStep(_config(depth, width, batch, 1, sizes))
    t_plain = plain.block(3)[1]
    engines = {name: (e, EngineStep(_config(depth, width, batch, e, sizes, **kw)))
               for name, (e, kw) in cadences.items()}
    blocks: dict[str, Callable[[], Timing]] = {}
    pairs: dict[str, tuple[str, str]] = {}
    for name, (e, eng) in engines.items():
        n_snap = max(1, _n_for(t_plain * e, sizes.block_s, hi=50))
        blocks[name] = lambda eng=eng, n=n_snap: eng.block(n)
        blocks[f"plain_{name}"] = lambda n=n_snap * e: plain.block(n)
        pairs[name] = (name, f"plain_{name}")
    res = _interleave(blocks, pairs, sizes.reps, sizes.cell_budget_s)
    return {
        "ratio": {name: res.ratios[name] for name in cadences},
        "ms": res.ms(),
        "restarts": sum(eng.restarts for _, eng in engines.values()),
    }


def bench_deep(sizes: Sizes) -> dict[str, Any]:
    """Steps/s at depth 1000, its ratio to a plain step, and per-layer time vs depth 10."""
    d, w, b = sizes.deep
    deep_plain = PlainStep(_config(d, w, b, 1, sizes))
    deep_eng = EngineStep(_config(d, w, b, 10, sizes))
    shallow_eng = EngineStep(_config(sizes.shallow_depth, w, b, 10, sizes))
    t_plain = deep_plain.block(1)[1]
    t_shallow = shallow_eng.block(1)[1]
    n_deep = max(1, _n_for(t_plain * 10, sizes.block_s * 4, hi=5))
    n_shallow = max(1, _n_for(t_shallow * 10, sizes.block_s, hi=50))
    blocks = {
        "deep_engine": lambda: deep_eng.block(n_deep),
        "deep_plain": lambda: deep_plain.block(10 * n_deep),
        "shallow_engine": lambda: shallow_eng.block(n_shallow),
    }
    res = _interleave(blocks, {"deep": ("deep_engine", "deep_plain"),
                               "deep_vs_shallow": ("deep_engine", "shallow_engine")},
                      sizes.reps, sizes.cell_budget_s * 2)
    return {
        "deep_steps_per_s": 1.0 / res.times["deep_engine"],
        "deep_over_plain": res.ratios["deep"],
        # (t_deep / depth) / (t_shallow / shallow depth), hidden layers counted
        "per_layer_time_ratio_1000_vs_10": res.ratios["deep_vs_shallow"] * sizes.shallow_depth / d,
        "ms": res.ms(),
    }


def bench_jacobian(sizes: Sizes) -> dict[str, Any]:
    """The input-output Jacobian's spectrum over one plain step of the same net."""
    import torch

    from core import data as data_mod
    from core.models import build
    from core.spectrum import product_log_singular_values

    d, w, b = sizes.jac
    cfg = _config(d, w, b, 10, sizes)
    plain = PlainStep(cfg)
    ds = data_mod.load(cfg, plain.device)
    model = build(cfg, ds.n_in, ds.n_out, torch.Generator().manual_seed(cfg.seed))
    model.to(plain.device).eval()
    x = ds.x_test[0]
    split: dict[str, list[float]] = {"factors": [], "spectrum": []}

    idx = CLOCKS.index(_CLOCK["primary"])

    def jac() -> Timing:
        _sync(plain.device)
        t = _now()
        facs = model.jacobian_factors(x)
        _sync(plain.device)
        t1 = _now()
        out = product_log_singular_values(facs)
        _ = out.cpu() if isinstance(out, torch.Tensor) else out
        t2 = _now()
        split["factors"].append(t1[idx] - t[idx])
        split["spectrum"].append(t2[idx] - t1[idx])
        return t2[0] - t[0], t2[1] - t[1]

    jac()                                                       # warm up
    t_plain = plain.block(2)[1]
    n = _n_for(t_plain, sizes.block_s * 2, hi=20)
    res = _interleave({"jacobian": jac, "plain": lambda: plain.block(n)},
                      {"jacobian": ("jacobian", "plain")}, sizes.reps, sizes.cell_budget_s)
    return {
        "jacobian_over_step": res.ratios["jacobian"],
        "ms": {**res.ms(), "jacobian_factors": _median(split["factors"]) * 1e3,
               "product_log_singular_values": _median(split["spectrum"]) * 1e3},
    }


