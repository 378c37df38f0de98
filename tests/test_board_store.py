"""The class board's storage, the same test bodies against SQLite and a real PostgreSQL
(a throwaway cluster, ``tests/board_db.py``): concurrency, class isolation, a SIGKILLed
process, fuzzed bad input, migrations matching the models."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from board_db import postgres_cluster  # noqa: E402
from conftest import _unavailable  # noqa: E402

from app.board import store  # noqa: E402
from app.board.db import make_engine, migrate  # noqa: E402
from app.board.store import BoardError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def _pg_cluster():
    try:
        cm = postgres_cluster()
        url = cm.__enter__()
    except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        _unavailable(f"no PostgreSQL server for the board tests: {e} "
                     f"{detail.decode(errors='replace')[-300:]}")
    try:
        yield url
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def board_url(request, tmp_path) -> str:
    """A fresh, empty database URL of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'board.sqlite3'}"
    base = request.getfixturevalue("_pg_cluster")
    name = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(base)
    from sqlalchemy import text
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))   # name is ours, not user input
    admin.dispose()
    return base.replace("/postgres?", f"/{name}?")


@pytest.fixture()
def engine(board_url):
    eng = make_engine(board_url)
    migrate(eng)
    yield eng
    eng.dispose()


def summary(depth: int = 10, act: str = "tanh", steps: int = 100, **kw) -> dict:
    s = {"query": f"depth={depth}&activation={act}", "steps": steps, "loss": 0.5,
         "accuracy": 0.8, "grad_ratio": 1e-3, "diverged_at": None,
         "delta_start": [1e-3, 0.1, 1.0], "delta_end": [1e-4, 0.05, 0.9]}
    s.update(kw)
    return s


def test_post_round_trip_and_config_normalised(engine):
    c = store.create_class(engine, "Year 12 ML")
    assert len(c.teacher_token) >= 22 and len(c.code) == store.CODE_LEN   # >= 128 bits
    pid = store.post(engine, c.code.lower(), "Amy", "s1", summary(depth=30, act="relu"))
    info = store.join(engine, c.code)
    rows = store.posts(engine, info.id)
    assert [r["id"] for r in rows] == [pid]
    r = rows[0]
    assert (r["depth"], r["activation"], r["nickname"]) == (30, "relu", "Amy")
    assert "depth=30" in r["query"] and r["delta_end"] == [1e-4, 0.05, 0.9]
    assert store.latest_id(engine, info.id) == (pid, 1)


def test_200_posts_from_50_concurrent_sessions(engine):
    c = store.create_class(engine, "Big class")
    errors: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def session(i: int) -> None:
        try:
            barrier.wait()
            for k in range(4):
                pid = store.post(engine, c.code, f"student {i}", f"sess-{i}",
                                 summary(depth=1 + (i % 20), steps=k + 1), min_interval_s=0)
                with lock:
                    ids.append(pid)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=session, args=(i,)) for i in range(50)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:3]
    rows = store.posts(engine, store.join(engine, c.code).id)
    assert len(rows) == 200 and len({r["id"] for r in rows}) == 200
    assert sorted(ids) == sorted(r["id"] for r in rows)
    per = {}
    for r in rows:
        per[(r["nickname"], r["steps"])] = per.get((r["nickname"], r["steps"]), 0) + 1
    assert len(per) == 200 and set(per.values()) == {1}      # each (session, k) once


def test_classes_are_isolated(engine):
    a = store.create_class(engine, "A")
    b = store.create_class(engine, "B")
    store.post(engine, a.code, "ann", "s1", summary(depth=3))
    store.post(engine, b.code, "bob", "s2", summary(depth=40))
    ra = store.posts(engine, store.join(engine, a.code).id)
    rb = store.posts(engine, store.join(engine, b.code).id)
    assert [r["nickname"] for r in ra] == ["ann"] and [r["nickname"] for r in rb] == ["bob"]
    assert store.clear(engine, a.teacher_token) == 1          # A's teacher clears only A
    assert store.posts(engine, store.join(engine, a.code).id) == []
    assert len(store.posts(engine, store.join(engine, b.code).id)) == 1
    with pytest.raises(BoardError):                           # a projector link cannot act
        store.clear(engine, a.view_token)
    assert store.by_token(engine, a.view_token, teacher=False).code == a.code


