"""app/hosting/static_cache.py: immutable front-end files from memory, gzipped once, nothing else
touched, nothing outside a mount's root reachable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
from pathlib import Path
from typing import Any

import pytest

from app.hosting.static_cache import Mount, StaticCache, Store

JS = b"export default function f(){return 1}\n" * 200       # compressible, > 1 KB


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "js").mkdir(parents=True)
    (root / "js" / "index.abc12345.js").write_bytes(JS)
    (root / "js" / "tiny.js").write_bytes(b"x=1")
    (root / "font.woff2").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "secret.txt").write_text("not yours")
    return root


def _call(mw: StaticCache, path: str, method: str = "GET", accept: bytes = b"gzip, br",
          query: bytes = b"") -> tuple[int | None, dict[bytes, bytes], bytes, bool]:
    sent: list[dict[str, Any]] = []
    passed = []

    async def app(scope, receive, send):  # noqa: ANN001 - the app behind the middleware
        passed.append(scope["path"])
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"from the app"})

    async def receive():  # noqa: ANN202
        return {"type": "http.request"}

    async def send(msg):  # noqa: ANN001, ANN202
        sent.append(msg)

    mw.app = app
    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": [(b"accept-encoding", accept)] if accept else []}
    # In a thread of its own: in the full suite, Playwright's sync API keeps an event loop
    # running in the main thread, where asyncio.run() refuses to start another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, mw(scope, receive, send)).result()
    start = sent[0]
    return (start["status"], dict(start["headers"]), b"".join(m.get("body", b"")
                                                              for m in sent[1:]), bool(passed))


def test_a_file_is_answered_gzipped_when_the_browser_accepts_it(tree: Path) -> None:
    mw = StaticCache(None, Store([Mount("/static/", tree)]))  # type: ignore[arg-type]
    status, headers, body, passed = _call(mw, "/static/js/index.abc12345.js")
    assert (status, passed) == (200, False)
    assert headers[b"content-encoding"] == b"gzip" and gzip.decompress(body) == JS
    assert headers[b"content-length"] == str(len(body)).encode()
    assert headers[b"vary"] == b"Accept-Encoding"
    assert headers[b"cache-control"] == b"public, max-age=31536000, immutable"
    assert headers[b"content-type"].startswith((b"text/javascript", b"application/javascript"))
    status, headers, body, _ = _call(mw, "/static/js/index.abc12345.js", accept=b"")
    assert body == JS and b"content-encoding" not in headers
    status, headers, body, _ = _call(mw, "/static/js/index.abc12345.js", method="HEAD")
    assert status == 200 and body == b"" and int(headers[b"content-length"]) > 0


def test_small_or_incompressible_files_are_sent_as_they_are(tree: Path) -> None:
    mw = StaticCache(None, Store([Mount("/static/", tree)]))  # type: ignore[arg-type]
    for path, raw in (("/static/js/tiny.js", b"x=1"),
                      ("/static/font.woff2", (tree / "font.woff2").read_bytes())):
        _, headers, body, _ = _call(mw, path)
        assert body == raw and b"content-encoding" not in headers, path


@pytest.mark.parametrize("path", ["/static/../secret.txt", "/static/js/../../secret.txt",
                                  "/static/", "/static/js", "/static/js/nope.js",
                                  "/static//etc/passwd", "/static/js/./tiny.js",
                                  "/static/js\\..\\..\\secret.txt", "/other/js/tiny.js"])
def test_anything_else_goes_on_to_the_app(tree: Path, path: str) -> None:
    mw = StaticCache(None, Store([Mount("/static/", tree)]))  # type: ignore[arg-type]
    status, _, body, passed = _call(mw, path)
    assert passed and status == 404 and body == b"from the app", path


def test_a_link_out_of_the_root_is_not_followed(tree: Path) -> None:
    (tree / "js" / "escape.js").symlink_to(tree.parent / "secret.txt")
    mw = StaticCache(None, Store([Mount("/static/", tree)]))  # type: ignore[arg-type]
    assert _call(mw, "/static/js/escape.js")[3], "served a file outside the root"


def test_only_get_and_head_are_answered(tree: Path) -> None:
    mw = StaticCache(None, Store([Mount("/static/", tree)]))  # type: ignore[arg-type]
    assert _call(mw, "/static/js/tiny.js", method="POST")[3]


def test_versioned_files_are_immutable_only_with_their_cache_buster(tree: Path) -> None:
    mw = StaticCache(None, Store([Mount("/c/", tree, versioned=True)]))  # type: ignore[arg-type]
    assert _call(mw, "/c/js/tiny.js", query=b"v=1a2b")[1][b"cache-control"].endswith(
        b"immutable")
    assert _call(mw, "/c/js/tiny.js")[1][b"cache-control"] == b"no-cache"


def test_the_cache_is_bounded_but_files_are_still_served(tree: Path) -> None:
    store = Store([Mount("/static/", tree)], max_bytes=100)
    mw = StaticCache(None, store)  # type: ignore[arg-type]
    assert _call(mw, "/static/js/index.abc12345.js")[0] == 200
    assert _call(mw, "/static/js/tiny.js")[0] == 200
    assert store.cached_bytes <= 100
    assert store.warm(["/static/js/tiny.js", "/static/js/nope.js", "/elsewhere"]) == 1


def test_the_hosted_app_caches_streamlits_files_and_the_chart_scripts() -> None:
    """The mounts of app.hosting.asgi point at real directories, and the start-up warm-up finds the
    chart scripts and every file index.html names (run in a subprocess: importing
    app.hosting.asgi builds the ASGI app)."""
    import subprocess
    import sys

    code = ("import app.hosting.asgi as a; n = a.warm_static(a.STATIC); "
            "print(n, [m.root.is_dir() for m in a.STATIC.mounts], a.STATIC.cached_bytes)")
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    n = int(last.split()[0])
    assert "[True, True, True]" in last, last
    assert n >= 10, f"warm-up found only {n} files: {last}"
