"""The benchmark suite runs and writes its document (tiny sizes; no timing is asserted:
speed is measured by ``make bench``, never by a unit test)."""

from __future__ import annotations

import json
import math

import pytest

from tests import bench


@pytest.fixture()
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bench.SCALE_ENV, "tiny")


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
    # the engine sections ran (only a missing core/spectrum.py may null the jacobian)
    for key in ("instrumented_over_plain", "instrumented_over_plain_every10",
                "instrumented_over_plain_all_stats",
                "deep_steps_per_s", "deep_over_plain", "per_layer_time_ratio_1000_vs_10"):
        assert doc[key] is not None, doc["notes"].get(key)
    if (bench.REPO_ROOT / "core" / "spectrum.py").is_file():
        assert doc["jacobian_over_step"] is not None, doc["notes"].get("jacobian_over_step")
    assert "instrumented_over_plain" in capsys.readouterr().out   # the table was printed


def test_cli_bench_calls_the_suite(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """`gradlab bench --quick --json PATH` reaches tests.bench.main with those arguments."""
    from core.cli import main as cli_main

    seen: dict = {}

    def fake(quick: bool = False, json_path: str | None = None) -> int:
        seen.update(quick=quick, json_path=json_path)
        return 0

    monkeypatch.setattr(bench, "main", fake)
    out = str(tmp_path / "cli.json")
    assert cli_main(["bench", "--quick", "--json", out]) == 0
    assert seen == {"quick": True, "json_path": out}


def test_plain_step_starts_from_the_engines_weights(tiny) -> None:
    """The reference net is the engine's net: same initial weights, same output."""
    import torch

    from core import data as data_mod
    from core.models import build

    cfg = bench._config(3, 8, 16, 1, bench.Sizes.pick(quick=True))
    ds = data_mod.load(cfg, "cpu")
    ref = build(cfg, ds.n_in, ds.n_out, torch.Generator().manual_seed(cfg.seed))
    plain = bench.PlainStep.__new__(bench.PlainStep)
    plain.block = lambda n: 0.0                # skip the warm-up steps: compare at init
    bench.PlainStep.__init__(plain, cfg)
    x = ds.x_train[:5]
    with torch.no_grad():
        want, _ = ref(x)
        got = plain.net(x)
    torch.testing.assert_close(got, want)
