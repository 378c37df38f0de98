"""The device check (issue 21): ``python3 -m tools.gpu_check [--device cuda|cpu|auto]``.

Prepared to run once on a bare GPU machine whose ``python3`` has torch, numpy and pytest
(no network, no streamlit or plotly needed), in under 8 minutes (``tools/gpu_check.sh``
wraps it in ``timeout``). It writes ONE JSON document: ``$OUT/gpu_check.json`` when ``$OUT``
is set, else ``--out`` (default ``gpu_check.json``), rewritten after every section so a
run cut short still leaves what it measured. Sections (each may be ``{"skipped": why}`` or
``{"error": why}``; the others still run):

- ``tests``: the core tests (tests/test_core.py, tests/test_core_formulas.py,
  tests/test_device_check.py, tests/test_overhead_probes.py) with ``--device D``: counts
  and the failing test ids. On a GPU machine ``device="auto"`` configs already pick cuda,
  so every core test runs there.
- ``agreement``: the same configs on the device and on the CPU: the first snapshot's
  ``delta_norm`` per layer (max relative difference, tolerance ``TOL``), the Jacobian's log
  singular values (max absolute difference, nats) and the loss after 20 SGD steps.
- ``speed``: steps/s of the engine's step on the device and on the CPU (one torch thread,
  as a hosted executor runs), for the default config, depth 1000 and two wide configs,
  instrumentation off (``every`` = 100000) and on (the page's cadence: a snapshot every 10
  steps, test metrics every 10, spectra every 100).
- ``bare``: ``make bench``'s bare section on the device: the engine's step against a bare
  ``nn.Sequential`` + SGD loop of the AIVN demo's 7 x 10 sigmoid net (batch 32),
  uninstrumented (``plain_over_bare``) and at the page's cadence
  (``instrumented_over_bare``), on the wall clock on a GPU, the CPU clock on a CPU.
- ``capture``: on CUDA only, the small net's plain step (forward, loss, backward, SGD
  update, the per-step NaN check) captured in a CUDA graph and replayed, against the
  engine's own step: the gain and whether the captured step reproduces the engine's numbers.
- ``concurrency``: k processes training the default config at the page's cadence at once on
  one device (as the hosted executors drive them), k = 1, 2, 4, ...: each one's steps/s, and
  ``runs_per_device``: the largest k at which every run still gets >= 100 steps/s.

``--quick`` shrinks every size (depth 1000 -> 100, width 1024 -> 128, shorter timings,
k <= 2): what tests/test_device_check.py runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOTAL_BUDGET_S = 450.0          # the whole check; gpu_check.sh kills it at 470 s
QUICK_BUDGET_S = 300.0         # --quick: a CPU test run, on a box others may load
#: Stated tolerances of device-vs-CPU agreement (float32 kernels differ in summation order).
TOL = {
    "delta_norm_rel": 1e-4,         # first snapshot, every layer
    "jacobian_log_sv_abs": 1e-6,    # nats; the spectrum is computed in float64
    "loss_after_20_steps_rel": 1e-3,
}
MIN_STEPS_PER_S = 100.0             # what one live run needs on the page
TEST_FILES = ("tests/test_core.py", "tests/test_core_formulas.py",
              "tests/test_device_check.py", "tests/test_overhead_probes.py")

#: Config fields of the timed shapes (on top of RunConfig's defaults: tanh 6 x 64, batch 64,
#: spiral data). quick: the smaller stand-ins used on CPU.
SPEED_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "depth1000": {"depth": 1000, "width": 64, "batch_size": 64},
    "wide_d10_w1024": {"depth": 10, "width": 1024, "batch_size": 256},
    "wide_d50_w512": {"depth": 50, "width": 512, "batch_size": 256},
}
QUICK_SPEED_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "depth1000": {"depth": 100, "width": 64, "batch_size": 64},
    "wide_d10_w1024": {"depth": 10, "width": 128, "batch_size": 128},
}
AGREE_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "sigmoid_deep": {"depth": 20, "width": 64, "activation": "sigmoid"},
    "relu_he_50": {"depth": 50, "width": 128, "activation": "relu", "init": "he"},
}
INSTRUMENTATION = {"off": {"every": 100_000},
                   "on": {"every": 10, "spectrum_every": 100, "eval_every": 10}}


def _cfg(device: str, **kw: Any):
    from core.config import RunConfig

    base: dict[str, Any] = {"steps": 1_000_000, "device": device}
    base.update(kw)
    return RunConfig(**base)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


# ---- sections ---------------------------------------------------------------------------


def check_tests(device: str, budget_s: float) -> dict[str, Any]:
    """Run the core tests on ``device`` in a child pytest; counts and failing ids."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={xml}", "--device", device, "-k", "not gpu_check_quick",
               *TEST_FILES]
        env = {**os.environ, "GRADLAB_TEST_DEVICE": device, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=max(10.0, budget_s))
        except subprocess.TimeoutExpired as e:
            return {"error": f"pytest ran past {budget_s:.0f} s", "files": list(TEST_FILES),
                    "before_the_cut": progress_counts(e.stdout)}
        res: dict[str, Any] = {"files": list(TEST_FILES), "exit_code": proc.returncode,
                               "seconds": round(time.perf_counter() - t0, 1)}
        if not xml.is_file():
            res["error"] = (proc.stdout + proc.stderr)[-2000:]
            return res
        root = ET.parse(xml).getroot()
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for k in ("tests", "failures", "errors", "skipped"):
            res[k] = sum(int(s.get(k, 0)) for s in suites)
        res["passed"] = res["tests"] - res["failures"] - res["errors"] - res["skipped"]
        res["failed_ids"] = [f"{c.get('classname')}::{c.get('name')}"
                             for c in root.iter("testcase")
                             if c.find("failure") is not None or c.find("error") is not None][:30]
        res["ok"] = proc.returncode == 0
        return res


