"""The engine on a device (issue 21): core runs take the device as a parameter (the
``device`` fixture in conftest.py: cpu here, cuda where there is a GPU, ``--device cuda`` or
GRADLAB_TEST_DEVICE=cuda for cuda only); the fast step paths give the numbers of the plain
ones exactly; the device check (tools/gpu_check.py) runs end to end on the CPU."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from core import train
from core.config import RunConfig
from core.models import build
from core.train import run_all
from tools import gpu_check

SMALL = {"depth": 4, "width": 16, "batch_size": 32, "n_train": 256}


def _trace(cfg: RunConfig) -> list[tuple]:
    """Every snapshot's loss and per-layer delta_norm / weight norm: the run's numbers."""
    res = run_all(cfg)
    return [(s.step, s.loss, s.test_loss, tuple(la.delta_norm for la in s.layers),
             tuple(la.weight_norm for la in s.layers)) for s in res.snapshots]


def test_a_run_on_the_device_is_finite_and_says_where_it_ran(device: str) -> None:
    res = run_all(RunConfig(**SMALL, steps=30, every=10, device=device, jacobian=True))
    assert res.device.startswith(device)
    assert [s.step for s in res.snapshots] == [0, 10, 20, 30]
    for s in res.snapshots:
        assert math.isfinite(s.loss) and all(math.isfinite(la.delta_norm) for la in s.layers)
    assert res.snapshots[-1].loss < res.snapshots[0].loss     # it learns (lr 0.1, 30 steps)


@pytest.mark.parametrize("kw", [{}, {"activation": "sigmoid", "depth": 12}],
                         ids=["tanh", "sigmoid12"])
def test_the_device_gives_the_cpus_numbers_within_the_stated_tolerance(
        device: str, kw: dict) -> None:
    """First-snapshot delta_norm (rel 1e-4), Jacobian log-spectrum (1e-6 nats) and the loss
    after 20 steps (rel 1e-3) on ``device`` against the CPU: gpu_check's own comparison."""
    r = gpu_check.compare(device, {**SMALL, **kw})
    assert r["ok"], r
    if device == "cpu":                         # the same device: bit for bit
        assert r["delta_norm_max_rel_diff"] == 0.0 == r["loss_after_20_steps_rel_diff"]


@pytest.mark.parametrize("kw", [{}, {"l2": 5.0}, {"every": 7, "batch_size": 0}],
                         ids=["sgd", "sgd_l2", "full_batch"])
