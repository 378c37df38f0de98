"""Export from every lesson (app/lessons/common.py ``export_box``, beside each "Open in the
playground" link) and the seed spread next to published numbers (``seed_spread``).

Every lesson page, under AppTest, shows the Reproduce command and the Python snippet of a
config it links; in Chromium, lesson 2's CSV and JSON downloads parse back to the same
numbers as ``run_all`` of that config (delta_norm to 1e-6), and its Reproduce command, run
headless, gives the same first snapshot.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.lessons import discover
from tests.page_helpers import click_all, lesson_app, wait_idle
from tests.test_phase_page import SHRINK as PHASE_SHRINK

ROOT = Path(__file__).resolve().parents[1]
#: Lessons whose playground link (and so its Export box) shows after a run: the shrunk
#: setup of their page test, and the buttons to press.
GATED = {"l11_phase_map": (PHASE_SHRINK, ["btn_l11_train"])}


def test_seed_spread_is_numpy_median_and_quartiles():
    from app.lessons.common import seed_spread

    v = [0.003, 0.0012, 0.0051, 0.0027, 0.0040, float("nan"), 0.0019]
    f = np.array([x for x in v if np.isfinite(x)])
    q1, med, q3 = np.percentile(f, [25, 50, 75])
    assert seed_spread(v) == f"{med:.3g} [{q1:.3g} – {q3:.3g}]"
    assert seed_spread([96.0, 120.0, 80.0], lambda x: f"1/{x:.0f}") == "1/96 [1/88 – 1/108]"
    assert seed_spread([float("inf"), float("nan")]) == "NaN"


@pytest.mark.slow
@pytest.mark.lesson
@pytest.mark.parametrize("module", [m.__name__.rsplit(".", 1)[1] for m in discover()])
def test_every_lesson_offers_export_and_reproduce(module):
    """Rendered without pressing anything: at least one Export box, its command a real
    ``gradlab run`` of a config the page links to the playground, and its snippet."""
    setup, clicks = GATED.get(module, ("", []))
    at = lesson_app(module, setup)
    click_all(at, clicks)
    codes = [c.value for c in at.code]
    commands = [c for c in codes if c.startswith("gradlab run ") and "--json run.json" in c]
    snippets = [c for c in codes if c.startswith("from core.config import from_query")]
    assert commands, f"{module}: no Reproduce command among {codes}"
    assert len(snippets) == len(commands), module
    from core.cli import _parser
    from core.config import from_query

    for c, snippet in zip(commands, snippets, strict=True):
        args = _parser().parse_args(shlex.split(c)[1:])
        assert args.cmd == "run" and args.json == "run.json", c
        # the snippet's config is the command's: same steps, snapshot cadence and seed
        line = next(x for x in snippet.splitlines() if x.startswith("cfg = from_query("))
        cfg = from_query(ast.parse(line).body[0].value.args[0].value)
        assert (str(cfg.steps), str(cfg.every), str(cfg.seed)) == (
            args.steps, args.every, args.seed), (c, snippet)


@pytest.mark.browser
@pytest.mark.slow
def test_lesson_downloads_give_the_core_numbers(streamlit_server, page, tmp_path):
    from app import export as exp
    from core.presets import preset
    from core.train import run_all

    page.goto(streamlit_server, wait_until="domcontentloaded")
    page.get_by_text("Playground").first.wait_for(timeout=120_000)
    page.goto(f"{streamlit_server}/l02_nielsen_chain", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Nielsen: a chain of one-neuron layers").wait_for(
        timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Export and reproduce").last.click()
    pop = page.get_by_test_id("stPopoverBody")
    pop.wait_for(timeout=30_000)
    command = pop.locator("code").filter(has_text="gradlab run").first.inner_text()

    def download(name: str) -> bytes:
        with page.expect_download(timeout=300_000) as info:
            pop.get_by_role("button", name=name, exact=True).click()
        assert info.value.failure() is None, info.value.failure()
        return Path(info.value.path()).read_bytes()

    doc = json.loads(download("JSON"))
    rows = list(csv.DictReader(io.StringIO(download("CSV").decode())))
    cfg = preset("nielsen-4")
    assert doc["config"] == cfg.to_dict()
    want = run_all(cfg)
    assert [s["step"] for s in doc["snapshots"]] == [s.step for s in want.snapshots]
    for got, w in zip(doc["snapshots"], want.snapshots, strict=True):
        for a, b in zip(got["layers"], w.layers, strict=True):
            assert abs(a["delta_norm"] - b.delta_norm) <= 1e-6, (got["step"], a["name"])
    pairs = [(s, la) for s in doc["snapshots"] for la in s["layers"]]
    assert len(rows) == len(pairs)
    for row, (s, la) in zip(rows, pairs, strict=True):
        assert int(row["step"]) == s["step"] and row["name"] == la["name"]
        for k in exp.LAYER_COLUMNS[2:]:
            assert float(row[k]) == la[k], k
    # the Reproduce command, headless: the same first snapshot
    out = tmp_path / "run.json"
    argv = [a if a != "run.json" else str(out) for a in shlex.split(command)]
    assert argv[:2] == ["gradlab", "run"]
    done = subprocess.run([sys.executable, "-m", "core.cli", *argv[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    head = json.loads(out.read_text())["snapshots"][0]
    for a, b in zip(head["layers"], doc["snapshots"][0]["layers"], strict=True):
        assert abs(a["delta_norm"] - b["delta_norm"]) <= 1e-6, a["name"]
