"""The headless contract of DESIGN.md: `gradlab presets | run | ...`, exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.cli import main


def test_presets_lists_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("nielsen-4", "deep-linear-fold1", "gru-long", "gru-default", "rnn-long"):
        assert name in out


def test_run_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--preset", "nielsen-4", "--steps", "0", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"config", "snapshots", "diverged_at"}
    assert doc["diverged_at"] is None and len(doc["snapshots"]) == 1
    snap = doc["snapshots"][0]
    assert snap["step"] == 0
    layers = snap["layers"]
    assert [layer["index"] for layer in layers] == [1, 2, 3, 4, 5]
    assert layers[0]["name"] == "hidden1" and layers[-1]["name"] == "output"
    for key in ("weight_grad_norm", "bias_grad_norm", "delta_norm", "delta_top",
                "activation_mean", "activation_std", "saturation", "update_ratio",
                "weight_singular_values"):
        assert key in layers[0]
    assert len(layers[0]["delta_top"]) == 6
    speeds = [layer["delta_norm"] for layer in layers[:4]]
    assert speeds == sorted(speeds)
    assert snap["jacobian_singular_values"] == [] and snap["time_grad_norms"] == []


def test_run_with_sets_and_file(tmp_path, capsys) -> None:
    out = tmp_path / "r.json"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"depth": 3, "width": 8}))
    assert main(["run", "--config", str(cfg), "--set", "activation=relu", "--set",
                 "jacobian=true", "--steps", "4", "--every", "2", "--seed", "5",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["config"]["depth"] == 3 and doc["config"]["activation"] == "relu"
    assert [s["step"] for s in doc["snapshots"]] == [0, 2, 4]
    assert len(doc["snapshots"][0]["jacobian_singular_values"]) == 2   # 2-D input


@pytest.mark.parametrize("argv,needle", [
    (["run", "--preset", "nope"], "preset"),
    (["run", "--set", "depth=0"], "depth"),
    (["run", "--set", "depth"], "KEY=VALUE"),
    (["run", "--steps", "x"], "steps"),
    (["run", "--config", "/nonexistent.json"], "cannot read"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_one_line_exit_2(argv, needle, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        code = main(argv)
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.count("\n") == 0 and "Traceback" not in err


def _missing_device() -> str:
    """A device this machine lacks (Linux never has Apple's MPS)."""
    import torch

    if not torch.cuda.is_available():
        return "cuda"
    assert not torch.backends.mps.is_available(), "a machine with both CUDA and MPS"
    return "mps"


@pytest.mark.parametrize("case", ["json-dir-missing", "json-is-a-dir", "device-missing",
                                  "config-not-json", "config-not-object"])
def test_run_failures_one_line_exit_2(case, tmp_path, capsys) -> None:
    """What goes wrong while running (not while parsing flags) is one line and exit 2 too."""
    tiny = ["run", "--set", "depth=1", "--set", "width=4", "--set", "n_train=16",
            "--set", "n_test=0", "--set", "batch_size=0", "--steps", "1"]
    bad_config = tmp_path / "c.json"
    argv, needle = {
        "json-dir-missing": (tiny + ["--json", str(tmp_path / "nope" / "r.json")],
                             "--json: cannot write"),
        "json-is-a-dir": (tiny + ["--json", str(tmp_path)], "--json: cannot write"),
        "device-missing": (tiny + ["--set", f"device={_missing_device()}"],
                           f"device: {_missing_device()} was asked for"),
        "config-not-json": (["run", "--config", str(bad_config)], "--config: not valid JSON"),
        "config-not-object": (["run", "--config", str(bad_config)],
                              "--config: expected a JSON object"),
    }[case]
    bad_config.write_text("{depth: 3" if case == "config-not-json" else "[3, 8]")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.count("\n") == 0 and "Traceback" not in err, err
    assert not list(tmp_path.glob("**/r.json"))


def test_diverging_run_is_a_result(capsys) -> None:
    assert main(["run", "--preset", "exploding-lr", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc["diverged_at"], int)


def test_console_script_entry() -> None:
    r = subprocess.run([sys.executable, "-m", "core.cli", "run", "--set", "width=1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "width" in r.stderr and "Traceback" not in r.stderr
