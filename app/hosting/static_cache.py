"""Immutable front-end files answered from memory, each compressed once per process.

A student's first visit fetches ~110 files: Streamlit's hashed JavaScript, CSS and fonts
under ``/static/`` and this app's chart scripts (``/component/...``, plotly.min.js alone is
4.6 MB), which Streamlit would serve through its whole middleware stack, gzipping
plotly.min.js again for every browser (deploy/README.md, "A real browser's first visit").

:class:`StaticCache` sits in front of Streamlit (an ``st.App`` middleware, so only under
``gradlab-serve``): a GET or HEAD for a file under one of its mounts is answered from a
per-process cache of the file's bytes and their gzip (made once, kept only when smaller);
anything else, and any file it does not find, goes on to Streamlit unchanged. Paths are
resolved inside their mount's root only. The cache is bounded (``max_bytes``); past it,
files are still answered from disk, just not kept.
"""

from __future__ import annotations

import gzip
import mimetypes
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Worth compressing (fonts in woff2 and images are compressed already).
COMPRESSIBLE = frozenset({".js", ".mjs", ".css", ".json", ".map", ".svg", ".html", ".txt",
                          ".ttf", ".otf", ".wasm"})
MIN_GZIP_BYTES = 1024
IMMUTABLE = b"public, max-age=31536000, immutable"
MAX_BYTES = 96 * 2**20


@dataclass(frozen=True)
class Entry:
    body: bytes
    gz: bytes | None
    content_type: bytes


@dataclass(frozen=True)
class Mount:
    """URL prefix (ending in "/") -> directory. ``versioned``: the files' URLs carry a
    cache buster (``?v=``), so a response is immutable only when the request has one."""

    prefix: str
    root: Path
    versioned: bool = False


class Store:
    """The mounts and the per-process cache of their files (shared by the middleware and
    the start-up warm-up)."""

    def __init__(self, mounts: list[Mount], max_bytes: int = MAX_BYTES) -> None:
        self.mounts = [Mount(m.prefix, m.root.resolve(), m.versioned) for m in mounts]
        self.max_bytes = max_bytes
        self._cache: dict[tuple[str, str], Entry] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def find(self, url_path: str) -> tuple[Mount, Entry] | None:
        """The mount and file for a URL path, or None when no mount has that file."""
        for m in self.mounts:
            if url_path.startswith(m.prefix):
                e = self.entry(m, url_path[len(m.prefix):])
                return None if e is None else (m, e)
        return None

    def entry(self, mount: Mount, rel: str) -> Entry | None:
        """The file ``rel`` under ``mount`` (cached), or None if it is not a file there."""
        key = (mount.prefix, rel)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not rel or "\\" in rel or "\0" in rel or any(p in ("", ".", "..")
                                                           for p in rel.split("/")):
            return None
        path = (mount.root / rel).resolve()
        if not path.is_relative_to(mount.root) or not path.is_file():
            return None
        body = path.read_bytes()
        gz = None
        if path.suffix.lower() in COMPRESSIBLE and len(body) >= MIN_GZIP_BYTES:
            packed = gzip.compress(body, compresslevel=6, mtime=0)
            gz = packed if len(packed) < len(body) else None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith(("javascript", "json")):
            ctype += "; charset=utf-8"
        e = Entry(body, gz, ctype.encode())
        with self._lock:
            size = len(body) + len(gz or b"")
            if key not in self._cache and self._bytes + size <= self.max_bytes:
                self._cache[key] = e
                self._bytes += size
        return e

    def warm(self, url_paths: list[str]) -> int:
        """Load (and compress) these files now, e.g. at a worker's start-up; returns how
        many were found."""
        return sum(1 for p in url_paths if self.find(p) is not None)


class StaticCache:
    """ASGI middleware over a :class:`Store`; see the module docstring."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            hit = self.store.find(scope["path"])
            if hit is not None:
                await self._answer(scope, send, *hit)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(scope: Scope, send: Send, mount: Mount, e: Entry) -> None:
        accept = b""
        for k, v in scope.get("headers", ()):
            if k == b"accept-encoding":
                accept += v.lower()
        body = e.gz if e.gz is not None and b"gzip" in accept else e.body
        query = scope.get("query_string", b"")
        immutable = not mount.versioned or b"v=" in query
        headers = [(b"content-type", e.content_type),
                   (b"content-length", str(len(body)).encode()),
                   (b"cache-control", IMMUTABLE if immutable else b"no-cache"),
                   (b"x-content-type-options", b"nosniff")]
        if e.gz is not None:
            headers.append((b"vary", b"Accept-Encoding"))
            if body is e.gz:
                headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})
