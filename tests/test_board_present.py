"""The class board's view helpers (``app.board.present``) on plain posts, and the student's
post built from a real run of the core (``app.views.class_join.summary_of``): filters, the
CSV (and its guard against spreadsheet formulas), the scatter's data, escaping, links."""

from __future__ import annotations

import csv
import io
import math
from types import SimpleNamespace

import pytest

from app.board import present, store
from app.board.present import (
    CUSTOM,
    csv_text,
    filter_options,
    filter_posts,
    md_escape,
    nearest_preset,
    scatter_figure,
    scatter_points,
    table_rows,
)
from core.config import from_query
from core.presets import preset


def post(i: int, nick: str = "Ada", depth: int = 6, act: str = "sigmoid",
         init: str = "xavier_normal", ratio: float | None = 1e-3, **kw) -> dict:
    cfg = from_query(f"depth={depth}&activation={act}&init={init}")
    p = {"id": i, "nickname": nick, "query": cfg.to_query(), "depth": depth,
         "activation": act, "init": init, "steps": 100, "loss": 0.5, "accuracy": 0.75,
         "grad_ratio": ratio, "diverged_at": None, "delta_start": [1e-3, 0.5],
         "delta_end": [1e-4, 0.1], "created": None}
    p.update(kw)
    return p


POSTS = [post(1, "Ada", 4, "sigmoid"), post(2, "Bob", 20, "relu", "he", 0.9),
         post(3, "Cy", 20, "sigmoid", ratio=1e-7), post(4, "Di", 8, "tanh", ratio=None)]


# ---- presets, filters -----------------------------------------------------------------------


def test_nearest_preset_names_a_preset_and_its_small_variants() -> None:
    q = preset("sigmoid-deep").to_query()
    assert nearest_preset(q) == "sigmoid-deep"
    assert nearest_preset(preset("sigmoid-deep").replace(seed=7, steps=50).to_query()) \
        == "sigmoid-deep"                               # seed and steps do not count
    assert nearest_preset(preset("relu-he").replace(lr=0.5).to_query()) == "relu-he"
    far = preset("relu-he").replace(depth=3, width=7, lr=0.7, activation="elu").to_query()
    assert nearest_preset(far) == CUSTOM
    assert nearest_preset("depth=notanumber") == CUSTOM


def test_filters_each_and_together() -> None:
    ids = lambda ps: [p["id"] for p in ps]  # noqa: E731
    assert ids(filter_posts(POSTS)) == [1, 2, 3, 4]
    assert ids(filter_posts(POSTS, activations=["sigmoid"])) == [1, 3]
    assert ids(filter_posts(POSTS, inits=["he"])) == [2]
    assert ids(filter_posts(POSTS, depth=(5, 20))) == [2, 3, 4]
    assert ids(filter_posts(POSTS, activations=["sigmoid"], depth=(5, 20))) == [3]
    assert ids(filter_posts(POSTS, presets=[nearest_preset(POSTS[1]["query"])])) \
        == [p["id"] for p in POSTS if nearest_preset(p["query"])
            == nearest_preset(POSTS[1]["query"])]
    opts = filter_options(POSTS)
    assert opts["activation"] == ["relu", "sigmoid", "tanh"]
    assert opts["init"] == ["he", "xavier_normal"]
    assert opts["depth"] == [4, 20]
    assert filter_options([])["depth"] == []


def test_table_rows_newest_first_with_a_working_run_link() -> None:
    rows = table_rows(POSTS, "http://host/app/")
    assert [r["student"] for r in rows] == ["Di", "Cy", "Bob", "Ada"]
    link = rows[-1]["run"]
    assert link.startswith("http://host/app/?")
    assert from_query(link.split("?", 1)[1]) == from_query(POSTS[0]["query"])
    assert present.app_root("http://h:1/board?teacher=x") == "http://h:1/"
    assert present.app_root("https://h/gl/board") == "https://h/gl/"
    assert present.run_link("http://h/", "") == "http://h/"


# ---- CSV ------------------------------------------------------------------------------------


def test_csv_round_trips_the_numbers_and_defuses_formulas() -> None:
    posts = [post(1, "=HYPERLINK(\"http://evil\")"), post(2, "+1", ratio=None),
             post(3, "@SUM(A1)", diverged_at=42), post(4, "Zoë, \"the\" best")]
    rows = list(csv.DictReader(io.StringIO(csv_text(posts))))
    assert [r["student"] for r in rows] == ["'=HYPERLINK(\"http://evil\")", "'+1",
                                            "'@SUM(A1)", "Zoë, \"the\" best"]
    assert float(rows[0]["grad_ratio"]) == 1e-3
    assert math.isclose(float(rows[0]["log10_grad_ratio"]), -3.0)
    assert rows[1]["grad_ratio"] == "" and rows[1]["log10_grad_ratio"] == ""
    assert rows[2]["diverged_at"] == "42"
    assert [float(x) for x in rows[0]["delta_norm_end"].split()] == [1e-4, 0.1]
    assert from_query(rows[0]["settings"]) == from_query(posts[0]["query"])
    assert list(rows[0]) == list(present.CSV_COLUMNS)


