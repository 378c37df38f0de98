"""The class board's operations: create a class, join it, post a run's summary, read the
board, clear and close. Every input is validated and bounded here (the pages only call
these), every query is parameterised (SQLAlchemy statements, never string-built SQL), and a
failure is a ``BoardError`` with a sentence for the user; nothing changes when one is raised.
"""

from __future__ import annotations

import math
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select, update

from app.board.models import ClassRoom, Post
from core.config import ConfigError, from_query

CODE_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "01IO")
CODE_LEN = 6                 # 32^6 ~ 1e9 codes: short to type, hard to guess in a lesson
TEACHER_TOKEN_BYTES = 24     # 192 bits (>= 128 required)
NICK_MAX = 40
NAME_MAX = 80
QUERY_MAX = 2000
LAYERS_MAX = 1001            # depth 1000 + the output layer
MAX_POSTS_PER_CLASS = 2000
MIN_POST_INTERVAL_S = 5.0    # one post per session per this many seconds
ABS_MAX = 1e300              # finite and storable in any float column


class BoardError(ValueError):
    """A request the board refuses, with a message a student or teacher can act on."""


@dataclass(frozen=True)
class ClassInfo:
    """What a student or teacher page knows of a class (never the teacher token)."""

    id: int
    code: str
    name: str
    auto_post: bool
    closed: bool


@dataclass(frozen=True)
class NewClass:
    """A created class: the code for students, the tokens for the teacher's links."""

    code: str
    teacher_token: str
    view_token: str
    name: str


# ---- validation --------------------------------------------------------------------------

def _text(raw: Any, what: str, max_len: int) -> str:
    if not isinstance(raw, str):
        raise BoardError(f"The {what} must be text.")
    s = " ".join(raw.split())            # no newlines / control spacing
    if any(ord(c) < 32 or ord(c) == 127 for c in s):
        raise BoardError(f"The {what} contains control characters.")
    if not s:
        raise BoardError(f"Type a {what}.")
    if len(s) > max_len:
        raise BoardError(f"The {what} is too long (at most {max_len} characters).")
    return s


def check_nickname(raw: Any) -> str:
    """A nickname as it will be stored (spaces collapsed, at most ``NICK_MAX``), or
    BoardError: what a student's page checks when they join, before any post."""
    return _text(raw, "nickname", NICK_MAX)


def check_class_name(raw: Any) -> str:
    """A class name as it will be stored (at most ``NAME_MAX``), or BoardError."""
    return _text(raw, "class name", NAME_MAX)


def normalise_code(raw: Any) -> str:
    """A join code as stored (upper case, no spaces), or BoardError."""
    if not isinstance(raw, str):
        raise BoardError("The class code must be text.")
    code = raw.strip().upper().replace(" ", "").replace("-", "")
    if len(code) != CODE_LEN or any(c not in CODE_ALPHABET for c in code):
        raise BoardError(f"That is not a class code: '{code[:12]}' (class codes are {CODE_LEN} "
                         "letters and digits, e.g. K7QXPA).")
    return code


def _token(raw: Any) -> str:
    if not isinstance(raw, str) or not 16 <= len(raw) <= 64 or not raw.replace(
            "-", "").replace("_", "").isalnum():
        raise BoardError("This teacher link is not valid (the token is missing or damaged).")
    return raw


def _num(raw: Any, what: str, *, none_ok: bool = True, lo: float = -ABS_MAX,
         hi: float = ABS_MAX) -> float | None:
    if raw is None and none_ok:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise BoardError(f"{what} must be a number.")
    x = float(raw)
    if not math.isfinite(x) or not lo <= x <= hi:
        raise BoardError(f"{what} must be a finite number between {lo:g} and {hi:g}.")
    return x


def _int(raw: Any, what: str, lo: int, hi: int, none_ok: bool = False) -> int | None:
    if raw is None and none_ok:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
        raise BoardError(f"{what} must be a whole number from {lo} to {hi}.")
    return int(raw)


