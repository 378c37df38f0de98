"""``gradlab-serve``: the hosted instance: training executors and uvicorn web workers.

    gradlab-serve                          # http://127.0.0.1:8501, one of each per core
    gradlab-serve --host 0.0.0.0 --port 8501 --workers 2 --executors 2

This process is the supervisor. It first starts ``--executors`` training processes
(default ``GRADLAB_EXECUTORS``, else the cores this process may use; :mod:`app.live.executor`),
shared by every web worker, restarts one that dies, and stops them when the server stops.
Then it runs :data:`app.hosting.asgi.app` in ``--workers`` uvicorn processes (default
``WEB_CONCURRENCY``, else the cores), each on its own ``SO_REUSEPORT`` socket of the one port
so that the kernel splits connections evenly (:mod:`app.hosting.workers`: uvicorn's shared
socket gave 50 / 11), a dead worker replaced, with the websocket settings ``streamlit run``
would use, read from Streamlit's config (``.streamlit/config.toml``, ``STREAMLIT_*``
variables): message size cap, compression, ping interval. Plain ``uvicorn
app.hosting.asgi:app`` also works, but uvicorn's own defaults then apply (16 MB messages,
per-message deflate on: CPU spent compressing every frame), and each worker starts
executors of its own.

The supervisor never imports torch: it trains nothing, and torch would cost every pod
~260 MB for it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[2]
MAX_WORKERS = 64             # the most web workers, and the most executors


def streamlit_env_options() -> dict[str, Any]:
    """The ``STREAMLIT_<SECTION>_<OPTION>`` variables, read as ``streamlit run`` reads them.

    Streamlit's config reads only its *sensitive* options (the cookie secret) from the
    environment itself; every other variable reaches it as a ``streamlit run`` command-line
    option that click fills from the environment. Under uvicorn there is no such command, so
    ``STREAMLIT_SERVER_ALLOWED_HOSTS`` (the DNS-rebinding guard of the Deployment) and the
    rest would be silently ignored. This builds the same click options (Streamlit's own
    ``configurator_options``) and lets click read the environment. Returns flag-style names
    (``server_allowedHosts``), as ``streamlit.web.bootstrap.load_config_options`` takes
    them. Raises ``click.BadParameter`` for a value of the wrong type."""
    import click
    from streamlit.web import cli

    found: dict[str, Any] = {}

    @click.command()
    @cli.configurator_options
    def read(**kwargs: Any) -> None:
        found.update({k: v for k, v in kwargs.items() if v is not None and v != ()})

    read.main(args=[], prog_name="gradlab-serve", standalone_mode=False)
    return found


def load_streamlit_config(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load Streamlit's config as ``streamlit run`` would: config files, then the
    ``STREAMLIT_*`` variables (:func:`streamlit_env_options`), then ``extra`` (flag-style
    names). Used by the supervisor (before it reads the websocket settings) and by every
    worker (``app.hosting.asgi``). Returns the options the variables set; raises
    ``click.BadParameter`` for a value of the wrong type."""
    import logging

    from streamlit.web import bootstrap

    found = streamlit_env_options()
    # Streamlit parsed its config when it was imported, so reloading it with server options
    # logs "An update to the [server] config option section was detected ... restart"; this
    # runs before the server starts, so that warning does not apply here.
    config_log = logging.getLogger("streamlit.config")
    level = config_log.level
    config_log.setLevel(logging.ERROR)
    try:
        bootstrap.load_config_options({**found, **(extra or {})})
    finally:
        config_log.setLevel(level)
    return found


def share_cookie_secret(environ: MutableMapping[str, str]) -> bool:
    """Give every worker the same cookie-signing secret. Unset, Streamlit draws a random one
    per process, so the workers of one pod would sign cookies differently. A secret the
    operator set (``STREAMLIT_SERVER_COOKIE_SECRET``, config.toml, secrets.toml) is kept;
    across pods, set one (deploy/README.md). Returns True when it drew one."""
    import secrets

    from streamlit import config

    if environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or config.is_manually_set(
            "server.cookieSecret"):
        return False
    environ["STREAMLIT_SERVER_COOKIE_SECRET"] = secrets.token_hex(32)
    return True


