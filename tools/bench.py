"""``make bench`` / ``gradlab bench [--quick] [--json PATH]`` / ``python -m tools.bench``: how
fast the engine trains and how smoothly the page follows it. Never run as a timed unit test.

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
- ``click_to_chart_s``: the median over 5 clicks of the seconds from a click on Play (from a
  reset, settled page) to the gradient bars' first redraw in Chromium.

Clock: step timings (ratios and ``deep_steps_per_s``) use the process's CPU time on a CPU
device, the wall clock on a GPU (tools/bench_steps.py); the other clock's figures are kept
under ``details``. The browser figures are always wall clock (what a viewer sees).

Extra keys: ``details`` (the raw medians, ms), ``sizes``, ``targets``, ``notes``, ``env``.
Environment: ``GRADLAB_BENCH_SCALE=tiny`` shrinks every size (for tests/test_bench.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.bench_browser import bench_browser, browser_ready
from tools.bench_steps import (
    ALL_STATS,
    CADENCES,
    Sizes,
    bench_deep,
    bench_device,
    bench_jacobian,
    bench_ratio,
    primary_clock,
    use_clock,
    use_device,
)

#: Goals, not floors (a miss is reported, never failed): key -> (comparison, value).
TARGETS: dict[str, tuple[str, float]] = {
    "instrumented_over_plain": ("<=", 1.5),
    "instrumented_over_plain_every10": ("<=", 1.10),
    "deep_steps_per_s": (">=", 5.0),
    "per_layer_time_ratio_1000_vs_10": ("<=", 1.2),
    "jacobian_over_step": ("<=", 5.0),
    "stream_over_headless": (">=", 0.9),
    "chart_mounts_per_panel": ("<=", 1.0),
    "click_to_chart_s": ("<=", 0.5),
}
#: Sections in their own modules (tools/bench_<topic>.py). Each defines ``KEYS`` (its numeric
#: keys, in table order), ``TARGETS`` (key -> (comparison, value), goals like the ones above)
#: and ``measure(sizes: Sizes) -> dict`` returning a value (or None) for every key in KEYS,
#: plus optional ``"details"`` (kept under details.<module>) and ``"notes"`` (key -> why).
SECTION_MODULES: tuple[str, ...] = ("tools.bench_phase", "tools.bench_bare", "tools.bench_shapeset",
                                    "tools.bench_repeat")
NUMERIC_KEYS = (
    "instrumented_over_plain", "instrumented_over_plain_every10",
    "instrumented_over_plain_all_stats", "deep_steps_per_s", "deep_over_plain",
    "per_layer_time_ratio_1000_vs_10", "jacobian_over_step",
    "stream_over_headless", "chart_mounts_per_panel", "snapshot_bytes", "click_to_chart_s",
)
def _sections() -> list[Any]:
    import importlib

    return [importlib.import_module(m) for m in SECTION_MODULES]


for _mod in _sections():
    TARGETS.update(_mod.TARGETS)
    NUMERIC_KEYS += tuple(k for k in _mod.KEYS if k not in NUMERIC_KEYS)
BROWSER_KEYS = ("stream_over_headless", "chart_mounts_per_panel", "snapshot_bytes",
                "click_to_chart_s")


# ---- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    """The figures of one run; :meth:`doc` is the JSON document."""

    values: dict[str, Any] = field(default_factory=lambda: {k: None for k in NUMERIC_KEYS})
    grid: dict[str, dict[str, float | None]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def doc(self, sizes: Sizes) -> dict[str, Any]:
        import torch


        d: dict[str, Any] = dict(self.values)
        d["instrumented_over_plain_grid"] = self.grid
        d["details"] = self.details
        d["notes"] = self.notes
        d["sizes"] = asdict(sizes)
        d["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
        d["env"] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "clock": primary_clock(),
                    "device": _device_name(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_avg": _loadavg()}
        return _clean(d)


def _device_name() -> str:
    """The device the steps ran on, with the GPU's name where there is one."""
    import torch

    dev = bench_device()
    if dev == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return dev


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


def main(quick: bool = False, json_path: str | None = None, device: str = "auto") -> int:
    """Run the suite on ``device`` (auto | cpu | cuda | mps); write the JSON document
    (``json_path``) and print a table. Exit 0 whenever it ran (targets are goals: misses
    are reported, not failed); 2 when the device asked for is absent."""
    import torch

    from core.train import resolve_device

    torch.set_num_threads(1)
    try:
        dev = use_device(device)
    except ValueError as e:
        print(f"gradlab bench: {e}", file=sys.stderr)
        return 2
    use_clock(resolve_device(dev))
    print(f"bench device: {_device_name()} (asked: {device})", flush=True)
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
                rep.notes[k] = f"not measured: {why}"
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
    for mod in _sections():
        def section(mod: Any = mod) -> None:
            r = mod.measure(sizes)
            for k in mod.KEYS:
                rep.values[k] = r.get(k)
            rep.notes.update(r.get("notes") or {})
            if "details" in r:
                rep.details[mod.__name__.rsplit(".", 1)[-1]] = r["details"]

        _attempt(rep, tuple(mod.KEYS), section)
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


def cli(argv: list[str] | None = None) -> int:
    """``python -m tools.bench [--quick] [--json PATH] [--device D]`` (``gradlab bench``)."""
    ap = argparse.ArgumentParser(prog="python -m tools.bench",
                                 description="The benchmark suite: speed figures as ratios.")
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes, fewer repetitions, no browser session")
    ap.add_argument("--json", metavar="PATH", help="also write the document here")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                    help="where the timed steps run (auto: cuda > mps > cpu); reported")
    a = ap.parse_args(argv)
    kw = {} if a.device == "auto" else {"device": a.device}
    return main(quick=a.quick, json_path=a.json, **kw)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