# ---- the scatter ----------------------------------------------------------------------------


def test_scatter_one_trace_per_activation_shapes_by_init_and_escaped_hover() -> None:
    posts = POSTS + [post(5, "<img src=x onerror=alert(1)>", 4, "relu", "he", 2.0)]
    fig = scatter_figure(posts)
    data = [t for t in fig.data if t.legendgroup == "activation"]
    assert {t.name: len(t.x) for t in data} == {"relu": 2, "sigmoid": 2}   # tanh: no ratio
    sig = next(t for t in data if t.name == "sigmoid")
    assert list(sig.x) == [4, 20] and list(sig.y) == [1e-3, 1e-7]
    relu = next(t for t in data if t.name == "relu")
    assert len(set(relu.marker.symbol)) == 1          # both "he": one shape
    assert set(sig.marker.symbol) != set(relu.marker.symbol)
    keys = {t.name for t in fig.data if t.legendgroup == "init"}
    assert keys == {"he", "xavier_normal"}
    hover = " ".join(relu.hovertext)
    assert "<img" not in hover and "&lt;img src=x onerror=alert(1)&gt;" in hover
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text
    assert fig.layout.xaxis.title.text == present.SCATTER_X
    lo, hi = fig.layout.yaxis.range
    assert lo <= -7 and hi >= 0                      # every marker and the line at 1 fit
    assert len(scatter_points(posts)) == 4


def test_scatter_colours_are_fixed_per_activation() -> None:
    a = scatter_figure([post(1, act="tanh")])
    b = scatter_figure([post(1, act="sigmoid"), post(2, act="tanh")])
    col = lambda f: {t.name: t.marker.color for t in f.data if t.legendgroup  # noqa: E731
                     == "activation"}
    assert col(a)["tanh"] == col(b)["tanh"]


def test_scatter_depth_axis_goes_log_when_depths_span_decades() -> None:
    assert scatter_figure([post(1, depth=2), post(2, depth=100)]).layout.xaxis.type == "log"
    assert scatter_figure([post(1, depth=2), post(2, depth=10)]).layout.xaxis.type != "log"


def test_empty_board_figure_says_so() -> None:
    fig = scatter_figure([post(1, ratio=None)])
    assert not [t for t in fig.data if t.legendgroup == "activation"]
    assert any("No runs" in a.text for a in fig.layout.annotations)


def test_md_escape_leaves_no_markdown_to_render() -> None:
    s = md_escape("**bold** [x](javascript:alert(1)) :material/home: $x$ <b>hi</b>\n# h")
    assert "\n" not in s
    i = 0
    while i < len(s):                    # every mark that Markdown acts on is escaped
        if s[i] == "\\":
            i += 2
            continue
        assert s[i] not in "*[]()<>:$#_`", (i, s)
        i += 1
    assert s.replace("\\", "") == ("**bold** [x](javascript:alert(1)) :material/home: $x$ "
                                   "<b>hi</b> # h")


# ---- the student's post, from a real run -----------------------------------------------------


def test_summary_of_a_real_run_is_a_valid_post() -> None:
    from app.live import light
    from app.views.class_join import summary_of
    from core.train import run

    cfg = from_query("depth=5&width=16&steps=30&every=10&activation=sigmoid&seed=3")
    snaps = list(run(cfg))
    view = SimpleNamespace(history=tuple(light(s) for s in snaps), latest=snaps[-1],
                           diverged=None, config=cfg, step=snaps[-1].step)
    s = summary_of(view)
    row = store.validate_summary(s)
    assert from_query(row["query"]) == cfg
    assert row["steps"] == 30 and row["depth"] == 5 and row["activation"] == "sigmoid"
    first = [la.delta_norm for la in snaps[0].layers]
    last = [la.delta_norm for la in snaps[-1].layers]
    assert row["delta_start"] == pytest.approx(first, rel=1e-12)
    assert row["delta_end"] == pytest.approx(last, rel=1e-12)
    assert row["grad_ratio"] == pytest.approx(last[0] / last[-1], rel=1e-12)
    assert len(row["delta_end"]) == 6                # 5 hidden layers + the output layer
    assert set(s) == {"query", "steps", "loss", "accuracy", "grad_ratio", "diverged_at",
                      "delta_start", "delta_end"}   # a summary, never the history
    empty = SimpleNamespace(history=(), latest=None, diverged=None, config=cfg, step=0)
    assert summary_of(empty) is None
