"""The benchmark suite (tools/bench.py) runs and writes its document (tiny sizes; no timing
is asserted: speed is measured by ``make bench``, never by a unit test), and ``gradlab
bench`` reaches it as a child process."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main as cli_main
from tools import bench, bench_steps


@pytest.fixture()
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bench_steps.SCALE_ENV, "tiny")


def _check(doc: dict) -> None:
    for key in bench.NUMERIC_KEYS:
        assert key in doc, f"{key} missing from the bench document"
        v = doc[key]
        if v is None:
            assert key in doc["notes"] and doc["notes"][key], f"{key} is null without a note"
        else:
            assert isinstance(v, (int, float)) and math.isfinite(v) and v > 0, (key, v)
    grid = doc["instrumented_over_plain_grid"]
    assert grid, "the grid table is empty"
    for cell, row in grid.items():
        assert set(row) == {"every1", "every10"}, cell
        for v in row.values():
            assert v is None or (math.isfinite(v) and v > 0), (cell, row)
    for key in bench.BROWSER_KEYS:             # --quick leaves the browser out, with a note
        assert doc[key] is None and "skipped" in doc["notes"][key]


def test_quick_bench_writes_every_key(tiny, tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(quick=True, json_path=str(out)) == 0
    doc = json.loads(out.read_text())
    _check(doc)
    for key in ("instrumented_over_plain", "instrumented_over_plain_every10",
                "instrumented_over_plain_all_stats", "deep_steps_per_s", "deep_over_plain",
                "per_layer_time_ratio_1000_vs_10", "jacobian_over_step"):
        assert doc[key] is not None, doc["notes"].get(key)
    assert "instrumented_over_plain" in capsys.readouterr().out   # the table was printed


def test_cli_bench_runs_the_tools_package_as_a_child(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """`gradlab bench --quick --json PATH` runs `python -m tools.bench --quick --json ABS`
    from the folder holding tools/, and passes its exit code back."""
    seen: dict = {}

    def fake_call(cmd: list[str], cwd: Path | None = None) -> int:
        seen.update(cmd=cmd, cwd=cwd)
        return 3

    monkeypatch.setattr(subprocess, "call", fake_call)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["bench", "--quick", "--json", "rel/cli.json"]) == 3
    assert seen["cmd"] == [sys.executable, "-m", "tools.bench", "--quick",
                           "--json", str(tmp_path / "rel" / "cli.json")]
    assert (Path(seen["cwd"]) / "tools" / "bench.py").is_file()
    assert cli_main(["bench"]) == 3
    assert seen["cmd"] == [sys.executable, "-m", "tools.bench"]


def test_cli_bench_without_the_tools_package_is_one_line_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert cli_main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert "tools" in err and err.count("\n") == 0 and "Traceback" not in err


def test_bench_module_cli_passes_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}
    monkeypatch.setattr(bench, "main", lambda **kw: seen.update(kw) or 0)
    assert bench.cli(["--quick", "--json", "x.json"]) == 0
    assert seen == {"quick": True, "json_path": "x.json"}


def test_plain_step_starts_from_the_engines_weights(tiny) -> None:
    """The reference net is the engine's net: same initial weights, same output."""
    import torch

    from core import data as data_mod
    from core.models import build

    cfg = bench_steps._config(3, 8, 16, 1, bench_steps.Sizes.pick(quick=True))
    ds = data_mod.load(cfg, "cpu")
    ref = build(cfg, ds.n_in, ds.n_out, torch.Generator().manual_seed(cfg.seed))
    plain = bench_steps.PlainStep.__new__(bench_steps.PlainStep)
    plain.block = lambda n: 0.0                # skip the warm-up steps: compare at init
    bench_steps.PlainStep.__init__(plain, cfg)
    x = ds.x_train[:5]
    with torch.no_grad():
        want, _ = ref(x)
        got = plain.net(x)
    torch.testing.assert_close(got, want)
