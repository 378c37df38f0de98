"""Where the board lives: one SQLAlchemy engine per process, migrated at start-up.

``GRADLAB_DATABASE_URL`` (e.g. ``postgresql+psycopg://user:pw@host/db``) wins; otherwise a
SQLite file ``board.sqlite3`` under ``GRADLAB_DATA_DIR`` (default ``~/.local/share/gradlab``).
Migrations run through Alembic's API under a lock (PostgreSQL: an advisory lock; SQLite: a
file lock), so several web workers starting at once migrate exactly once.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 716_2026_16          # pg_advisory_lock key of the board's migrations
CONNECT_TIMEOUT_S = 5            # PostgreSQL: seconds to wait for a connection
_engines: dict[str, Engine] = {}
_guard = threading.Lock()


def data_dir() -> Path:
    """The directory of the embedded SQLite file (created on first use)."""
    raw = os.environ.get("GRADLAB_DATA_DIR", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".local" / "share" / "gradlab"


def database_url() -> str:
    """The configured database URL (never logged: it may hold a password)."""
    url = os.environ.get("GRADLAB_DATABASE_URL", "").strip()
    if url:
        if url.startswith("postgres://"):       # the form many managed services hand out
            url = "postgresql+psycopg://" + url[len("postgres://"):]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    d = data_dir()
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'board.sqlite3'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")      # readers never block the writer
    cur.execute("PRAGMA busy_timeout=10000")    # writers queue instead of failing
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """A new engine for ``url`` (SQLite: WAL, a busy timeout, foreign keys)."""
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False},
                            pool_size=8, max_overflow=16)
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    # connect_timeout: a database that is down answers "unreachable" in seconds, instead of
    # holding a page (and this process's engine lock) for the OS's TCP timeout.
    args = {"connect_timeout": CONNECT_TIMEOUT_S} if url.startswith("postgresql") else {}
    return create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True,
                         connect_args=args)


def migrate(engine: Engine) -> None:
    """``alembic upgrade head`` on ``engine``, safe with several processes at once."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()
        return
    db_path = engine.url.database or ""
    lock_path = Path(db_path + ".migrate.lock") if db_path and db_path != ":memory:" else None
    fh = open(lock_path, "a+") if lock_path else None   # noqa: SIM115
    try:
        if fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    finally:
        if fh:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: ``database_url()``), migrated once."""
    url = url or database_url()
    with _guard:
        eng = _engines.get(url)
        if eng is None:
            eng = make_engine(url)
            migrate(eng)
            _engines[url] = eng
        return eng