def uvicorn_options() -> dict[str, object]:
    """The websocket settings of ``streamlit run`` (Streamlit 1.67's uvicorn runner), taken
    from Streamlit's config through its public ``get_option`` (load it first:
    :func:`load_streamlit_config`)."""
    import streamlit as st
    import uvicorn

    interval = st.get_option("server.websocketPingInterval")
    ping = float(interval) if interval is not None else 30.0
    legacy = tuple(int(x) for x in uvicorn.__version__.split(".")[:2]) < (0, 44)
    return {
        "ws": "auto" if legacy else "websockets-sansio",
        "ws_max_size": int(st.get_option("server.maxMessageSize")) * 1_000_000,
        "ws_per_message_deflate": bool(st.get_option("server.enableWebsocketCompression")),
        "ws_ping_interval": ping,
        "ws_ping_timeout": ping,
        "access_log": False,
        "use_colors": False,
    }


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"gradlab-serve: error: {message}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``--host``, ``--port``, ``--workers`` and ``--executors``, checked (a bad value exits
    with code 2 and one line on stderr)."""
    from app.env import available_cores, env_int
    from app.live.pool import COUNT_ENV

    ap = _Parser(prog="gradlab-serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    ap.add_argument("--port", type=int, default=8501, help="port (8501)")
    ap.add_argument("--workers", type=int, default=None,
                    help="web worker processes (default: WEB_CONCURRENCY, else the cores)")
    ap.add_argument("--executors", type=int, default=None,
                    help="training processes (default: GRADLAB_EXECUTORS, else the cores)")
    a = ap.parse_args(argv)
    for flag, var in (("workers", "WEB_CONCURRENCY"), ("executors", COUNT_ENV)):
        source = ""
        if getattr(a, flag) is None:
            setattr(a, flag, env_int(var, available_cores()))
            source = f" (from {var})"
        if not 1 <= getattr(a, flag) <= MAX_WORKERS:
            ap.error(f"--{flag} must be 1 to {MAX_WORKERS}, got {getattr(a, flag)}{source}")
    if not 0 <= a.port <= 65535:
        ap.error(f"--port must be 0 to 65535, got {a.port}")
    return a


def main(argv: list[str] | None = None) -> int:
    """The ``gradlab-serve`` console script: check the settings, then run uvicorn."""
    args = parse_args(argv)
    os.chdir(ROOT)          # .streamlit/config.toml, and app.hosting.asgi on the import path
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import click

    from app.hosting import workers

    try:   # a bad STREAMLIT_* value stops here, with its name, not in every worker
        load_streamlit_config()
    except click.ClickException as e:
        print(f"gradlab-serve: a STREAMLIT_* variable has a bad value: {e.format_message()}",
              file=sys.stderr)
        return 2
    share_cookie_secret(os.environ)   # the workers inherit the environment

    executors = Executors.start(args.executors)
    executors.export(os.environ)      # the workers inherit the sockets and the key
    print(f"Gradient Lab: http://{args.host}:{args.port} ({args.workers} worker "
          f"process{'es' if args.workers > 1 else ''}, {args.executors} training "
          f"process{'es' if args.executors > 1 else ''})", flush=True)
    try:
        workers.serve("app.hosting.asgi:app", args.host, args.port, args.workers,
                      **uvicorn_options())
    except OSError as e:      # the port is taken, the address is not this machine's
        print(f"gradlab-serve: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    finally:
        executors.stop()
    return 0


class Executors:
    """The training processes of this server, kept alive while it runs: a dead one is
    started again on the same socket (the web workers reconnect to it), after a pause that
    doubles while it keeps dying young (a crash loop must not eat the pod's CPU)."""

    POLL_S = 1.0            # how often the watcher looks
    YOUNG_S = 10.0          # an executor that dies younger than this waits longer to restart
    MAX_BACKOFF_S = 60.0

    def __init__(self, procs: list[subprocess.Popen], addrs: list[str], key: bytes) -> None:
        self.procs, self.addrs, self.key = procs, addrs, key
        now = time.monotonic()
        self._started = [now] * len(procs)
        self._backoff = [0.0] * len(procs)
        self._due: list[float | None] = [None] * len(procs)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="gradlab-executors",
                                         daemon=True)

    @classmethod
    def start(cls, n: int) -> Executors:
        """Start ``n`` executors (children of this process) and their watcher."""
        from app.live.pool import start_executors

        ex = cls(*start_executors(n, parent=os.getpid()))
        ex._watcher.start()
        return ex

    def export(self, environ: MutableMapping[str, str]) -> None:
        """Name the executors' sockets and key for the web workers (they inherit it)."""
        from app.live.pool import ADDRS_ENV, KEY_ENV

        environ[ADDRS_ENV] = ",".join(self.addrs)
        environ[KEY_ENV] = self.key.hex()

    def _watch(self) -> None:
        while not self._stop.wait(self.POLL_S):
            for i in range(len(self.procs)):
                self._check(i, time.monotonic())

    def _check(self, i: int, now: float) -> None:
        from app.live.pool import respawn

        proc = self.procs[i]
        if proc.poll() is None:
            return
        due = self._due[i]
        if due is None:                          # just found dead: when to start it again
            young = now - self._started[i] < self.YOUNG_S
            wait = (min(self.MAX_BACKOFF_S, max(self.POLL_S, 2 * self._backoff[i]))
                    if young else 0.0)
            self._backoff[i], self._due[i] = wait, (due := now + wait)
            print(f"gradlab-serve: training process {i} exited (code {proc.returncode}); "
                  f"starting it again{f' in {wait:.0f} s' if wait else ''}",
                  file=sys.stderr, flush=True)
        if now >= due and not self._stop.is_set():
            self.procs[i] = respawn(i, self.addrs[i], self.key, os.getpid())
            self._started[i], self._due[i] = now, None

    def stop(self) -> None:
        """Stop the watcher first (so nothing is restarted meanwhile), then every executor,
        and remove their socket folder."""
        from app.live.pool import remove_sockets, stop

        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=2 * self.POLL_S + 5)
        for proc in self.procs:            # all at once, then wait for each
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            stop(proc)
        remove_sockets(self.addrs)


if __name__ == "__main__":
    sys.exit(main())
