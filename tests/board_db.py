"""Test helpers of the class board: a throwaway PostgreSQL cluster (Debian's postgresql,
``initdb`` + ``pg_ctl`` under a temp dir, as an unprivileged user when run as root, which
PostgreSQL refuses) and the SQLite/PostgreSQL database URLs the board tests run against."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin(name: str) -> str | None:
    """Path of a PostgreSQL server binary (PATH, then /usr/lib/postgresql/*/bin)."""
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


def _as_user() -> list[str]:
    """Command prefix that drops root to the 'postgres' (or 'nobody') user."""
    if os.geteuid() != 0:
        return []
    import pwd

    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", user, "--"]
        return [shutil.which("setpriv") or "setpriv", f"--reuid={user}", "--regid=" + user,
                "--init-groups"]
    raise RuntimeError("running as root and no unprivileged user for PostgreSQL")


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a throwaway cluster; yields a SQLAlchemy URL (unix socket, trust auth)."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise FileNotFoundError("PostgreSQL's initdb/pg_ctl not found: apt-get install "
                                "postgresql")
    root = Path(tempfile.mkdtemp(prefix="gradlab-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    pre = _as_user()
    if pre:
        user = pre[2] if pre[0].endswith("runuser") else pre[1].split("=", 1)[1]
        shutil.chown(root, user)
        shutil.chown(sock, user)
    os.chmod(root, 0o755)
    try:
        subprocess.run([*pre, initdb, "-D", str(data), "-A", "trust", "-U", "gradlab",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        opts = f"-k {sock} -c listen_addresses='' -c fsync=off -c max_connections=200"
        subprocess.run([*pre, pg_ctl, "-D", str(data), "-o", opts, "-l",
                        str(root / "log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True)
        try:
            yield f"postgresql+psycopg://gradlab@/postgres?host={sock}"
        finally:
            subprocess.run([*pre, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
