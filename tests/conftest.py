"""Shared fixtures: Debian Chromium via Playwright, and a live Streamlit server.

Browser tests use Debian's Chromium at /usr/bin/chromium (never Playwright's own download).
Outside CI, a missing Chromium/Playwright skips those tests; with CI set it fails them loudly.
Tests that use ``browser``/``page`` are marked ``browser`` automatically, and tests that start a
Streamlit server are marked ``slow``, so ``make test-fast`` leaves them out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT_S = 60.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; fail loudly in CI, where everything must be present."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: browser tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"browser", "page", "chromium_path"}:
            item.add_marker(pytest.mark.browser)
        if names & {"streamlit_server", "streamlit_factory"}:
            item.add_marker(pytest.mark.slow)


# ---- Chromium / Playwright ------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} not found: apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright's sync API (one per test session)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[dev]'")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture()
def page(browser) -> Iterator[object]:
    """A fresh browser context and page per test (1280x900), closed afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


# ---- Streamlit server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "<no log>"


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the server's whole process group; SIGKILL if it does not go in 10 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def run_streamlit(
    script: str = "app/main.py",
    *,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = SERVER_START_TIMEOUT_S,
) -> Iterator[str]:
    """Start ``streamlit run SCRIPT`` from the repo root on a free port; yield its base URL."""
    if not (REPO_ROOT / script).is_file():
        pytest.fail(f"{script} does not exist", pytrace=False)
    port = free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", script,
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        *extra_args,
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log_dir = Path(tempfile.mkdtemp(prefix="gradlab-streamlit-"))
    log_path = log_dir / "server.log"
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"streamlit exited with {proc.returncode} before answering:\n"
                        f"{_log_tail(log_path)}",
                        pytrace=False,
                    )
                try:
                    with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as r:
                        if r.status == 200 and r.read().decode().strip() == "ok":
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n"
                        f"{_log_tail(log_path)}",
                        pytrace=False,
                    )
                time.sleep(0.25)
            yield base_url
        finally:
            _stop(proc)


@pytest.fixture()
def streamlit_factory() -> Iterator[Callable[..., str]]:
    """Factory: ``url = streamlit_factory("app/main.py", env={...})``; all stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(script: str = "app/main.py", **kwargs) -> str:
            return stack.enter_context(run_streamlit(script, **kwargs))

        yield start


@pytest.fixture(scope="session")
def streamlit_server() -> Iterator[str]:
    """One server for app/main.py shared by the session; yields e.g. http://127.0.0.1:PORT."""
    with run_streamlit("app/main.py") as url:
        yield url
