"""Architecture boundaries, checked on the syntax tree of every .py file that exists.

* core/ is the engine: it never imports streamlit, plotly, app, tests or tools -- at module
  level or inside a function, absolutely, relatively or through ``import_module("...")``;
  and importing every core module loads none of them (checked in a fresh interpreter).
* app/ holds no training maths: no ``.backward()``, no ``torch.optim``/``optim.X``, no
  ``torch.autograd``, no ``.zero_grad()`` -- training and gradients live in core.

The checkers themselves are tested on small snippets, so a checker that flags nothing
cannot pass these tests by accident.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ast_helpers import dotted

REPO_ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = ("streamlit", "plotly", "app", "tests", "tools")
FORBIDDEN_CALL_ATTRS = ("backward", "zero_grad")
FORBIDDEN_MODULES_IN_APP = ("torch.optim", "torch.autograd")


def py_files(package: str) -> list[Path]:
    root = REPO_ROOT / package
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _matches(module: str, banned: tuple[str, ...]) -> bool:
    return any(module == b or module.startswith(b + ".") for b in banned)



def module_package(path: Path) -> str:
    """The package a file belongs to: core/experiments/x.py -> "core.experiments"."""
    return ".".join(path.relative_to(REPO_ROOT).parent.parts)


def imported_modules(tree: ast.AST, package: str = "") -> list[tuple[int, str]]:
    """Every module a file imports, anywhere in it (functions included): import X, from X
    import Y (as X.Y too), import_module("X"). Relative imports are resolved against
    ``package`` (the file's own package)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                up = len(parts) - (node.level - 1)
                if up < 0:          # climbs out of the tree: name it as written
                    mod = "." * node.level + mod
                else:
                    mod = ".".join([*parts[:up], *([mod] if mod else [])])
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            if (
                name in ("__import__", "importlib.import_module", "import_module")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.append((node.lineno, node.args[0].value))
    return found


def core_violations(tree: ast.AST, package: str = "core") -> list[str]:
    return [
        f"line {line}: imports {mod}"
        for line, mod in imported_modules(tree, package)
        if _matches(mod, FORBIDDEN_IN_CORE) or mod.startswith(".")
    ]


def app_violations(tree: ast.AST) -> list[str]:
    out: list[str] = []
    optim_aliases = {"optim"}  # `from torch import optim as o` adds "o"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "torch" and not node.level:
            for alias in node.names:
                if alias.name in ("optim", "autograd"):
                    optim_aliases.add(alias.asname or alias.name)
    for line, mod in imported_modules(tree):
        if _matches(mod, FORBIDDEN_MODULES_IN_APP):
            out.append(f"line {line}: imports {mod}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_CALL_ATTRS
        ):
            out.append(f"line {node.lineno}: calls .{node.func.attr}()")
        elif isinstance(node, ast.Attribute):
            name = dotted(node)
            if name is None:
                continue
            head = name.split(".")[0]
            if _matches(name, FORBIDDEN_MODULES_IN_APP) or (
                head in optim_aliases and "." in name and name.count(".") == 1
            ):
                out.append(f"line {node.lineno}: references {name}")
    return sorted(set(out))


# ---- the real files -----------------------------------------------------------------------


def test_core_has_python_files() -> None:
    assert py_files("core"), "core/ should contain Python modules"


@pytest.mark.parametrize("path", py_files("core"), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_core_imports_no_ui(path: Path) -> None:
    problems = core_violations(parse(path), module_package(path))
    assert not problems, (f"{path.relative_to(REPO_ROOT)} must import nothing from "
                          f"{', '.join(FORBIDDEN_IN_CORE)}: {problems}")


def test_importing_all_of_core_loads_no_ui_app_tests_or_tools() -> None:
    """What the syntax cannot see (an import by a computed name): import every core module
    in a fresh interpreter and look at what got loaded."""
    code = (
        "import pkgutil, sys, importlib, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = {FORBIDDEN_IN_CORE!r}\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"importing core loaded: {out.stdout.strip()}"


def test_app_has_no_training_maths() -> None:
    problems = {
        str(path.relative_to(REPO_ROOT)): found
        for path in py_files("app")
        if (found := app_violations(parse(path)))
    }
    assert not problems, f"training maths belongs in core/, not app/: {problems}"


# ---- the checkers catch what they should (and nothing else) ------------------------------


@pytest.mark.parametrize(
    "src",
    [
        "import streamlit as st",
        "import plotly.graph_objects as go",
        "from plotly import express",
        "from app import main",
        "import app.views",
        "import importlib\nst = importlib.import_module('streamlit')",
        "def f():\n    import streamlit\n",
        "from tests import bench",
        "import tests.conftest",
        "import tools.bench",
        "def bench():\n    from tools.server import serving\n",
        "import importlib\nb = importlib.import_module('tools.bench')",
        "from ...app import main",         # from core.experiments up to the top: app
        "from ...tools import bench",
        "from .... import anything",       # climbs out of the tree
    ],
)
def test_core_checker_flags(src: str) -> None:
    assert core_violations(ast.parse(src), "core.experiments")


@pytest.mark.parametrize(
    "src",
    [
        "import torch\nimport numpy as np\nfrom core.config import RunConfig",
        "from . import snapshot",
        "import applications_helper",  # not the app package
        "import toolz",                # not the tools package
        "from .. import train",        # core.experiments -> core
        "from ..experiments.spectra import log_spread",
        "x = {'streamlit': 1}",
    ],
)
def test_core_checker_allows(src: str) -> None:
    assert not core_violations(ast.parse(src), "core.experiments")


@pytest.mark.parametrize(
    "src",
    [
        "loss.backward()",
        "model(x).sum().backward(retain_graph=True)",
        "import torch\nopt = torch.optim.SGD(params, lr=0.1)",
        "import torch.optim",
        "from torch.optim import Adam",
        "from torch import optim\nopt = optim.Adam(params)",
        "from torch import optim as o\nopt = o.SGD(params)",
        "import torch\ng = torch.autograd.grad(y, x)",
        "opt.zero_grad()",
    ],
)
def test_app_checker_flags(src: str) -> None:
    assert app_violations(ast.parse(src))


@pytest.mark.parametrize(
    "src",
    [
        "import streamlit as st\nst.button('Step')",
        "from core.trainer import Trainer\nt = Trainer(cfg)\nt.step()",
        "import torch\nx = torch.zeros(3)",
        "label = 'loss.backward() lives in core'",
    ],
)
def test_app_checker_allows(src: str) -> None:
    assert not app_violations(ast.parse(src))