def test_the_fast_sgd_update_is_torch_optim_sgd_bit_for_bit(
        device: str, kw: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain SGD skips torch.optim.SGD.step() for the same foreach update: every snapshot's
    numbers must be identical to the optimiser's own path."""
    cfg = RunConfig(**{**SMALL, "steps": 40, "every": 10, "device": device, **kw})
    fast = _trace(cfg)
    monkeypatch.setattr(train, "_plain_sgd", lambda opt: False)
    slow = _trace(cfg)
    assert fast == slow


def test_only_plain_sgd_takes_the_fast_update() -> None:
    g = torch.Generator().manual_seed(0)
    model = build(RunConfig(**SMALL), 2, 2, g)
    from core.registry import make_optimizer

    assert train._plain_sgd(make_optimizer(RunConfig(**SMALL), model.parameters()))
    for kw in ({"optimizer": "momentum"}, {"optimizer": "adam"}):
        opt = make_optimizer(RunConfig(**SMALL, **kw), model.parameters())
        assert not train._plain_sgd(opt), kw


def test_divergence_between_snapshots_is_caught_at_its_step(device: str) -> None:
    """The cheap per-step NaN check (loss + 0 * sum of the first layer's gradient) stops a
    run at the same step as a snapshot at every step does, and names the same layer."""
    kw = {"depth": 8, "width": 64, "activation": "relu", "init": "he", "lr": 50.0,
          "steps": 200, "device": device}
    every1 = run_all(RunConfig(**kw, every=1))
    sparse = run_all(RunConfig(**kw, every=1000))
    assert every1.diverged_at is not None
    assert sparse.diverged_at == every1.diverged_at
    assert sparse.diverged_layer == every1.diverged_layer
    assert sparse.snapshots[-1].diverged


@pytest.mark.parametrize("v", [float("inf"), float("-inf"), float("nan")])
def test_the_nan_check_sees_a_bad_gradient_behind_a_finite_loss(v: float) -> None:
    loss, gsum = torch.tensor(0.7), torch.tensor(v)
    assert not math.isfinite(torch.add(loss, gsum, alpha=0).item())
    assert torch.add(loss, torch.tensor(3e38), alpha=0).item() == pytest.approx(0.7)


def test_train_eval_switch_is_skipped_only_where_it_changes_nothing() -> None:
    g = torch.Generator().manual_seed(0)
    assert not train._mode_matters(build(RunConfig(**SMALL), 2, 2, g))
    assert train._mode_matters(build(RunConfig(**SMALL, norm="batch"), 2, 2, g))


@pytest.mark.slow
def test_gpu_check_quick_cpu_run_writes_one_sane_document(tmp_path, monkeypatch) -> None:
    """tools/gpu_check.py end to end on the CPU (--quick, tests section skipped: the
    suite runs it for real): one JSON file at $OUT/gpu_check.json with every section."""
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.main(["--device", "cpu", "--quick", "--skip-tests"]) == 0
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert doc["complete"] is True and doc["env"]["device"] == "cpu"
    assert doc["tests"]["skipped"] == "--skip-tests"
    agree = doc["agreement"]
    assert agree["ok"] is True and agree["tolerances"] == gpu_check.TOL
    for c in agree["configs"].values():
        assert c["delta_norm_max_rel_diff"] == 0.0        # cpu vs cpu: identical
    speed = doc["speed"]["configs"]
    assert set(speed) == set(gpu_check.QUICK_SPEED_CONFIGS)
    for name, row in speed.items():
        for key in ("cpu_off", "cpu_on"):
            assert row[key] is not None and row[key] > 0, (name, key, row)
        # instrumentation costs something, never makes a run faster by 2x
        assert row["cpu_on"] < 2 * row["cpu_off"], (name, row)
    bare = doc["bare"]
    assert bare["clock"] == "cpu" and bare["details"]["restarts"] == 0
    for key in ("plain_over_bare", "instrumented_over_bare"):
        assert 0.2 < bare[key] < 5.0, bare                # a ratio of two real timings
    assert "CUDA" in doc["capture"]["skipped"]
    conc = doc["concurrency"]
    assert set(conc["levels"]) <= {"1", "2"} and conc["levels"]["1"]["failed"] == 0
    assert conc["runs_per_device"] in (0, 1, 2)
    assert conc["runs_per_device"] >= 1 or conc["levels"]["1"]["min"] < 100


def test_gpu_check_writes_where_out_says(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.out_path("elsewhere.json") == tmp_path / "gpu_check.json"
    monkeypatch.delenv("OUT")
    assert gpu_check.out_path(str(tmp_path / "x.json")) == tmp_path / "x.json"


def test_gpu_check_refuses_an_absent_device(capsys, tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main(["--device", "cuda", "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "cuda" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_gpu_check_parses_pytest_counts(tmp_path, monkeypatch) -> None:
    """The tests section reads pytest's junit XML: run it on a throwaway test file."""
    f = tmp_path / "test_tiny.py"
    f.write_text("def test_ok():\n    pass\n\ndef test_bad():\n    assert False\n")
    (tmp_path / "conftest.py").write_text(      # the --device option the real conftest adds
        "def pytest_addoption(parser):\n    parser.addoption('--device')\n")
    monkeypatch.setattr(gpu_check, "TEST_FILES", (str(f),))
    monkeypatch.setattr(gpu_check, "ROOT", tmp_path)
    r = gpu_check.check_tests("cpu", 60)
    assert (r["tests"], r["passed"], r["failures"]) == (2, 1, 1), r
    assert r["ok"] is False and any("test_bad" in t for t in r["failed_ids"])


def test_device_fixture_value_is_a_torch_device(device: str) -> None:
    assert torch.device(device).type == device
    x = torch.ones(3, device=device)
    assert float(x.sum()) == 3.0
    assert np.isfinite(x.cpu().numpy()).all()


def test_bench_takes_a_device_and_refuses_an_absent_one(monkeypatch, capsys) -> None:
    """`python -m tools.bench --device D` reaches main(device=D); `gradlab bench --device
    D` passes it to the child; an absent device is one line on stderr and exit 2."""
    import subprocess
    import sys

    from core.cli import main as cli_main
    from tools import bench

    seen: dict = {}
    monkeypatch.setattr(bench, "main", lambda **kw: seen.update(kw) or 0)
    assert bench.cli(["--quick", "--device", "cpu"]) == 0
    assert seen == {"quick": True, "json_path": None, "device": "cpu"}
    monkeypatch.undo()

    calls: list = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, cwd=None: calls.append(cmd) or 0)
    assert cli_main(["bench", "--device", "cpu"]) == 0
    assert calls[-1] == [sys.executable, "-m", "tools.bench", "--device", "cpu"]
    monkeypatch.undo()

    if not torch.cuda.is_available():
        assert bench.main(quick=True, device="cuda") == 2
        err = capsys.readouterr().err
        assert "cuda" in err and "Traceback" not in err


def test_bench_steps_run_on_the_device_asked_for(monkeypatch) -> None:
    from tools import bench_steps

    monkeypatch.setitem(bench_steps._DEVICE, "name", "auto")
    assert bench_steps.use_device("cpu") == "cpu" == bench_steps.bench_device()
    cfg = bench_steps._config(3, 8, 16, 1, bench_steps.Sizes.pick(quick=True))
    assert cfg.device == "cpu"


def test_gpu_check_counts_a_pytest_run_cut_short() -> None:
    """A tests section past its budget still says how far it got (pytest -q's progress)."""
    out = b"....F..s    [ 40%]\n..E.x\n_____ test_a _____\nE   assert 1 == 2\n"
    assert gpu_check.progress_counts(out) == {"passed": 9, "failed": 1, "errors": 1,
                                              "skipped": 1, "xfailed": 1, "xpassed": 0}
    assert gpu_check.progress_counts(None)["passed"] == 0