def progress_counts(out: str | bytes | None) -> dict[str, int]:
    """Outcomes so far from ``pytest -q``'s progress characters (. F E s x X), for a run
    cut short before it wrote its junit XML."""
    text = out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
    heads = (line.split(" [")[0].strip() for line in text.splitlines())
    marks = "".join(h for h in heads if h and set(h) <= set(".FEsxX"))
    return {"passed": marks.count("."), "failed": marks.count("F"),
            "errors": marks.count("E"), "skipped": marks.count("s"),
            "xfailed": marks.count("x"), "xpassed": marks.count("X")}


def _first_snapshot(device: str, kw: dict[str, Any], steps: int = 0):
    from core.train import run_all

    res = run_all(_cfg(device, **{**kw, "steps": steps, "every": max(1, steps),
                                  "jacobian": True}))
    return res.snapshots


def compare(device: str, kw: dict[str, Any]) -> dict[str, Any]:
    """``kw``'s config on ``device`` against the CPU: the differences and whether each is
    within ``TOL``."""
    import numpy as np

    a, b = _first_snapshot(device, kw)[0], _first_snapshot("cpu", kw)[0]
    da = np.array([la.delta_norm for la in a.layers])
    db = np.array([la.delta_norm for la in b.layers])
    rel = float(np.max(np.abs(da - db) / np.maximum(np.abs(db), 1e-30)))
    ja, jb = a.jacobian_log_singular_values, b.jacobian_log_singular_values
    jac = float(np.max(np.abs(np.asarray(ja) - np.asarray(jb)))) if ja is not None else None
    la_, lb_ = _first_snapshot(device, kw, 20)[-1].loss, _first_snapshot("cpu", kw, 20)[-1].loss
    loss_rel = abs(la_ - lb_) / max(abs(lb_), 1e-30)
    ok = (rel <= TOL["delta_norm_rel"] and (jac is None or jac <= TOL["jacobian_log_sv_abs"])
          and loss_rel <= TOL["loss_after_20_steps_rel"])
    return {"delta_norm_max_rel_diff": rel, "jacobian_log_sv_max_abs_diff": jac,
            "loss_after_20_steps_rel_diff": loss_rel, "first_delta_norm_device": da.tolist(),
            "ok": bool(ok)}


