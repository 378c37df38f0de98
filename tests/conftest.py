"""Shared fixtures: Debian Chromium via Playwright, and a live Streamlit server.

Browser tests use Debian's Chromium at /usr/bin/chromium (never Playwright's own download).
Outside CI, a missing Chromium/Playwright skips those tests; with CI set it fails them loudly.
Tests that use ``browser``/``page`` are marked ``browser`` automatically, and tests that start a
Streamlit server are marked ``slow``, so ``make test-fast`` leaves them out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest

from tools.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from tools.server import ServerError, serving

SERVER_START_TIMEOUT_S = 60.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; fail loudly in CI, where everything must be present."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: browser tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


# ---- the device core tests run on ------------------------------------------------------------

DEVICE_ENV = "GRADLAB_TEST_DEVICE"      # cpu | cuda | mps: what `device` tests run on
TEST_DEVICES = ("cpu", "cuda", "mps")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", action="store", default=None, choices=TEST_DEVICES,
                     help=f"run the `device` tests on this device only (or set {DEVICE_ENV}); "
                          "default: cpu and cuda, the cuda cases skipped without a GPU")


def devices_to_test(config: pytest.Config) -> list[str]:
    """The devices `device`-taking tests run on: --device, else $GRADLAB_TEST_DEVICE, else
    cpu and cuda (cuda skipped where torch sees no GPU, so CPU-only CI stays green)."""
    want = config.getoption("--device") or os.environ.get(DEVICE_ENV, "").strip().lower()
    if want and want not in TEST_DEVICES:
        raise pytest.UsageError(f"{DEVICE_ENV}={want}: expected one of {', '.join(TEST_DEVICES)}")
    return [want] if want else ["cpu", "cuda"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", devices_to_test(metafunc.config), indirect=True)


@pytest.fixture()
def device(request: pytest.FixtureRequest) -> str:
    """The device name a core test runs on ("cpu", "cuda", "mps"); absent ones skip."""
    import torch

    name = request.param
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here (the cuda cases run in tools/gpu_check.sh)")
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        pytest.skip("no Apple MPS device here")
    return name


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
    missing = chromium_missing()
    if missing:
        _unavailable(missing)
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


@contextlib.contextmanager
def run_streamlit(
    script: str = "app/main.py",
    *,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = SERVER_START_TIMEOUT_S,
) -> Iterator[str]:
    """Start ``streamlit run SCRIPT`` from the repo root on a free port; yield its base URL."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(serving(
                script, env=env, hosted=False, extra_args=extra_args, timeout=timeout,
                log_prefix="gradlab-streamlit-"))
        except ServerError as e:   # exited, or no health answer: the log's tail says why
            pytest.fail(str(e), pytrace=False)
        yield server.url


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
