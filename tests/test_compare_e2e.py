"""End to end in Chromium: compare A/B, Repeat over seeds, and every download.

Pin a sigmoid run as A, switch the activation to ReLU, play B: every panel shows both runs.
A hand-edited bad B in the link gives a clear message and keeps A. Repeat x 5 draws
bands (median and quartiles). The CSV parses back to the JSON's numbers, the chart PNG /
SVG open, and the Reproduce command, run headless, gives the page's first-snapshot
delta_norm to 1e-6. Screenshots go to /tmp/h/shots/compare-*.png when that folder exists.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path("/tmp/h/shots")
SMALL = "depth=4&width=32&steps=300&every=10"

#: For every chart on the page: its key, title, trace names, and whether it has a band
#: (a filled trace) or whiskers (error_y).
CHARTS_JS = """() => Array.from(document.querySelectorAll('.gl-stream-chart')).map(gd => ({
  key: gd.dataset.chartKey,
  title: (gd.layout && gd.layout.title && gd.layout.title.text) || '',
  names: (gd._fullData || []).map(t => t.name || ''),
  band: (gd._fullData || []).some(t => t.fill === 'tonexty'),
  whiskers: (gd._fullData || []).some(t => t.error_y && t.error_y.visible),
}))"""


def _charts(page) -> dict[str, dict]:
    return {c["key"]: c for c in page.evaluate(CHARTS_JS)}


def _shot(page, name: str) -> None:
    """The whole page (Streamlit scrolls inside its main container: grow the viewport)."""
    if not SHOTS.is_dir():
        return
    height = page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]')"
                           " || document.body).scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 8000)})
    page.wait_for_timeout(1500)                      # charts follow the new size
    page.screenshot(path=str(SHOTS / f"compare-{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


def _open(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Play", exact=True).wait_for(timeout=90_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.gl-stream-chart').length >= 8", timeout=90_000)


def _pick(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key} [role='combobox']").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def _download(page, click) -> bytes:
    with page.expect_download(timeout=60_000) as info:
        click()
    path = info.value.path()
    return Path(path).read_bytes()


def test_compare_both_runs_in_every_panel(streamlit_server, page):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _open(page, f"{streamlit_server}/?{SMALL}&activation=sigmoid")
    page.locator(".st-key-pg_pin label").first.click(timeout=90_000)
    page.wait_for_function("() => location.search.includes('a=')", timeout=30_000)
    _pick(page, "pg_activation", "relu")
    page.get_by_text("Comparing A: sigmoid with B: relu", exact=False).wait_for(timeout=60_000)
    page.get_by_role("button", name="Play", exact=True).click()
    # Both runs train together (A was pinned at step 0): wait for both to finish.
    page.wait_for_function(
        "() => document.body.innerText.includes('finished (300 steps)')"
        " && document.body.innerText.includes('A: step 300 / 300')", timeout=180_000)
    page.wait_for_timeout(2000)                      # the last frame's redraw
    _shot(page, "ab")
    charts = _charts(page)
    for key in ("pg_chart_grad", "pg_chart_loss", "pg_chart_speed", "pg_chart_update",
                "pg_chart_spectrum"):
        names = " | ".join(charts[key]["names"])
        assert "A" in names and "B" in names, (key, names)
        assert any(n.startswith("A") for n in charts[key]["names"]), (key, names)
        assert any(n.startswith("B") for n in charts[key]["names"]), (key, names)
    grad = charts["pg_chart_grad"]["names"]
    assert any("A: sigmoid" in n for n in grad) and any("B: relu" in n for n in grad), grad
    for key in ("pg_chart_neurons", "pg_chart_act", "pg_chart_gradhist"):
        assert charts[f"{key}_A"]["title"].startswith("A: sigmoid"), charts[f"{key}_A"]
        assert charts[f"{key}_B"]["title"].startswith("B: relu"), charts[f"{key}_B"]
    assert "activation: sigmoid → relu" in page.inner_text("body")
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(page.url).query)
    assert query["activation"] == ["relu"]
    assert "activation=sigmoid" in query["a"][0]
    assert not errors, errors


def test_bad_b_in_link_keeps_a(streamlit_server, page):
    _open(page, f"{streamlit_server}/?{SMALL}&activation=bogus&a=activation%3Dsigmoid%26"
                "depth%3D4%26width%3D32%26steps%3D300")
    body = page.locator("body")
    page.get_by_text("Some settings in the link could not be used").wait_for(timeout=60_000)
    assert "activation" in body.inner_text()
    page.get_by_text("Comparing A: sigmoid with B: tanh", exact=False).wait_for(timeout=60_000)


def test_repeat_bands_and_downloads(streamlit_server, page, tmp_path):
    _open(page, f"{streamlit_server}/?{SMALL}&activation=sigmoid&seed=3")
    # Repeat x 5: bands on the curves, whiskers on the bars.
    page.locator(".st-key-pg_repeat").get_by_text("× 5", exact=True).click()
    page.get_by_text("Repeat × 5", exact=False).first.wait_for(timeout=180_000)
    page.wait_for_function(
        """() => {
          const by = {};
          for (const gd of document.querySelectorAll('.gl-stream-chart'))
            by[gd.dataset.chartKey] = gd._fullData || [];
          const band = k => (by[k] || []).some(t => t.fill === 'tonexty');
          return band('pg_chart_speed') && band('pg_chart_loss') && band('pg_chart_update')
            && (by['pg_chart_grad'] || []).some(t => t.error_y && t.error_y.visible);
        }""", timeout=60_000)
    charts = _charts(page)
    for key in ("pg_chart_speed", "pg_chart_loss", "pg_chart_update"):
        assert charts[key]["band"], charts[key]
    assert charts["pg_chart_grad"]["whiskers"], charts["pg_chart_grad"]
    assert "5 seeds" in charts["pg_chart_grad"]["title"], charts["pg_chart_grad"]
    _shot(page, "bands")

    # Back to one run; play it to the end, then download everything.
    page.locator(".st-key-pg_repeat").get_by_text("one seed", exact=True).click()
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function("() => document.body.innerText.includes('finished (300 steps)')",
                           timeout=180_000)
    page.get_by_text("Export and reproduce").click()
    pop = page.get_by_test_id("stPopoverBody")
    pop.wait_for(timeout=30_000)
    csv_bytes = _download(page, lambda: pop.get_by_role("button", name="CSV").click())
    json_bytes = _download(page, lambda: pop.get_by_role("button", name="JSON").click())
    doc = json.loads(json_bytes)
    rows = list(csv.DictReader(io.StringIO(csv_bytes.decode())))
    assert doc["config"]["seed"] == 3 and doc["config"]["activation"] == "sigmoid"
    n_layers = len(doc["snapshots"][0]["layers"])
    assert len(rows) == len(doc["snapshots"]) * n_layers
    for row, (snap, layer) in zip(rows, ((s, la) for s in doc["snapshots"]
                                         for la in s["layers"]), strict=True):
        assert int(row["step"]) == snap["step"]
        assert float(row["loss"]) == snap["loss"]
        for k in ("delta_norm", "weight_grad_norm", "update_ratio", "saturation"):
            assert float(row[k]) == layer[k], (k, row[k], layer[k])
    command = pop.locator("code").filter(has_text="--seed ").first.inner_text()
    page.keyboard.press("Escape")

    # The chart downloads: a PNG and an SVG from the gradient bars' toolbar.
    chart = page.locator(".gl-stream-chart[data-chart-key='pg_chart_grad']")
    chart.hover()
    png = _download(page, lambda: chart.locator(
        "[data-title='Download plot as a png' i]").click())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 500 and height > 300
    chart.hover()
    svg = _download(page, lambda: chart.locator("[data-title='Download plot as SVG']").click())
    root = ET.fromstring(svg.decode())
    assert root.tag.endswith("svg")
    assert "Gradient per layer" in svg.decode()

    # The Reproduce command, run headless, gives the same first snapshot.
    out = tmp_path / "run.json"
    argv = shlex.split(command)
    assert argv[:2] == ["gradlab", "run"]
    argv = [a if a != "run.json" else str(out) for a in argv]
    done = subprocess.run([sys.executable, "-m", "core.cli", *argv[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    head = json.loads(out.read_text())
    first, page_first = head["snapshots"][0], doc["snapshots"][0]
    assert first["step"] == page_first["step"] == 0
    for a, b in zip(first["layers"], page_first["layers"], strict=True):
        assert abs(a["delta_norm"] - b["delta_norm"]) <= 1e-6, (a["name"], a, b)