def check_agreement(device: str, quick: bool) -> dict[str, Any]:
    cfgs = dict(list(AGREE_CONFIGS.items())[:2]) if quick else AGREE_CONFIGS
    res: dict[str, Any] = {"tolerances": TOL, "configs": {}}
    for name, kw in cfgs.items():
        res["configs"][name] = {"fields": kw, **compare(device, kw)}
    res["ok"] = all(c["ok"] for c in res["configs"].values())
    return res


def steps_per_s(device: str, kw: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The engine's step on ``device``: steps/s on the wall clock over ~``seconds``."""
    from tools.bench_steps import EngineSteps

    eng = EngineSteps(_cfg(device, **kw))
    n = 10
    while True:                                     # grow the block to ~seconds / 3
        wall = eng.block(n)[1]
        if wall * n >= seconds / 3 or n >= 100_000:
            break
        n = int(min(100_000, max(n * 2, 10 * math.ceil(seconds / 3 / max(wall, 1e-7) / 10))))
    walls = [eng.block(n)[1] for _ in range(3)]
    walls.sort()
    return {"steps_per_s": 1.0 / walls[1], "steps_timed": 3 * n}


def check_speed(device: str, quick: bool, deadline: float) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    cfgs = QUICK_SPEED_CONFIGS if quick else SPEED_CONFIGS
    secs = 0.3 if quick else 2.0
    devices = [device] if device == "cpu" else [device, "cpu"]
    res: dict[str, Any] = {"cpu_threads": 1, "configs": {}, "skipped_cells": []}
    for name, kw in cfgs.items():
        row: dict[str, Any] = {"fields": kw}
        for inst, ikw in INSTRUMENTATION.items():
            for dev in devices:
                key = f"{dev}_{inst}"
                if time.perf_counter() > deadline:
                    res["skipped_cells"].append(f"{name}/{key}: out of time")
                    continue
                try:
                    row[key] = steps_per_s(dev, {**kw, **ikw}, secs)["steps_per_s"]
                except Exception as e:  # noqa: BLE001 - one cell must not sink the others
                    row[key] = None
                    row[f"{key}_error"] = f"{type(e).__name__}: {e}"[:300]
            if device != "cpu" and row.get(f"{device}_{inst}") and row.get(f"cpu_{inst}"):
                row[f"device_over_cpu_{inst}"] = row[f"{device}_{inst}"] / row[f"cpu_{inst}"]
        res["configs"][name] = row
    return res


def check_bare(device: str, quick: bool) -> dict[str, Any]:
    """tools/bench_bare's figures on ``device`` (one torch thread, the bench's clock)."""
    import torch

    from core.train import resolve_device
    from tools import bench_bare
    from tools.bench_steps import Sizes, use_clock, use_device

    torch.set_num_threads(1)
    use_device(device)
    clock = use_clock(resolve_device(device))
    try:
        r = bench_bare.measure(Sizes.pick(quick))
    finally:
        use_device("auto")
    return {"clock": clock, "targets": {k: f"{op} {v}" for k, (op, v)
                                        in bench_bare.TARGETS.items()}, **r}


def check_capture(device: str, quick: bool) -> dict[str, Any]:
    """The default config's plain step captured in a CUDA graph, against the engine."""
    if device != "cuda":
        return {"skipped": "CUDA graphs need a CUDA device; the engine's uncaptured step is "
                           "the default there"}
    import torch

    from core.train import _start
    from tools.bench_steps import EngineSteps

    kw = {"every": 100_000}
    cfg = _cfg("cuda", **kw)
    r = _start(cfg)
    model, params, loss_fn, lr = r.model, r.params, r.loss_fn, cfg.lr
    x, y, bs = r.ds.x_train, r.ds.y_train, r.batch_size
    w0 = r.weights[0]
    sx, sy = x[:bs].clone(), y[:bs].clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):                   # warm up (no update: weights unchanged)
        for _ in range(3):
            for p in params:
                p.grad = None
            out, _ = model(sx)
            loss_fn(out, sy).backward()
    torch.cuda.current_stream().wait_stream(side)
    for p in params:
        p.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out, _ = model(sx)
        sloss = loss_fn(out, sy)
        sloss.backward()
        check = torch.add(sloss.detach(), w0.grad.sum(), alpha=0)
        with torch.no_grad():
            torch._foreach_add_(params, [p.grad for p in params], alpha=-lr)

    # Numbers: the captured step vs the same updates done eagerly from the same weights.
    ref = _start(cfg)
    g = torch.Generator().manual_seed(7)
    n = x.shape[0]
    losses_c, losses_e = [], []
    for _ in range(50):
        idx = torch.randint(0, n, (bs,), generator=g).to("cuda")
        sx.copy_(x[idx])
        sy.copy_(y[idx])
        graph.replay()
        losses_c.append(float(sloss))
        for p in ref.params:
            p.grad = None
        o, _ = ref.model(x[idx])
        le = ref.loss_fn(o, y[idx])
        le.backward()
        with torch.no_grad():
            torch._foreach_add_(ref.params, [p.grad for p in ref.params], alpha=-lr)
        losses_e.append(float(le))
    max_rel = max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(losses_c, losses_e,
                                                                     strict=True))
    # Speed: replay + batch copy + the per-step NaN check's sync, as the engine would run it.
    perm = torch.randperm(n, generator=g).to("cuda")

    def replayed(k: int) -> float:
        _sync("cuda")
        t = time.perf_counter()
        pos = 0
        for _ in range(k):
            if pos + bs > n:
                pos = 0
            idx = perm[pos:pos + bs]
            pos += bs
            sx.copy_(x[idx])
            sy.copy_(y[idx])
            graph.replay()
            if not math.isfinite(check.item()):
                break
        _sync("cuda")
        return (time.perf_counter() - t) / k

    k = 200 if quick else 2000
    replayed(k // 4)
    t_cap = sorted(replayed(k) for _ in range(3))[1]
    eng = EngineSteps(cfg)
    t_eng = sorted(eng.block(k)[1] for _ in range(3))[1]
    gain = t_eng / t_cap
    return {"config": "default (tanh 6 x 64, batch 64), every=100000",
            "engine_steps_per_s": 1 / t_eng, "captured_steps_per_s": 1 / t_cap,
            "gain": gain, "loss_max_rel_diff_50_steps": max_rel,
            "numbers_match": max_rel <= 1e-5,
            "faster": "captured" if gain > 1.0 else "engine",
            "engine_default": "uncaptured (core/train.py does not capture yet; wire the "
                              "captured step in as the cuda default if 'faster' says so)"}


# ---- concurrency: k worker processes at once --------------------------------------------


def worker(device: str, seconds: float) -> None:
    """One hosted-executor-like run: announce ready, wait for "go" on stdin, train the
    default config at the page's cadence for ``seconds``, print its steps/s as JSON."""
    import torch

    from core.train import steps

    torch.set_num_threads(1)
    gen = steps(_cfg(device, **INSTRUMENTATION["on"]))
    for _ in range(30):
        next(gen)
    _sync(device)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            next(gen)
        k += 10
    _sync(device)
    print(json.dumps({"steps_per_s": k / (time.perf_counter() - t0)}), flush=True)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    r, _, _ = select.select([proc.stdout], [], [], max(0.0, timeout))
    return proc.stdout.readline().strip() if r else ""


def run_k(device: str, k: int, seconds: float, start_timeout: float) -> list[float | None]:
    """k workers at once on ``device``; each one's steps/s (None: it failed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tools.gpu_check", "--worker", "--device", device,
           "--seconds", str(seconds)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(k)]
    try:
        t_end = time.perf_counter() + start_timeout
        ready = [_readline(p, t_end - time.perf_counter()) == "ready" for p in procs]
        for p, ok in zip(procs, ready, strict=True):
            if ok:
                p.stdin.write("go\n")
                p.stdin.flush()
        out: list[float | None] = []
        for p, ok in zip(procs, ready, strict=True):
            line = _readline(p, seconds + 30) if ok else ""
            try:
                out.append(float(json.loads(line)["steps_per_s"]))
            except (ValueError, KeyError, TypeError):
                out.append(None)
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def check_concurrency(device: str, quick: bool, deadline: float) -> dict[str, Any]:
    levels = (1, 2) if quick else (1, 2, 4, 8, 16, 32, 64)
    seconds = 1.0 if quick else 5.0
    res: dict[str, Any] = {"config": "default (tanh 6 x 64, batch 64), every=10, one torch "
                                     "thread per run", "seconds_per_level": seconds,
                           "min_steps_per_s_wanted": MIN_STEPS_PER_S, "levels": {},
                           "cpus": os.cpu_count()}     # each run's Python needs a core too
    best = 0
    for k in levels:
        if time.perf_counter() + seconds + 40 > deadline:
            res["stopped"] = f"out of time before k={k}"
            break
        room = deadline - time.perf_counter() - seconds - 10
        sps = run_k(device, k, seconds, start_timeout=max(5.0, min(30 + 2 * k, room)))
        good = [s for s in sps if s is not None]
        res["levels"][str(k)] = {"min": min(good) if good else None,
                                 "median": sorted(good)[len(good) // 2] if good else None,
                                 "total": sum(good), "failed": k - len(good)}
        if len(good) == k and min(good) >= MIN_STEPS_PER_S:
            best = k
        else:
            break
    res["runs_per_device"] = best
    res["note"] = ("the largest k tried at which every run got >= 100 steps/s; the next "
                   "level fell below (or the levels ran out)")
    return res


# ---- the document -----------------------------------------------------------------------


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def _env(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"device": device, "torch": torch.__version__,
                           "python": platform.python_version(), "cpus": os.cpu_count(),
                           "cuda_available": torch.cuda.is_available()}
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
        env["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return env


def out_path(arg: str | None) -> Path:
    """$OUT/gpu_check.json when $OUT is set, else ``arg`` (default gpu_check.json)."""
    out = os.environ.get("OUT", "").strip()
    if out:
        return Path(out) / "gpu_check.json"
    return Path(arg or "gpu_check.json")


def main(argv: list[str] | None = None) -> int:
    """Run every section; write the document after each. Exit 0 when it ran to the end
    (failed checks are figures in the document, under ``ok``), 2 on a bad device."""
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ap.add_argument("--out", help="the JSON file when $OUT is not set (default gpu_check.json)")
    ap.add_argument("--quick", action="store_true", help="small sizes (a CPU test run)")
    ap.add_argument("--skip-tests", action="store_true", help="leave the pytest section out")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if a.worker:
        worker(a.device, a.seconds)
        return 0
    import torch

    from core.train import resolve_device

    # One torch thread, as a hosted executor runs: the CPU sides of the agreement and speed
    # sections are small nets, which extra threads only slow down on a shared machine.
    torch.set_num_threads(1)
    try:
        device = resolve_device(a.device).type
    except ValueError as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 2
    path = out_path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    deadline = t0 + (QUICK_BUDGET_S if a.quick else TOTAL_BUDGET_S)
    doc: dict[str, Any] = {"check": "tools/gpu_check.py", "quick": a.quick,
                           "env": _env(device), "complete": False}

    def section(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        s0 = time.perf_counter()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            doc[name] = fn()
        except Exception as e:  # noqa: BLE001 - one broken section must not sink the rest
            doc[name] = {"error": f"{type(e).__name__}: {e}"[:1000]}
        doc[name]["section_s"] = round(time.perf_counter() - s0, 1)
        path.write_text(json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8")

    left = lambda frac: max(10.0, (deadline - time.perf_counter()) * frac)  # noqa: E731
    if a.skip_tests:
        section("tests", lambda: {"skipped": "--skip-tests"})
    else:
        section("tests", lambda: check_tests(device, left(0.35)))
    section("agreement", lambda: check_agreement(device, a.quick))
    speed_end = time.perf_counter() + left(0.5)
    section("speed", lambda: check_speed(device, a.quick, speed_end))
    section("bare", lambda: check_bare(device, a.quick))
    section("capture", lambda: check_capture(device, a.quick))
    section("concurrency", lambda: check_concurrency(device, a.quick, deadline))
    doc["complete"] = True
    doc["total_s"] = round(time.perf_counter() - t0, 1)
    path.write_text(json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8")
    print(f"gpu_check: done in {doc['total_s']} s; wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
