"""A web (page) process never imports torch: training and every lesson computation run in the
executors (``app.live.executor``), so a page process only needs Streamlit, Plotly, NumPy and
the torch-free part of core.

Checked in a fresh interpreter: import what ``app/main.py`` and the playground script import,
every lesson and the ASGI app; unpickle one result of every computation the lessons run (made
here, with small arguments); run computations named ``"core.module:qualname"`` through a real
executor. ``torch`` must never appear in ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.lessons import common
from core.config import RunConfig
from core.presets import preset

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Scripts Streamlit executes (importing them would run their page): what they import counts.
PAGE_SCRIPTS = ("app/main.py", "app/views/playground.py", "app/views/board.py")
#: Modules a web process imports besides those (main's lessons and warm-up, the ASGI worker).
WEB_MODULES = ("app.lessons", "app.lessons.common", "app.live.binding", "app.live.pool",
               "app.live.process", "app.live.trainer", "app.sidebar", "app.controls",
               "app.charts", "app.stream_chart", "app.hosting.asgi")

TINY = RunConfig(depth=2, width=8, n_train=64, n_test=16, batch_size=16, steps=2, every=1,
                 device="cpu")
DEEP_LINEAR = preset("deep-linear-fold0").replace(depth=3, n_train=32, n_test=16, batch_size=16)
#: One small call of every computation a lesson runs by name: (args, kwargs).
SMALL_CALLS: dict[str, tuple[tuple, dict[str, Any]]] = {
    "core.train:run_all": ((TINY,), {}),
    "core.experiments.variance:layer_variances": ((TINY,), {"n_examples": 16}),
    "core.experiments.variance:lr_sweep": ((TINY, (0.1, 1.0)), {"clip_norm": 1.0}),
    "core.experiments.deep_linear:deep_linear_seeds": ((DEEP_LINEAR, 2), {"steps": 2, "every": 1}),
    "core.experiments.spectra:product_spectra": ((4, (1, 2), ("gaussian", "orthogonal")), {}),
    "core.experiments.spectra:spread_vs_depth": ((4, (1, 2), "gaussian", (0,)), {}),
    "core.experiments.spectra:critical_point": (("tanh", 0.01), {}),
    "core.experiments.spectra:jacobian_spectrum": (("tanh", "orthogonal", (2,), 8), {}),
    "core.experiments.warping:warp_grid": ((2, 4), {"grid_n": 3}),
    "core.experiments.phase:at_init_map": (("tanh", 0.05, (1.0, 2.0)),
                                           {"depth": 3, "width": 8, "nets": 1, "pairs": 1}),
    "core.experiments.phase:trainability": (("tanh", 0.05, (1.0,), (2,)),
                                            {"steps": 2, "width": 8, "n_train": 64,
                                             "n_test": 16}),
}

_CHILD = r"""
import importlib, json, pickle, sys

plan = json.loads(sys.argv[1])
for name, attrs in plan["imports"]:
    mod = importlib.import_module(name)
    for attr in attrs:               # as `from name import attr` does (app.live: on first use)
        if not hasattr(mod, attr):
            importlib.import_module(f"{name}.{attr}")
from app import lessons
lessons.discover()
imported = "torch" in sys.modules

blobs = pickle.loads(sys.stdin.buffer.read())
kinds = {}
for ref, blob in blobs.items():
    value = pickle.loads(blob)
    first = value[0] if isinstance(value, list) and value else value
    kinds[ref] = f"{type(first).__module__}.{type(first).__qualname__}"
unpickled = "torch" in sys.modules

from app.lessons import common
from core.config import RunConfig
cfg = RunConfig(depth=2, width=8, n_train=64, n_test=16, batch_size=16, steps=2, every=1,
                device="cpu")
res = common.compute(common.RUN_ALL, cfg, label="tiny run")
warp = common.compute("core.experiments.warping:warp_grid", 2, 4, grid_n=3, label="tiny warp")
print(json.dumps({
    "imported": imported, "unpickled": unpickled, "computed": "torch" in sys.modules,
    "kinds": kinds, "steps": [s.step for s in res.snapshots], "warp": type(warp).__name__,
    "core": sorted(m for m in sys.modules if m.split(".")[0] == "core"),
}))
"""


def _script_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every module-level import of a page script."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__" and not node.level:
            out.append((node.module or "", [a.name for a in node.names]))
    return out


def lesson_refs() -> set[str]:
    """Every computation the lesson pages name: ``"core.module:qualname"`` in a lesson
    module (constants or inline), and common's RUN_ALL."""
    pattern = re.compile(r"""["'](core(?:\.\w+)*:\w+(?:\.\w+)*)["']""")
    return {common.RUN_ALL} | {m for p in sorted((REPO_ROOT / "app" / "lessons").glob("l*.py"))
                               for m in pattern.findall(p.read_text(encoding="utf-8"))}


def test_every_lesson_computation_has_a_small_call_here() -> None:
    assert lesson_refs() == set(SMALL_CALLS), "keep SMALL_CALLS in step with the lessons"
    for ref in SMALL_CALLS:
        assert common._target(ref) == tuple(ref.split(":"))


def test_a_web_process_never_imports_torch() -> None:
    """Pages, lessons and their results load no torch; computations named by string run in an
    executor and come back without loading it either."""
    from app.live.scheduler import resolve

    blobs = {ref: pickle.dumps(resolve(ref)(*args, **kwargs), protocol=5)
             for ref, (args, kwargs) in SMALL_CALLS.items()}
    imports = [imp for s in PAGE_SCRIPTS for imp in _script_imports(REPO_ROOT / s)]
    imports += [(m, []) for m in WEB_MODULES]
    env = {k: v for k, v in os.environ.items()
           if k not in ("GRADLAB_EXECUTOR_ADDRS", "GRADLAB_EXECUTOR_KEY")}
    env["GRADLAB_EXECUTORS"] = "1"
    out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps({"imports": imports})],
                         input=pickle.dumps(blobs), capture_output=True, cwd=REPO_ROOT,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    got = json.loads(out.stdout.decode().strip().splitlines()[-1])
    where = f"core modules loaded: {got['core']}"
    assert not got["imported"], f"importing the pages loaded torch; {where}"
    assert not got["unpickled"], f"unpickling a lesson result loaded torch; {where}"
    assert not got["computed"], f"a computation by name loaded torch; {where}"
    assert got["kinds"]["core.experiments.deep_linear:deep_linear_seeds"] == \
        "core.experiments.results.SeedsResult"
    assert got["kinds"]["core.train:run_all"] == "core.snapshot.RunResult"
    assert got["steps"] == [0, 1, 2] and got["warp"] == "WarpResult"