def test_rate_limit_cap_and_close(engine, monkeypatch):
    c = store.create_class(engine, "C")
    store.post(engine, c.code, "ann", "s1", summary())
    with pytest.raises(BoardError, match="One post every"):
        store.post(engine, c.code, "ann", "s1", summary())
    store.post(engine, c.code, "bob", "s2", summary())        # another session may
    monkeypatch.setattr(store, "MAX_POSTS_PER_CLASS", 2)
    with pytest.raises(BoardError, match="full"):
        store.post(engine, c.code, "cy", "s3", summary())
    monkeypatch.setattr(store, "MAX_POSTS_PER_CLASS", 2000)
    store.set_closed(engine, c.teacher_token)
    with pytest.raises(BoardError, match="closed"):
        store.post(engine, c.code, "cy", "s3", summary())
    assert store.counts(engine)["posts"] == 2


def test_payloads_are_stored_verbatim_as_data(engine):
    c = store.create_class(engine, "D")
    nasty = ["Robert'); DROP TABLE board_post;--", "<script>alert(1)</script>",
             "**bold** [x](javascript:alert(1))"]
    for i, n in enumerate(nasty):
        store.post(engine, c.code, n, f"s{i}", summary())
    rows = store.posts(engine, store.join(engine, c.code).id)
    assert [r["nickname"] for r in rows] == nasty
    assert store.counts(engine) == {"classes": 1, "posts": 3}


_bad_text = st.one_of(st.text(min_size=41, max_size=5000), st.just(""), st.just("   "),
                      st.integers(), st.none(), st.lists(st.text(), max_size=3),
                      st.text(alphabet="\x00\x01\x1b\n", min_size=1, max_size=5))
_nested = st.recursive(st.none() | st.floats() | st.text(max_size=20),
                       lambda s: st.lists(s, max_size=3) | st.dictionaries(
                           st.text(max_size=5), s, max_size=3), max_leaves=10)
_bad_num = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf),
                     st.text(max_size=10), st.just(True), _nested.filter(
                         lambda x: isinstance(x, (list, dict))))
