"""Export (app/export.py): the CSV parses back to the JSON's numbers, and the Reproduce
command and Python snippet give the page's numbers."""

from __future__ import annotations

import csv
import io
import json
import shlex

from app import export as exp
from core.cli import main as cli_main
from core.config import RunConfig
from core.repeat import repeat
from core.train import run_all

CFG = RunConfig(depth=3, width=16, steps=20, every=10, activation="sigmoid", seed=4)


def test_csv_parses_back_to_the_json_numbers():
    doc = exp.run_document(CFG, run_all(CFG).snapshots)
    rows = list(csv.DictReader(io.StringIO(exp.csv_text(doc))))
    pairs = [(s, la) for s in doc["snapshots"] for la in s["layers"]]
    assert len(rows) == len(pairs) == 3 * 4
    for row, (s, la) in zip(rows, pairs, strict=True):
        assert int(row["step"]) == s["step"] and float(row["loss"]) == s["loss"]
        for k in exp.LAYER_COLUMNS[2:]:
            assert float(row[k]) == la[k], k
        assert row["name"] == la["name"]


def test_repeat_csv_has_every_seed():
    doc = repeat(CFG, [0, 1]).to_json()
    rows = list(csv.DictReader(io.StringIO(exp.repeat_csv_text(doc))))
    assert {r["seed"] for r in rows} == {"0", "1"} and len(rows) == 2 * 3 * 4


def test_reproduce_command_gives_the_same_run(tmp_path):
    cmd = exp.reproduce_command(CFG, json_path=str(tmp_path / "r.json"))
    argv = shlex.split(cmd)
    assert argv[:2] == ["gradlab", "run"]
    assert cli_main(argv[1:]) == 0
    got = json.loads((tmp_path / "r.json").read_text())
    want = run_all(CFG)
    assert got["config"] == CFG.to_dict()
    for a, b in zip(got["snapshots"][0]["layers"], want.snapshots[0].layers, strict=True):
        assert abs(a["delta_norm"] - b.delta_norm) <= 1e-6


def test_reproduce_python_is_five_lines_and_runs(capsys):
    code = exp.reproduce_python(CFG)
    assert len(code.strip().splitlines()) == 5
    exec(compile(code, "<snippet>", "exec"), {})          # noqa: S102 - our own snippet
    first = capsys.readouterr().out.splitlines()[0].split(" ", 2)
    want = run_all(CFG).snapshots[0]
    assert int(first[0]) == 0 and float(first[1]) == want.loss
    assert json.loads(first[2]) == [la.delta_norm for la in want.layers]
