"""Debian's Chromium, launched the same way by the browser tests, the bench and the load test
(never Playwright's own browser download)."""

from __future__ import annotations

import os

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_missing() -> str | None:
    """None when Chromium is there, else the reason to report."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return None
    return f"{CHROMIUM} not found: apt-get install -y chromium"