def _norms(raw: Any, what: str) -> list[float | None]:
    if not isinstance(raw, (list, tuple)) or len(raw) > LAYERS_MAX:
        raise BoardError(f"The per-layer {what} must be a list of at most {LAYERS_MAX} "
                         "numbers.")
    return [_num(x, f"Each {what}", lo=0.0) for x in raw]


def validate_summary(summary: Any) -> dict[str, Any]:
    """A post's summary checked and bounded: the config (a share-link query, parsed by
    ``RunConfig``), steps, final loss / accuracy, per-layer delta_norm at start and end,
    the first/last gradient ratio and diverged-at. Unknown keys are refused."""
    if not isinstance(summary, Mapping):
        raise BoardError("A post must be a summary of a run.")
    allowed = {"query", "steps", "loss", "accuracy", "grad_ratio", "diverged_at",
               "delta_start", "delta_end"}
    extra = [str(k)[:20] for k in summary if k not in allowed]
    if extra:
        raise BoardError(f"Unknown field(s) in the post: {', '.join(extra[:3])}.")
    q = summary.get("query", "")
    if not isinstance(q, str) or len(q) > QUERY_MAX:
        raise BoardError(f"The run's settings must be a share-link query of at most "
                         f"{QUERY_MAX} characters.")
    try:
        cfg = from_query(q)
    except ConfigError as e:
        raise BoardError(f"The run's settings are not valid: {e}") from None
    except Exception:  # noqa: BLE001 - any parse failure is the poster's problem
        raise BoardError("The run's settings could not be read.") from None
    steps = _int(summary.get("steps"), "Steps", 0, 10_000_000)
    return {
        "query": cfg.to_query(), "depth": cfg.depth, "activation": cfg.activation,
        "init": cfg.init, "steps": steps,
        "loss": _num(summary.get("loss"), "The final loss"),
        "accuracy": _num(summary.get("accuracy"), "The accuracy", lo=0.0, hi=1.0),
        "grad_ratio": _num(summary.get("grad_ratio"), "The gradient ratio", lo=0.0),
        "diverged_at": _int(summary.get("diverged_at"), "Diverged-at", 0, 10_000_000,
                            none_ok=True),
        "delta_start": _norms(summary.get("delta_start", []), "delta_norm at the start"),
        "delta_end": _norms(summary.get("delta_end", []), "delta_norm at the end"),
    }


def summary_from_snapshots(query: str, first: Any, last: Any, steps: int,
                           diverged_at: int | None) -> dict[str, Any]:
    """A post's summary from a run's first and last good snapshots (``core.snapshot``
    objects; duck-typed so that this module stays torch-free): the gradient ratio is the
    first hidden layer's delta_norm over the output layer's at the last snapshot."""
    def norms(s: Any) -> list[float | None]:
        out = []
        for la in (s.layers if s is not None else [])[:LAYERS_MAX]:
            v = float(la.delta_norm)
            out.append(v if math.isfinite(v) else None)
        return out

    end = norms(last)
    ratio = None
    if len(end) >= 2 and end[0] is not None and end[-1]:
        r = end[0] / end[-1]
        ratio = r if math.isfinite(r) else None

    def fin(x: Any) -> float | None:
        return float(x) if x is not None and math.isfinite(float(x)) else None

    acc = getattr(last, "test_accuracy", None)
    if acc is None:
        acc = getattr(last, "train_accuracy", None)
    return {"query": query, "steps": int(steps), "loss": fin(getattr(last, "loss", None)),
            "accuracy": fin(acc), "grad_ratio": ratio, "diverged_at": diverged_at,
            "delta_start": norms(first), "delta_end": end}


# ---- operations --------------------------------------------------------------------------

