"""The class board's pages under Streamlit's AppTest, on a fresh SQLite file and a fresh
PostgreSQL database per test (the fixtures of test_board_store.py): the teacher's
board (create, links, live table, filters, clear, close, bad links), the projector view
(no controls), and the student's widget (join by link or code, share, auto-post once,
a closed class, a bad code)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_board_store as _same_databases  # noqa: E402

from app.board import db, store  # noqa: E402

# The SQLite / PostgreSQL fixtures of the store's tests: the same databases here.
_pg_cluster = _same_databases._pg_cluster
board_url = _same_databases.board_url

ROOT = Path(__file__).resolve().parent.parent
BOARD = str(ROOT / "app" / "views" / "board.py")


@pytest.fixture()
def engine(board_url, monkeypatch):
    """A fresh board database of each kind (SQLite file, throwaway PostgreSQL), and the
    pages pointed at it through GRADLAB_DATABASE_URL."""
    monkeypatch.setenv("GRADLAB_DATABASE_URL", board_url)
    return db.get_engine(board_url)


def summary(depth: int = 6, act: str = "sigmoid", ratio: float = 1e-3) -> dict:
    return {"query": f"depth={depth}&activation={act}", "steps": 50, "loss": 0.6,
            "accuracy": 0.7, "grad_ratio": ratio, "diverged_at": None,
            "delta_start": [1e-3, 1.0], "delta_end": [1e-4, 0.1]}


def _board(**params) -> AppTest:
    at = AppTest.from_file(BOARD, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + \
        [w.value for w in at.warning] + [i.value for i in at.info] + \
        [t.value for t in at.title] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def _rows(at: AppTest) -> int:
    frames = [d for d in at.dataframe if getattr(d, "key", None) == "bd_table"] or \
        list(at.dataframe)
    return len(frames[0].value)


# ---- the teacher ----------------------------------------------------------------------------


def test_create_a_class_gives_a_private_board(engine) -> None:
    at = _board()
    at.text_input(key="bd_name").set_value("   ").run()
    at.button(key="bd_create").click().run()
    assert "Type a class name" in _text(at)
    assert "teacher" not in at.query_params
    at.text_input(key="bd_name").set_value("Year 12 **ML**").run()
    at.button(key="bd_create").click().run()
    token = at.query_params["teacher"]
    token = token[0] if isinstance(token, list) else token
    info = store.by_token(engine, token)
    assert info.name == "Year 12 **ML**"
    at.run()
    assert "Year 12 \\*\\*ML\\*\\*" in at.title[0].value          # escaped, not bold
    codes = [c.value for c in at.code]
    assert any(c.endswith(f"?class={info.code}") for c in codes)
    assert any("/board?view=" in c for c in codes)
    assert any(c.endswith(f"/board?teacher={token}") for c in codes)
    assert "0 runs shared" in _text(at)


def test_board_lists_posts_filters_clears_and_closes(engine) -> None:
    new = store.create_class(engine, "Physics")
    for i, (d, a) in enumerate([(4, "sigmoid"), (10, "relu"), (20, "tanh")]):
        store.post(engine, new.code, f"s{i}", f"sess{i}", summary(d, a))
    other = store.create_class(engine, "Other class")
    store.post(engine, other.code, "x", "sx", summary())
    at = _board(teacher=new.teacher_token)
    assert "3 runs shared" in _text(at) and _rows(at) == 3
    at.multiselect(key="bd_f_act").set_value(["relu"]).run()
    assert "1 run shared (of 3)" in _text(at) and _rows(at) == 1
    at.multiselect(key="bd_f_act").set_value([]).run()
    at.toggle(key="bd_closed").set_value(True).run()
    assert store.join(engine, new.code).closed
    with pytest.raises(store.BoardError, match="closed"):
        store.post(engine, new.code, "late", "sess9", summary())
    at.toggle(key="bd_auto").set_value(True).run()
    assert store.join(engine, new.code).auto_post
    at.button(key="bd_clear").click().run()
    assert "Cleared 3 runs" in _text(at)
    assert "0 runs shared" in _text(at)
    assert store.latest_id(engine, store.join(engine, other.code).id)[1] == 1   # untouched


def test_projector_is_read_only_and_bad_links_say_so(engine) -> None:
    new = store.create_class(engine, "Maths")
    store.post(engine, new.code, "Ada", "s1", summary())
    at = _board(view=new.view_token)
    assert "1 run shared" in _text(at) and _rows(at) == 1
    keys = {b.key for b in at.button}
    assert "bd_clear" not in keys and not at.toggle
    assert not any("teacher=" in c.value for c in at.code)
    assert any(c.value.endswith(f"?class={new.code}") for c in at.code)
    # The projector token does not open the teacher's board, nor does a made-up one.
    for params in ({"teacher": new.view_token}, {"teacher": "x" * 32}, {"view": "short"}):
        at = _board(**params)
        assert "not valid" in _text(at), params
        assert not at.dataframe


# ---- the student ----------------------------------------------------------------------------

STUDENT = """
import streamlit as st
from types import SimpleNamespace
from app.live import light
from app.views import class_join
from core.config import from_query
from core.train import run

