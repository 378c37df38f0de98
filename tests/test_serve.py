"""The hosted server: ``gradlab-serve`` (app/hosting/serve.py) is a supervisor that starts
training executors (app/live/executor.py), then runs ``app.hosting.asgi:app`` in uvicorn web
worker processes. Fast tests check the pieces (cores, arguments, websocket settings,
STREAMLIT_* variables, the executors' watcher); slow ones start the real server: two web
workers warm before they take sessions, the DNS-rebinding guard set by environment holds in
every worker, SIGTERM to the process group or to the supervisor alone (as Kubernetes sends
it) leaves no process behind, executors included, and a burst of 200 sessions renders (the
p95 figure itself is a benchmark, reported by ``make load``, not asserted here). The
executors at work under the supervisor (both workers train on them, a killed one comes
back): tests/test_executors.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import env
from app.hosting import serve
from tests.async_helpers import run_coroutine
from tests.test_hardening import _ws_handshake_status
from tools.server import Server, free_port

REPO = Path(__file__).resolve().parent.parent


# ---- cores ---------------------------------------------------------------------------------


def test_available_cores_is_at_least_one_and_at_most_the_machine() -> None:
    n = env.available_cores()
    assert 1 <= n <= (os.cpu_count() or 1)


def test_the_cpu_limit_is_read_from_cgroup_v2_and_v1(tmp_path: Path) -> None:
    """A Kubernetes CPU limit of 1.5 CPUs is a quota of 150000 per 100000: two cores' worth
    of executors by default (rounded up); no quota, no cap."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert env.cgroup_cpu_limit(v2) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert env.cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert env.cgroup_cpu_limit(v1) == 3
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert env.cgroup_cpu_limit(v1) is None
    assert env.cgroup_cpu_limit(tmp_path / "none") is None


def test_available_cores_is_capped_by_the_cpu_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "cgroup_cpu_limit", lambda: 1)
    assert env.available_cores() == 1
    monkeypatch.setattr(env, "cgroup_cpu_limit", lambda: 10_000)
    assert env.available_cores() == len(os.sched_getaffinity(0))


# ---- arguments and websocket settings ------------------------------------------------------


def test_serve_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GRADLAB_EXECUTORS", "4")
    a = serve.parse_args([])
    assert (a.host, a.port, a.workers, a.executors) == ("127.0.0.1", 8501, 3, 4)
    a = serve.parse_args(["--host", "0.0.0.0", "--port", "9000", "--workers", "2",
                          "--executors", "2"])
    assert (a.host, a.port, a.workers, a.executors) == ("0.0.0.0", 9000, 2, 2)