def create_class(engine: Engine, name: Any, *, auto_post: bool = False) -> NewClass:
    """A new class with a fresh join code and teacher / projector tokens (``secrets``)."""
    nm = _text(name, "class name", NAME_MAX)
    for _ in range(20):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))
        with engine.begin() as conn:
            if conn.execute(select(ClassRoom.id).where(ClassRoom.code == code)).first():
                continue
            tok, view = (secrets.token_urlsafe(TEACHER_TOKEN_BYTES),
                         secrets.token_urlsafe(TEACHER_TOKEN_BYTES))
            conn.execute(ClassRoom.__table__.insert().values(
                code=code, teacher_token=tok, view_token=view, name=nm,
                auto_post=bool(auto_post), closed=False))
            return NewClass(code, tok, view, nm)
    raise BoardError("Could not find a free class code; try again.")


def _info(row: Any) -> ClassInfo:
    return ClassInfo(row.id, row.code, row.name, bool(row.auto_post), bool(row.closed))


_COLS = (ClassRoom.id, ClassRoom.code, ClassRoom.name, ClassRoom.auto_post, ClassRoom.closed)


def join(engine: Engine, code: Any) -> ClassInfo:
    """The class a student joins with ``code``, or BoardError."""
    c = normalise_code(code)
    with engine.connect() as conn:
        row = conn.execute(select(*_COLS).where(ClassRoom.code == c)).first()
    if row is None:
        raise BoardError(f"No class has the code {c}. Check it with your teacher.")
    return _info(row)


def by_token(engine: Engine, token: Any, *, teacher: bool = True) -> ClassInfo:
    """The class of a teacher token (``teacher``) or a projector token, or BoardError."""
    t = _token(token)
    col = ClassRoom.teacher_token if teacher else ClassRoom.view_token
    with engine.connect() as conn:
        row = conn.execute(select(*_COLS).where(col == t)).first()
    if row is None:
        raise BoardError("This board link is not valid (no class has it).")
    return _info(row)


def view_token(engine: Engine, teacher_token: Any) -> str:
    """The projector (read-only) token of the teacher's class: shown only on the board that
    the teacher token opens."""
    t = _token(teacher_token)
    with engine.connect() as conn:
        row = conn.execute(select(ClassRoom.view_token)
                           .where(ClassRoom.teacher_token == t)).first()
    if row is None:
        raise BoardError("This board link is not valid (no class has it).")
    return str(row[0])


def post(engine: Engine, code: Any, nickname: Any, session: Any, summary: Any, *,
         min_interval_s: float = MIN_POST_INTERVAL_S, now: float | None = None) -> int:
    """Store one run's summary in the class ``code``; returns the post's id.

    Refused (BoardError, nothing stored) when a field is invalid, the class is closed or
    full, or this session posted less than ``min_interval_s`` ago."""
    c = normalise_code(code)
    nick = _text(nickname, "nickname", NICK_MAX)
    if not isinstance(session, str) or not 1 <= len(session) <= 64:
        raise BoardError("This browser session has no valid id; reload the page.")
    row = validate_summary(summary)
    with engine.begin() as conn:
        cls = conn.execute(select(*_COLS).where(ClassRoom.code == c)).first()
        if cls is None:
            raise BoardError(f"No class has the code {c}. Check it with your teacher.")
        if cls.closed:
            raise BoardError("This class is closed: the teacher no longer takes posts.")
        n = conn.execute(select(func.count()).select_from(Post)
                         .where(Post.class_id == cls.id)).scalar_one()
        if n >= MAX_POSTS_PER_CLASS:
            raise BoardError(f"This class's board is full ({MAX_POSTS_PER_CLASS} runs); "
                             "ask the teacher to clear it.")
        if min_interval_s > 0:
            last = conn.execute(select(func.max(Post.created)).where(
                Post.class_id == cls.id, Post.session == session)).scalar_one()
            if last is not None:
                t = now if now is not None else time.time()
                ts = last.timestamp() if last.tzinfo else last.replace(
                    tzinfo=__import__("datetime").timezone.utc).timestamp()
                if t - ts < min_interval_s:
                    raise BoardError(f"One post every {min_interval_s:g} s, please: wait a "
                                     "moment and share again.")
        res = conn.execute(Post.__table__.insert().values(
            class_id=cls.id, nickname=nick, session=session, **row))
        return int(res.inserted_primary_key[0])


