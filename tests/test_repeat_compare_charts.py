"""The compare panels' titles and legends fit a half-width column (app/charts/compare.py):
a long run label is shortened at a word boundary, the prefix gets a line of its own, and
the top margin grows by exactly the lines added, so no title is clipped."""

from __future__ import annotations

import pytest

from app import charts
from app.charts import compare as cmp
from app.charts.base import TITLE_LINE_PX
from app.charts.style import TITLE_PAD_PX, TITLE_WRAP_CHARS
from core.config import RunConfig
from core.train import run_all

LONG = "A: sigmoid, depth 20, lr 0.5, init orthogonal, width 128, batch 10"
#: A half-width panel on a 1280-pixel screen holds about 35 characters of the title font.
HALF_WIDTH_CHARS = 36


@pytest.fixture(scope="module")
def snap():
    return run_all(RunConfig(depth=3, width=16, steps=0)).snapshots[0]


def test_short_label():
    assert cmp.short_label("A: relu") == "A: relu"
    s = cmp.short_label(LONG)
    assert len(s) <= cmp.LABEL_CHARS and s.endswith("…") and s.startswith("A: sigmoid")
    assert s[:-1] in LONG and not s[:-1].endswith((",", " "))       # cut between words


@pytest.mark.parametrize("build", [charts.neuron_bars, charts.activation_panel,
                                   charts.grad_hist_panel])
def test_retitle_puts_the_run_on_its_own_line_and_makes_room(build, snap):
    plain = build(snap)
    old_lines = (plain.layout.title.text or "").count("<br>") + 1
    old_t = plain.layout.margin.t
    fig = cmp.retitle(build(snap), LONG)
    lines = fig.layout.title.text.split("<br>")
    assert lines[0] == cmp.short_label(LONG)
    assert all(len(line) <= HALF_WIDTH_CHARS for line in lines), lines
    assert fig.layout.margin.t == old_t + TITLE_LINE_PX * (len(lines) - old_lines)
    assert fig.layout.title.pad.t == TITLE_PAD_PX * (len(lines) - 1)
    # the raw-dict form (the live page) gets the same title and margins
    raw = {"layout": {"title": {"text": plain.layout.title.text},
                      "margin": {"t": old_t}}}
    raw = cmp.retitle(raw, LONG)
    assert raw["layout"]["title"]["text"] == fig.layout.title.text
    assert raw["layout"]["margin"]["t"] == fig.layout.margin.t


def test_ab_titles_wrap_and_legends_are_short(snap):
    labels = (LONG[3:], "relu, depth 20, lr 0.5, init orthogonal, width 128")
    for fig in (cmp.gradient_bars_ab(snap, snap, labels),
                cmp.layer_curves_ab([snap], [snap], labels),
                cmp.loss_curves_ab([snap], [snap], labels),
                cmp.spectrum_ab(snap, snap, labels)):
        text = fig.layout.title.text
        assert all(len(x) <= HALF_WIDTH_CHARS for x in text.split("<br>")), text
        if len(text.replace("<br>", " ")) > TITLE_WRAP_CHARS:
            assert "<br>" in text, text
        for t in fig.data:
            assert len(t.name or "") <= cmp.LABEL_CHARS + 24, t.name