def test_workers_and_executors_default_to_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset (or nonsense) variables: one web worker and one executor per core this process
    may use (cgroup-aware: ``app.env.available_cores``)."""
    monkeypatch.setattr(env, "available_cores", lambda: 3)
    for value in (None, "", "many"):
        for var in ("WEB_CONCURRENCY", "GRADLAB_EXECUTORS"):
            if value is None:
                monkeypatch.delenv(var, raising=False)
            else:
                monkeypatch.setenv(var, value)
        a = serve.parse_args([])
        assert (a.workers, a.executors) == (3, 3), value


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--workers", "1000"], ["--port", "70000"],
                                  ["--workers", "two"], ["--executors", "0"],
                                  ["--executors", "65"], ["--executors", "-1"],
                                  ["--executors", "two"], ["--executors"]])
def test_serve_refuses_nonsense_with_one_line(argv: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        serve.parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gradlab-serve: error: "), err
    assert argv[0] in err, err


def test_a_variable_out_of_range_is_named(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADLAB_EXECUTORS", "100")
    with pytest.raises(SystemExit) as e:
        serve.parse_args([])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "GRADLAB_EXECUTORS" in err and "100" in err and err.count("\n") == 1, err


def test_uvicorn_gets_streamlits_websocket_settings() -> None:
    """What `streamlit run` would use (.streamlit/config.toml: 50 MB messages), and no
    per-message deflate (uvicorn's own default compresses every frame)."""
    import streamlit as st

    opts = serve.uvicorn_options()
    assert opts["ws_max_size"] == int(st.get_option("server.maxMessageSize")) * 1_000_000
    assert opts["ws_per_message_deflate"] is False
    assert opts["ws_ping_interval"] == opts["ws_ping_timeout"] > 0
    assert opts["access_log"] is False


def test_the_supervisor_reads_the_variables_and_never_imports_torch() -> None:
    """gradlab-serve's parent process: the websocket settings it hands uvicorn follow the
    STREAMLIT_* variables too, and it works out its workers without importing torch (which
    cost each pod ~260 MB in a process that never trains)."""
    code = ("import sys; from app.hosting import serve; a = serve.parse_args([]); "
            "serve.load_streamlit_config(); o = serve.uvicorn_options(); "
            "print(a.workers, o['ws_max_size'], o['ws_ping_interval'], 'torch' in sys.modules)")
    env = {**os.environ, "STREAMLIT_SERVER_MAX_MESSAGE_SIZE": "7",
           "STREAMLIT_SERVER_WEBSOCKET_PING_INTERVAL": "45", "WEB_CONCURRENCY": "3"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "3 7000000 45.0 False", out.stdout


def test_streamlit_variables_reach_the_asgi_app() -> None:
    """Under `streamlit run`, click turns STREAMLIT_* variables into options; under uvicorn
    app.hosting.asgi has to do it, or STREAMLIT_SERVER_ALLOWED_HOSTS (the Deployment's DNS-rebinding
    guard) would be ignored. The hosted settings win over the variables."""
    code = ("import streamlit as st, app.hosting.asgi; "
            "print(list(st.get_option('server.allowedHosts')), "
            "st.get_option('server.disconnectedSessionTTL'), "
            "st.get_option('server.fileWatcherType'), st.get_option('runner.magicEnabled'))")
    env = {**os.environ, "STREAMLIT_SERVER_ALLOWED_HOSTS": "gradlab.test other.test",
           "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "33",
           "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "auto"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last == "['gradlab.test', 'other.test'] 33 none False", last


def test_a_bad_streamlit_variable_stops_the_server_with_its_name(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL", "an hour")
    monkeypatch.chdir(REPO)
    assert serve.main(["--workers", "1", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "STREAMLIT_" in err and "disconnectedSessionTTL" in err and "an hour" in err, err


def test_streamlit_variables_are_read_like_streamlit_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLIT_SERVER_ALLOWED_HOSTS", "a.test b.test")
    monkeypatch.setenv("STREAMLIT_SERVER_ENABLE_CORS", "false")
    found = serve.streamlit_env_options()
    assert found["server_allowedHosts"] == ("a.test", "b.test")
    assert found["server_enableCORS"] is False


def test_workers_share_one_cookie_secret_unless_the_operator_set_one() -> None:
    env: dict[str, str] = {}
    assert serve.share_cookie_secret(env) is True
    assert len(env["STREAMLIT_SERVER_COOKIE_SECRET"]) == 64
    mine = {"STREAMLIT_SERVER_COOKIE_SECRET": "set-by-the-operator"}
    assert serve.share_cookie_secret(mine) is False
    assert mine == {"STREAMLIT_SERVER_COOKIE_SECRET": "set-by-the-operator"}


class _Proc:
    """A stand-in for an executor's Popen: alive until ``returncode`` is set."""

    def __init__(self, returncode: int | None = None) -> None:
        self.returncode = returncode

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        if self.returncode is None:
            self.returncode = -signal.SIGTERM

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode


def test_the_watcher_restarts_a_dead_executor_and_backs_off_a_crash_loop(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    """An executor that dies after a healthy life is started again at once, on its own
    socket; one that keeps dying young waits 1, 2, 4 ... s (at most 60 s) between starts;
    nothing is started once the server stops."""
    from app.live import pool

    started: list[tuple[int, str]] = []

    def respawn(i: int, addr: str, key: bytes, parent: int | None = None) -> _Proc:
        started.append((i, addr))
        return _Proc()

    monkeypatch.setattr(pool, "respawn", respawn)
    e0, e1 = str(tmp_path / "e0.sock"), str(tmp_path / "e1.sock")
    ex = serve.Executors([_Proc(), _Proc()], [e0, e1], b"k")
    t = time.monotonic() + 100                       # both have lived 100 s
    ex._check(0, t)
    assert started == []                             # alive: left alone
    ex.procs[1].returncode = -signal.SIGKILL
    ex._check(1, t)
    assert started == [(1, e1)]            # old: at once
    waits = []
    for _ in range(8):                               # now it dies young, again and again
        ex.procs[1].returncode = 1
        ex._check(1, t + 2)
        due = ex._due[1]
        assert due is not None and started[-1:] == [(1, e1)]
        n = len(started)
        ex._check(1, due - 0.01)
        assert len(started) == n, "started before its pause was over"
        ex._check(1, due)
        assert len(started) == n + 1
        waits.append(due - (t + 2))
        t = due
    assert waits == pytest.approx([1, 2, 4, 8, 16, 32, 60, 60], abs=1e-6), waits
    ex.procs[1].returncode = 1
    n = len(started)
    ex.stop()
    ex._check(1, t + 1000)
    assert len(started) == n, "restarted after stop()"
    assert ex.procs[0].returncode == -signal.SIGTERM, "stop() stops every executor"
    assert not tmp_path.exists(), "the socket folder is left behind"
    assert "training process 1 exited (code -9); starting it again\n" in capsys.readouterr().err


def test_the_app_serves_no_per_process_media_files() -> None:
    """With several workers, a file a page hands the browser by URL must exist in every
    worker. Streamlit's media files (images, downloads, audio, video) live in the memory of
    the worker that made them, and the browser's request may reach the other one; the app
    uses none (the chart scripts are registered in every worker, see the live test).
    Any container counts (``col.download_button(...)`` too, ``data=callable`` included: its
    file is made on the worker holding the websocket); downloads go through
    ``app.export_download.download_button``, which sends the file over the websocket."""
    import re

    media = re.compile(r"\.(image|download_button|audio|video|pyplot|file_uploader|logo)\(")
    hits = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "app").rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if media.search(line)]
    assert not hits, f"per-worker media files: {hits}"


# ---- the live server (slow) ----------------------------------------------------------------


@contextlib.contextmanager
def served(workers: int = 2, env: dict[str, str] | None = None,
           executors: int = 2) -> Iterator[Server]:
    """``gradlab-serve --workers N --executors E`` on a free loopback port (the load test's
    server), every worker started and healthy; stopped, the whole process group, on exit."""
    server = Server(free_port(), env=env or {}, procs=workers, executors=executors)
    try:
        server.wait_healthy(timeout=120)
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_two_workers_warm_guarded_and_stopped_cleanly() -> None:
    env = {"STREAMLIT_SERVER_ALLOWED_HOSTS": "127.0.0.1 gradlab.test"}
    with served(2, env) as server:
        port = server.port
        workers = [p for p in server.tree() if _is_worker(p)]
        assert len(workers) == 2, [_cmdline(p) for p in server.tree()]
        executors = server.pids("executor")
        assert len(executors) == 2, [_cmdline(p) for p in server.tree()]
        # a signal to the server's group (Ctrl-C, kill -- -PGID) must not kill the executors
        # before the workers: the supervisor would start them again while shutting down
        assert all(os.getpgid(p) != os.getpgid(server.pid) for p in executors)
        # Before any page has run: the chart scripts are served by every worker (a page's
        # asset requests are their own connections and may reach either worker; measured
        # before the fix: 404 on a fresh server, and "BidiComponent Error" in the panels)
        from app import stream_chart as sc

        for name, file in ((sc._ASSETS_NAME, sc._JS_FILE), (sc._PLOTLYJS_NAME, sc._PLOTLY_FILE)):
            for _ in range(8):
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/component/{name}/{file}", timeout=20) as r:
                    assert r.status == 200 and len(r.read()) > 200, (name, file)
        # Streamlit's hashed front-end files come gzipped from the workers' memory cache
        # (app/hosting/static_cache.py), with the immutable caching Streamlit gives them
        import re

        import streamlit

        index = (Path(streamlit.__file__).parent / "static" / "index.html").read_text()
        rel = re.search(r'src="\./(static/js/[^"]+\.js)"', index).group(1)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/{rel}",
                                     headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=20) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert "immutable" in r.headers["Cache-Control"]
            import gzip

            assert gzip.decompress(r.read()) == (
                Path(streamlit.__file__).parent / "static" / rel).read_bytes()
        # one listening socket per worker (SO_REUSEPORT), so the kernel splits connections
        # evenly: uvicorn's one shared socket gave 50 / 11 to two workers, the busy one
        # taking more, and 12 of 61 sessions never saw a step
        assert _listening_sockets(port) == 2
        _assert_even_split(server, n=60, at_least=15)   # binomial(60, 1/2): P(< 15) ~ 5e-5
        # every connection, whichever worker takes it, applies the variable's allowed hosts
        for _ in range(6):
            for host, status in ((f"gradlab.test:{port}", 101),    # only in the variable
                                 (f"evil.example:{port}", 403)):
                assert _ws_handshake_status(server.url, host, f"http://{host}") == status
        text = server.log_text()
        assert "Traceback" not in text, text[-3000:]
        assert '"GET /_stcore/health' not in text, "a log line per request (access log)"
    assert server.proc.returncode != -signal.SIGKILL, "SIGTERM did not stop the server"
    time.sleep(0.5)
    alive = [p for p in workers + executors if _alive(p)]
    assert not alive, f"processes left after SIGTERM: {alive}"
    # SIGTERM went to the whole process group: the executors (a group of their own) are
    # stopped by the supervisor after the workers, not killed first and restarted
    assert "starting it again" not in server.log_text(), server.log_tail()


@pytest.mark.slow
def test_sigterm_to_the_supervisor_alone_leaves_no_process_behind() -> None:
    """As Kubernetes stops a container: SIGTERM to its PID 1 (gradlab-serve) only, while a
    session trains. The supervisor stops the web workers, then the executors, removes
    their sockets and exits 0; nothing of the tree is left within 20 s (the Deployment
    grants 30), and no executor was restarted on the way."""
    from tests.test_executors import _open, _play, _pump_until, _trains

    with served(2) as server:
        tree = server.tree()
        executors = server.pids("executor")
        assert len(executors) == 2 and len(server.pids("web")) == 2, [_cmdline(p) for p in tree]
        folder = Path(_cmdline(executors[0]).split("--address ")[1].split()[0]).parent

        async def train_then_terminate() -> float:
            s = await _open(server)
            try:
                await _play(s)
                await _pump_until([s], lambda: _trains(s), 90, "the first step")
                os.kill(server.pid, signal.SIGTERM)
                t0 = time.monotonic()
                await s.pump(time.monotonic() + 1.0)
            finally:
                await s.close()
            return t0

        t0 = run_coroutine(train_then_terminate())
        server.proc.wait(timeout=30)
        while any(_alive(p) for p in tree) and time.monotonic() - t0 < 20:
            time.sleep(0.1)
        took = time.monotonic() - t0
        left = {p: _cmdline(p) for p in tree if _alive(p)}
        assert not left, f"left {took:.1f} s after SIGTERM: {left}"
        print(f"every process gone {took:.1f} s after SIGTERM")
        assert server.proc.returncode == 0, server.log_tail()
        assert "starting it again" not in server.log_text(), server.log_tail()
        assert "Traceback" not in server.log_text(), server.log_tail()
        assert not folder.exists(), f"the executors' sockets are left in {folder}"


@pytest.mark.slow
def test_pages_served_by_the_workers_draw_and_train(browser) -> None:
    """Chromium against two workers: four tabs, open together (the kernel spreads their
    sessions and asset requests over both workers), each draws the eight panels, and Play
    trains and redraws in place."""
    with served(2) as server:
        url = f"{server.url}/?depth=4&width=32&steps=100000&every=5"
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        try:
            pages = []
            for _ in range(4):   # one after another: a background tab does not draw
                pg = ctx.new_page()
                pg.on("pageerror", lambda e: errors.append(str(e)))
                pg.goto(url, wait_until="domcontentloaded")
                pg.wait_for_function(
                    "() => [...document.querySelectorAll('.gl-stream-chart')]"
                    ".filter(g => (g._fullData || []).length).length >= 8", timeout=90_000)
                pages.append(pg)
            pg = pages[-1]
            pg.bring_to_front()
            pg.get_by_role("button", name="Play", exact=True).click()
            pg.get_by_text("running", exact=True).wait_for(timeout=60_000)
            pg.wait_for_function(
                "() => [...document.querySelectorAll('.gl-stream-chart')]"
                ".some(g => (g.__glUpdates || 0) >= 2)", timeout=60_000)
        finally:
            ctx.close()
        assert not errors, errors
        assert "Traceback" not in server.log_text()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _listening_sockets(port: int) -> int:
    """How many TCP sockets listen on ``port`` (/proc/net/tcp and tcp6, state 0A)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def _assert_even_split(server: Server, n: int, at_least: int) -> None:
    """Open ``n`` TCP connections; every web worker must accept at least ``at_least``."""
    import socket
    from collections import Counter

    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10)
             for _ in range(n)]
    try:
        mine = {s.getsockname()[1] for s in socks}
        deadline = time.monotonic() + 20
        while True:
            held = {p: pid for p, pid in server.connections().items() if p in mine}
            if len(held) == n or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        per = Counter(held.values())
        assert len(held) == n and len(per) == 2 and min(per.values()) >= at_least, per
    finally:
        for s in socks:
            s.close()


def _is_worker(pid: int) -> bool:
    return "multiprocessing" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def _alive(pid: int) -> bool:
    """Running (a zombie waits only for its parent to read its status)."""
    return _state(pid) not in ("Z", "gone")


@pytest.mark.slow
def test_a_burst_of_200_sessions_all_render(tmp_path: Path) -> None:
    """Issue 6's burst: 200 sessions open within 1 s against two worker processes; every
    one renders its first page with no exception and the server logs no traceback. The
    time figures (p95 first render) are printed and written to the JSON, not asserted: this
    2-core box also runs the 200 clients, and its speed varies up to 2x in a day."""
    out = tmp_path / "burst.json"
    cmd = [sys.executable, "-m", "tools.load", "--burst", "200",
           "--procs", "2", "--after", "3", "--json", str(out)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    report = json.loads(out.read_text())
    print(run.stdout[-1500:])
    assert report["rendered"] == 200, report["errors"]
    assert report["errors"] == {}
    assert report["server_log_tracebacks"] == 0