def latest_id(engine: Engine, class_id: int) -> tuple[int, int]:
    """(max post id, post count) of a class: what the board polls, cheaply."""
    with engine.connect() as conn:
        r = conn.execute(select(func.coalesce(func.max(Post.id), 0), func.count())
                         .where(Post.class_id == class_id)).one()
    return int(r[0]), int(r[1])


POST_FIELDS = ("id", "nickname", "query", "depth", "activation", "init", "steps", "loss",
               "accuracy", "grad_ratio", "diverged_at", "delta_start", "delta_end", "created")


def posts(engine: Engine, class_id: int, *, layers: bool = True) -> list[dict[str, Any]]:
    """Every post of one class, oldest first (only that class's). ``layers=False`` leaves
    out the per-layer lists (``delta_start`` / ``delta_end`` come back empty): what a live
    board needs, a fraction of the bytes for deep nets."""
    fields = POST_FIELDS if layers else tuple(
        f for f in POST_FIELDS if f not in ("delta_start", "delta_end"))
    cols = [getattr(Post, f) for f in fields]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).where(Post.class_id == class_id)
                            .order_by(Post.id)).all()
    out = [dict(zip(fields, r, strict=True)) for r in rows]
    if not layers:
        for p in out:
            p["delta_start"] = p["delta_end"] = []
    return out


def clear(engine: Engine, teacher_token: Any) -> int:
    """Delete every post of the teacher's class; returns how many."""
    cls = by_token(engine, teacher_token)
    with engine.begin() as conn:
        return int(conn.execute(delete(Post).where(Post.class_id == cls.id)).rowcount or 0)


def set_closed(engine: Engine, teacher_token: Any, closed: bool = True) -> None:
    """Close (or reopen) the teacher's class: a closed class takes no posts."""
    cls = by_token(engine, teacher_token)
    with engine.begin() as conn:
        conn.execute(update(ClassRoom).where(ClassRoom.id == cls.id).values(closed=closed))


def set_auto_post(engine: Engine, teacher_token: Any, on: bool) -> None:
    """Turn automatic posting of finished runs on or off for the teacher's class."""
    cls = by_token(engine, teacher_token)
    with engine.begin() as conn:
        conn.execute(update(ClassRoom).where(ClassRoom.id == cls.id).values(auto_post=on))


def counts(engine: Engine) -> dict[str, int]:
    """Classes and posts in the database (for tests and the operator)."""
    with engine.connect() as conn:
        return {"classes": conn.execute(select(func.count()).select_from(ClassRoom))
                .scalar_one(),
                "posts": conn.execute(select(func.count()).select_from(Post)).scalar_one()}


def as_rows(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Posts flattened for a table / CSV (per-layer lists as first and last values)."""
    out = []
    for p in items:
        ds, de = p.get("delta_start") or [], p.get("delta_end") or []
        out.append({
            "nickname": p["nickname"], "depth": p["depth"], "activation": p["activation"],
            "init": p["init"], "steps": p["steps"], "loss": p["loss"],
            "accuracy": p["accuracy"], "first/last grad ratio": p["grad_ratio"],
            "log10 ratio": (math.log10(p["grad_ratio"]) if p["grad_ratio"] else None),
            "diverged at": p["diverged_at"],
            "delta_norm layer 1 start": ds[0] if ds else None,
            "delta_norm layer 1 end": de[0] if de else None,
            "settings": p["query"], "id": p["id"],
        })
    return out