_bad_summary = st.one_of(
    st.builds(lambda v: summary(loss=v), _bad_num),
    st.builds(lambda v: summary(accuracy=v), _bad_num | st.just(1.5)),
    st.builds(lambda v: summary(grad_ratio=v), _bad_num | st.just(-1.0)),
    st.builds(lambda v: summary(steps=v), _bad_num | st.just(-5) | st.just(10**12)),
    st.builds(lambda v: summary(delta_end=v), st.lists(_bad_num, min_size=1, max_size=3)
              | st.just([0.1] * 5000)),
    st.builds(lambda v: summary(query=v), st.one_of(
        st.text(min_size=2001, max_size=3000), st.just("depth=0"), st.just("depth=abc"),
        st.just("'; DROP TABLE board_post;--=1"), st.just("<b>x</b>=1"),
        _nested.filter(lambda x: not isinstance(x, str) and x is not None))),
    st.builds(lambda k: {**summary(), k: 1}, st.text(min_size=1, max_size=30).filter(
        lambda k: k not in summary())),
    _nested.filter(lambda x: not isinstance(x, dict)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_bad_posts_refused_and_change_nothing(engine, data):
    c = getattr(engine, "_board_fuzz_class", None)
    if c is None:
        c = engine._board_fuzz_class = store.create_class(engine, "Fuzz")
    before = store.counts(engine)
    kind = data.draw(st.sampled_from(["summary", "nick", "code", "token"]))
    with pytest.raises(BoardError) as ei:
        if kind == "summary":
            store.post(engine, c.code, "ann", "s", data.draw(_bad_summary), min_interval_s=0)
        elif kind == "nick":
            store.post(engine, c.code, data.draw(_bad_text), "s", summary(), min_interval_s=0)
        elif kind == "code":
            bad = data.draw(st.one_of(_bad_text, st.text(max_size=8), st.just("ZZZZZZ")))
            store.post(engine, bad, "ann", "s", summary(), min_interval_s=0)
        else:
            tok = data.draw(st.one_of(st.none(), st.just(""), st.text(max_size=80),
                                      st.just("A" * 32)))
            data.draw(st.sampled_from([store.clear, store.set_closed]))(engine, tok)
    msg = str(ei.value)
    assert msg and len(msg) < 300 and msg[0].isupper()
    assert store.counts(engine) == before
    assert not store.join(engine, c.code).closed


_WRITER = """
import sys, time
from app.board import store
from app.board.db import get_engine
e = get_engine(sys.argv[1])
c = store.create_class(e, 'Restart')
print(c.code, c.teacher_token, flush=True)
for i in range(int(sys.argv[2])):
    store.post(e, c.code, f'st{i}', f's{i}', {'query': f'depth={i + 1}', 'steps': i},
               min_interval_s=0)
print('posted', flush=True)
time.sleep(600)
"""


def test_board_survives_sigkill(board_url):
    p = subprocess.Popen([sys.executable, "-c", _WRITER, board_url, "25"], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True, env={**os.environ,
                                                                  "PYTHONPATH": str(ROOT)})
    try:
        code, token = p.stdout.readline().split()
        assert p.stdout.readline().strip() == "posted"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    assert p.returncode == -signal.SIGKILL
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from app.board import store; "
         "from app.board.db import get_engine; e = get_engine(sys.argv[1]); "
         "i = store.by_token(e, sys.argv[3]); "
         "print(len(store.posts(e, store.join(e, sys.argv[2]).id)), i.code)",
         board_url, code, token], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["25", code]


def test_concurrent_migrations_and_models_match(board_url):
    """Four processes migrating one fresh database at once: all succeed, one schema."""
    procs = [subprocess.Popen([sys.executable, "-c",
                               "import sys; from app.board.db import get_engine; "
                               "get_engine(sys.argv[1])", board_url], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
             for _ in range(4)]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read()[-2000:]
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.board.models import Base
    eng = make_engine(board_url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    eng.dispose()
    assert [d for d in diff if not (d[0] == "remove_table"
                                    and d[1].name == "board_alembic_version")] == []


def test_summary_from_snapshots_is_what_a_post_accepts(engine):
    """The playground's summary (first and last snapshot) validates and stores: the ratio
    is layer 1's delta_norm over the output layer's; NaN layers become missing values."""
    from core.snapshot import LayerStats, Snapshot

    def snap(step: int, norms: list[float], loss: float) -> Snapshot:
        layers = [LayerStats(i + 1, f"hidden{i + 1}", 1.0, 1.0, n, [], 0.0, 1.0, 0.0, 0.0)
                  for i, n in enumerate(norms)]
        return Snapshot(step=step, loss=loss, train_accuracy=0.9, test_accuracy=0.75,
                        test_loss=0.6, layers=layers)

    s = store.summary_from_snapshots("depth=2", snap(0, [1e-3, 0.5, 1.0], 1.1),
                                     snap(200, [2e-4, math.nan, 0.4], 0.3), 200, None)
    assert s["grad_ratio"] == pytest.approx(5e-4) and s["delta_end"][1] is None
    assert (s["accuracy"], s["loss"], s["steps"]) == (0.75, 0.3, 200)
    c = store.create_class(engine, "S")
    store.post(engine, c.code, "ann", "s", s)
    (row,) = store.posts(engine, store.join(engine, c.code).id)
    assert row["grad_ratio"] == pytest.approx(5e-4) and row["delta_start"][0] == 1e-3