CFG = from_query("depth=3&width=8&steps=20&every=10&activation=tanh")

@st.cache_resource
def snaps():
    return list(run(CFG))

class FakeTrainer:
    def view(self):
        s = snaps()
        status = st.session_state.get("fake_status", "finished")
        return SimpleNamespace(history=tuple(light(x) for x in s), latest=s[-1],
                               diverged=None, config=CFG, step=s[-1].step, status=status,
                               epoch=st.session_state.get("fake_epoch", 1))

class_join.adopt_class_link()
class_join.render_class_widget(FakeTrainer())
"""


def _student(code: str | None = None) -> AppTest:
    at = AppTest.from_string(STUDENT, default_timeout=60)
    if code is not None:
        at.query_params["class"] = code
    return at.run()


def _all_text(at: AppTest) -> str:
    return _text(at) + "\n".join(str(s.value) for s in at.success)


def test_student_joins_by_link_and_shares(engine) -> None:
    new = store.create_class(engine, "Bio")
    at = _student(new.code.lower())
    assert "class" not in at.query_params                  # taken out of the URL
    assert "Bio" in _all_text(at)
    at.text_input(key="cj_nick").set_value("  Ada   L ").run()
    at.button(key="cj_join").click().run()
    assert "You joined the class “Bio” as Ada L" in _all_text(at)
    at.button(key="cj_share").click().run()
    assert "Shared with the class" in _all_text(at)
    rows = store.posts(engine, store.join(engine, new.code).id)
    assert [(r["nickname"], r["depth"], r["activation"], r["steps"]) for r in rows] == [
        ("Ada L", 3, "tanh", 20)]
    at.button(key="cj_share").click().run()                 # at once again: rate-limited
    assert "One post every" in _all_text(at)
    assert len(store.posts(engine, store.join(engine, new.code).id)) == 1
    at.button(key="cj_leave").click().run()
    assert "You left the class" in _all_text(at)


def test_student_joins_by_code_and_auto_posts_once(engine) -> None:
    new = store.create_class(engine, "Chem", auto_post=True)
    cid = store.join(engine, new.code).id
    at = _student()
    at.session_state["fake_status"] = "running"
    at.text_input(key="cj_code").set_value("nope").run()
    at.text_input(key="cj_nick").set_value("Bo").run()
    at.button(key="cj_join").click().run()
    assert "not a class code" in _all_text(at)
    at.text_input(key="cj_code").set_value(new.code).run()
    at.button(key="cj_join").click().run()
    assert store.latest_id(engine, cid)[1] == 0            # still running: nothing posted
    at.session_state["fake_status"] = "finished"
    at.run()
    assert "shared with the class automatically" in _all_text(at)
    at.run()
    at.run()
    assert store.latest_id(engine, cid)[1] == 1            # once per finished run


def test_closed_class_and_wrong_link(engine) -> None:
    new = store.create_class(engine, "Closed one")
    store.set_closed(engine, new.teacher_token, True)
    at = _student(new.code)
    at.text_input(key="cj_nick").set_value("Cat").run()
    at.button(key="cj_join").click().run()
    assert "It is closed" in _all_text(at)
    assert at.button(key="cj_share").disabled
    at = _student("ZZZZZZ")
    assert "No class has the code ZZZZZZ" in _all_text(at)
    at = _student("<script>")
    assert "not a class code" in _all_text(at)
