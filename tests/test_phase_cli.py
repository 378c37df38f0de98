"""``gradlab phase``: the JSON document the issue specifies, and bad flags or values as one
line on stderr with exit code 2."""

from __future__ import annotations

import json

import pytest

from core.cli import main

KEYS = {"activation", "sigma_b2", "sigma_w2", "depths", "chi1_measured", "chi1_theory",
        "critical_sigma_w2_measured", "critical_sigma_w2_theory", "xi_c_theory"}


def test_phase_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["phase", "--activation", "tanh", "--set", "sigma_b2=0.05", "--depth", "30",
               "--grid", "6", "--set", "width=32", "--train-steps", "3",
               "--set", "train_grid=2", "--set", "train_depths=2", "--set", "train_width=8",
               "--json", "-"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert KEYS <= set(doc)
    assert doc["activation"] == "tanh" and doc["sigma_b2"] == 0.05
    assert len(doc["sigma_w2"]) == 6 and doc["depths"] == list(range(1, 31))
    assert len(doc["chi1_measured"]) == len(doc["chi1_theory"]) == len(doc["xi_c_theory"]) == 6
    assert doc["critical_sigma_w2_theory"] == pytest.approx(1.761, abs=1e-3)
    assert doc["critical_sigma_w2_measured"] == pytest.approx(1.761, rel=0.1)  # width 32
    assert len(doc["log10_gain"]) == 6 and len(doc["log10_gain"][0]) == 30
    tr = doc["trainability"]
    assert tr["sigma_w2"] == [0.5, 4.0] and tr["depth"] == [15, 30]
    assert len(tr["test_accuracy"]) == 2 and len(tr["test_accuracy"][0]) == 2
    assert all(0.0 <= a <= 1.0 for row in tr["test_accuracy"] for a in row if a is not None)


def test_phase_without_training_has_no_trainability(tmp_path, capsys) -> None:
    out = tmp_path / "phase.json"
    assert main(["phase", "--activation", "relu", "--depth", "10", "--grid", "4",
                 "--set", "width=16", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert "trainability" not in doc and doc["critical_sigma_w2_theory"] == pytest.approx(2.0)
    assert "critical sigma_w^2" in capsys.readouterr().err       # the summary goes to stderr


@pytest.mark.parametrize("argv,message", [
    (["--activation", "swish"], "invalid choice"),
    (["--set", "sigma_b2=abc"], "expected a number"),
    (["--set", "sigma_b2=-1"], "outside"),
    (["--set", "colour=3"], "unknown key"),
    (["--set", "width"], "KEY=VALUE"),
    (["--depth", "0"], "--depth"),
    (["--grid", "x"], "expected an integer"),
    (["--train-steps", "-5"], "--train-steps"),
    (["--set", "sigma_w2_min=3", "--set", "sigma_w2_max=2"], "below"),
    (["--bogus"], "unrecognized"),
])
def test_bad_flags_exit_2_with_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) if argv == ["--bogus"] or "swish" in argv else _no_exit():
        rc = main(["phase", *argv])
        assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
