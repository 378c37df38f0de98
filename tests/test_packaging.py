"""Packaging / CI wiring: pyproject, constraints, Makefile and .ci/run agree with each other."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO_ROOT / "ci" / "constraints.txt"
CI_RUN = REPO_ROOT / ".ci" / "run"
MAKEFILE = REPO_ROOT / "Makefile"


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def constraint_lines() -> list[str]:
    lines = (ln.split("#", 1)[0].strip() for ln in CONSTRAINTS.read_text().splitlines())
    return [ln for ln in lines if ln]


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", MAKEFILE.read_text(), re.M))


def test_pyproject_metadata(pyproject: dict) -> None:
    project = pyproject["project"]
    assert project["name"] == "gradlab"
    assert project["version"] == "0.1.0"
    assert project["requires-python"] == ">=3.10"
    deps = " ".join(project["dependencies"])
    for name in ("torch", "numpy", "streamlit", "plotly"):
        assert name in deps
    dev = " ".join(project["optional-dependencies"]["dev"])
    for name in ("pytest", "pytest-timeout", "playwright", "hypothesis", "ruff"):
        assert name in dev
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    assert {"core*", "app*", "tools*"} <= set(find["include"])
    assert pyproject["tool"]["setuptools"]["package-data"]["app.stream_chart"] == [
        "frontend/*.js"]


def source_packages() -> set[str]:
    """Every folder under core/, app/ and tools/ with an __init__.py, as a dotted name."""
    return {".".join(p.parent.relative_to(REPO_ROOT).parts)
            for top in ("core", "app", "tools") for p in (REPO_ROOT / top).rglob("__init__.py")
            if "__pycache__" not in p.parts}


def test_package_discovery_finds_every_package(pyproject: dict) -> None:
    from setuptools import find_packages

    found = set(find_packages(str(REPO_ROOT),
                              include=pyproject["tool"]["setuptools"]["packages"]["find"]
                              ["include"]))
    assert source_packages() <= found
    assert not {p for p in found if p.split(".")[0] == "tests"}, "tests/ is not packaged"


@pytest.mark.slow
def test_wheel_carries_tools_and_gradlab_bench_runs_outside_the_repo(tmp_path: Path) -> None:
    """A wheel built from the sources holds every package (tools/ included) and the chart
    script; unpacked elsewhere, `gradlab bench` runs the packaged suite (tiny sizes) from a
    folder that is not the repository."""
    src = tmp_path / "src"          # built from a copy: pip writes build/ beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    for top in ("core", "app", "tools"):
        shutil.copytree(REPO_ROOT / top, src / top,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(dist), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("gradlab-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    packaged = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("__init__.py")}
    assert source_packages() <= packaged, source_packages() - packaged
    assert {"tools/bench.py", "tools/server.py", "tools/load.py",
            "app/stream_chart/frontend/stream_chart.js"} <= names
    assert not [n for n in names if n.startswith("tests/")]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "GRADLAB_BENCH_SCALE": "tiny"}
    where = subprocess.run([sys.executable, "-c", "import core, tools; print(core.__file__); "
                            "print(tools.__file__)"], cwd=outside, env=env,
                           capture_output=True, text=True, timeout=60)
    assert all(Path(p).is_relative_to(site) for p in where.stdout.split()), where.stdout
    helped = subprocess.run([sys.executable, "-m", "core.cli", "bench", "--help"], cwd=outside,
                            env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--quick" in helped.stdout, helped.stderr
    ran = subprocess.run([sys.executable, "-m", "core.cli", "bench", "--quick", "--json",
                          "bench.json"], cwd=outside, env=env, capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    doc = json.loads((outside / "bench.json").read_text())
    assert doc["instrumented_over_plain"] is not None, doc["notes"]


def test_torch_range_is_open_in_pyproject(pyproject: dict) -> None:
    torch = [d for d in pyproject["project"]["dependencies"] if d.startswith("torch")]
    assert torch == ["torch>=2.2"], "pin torch in ci/constraints.txt, not in pyproject"


def test_version_matches_core(pyproject: dict) -> None:
    """core.__version__ is optional, but if it is set it must agree with pyproject."""
    tree = ast.parse((REPO_ROOT / "core" / "__init__.py").read_text())
    versions = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert versions in ([], [pyproject["project"]["version"]])


def test_console_script(pyproject: dict) -> None:
    assert pyproject["project"]["scripts"]["gradlab"] == "core.cli:main"
    cli = REPO_ROOT / "core" / "cli.py"
    if cli.exists():  # written by another engineer; once there, it must define main()
        tree = ast.parse(cli.read_text())
        assert any(
            isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body
        ), "core/cli.py must define main()"


def test_pytest_config(pyproject: dict) -> None:
    cfg = pyproject["tool"]["pytest"]["ini_options"]
    assert cfg["testpaths"] == ["tests"]
    assert int(cfg["timeout"]) == 600
    markers = {m.split(":", 1)[0].strip() for m in cfg["markers"]}
    assert {"slow", "browser", "lesson"} <= markers


def test_ruff_config(pyproject: dict) -> None:
    ruff = pyproject["tool"]["ruff"]
    assert ruff["line-length"] == 100
    assert ruff["target-version"] == "py310"
    assert set(ruff["lint"]["select"]) >= {"E", "F", "W", "I", "B", "UP"}


def test_constraints_pin_local_torch_wheel() -> None:
    assert "torch==2.13.0" in constraint_lines()


def test_ci_run_is_executable_and_sane() -> None:
    assert CI_RUN.is_file()
    assert os.access(CI_RUN, os.X_OK), ".ci/run must be executable (chmod +x)"
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert re.search(r"apt-get update", text)
    assert re.search(r"apt-get install -y[^\n]*\bchromium\b", text)
    assert "/usr/bin/chromium" in text
    assert "ci/constraints.txt" in text
    assert re.search(r"^\s*(run\s+)?make test\s*$", text, re.M), ".ci/run must run `make test`"
    code = "\n".join(ln.split("#", 1)[0] for ln in text.splitlines())
    assert "playwright install" not in code, "Playwright's browser download cannot work in CI"


def test_ci_run_parses_with_bash() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    subprocess.run([bash, "-n", str(CI_RUN)], check=True)


def test_makefile_targets() -> None:
    targets = make_targets()
    for t in ("run", "install", "test", "test-fast", "bench", "load", "lint", "clean"):
        assert t in targets, f"Makefile lacks target {t!r}"
    text = MAKEFILE.read_text()
    assert "ci/constraints.txt" in text
    assert "-m pytest -q" in text
    assert "app/main.py" in text
    assert "python -m tools.load $(LOAD_ARGS)" in text and "gradlab bench" in text
    assert "tests/load_test.py" not in text and "tests/bench.py" not in text


def test_make_load_defaults_are_the_documented_ones() -> None:
    """The Makefile says `make load` is a class: 30 websocket sessions and one Chromium tab,
    Play within 10 s, 60 s of training, 2 web workers: so it is."""
    from tools.load import parse_args

    a = parse_args([])
    assert (a.sessions, a.tabs, a.client, a.ramp, a.hold, a.procs, a.burst, a.soak) == (
        30, 1, "ws", 10.0, 60.0, 2, 0, 0.0)
    assert "30 websocket sessions and 1 Chromium tab" in MAKEFILE.read_text()


def test_assets_not_gitignored() -> None:
    git = shutil.which("git")
    if git is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("assets/mnist_5k.npz", "assets/figure.png", "core/__init__.py"):
        r = subprocess.run([git, "check-ignore", "-q", path], cwd=REPO_ROOT)
        assert r.returncode == 1, f"{path} must not be ignored by .gitignore"
    r = subprocess.run([git, "check-ignore", "-q", ".venv/x"], cwd=REPO_ROOT)
    assert r.returncode == 0, ".venv must be ignored"
