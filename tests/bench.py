"""``make bench`` / ``gradlab bench [--quick] [--json PATH]``: how fast the engine trains and
how smoothly the page follows it (issue 7). Never run as a timed unit test.

Every figure is a *ratio taken within this one process*: the two sides are timed in
alternating blocks (A B B A A B ...), several repetitions, and the median of the per-rep
ratios is reported, so a machine that other processes share does not lie about it.

Keys of the JSON document (each a number, or null with a reason under ``notes``):

- ``instrumented_over_plain`` (every=1) / ``instrumented_over_plain_every10``: one step of
  ``core.train.run`` with a Snapshot every step / every 10 steps at the engine's default
  slow-statistic cadence (weight and Jacobian spectra every ``spectrum_every`` = 100 steps,
  carried forward in between; test metrics every ``eval_every`` = 10 steps), over one PLAIN
  PyTorch step of the same net
  (same initial weights, same data and batch size, same device): nn.Sequential of
  Linear+Tanh, cross-entropy, ``torch.optim.SGD`` -- written here, independent of core/.
  Depth 50, width 128, batch 256. ``instrumented_over_plain_grid``: the same for depth
  10/200 x width 32/512, {"d10_w32": {"every1": r, "every10": r}, ...}.
  ``instrumented_over_plain_all_stats``: every=1 with ``spectrum_every=0, eval_every=0``,
  i.e. every statistic (all spectra and the test set too) recomputed at every step.
- ``deep_steps_per_s``, ``deep_over_plain``: depth 1000, width 64, batch 64, every=10.
- ``per_layer_time_ratio_1000_vs_10``: (engine step time / depth) at depth 1000 over the
  same at depth 10 (width 64, batch 64, every=10).
- ``jacobian_over_step``: ``model.jacobian_factors(x)`` + ``spectrum.
  product_log_singular_values`` for depth 200 width 256, over one plain step (batch 64).
- ``stream_over_headless``, ``chart_mounts_per_panel``, ``snapshot_bytes``: the real app
  (``streamlit run app/main.py``) driven by Playwright + Debian Chromium: training steps/s
  read from the page's "Step" metric while it streams / steps/s of the same config run
  headless here; Plotly chart nodes mounted per panel in 10 s of streaming (1.0 = every
  update in place; counted by a MutationObserver in every frame); websocket bytes received
  per redraw (one redraw = one finished fragment run).

Clock: on a CPU device the step timings (ratios and ``deep_steps_per_s``) use the process's
CPU time (one torch thread: the step's own work, not the time spent waiting for a core that
another process holds); on a GPU the wall clock after a synchronize. The other clock's
figures are kept under ``details``; ``GRADLAB_BENCH_CLOCK=wall`` forces the wall clock.
The browser figures are always wall clock (that is what a viewer sees).

Extra keys: ``details`` (the raw medians, ms), ``sizes``, ``targets``, ``notes``, ``env``.
Environment: ``GRADLAB_BENCH_SCALE=tiny`` shrinks every size (for tests/test_bench.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCALE_ENV = "GRADLAB_BENCH_SCALE"
CLOCK_ENV = "GRADLAB_BENCH_CLOCK"       # "cpu" | "wall"; default: cpu on a CPU device

#: Step timings are (process CPU seconds, wall seconds) pairs. On a CPU device with one torch
#: thread the process's CPU time is the step's own work: it does not grow while the process
#: waits for a core that other processes hold, so ratios and steps/s stay honest on a
#: shared, noisy machine. On a GPU the wall clock (after a synchronize) is the truth.
CLOCKS = ("cpu", "wall")
_CLOCK = {"primary": "cpu"}


def _now() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _per(t0: tuple[float, float], n: int) -> tuple[float, float]:
    c, w = _now()
    return (c - t0[0]) / n, (w - t0[1]) / n


def _pick_clock(device) -> str:
    want = os.environ.get(CLOCK_ENV, "").strip().lower()
    return want if want in CLOCKS else ("cpu" if device.type == "cpu" else "wall")

#: The issue's goals (not floors): key -> (comparison, value).
TARGETS: dict[str, tuple[str, float]] = {
    "instrumented_over_plain": ("<=", 1.5),
    "instrumented_over_plain_every10": ("<=", 1.10),
    "deep_steps_per_s": (">=", 5.0),
    "per_layer_time_ratio_1000_vs_10": ("<=", 1.2),
    "jacobian_over_step": ("<=", 5.0),
    "stream_over_headless": (">=", 0.9),
    "chart_mounts_per_panel": ("<=", 1.0),
}
NUMERIC_KEYS = (
    "instrumented_over_plain", "instrumented_over_plain_every10",
    "instrumented_over_plain_all_stats", "deep_steps_per_s", "deep_over_plain",
    "per_layer_time_ratio_1000_vs_10", "jacobian_over_step",
    "stream_over_headless", "chart_mounts_per_panel", "snapshot_bytes",
)
BROWSER_KEYS = ("stream_over_headless", "chart_mounts_per_panel", "snapshot_bytes")


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


def _config(depth: int, width: int, batch: int, every: int, sizes: Sizes, **kw: Any):
    from core.config import RunConfig

    return RunConfig(depth=depth, width=width, batch_size=batch, every=every,
                     steps=1_000_000, dataset="spiral", n_train=max(sizes.n_train, batch),
                     activation="tanh", **kw)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


class PlainStep:
    """The reference: what anyone would write. nn.Sequential(Linear, Tanh, ..., Linear),
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
        layers: list[nn.Module] = []
        for lin in ref.hidden:
            layers += [nn.Linear(lin.in_features, lin.out_features), nn.Tanh()]
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


