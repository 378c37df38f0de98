"""Downloads under ``gradlab-serve --workers 2``, in Chromium: every click gives the file.

A Streamlit download (``st.download_button``, ``data=callable`` too) is a ``/media/`` URL that
only the worker which made it can answer, and the browser's GET may reach the other
worker: before app/export_download.py, 11 of 18 CSV downloads here were cancelled (404).
The file now travels over the page's websocket. Several pages (each its own connections,
so both workers take part), several clicks each; every CSV parses back to the JSON's
numbers.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tools.server import Server, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES, CLICKS = 3, 3
URL = "/?depth=3&width=16&steps=30&every=10&activation=tanh&seed=2"


def _download(page, button) -> bytes:
    with page.expect_download(timeout=30_000) as info:
        button.click()
    d = info.value
    assert d.failure() is None, f"download failed: {d.failure()}"
    return Path(d.path()).read_bytes()


def test_every_download_arrives_with_two_workers(browser) -> None:
    server = Server(free_port(), procs=2, executors=1)
    try:
        server.wait_healthy(timeout=120)
        got: list[bytes] = []
        for _ in range(PAGES):
            ctx = browser.new_context(accept_downloads=True,
                                      viewport={"width": 1280, "height": 900})
            try:
                page = ctx.new_page()
                page.goto(server.url + URL, wait_until="domcontentloaded")
                page.get_by_role("button", name="Play", exact=True).click(timeout=90_000)
                page.wait_for_function(
                    "() => document.body.innerText.includes('finished (30 steps)')",
                    timeout=120_000)
                page.get_by_text("Export and reproduce").click()
                pop = page.get_by_test_id("stPopoverBody")
                pop.wait_for(timeout=30_000)
                for _ in range(CLICKS):
                    got.append(_download(page, pop.get_by_role("button", name="CSV")))
                doc = json.loads(_download(page, pop.get_by_role("button", name="JSON")))
            finally:
                ctx.close()
            assert len(set(got[-CLICKS:])) == 1, "one finished run gave different files"
            pairs = [(s, la) for s in doc["snapshots"] for la in s["layers"]]
            assert [s["step"] for s in doc["snapshots"]] == [0, 10, 20, 30]
            for body in got[-CLICKS:]:
                rows = list(csv.DictReader(io.StringIO(body.decode())))
                assert len(rows) == len(pairs) == 4 * 4
                for row, (s, la) in zip(rows, pairs, strict=True):
                    assert int(row["step"]) == s["step"] and float(row["loss"]) == s["loss"]
                    assert float(row["delta_norm"]) == la["delta_norm"]
        assert len(got) == PAGES * CLICKS
        assert "Traceback" not in server.log_text(), server.log_tail()
    finally:
        server.stop()