# ---- the live app ---------------------------------------------------------------------------

#: Injected into every frame (init script): counts elements that become ``.js-plotly-plot``
#: (a fresh chart mount); the same element updated in place (Plotly.react) is not counted.
_OBSERVER_JS = r"""
(() => {
  if (window.__glBench) return;
  const st = {mounts: 0, seen: new WeakSet()};
  window.__glBench = st;
  const look = (el) => {
    if (!(el instanceof Element)) return;
    const hits = el.matches('.js-plotly-plot') ? [el] : [];
    for (const e of el.querySelectorAll('.js-plotly-plot')) hits.push(e);
    for (const e of hits) if (!st.seen.has(e)) { st.seen.add(e); st.mounts += 1; }
  };
  const obs = new MutationObserver((muts) => {
    for (const m of muts) {
      if (m.type === 'attributes') look(m.target);
      else m.addedNodes.forEach(look);
    }
  });
  const start = () => obs.observe(document.documentElement,
      {childList: true, subtree: true, attributes: true, attributeFilter: ['class']});
  if (document.documentElement) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
"""

_COUNT_JS = """() => { const s = window.__glBench;
  return {mounts: s ? s.mounts : 0,
          present: document.querySelectorAll('.js-plotly-plot').length}; }"""

#: The playground's "Step" metric reads "1,234 / 1,000,000".
_STEP_JS = """() => {
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    const value = m.querySelector('[data-testid="stMetricValue"]');
    if (label && value && label.innerText.trim() === 'Step') return value.innerText;
  }
  return null; }"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(timeout: float = 60.0):
    """``streamlit run app/main.py`` on a free port; yields the base URL; stops the whole
    process group afterwards."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py",
           "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = tempfile.NamedTemporaryFile(prefix="gradlab-bench-server-", suffix=".log",
                                      delete=False)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}; log: {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer in {timeout:.0f} s; log: {log.name}")
            time.sleep(0.25)
        yield url
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def _headless_steps_per_s(cfg, seconds: float) -> tuple[int, float]:
    """Steps and seconds of ``core.train.run(cfg)`` run here for about ``seconds``."""
    from core.train import run

    gen = run(cfg)
    first = next(gen)
    t0, s0 = time.perf_counter(), first.step
    last = first
    for snap in gen:
        last = snap
        if time.perf_counter() - t0 >= seconds or snap.diverged:
            break
    gen.close()
    return last.step - s0, time.perf_counter() - t0


def _parse_step(text: str | None) -> int | None:
    if not text:
        return None
    m = re.match(r"\s*([\d,]+)", text)
    return int(m.group(1).replace(",", "")) if m else None


def browser_ready() -> str | None:
    """None when the live-app measurement can run, else the reason it cannot."""
    for rel in ("app/main.py", "app/views/playground.py"):
        if not (REPO_ROOT / rel).is_file():
            return f"{rel} does not exist yet"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def bench_browser(sizes: Sizes) -> dict[str, Any]:
    """Open the real playground, press Play, stream for ``stream_s`` and measure."""
    from playwright.sync_api import sync_playwright
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from core.config import RunConfig

    # The default page, but long enough never to finish inside the window.
    cfg = RunConfig(steps=1_000_000)
    query = cfg.to_query()
    half = sizes.headless_s / 2
    h_steps, h_secs = _headless_steps_per_s(cfg.replace(device="cpu"), half)

    ws = {"bytes": 0, "frames": 0, "redraws": 0, "full_runs": 0}
    frames_log = {"attached": 0, "detached": 0}

    def on_frame(payload) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        ws["bytes"] += len(data)
        ws["frames"] += 1
        if len(data) < 2048:                          # script_finished is a tiny message
            try:
                msg = ForwardMsg.FromString(data)
            except Exception:  # noqa: BLE001 - not a ForwardMsg
                return
            if msg.WhichOneof("type") == "script_finished":
                if msg.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    ws["redraws"] += 1
                elif msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                    ws["full_runs"] += 1

    out: dict[str, Any] = {}
    with _server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(_OBSERVER_JS)
            page = context.new_page()
            page.on("websocket", lambda w: w.on("framereceived", on_frame))
            page.on("frameattached", lambda f: frames_log.__setitem__(
                "attached", frames_log["attached"] + 1))
            page.on("framedetached", lambda f: frames_log.__setitem__(
                "detached", frames_log["detached"] + 1))
            page.goto(f"{url}/?{query}", wait_until="domcontentloaded", timeout=60_000)
            play = page.locator(".st-key-pg_play button").first   # (stale copy mid-rerun)
            play.wait_for(state="visible", timeout=60_000)
            page.wait_for_function("b => !b.disabled", arg=play.element_handle(),
                                   timeout=30_000)
            page.wait_for_timeout(1000)                 # let the first full run settle
            t_play = time.perf_counter()
            play.click()

            def counts() -> tuple[int, int]:
                mounts = present = 0
                for f in page.frames:
                    with contextlib.suppress(Exception):
                        c = f.evaluate(_COUNT_JS)
                        mounts += c["mounts"]
                        present += c["present"]
                return mounts, present

            def step_now() -> int | None:
                with contextlib.suppress(Exception):
                    return _parse_step(page.evaluate(_STEP_JS))
                return None

            # first chart after Play
            first_chart = None
            while time.perf_counter() - t_play < 30:
                if counts()[1] > 0:
                    first_chart = time.perf_counter() - t_play
                    break
                page.wait_for_timeout(100)
            if first_chart is None:
                raise RuntimeError("no Plotly chart appeared within 30 s of pressing Play")
            page.wait_for_timeout(1500)                 # every panel drawn at least once
            m0, p0 = counts()
            f0 = dict(frames_log)
            w0 = dict(ws)
            s0, t0 = step_now(), time.perf_counter()
            page.wait_for_timeout(int(sizes.mounts_s * 1000))
            m1, p1 = counts()
            f1 = dict(frames_log)
            page.wait_for_timeout(int(max(0.0, sizes.stream_s - sizes.mounts_s) * 1000))
            s1, t1 = step_now(), time.perf_counter()
            w1 = dict(ws)
            context.close()
        finally:
            browser.close()
    h2_steps, h2_secs = _headless_steps_per_s(cfg.replace(device="cpu"), half)
    headless = (h_steps + h2_steps) / (h_secs + h2_secs)
    if s0 is None or s1 is None:
        raise RuntimeError("could not read the 'Step' metric from the page")
    streaming = (s1 - s0) / (t1 - t0)
    # Frames that came and went inside the window took their charts with them: count each
    # as one more mount (a chart living in a component iframe that was re-created).
    gone = max(0, f1["detached"] - f0["detached"])
    mounts = (m1 - m0) + gone
    redraws = w1["redraws"] - w0["redraws"]
    out.update(
        stream_over_headless=streaming / headless if headless > 0 else None,
        chart_mounts_per_panel=(p0 + mounts) / p1 if p1 else None,
        snapshot_bytes=(w1["bytes"] - w0["bytes"]) / redraws if redraws else None,
        details={
            "first_chart_after_play_s": first_chart,
            "streaming_steps_per_s": streaming, "headless_steps_per_s": headless,
            "panels": p1, "mounts_in_window": mounts, "frames_detached": gone,
            "redraws": redraws, "redraws_per_s": redraws / (t1 - t0),
            "full_reruns": w1["full_runs"] - w0["full_runs"],
            "ws_bytes": w1["bytes"] - w0["bytes"], "ws_frames": w1["frames"] - w0["frames"],
            "ws_bytes_per_s": (w1["bytes"] - w0["bytes"]) / (t1 - t0),
            "window_s": t1 - t0, "config_query": query,
        },
    )
    return out


# ---- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    values: dict[str, Any] = field(default_factory=lambda: {k: None for k in NUMERIC_KEYS})
    grid: dict[str, dict[str, float | None]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def doc(self, sizes: Sizes) -> dict[str, Any]:
        import torch

        from core.train import resolve_device

        d: dict[str, Any] = dict(self.values)
        d["instrumented_over_plain_grid"] = self.grid
        d["details"] = self.details
        d["notes"] = self.notes
        d["sizes"] = asdict(sizes)
        d["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
        d["env"] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "clock": _CLOCK["primary"],
                    "device": str(resolve_device("auto")), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_avg": _loadavg()}
        return _clean(d)


def _loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, tuples -> lists, floats rounded to 4 significant-ish."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return round(x, 4) if math.isfinite(x) else None
    return x


def _status(key: str, v: float | None) -> str:
    if key not in TARGETS or v is None:
        return ""
    op, t = TARGETS[key]
    ok = v <= t if op == "<=" else v >= t
    return f"{op} {t:g}  {'ok' if ok else 'MISS'}"


def _table(doc: dict[str, Any]) -> str:
    rows = [f"{'key':34s} {'value':>10s}  target"]
    for k in NUMERIC_KEYS:
        v = doc.get(k)
        if k == "deep_steps_per_s":
            rows.append("instrumented_over_plain_grid")
            for cell, r in doc["instrumented_over_plain_grid"].items():
                for e, x in r.items():
                    rows.append(_row(f"  {cell} {e}", x, ""))
        rows.append(_row(k, v, _status(k, v)))
    for k, why in doc.get("notes", {}).items():
        rows.append(f"note {k}: {why}")
    return "\n".join(rows)


def _row(k: str, v: float | None, status: str) -> str:
    val = "null" if v is None else f"{v:10.3f}"
    return f"{k:34s} {val:>10s}  {status}"


def _attempt(report: Report, keys: tuple[str, ...], fn: Callable[[], None]) -> None:
    """Run one section; on failure its keys stay null with the reason in ``notes``."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - one broken section must not sink the others
        why = f"{type(e).__name__}: {e}"
        for k in keys:
            report.notes.setdefault(k, why[:500])


def main(quick: bool = False, json_path: str | None = None) -> int:
    """Run the suite; write the JSON document (``json_path``) and print a table. Exit 0
    whenever it ran (targets are goals: misses are reported, not failed)."""
    import torch

    from core.train import resolve_device

    torch.set_num_threads(1)
    _CLOCK["primary"] = _pick_clock(resolve_device("auto"))
    sizes = Sizes.pick(quick)
    rep = Report()
    t_start = time.perf_counter()

    def head() -> None:
        r = bench_ratio(*sizes.head, sizes, {**CADENCES, **ALL_STATS})
        rep.values["instrumented_over_plain"] = r["ratio"]["every1"]
        rep.values["instrumented_over_plain_every10"] = r["ratio"]["every10"]
        rep.values["instrumented_over_plain_all_stats"] = r["ratio"]["every1_all"]
        rep.details["head_ms"] = r["ms"]

    def grid() -> None:
        for d in sizes.grid_depths:
            for w in sizes.grid_widths:
                cell = f"d{d}_w{w}"
                try:
                    r = bench_ratio(d, w, sizes.grid_batch, sizes)
                    rep.grid[cell] = {"every1": r["ratio"]["every1"],
                                      "every10": r["ratio"]["every10"]}
                    rep.details[f"grid_ms_{cell}"] = r["ms"]
                except Exception as e:  # noqa: BLE001
                    rep.grid[cell] = {"every1": None, "every10": None}
                    rep.notes[f"grid {cell}"] = f"{type(e).__name__}: {e}"[:500]

    def deep() -> None:
        r = bench_deep(sizes)
        for k in ("deep_steps_per_s", "deep_over_plain", "per_layer_time_ratio_1000_vs_10"):
            rep.values[k] = r[k]
        rep.details["deep_ms"] = r["ms"]

    def jacobian() -> None:
        if not (REPO_ROOT / "core" / "spectrum.py").is_file():
            raise FileNotFoundError("core/spectrum.py does not exist yet")
        r = bench_jacobian(sizes)
        rep.values["jacobian_over_step"] = r["jacobian_over_step"]
        rep.details["jacobian_ms"] = r["ms"]

    def browser() -> None:
        if not sizes.browser:
            for k in BROWSER_KEYS:
                rep.notes[k] = "skipped: --quick (and tiny) runs leave out the browser session"
            return
        why = browser_ready()
        if why:
            for k in BROWSER_KEYS:
                rep.notes[k] = f"app not ready: {why}"
            return
        r = bench_browser(sizes)
        for k in BROWSER_KEYS:
            rep.values[k] = r[k]
            if r[k] is None:
                rep.notes[k] = "the page gave nothing to measure (see details.browser)"
        rep.details["browser"] = r["details"]

    _attempt(rep, ("instrumented_over_plain", "instrumented_over_plain_every10",
                   "instrumented_over_plain_all_stats"), head)
    _attempt(rep, ("instrumented_over_plain_grid",), grid)
    _attempt(rep, ("deep_steps_per_s", "deep_over_plain", "per_layer_time_ratio_1000_vs_10"),
             deep)
    _attempt(rep, ("jacobian_over_step",), jacobian)
    _attempt(rep, BROWSER_KEYS, browser)
    rep.details["bench_s"] = time.perf_counter() - t_start

    doc = rep.doc(sizes)
    text = json.dumps(doc, indent=2, allow_nan=False)
    if json_path:
        Path(json_path).write_text(text + "\n", encoding="utf-8")
    print(_table(doc))
    print(f"(bench took {doc['details']['bench_s']:.1f} s"
          + (f"; JSON written to {json_path})" if json_path else ")"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    sys.exit(main(quick=a.quick, json_path=a.json))
