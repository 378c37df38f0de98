"""End to end: the real server (app/main.py), Debian Chromium via Playwright, press Play,
and watch the gradient-bar and loss charts change in the DOM.

The charts are drawn by ``app.stream_chart`` into ``div.gl-stream-chart`` elements, each a
plotly.js graph div whose ``layout.uirevision`` names the panel (``app.charts``) and whose
``_fullData`` holds the decoded traces.
"""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: A signature of the two charts the test watches: the bars' heights and the loss curve's
#: points (plotly.js decodes the base64 arrays into _fullData).
SIGNATURE_JS = """() => {
  const out = {};
  for (const gd of document.querySelectorAll('.gl-stream-chart')) {
    const name = gd.layout && gd.layout.uirevision;
    if (name !== 'gradient_bars' && name !== 'loss_curves') continue;
    const t = (gd._fullData || [])[0];
    if (!t || !t.y) continue;
    out[name] = {
      n: t.x ? t.x.length : 0,
      y: Array.from(t.y).map(v => Number.isFinite(v) ? +v.toPrecision(6) : null),
      title: gd.layout.title && gd.layout.title.text,
      updates: gd.__glUpdates || 0,
    };
  }
  return out;
}"""


def _signature(page) -> dict:
    return page.evaluate(SIGNATURE_JS)


def test_play_streams_live_charts(streamlit_server, page, tmp_path):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A small net with many steps: it trains for the whole test, whatever the machine.
    page.goto(f"{streamlit_server}/?depth=4&width=32&steps=100000&every=5",
              wait_until="domcontentloaded")
    play = page.get_by_role("button", name="Play", exact=True)
    play.wait_for(timeout=90_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.gl-stream-chart').length >= 8", timeout=90_000)
    assert page.get_by_text("Gradient Lab").first.is_visible()

    t0 = time.monotonic()
    play.click()
    page.get_by_text("running", exact=True).wait_for(timeout=60_000)

    seen: list[dict] = []
    deadline = time.monotonic() + 120
    first_change = None
    while time.monotonic() < deadline:
        sig = _signature(page)
        if {"gradient_bars", "loss_curves"} <= set(sig):
            if not seen or sig["gradient_bars"]["y"] != seen[-1]["gradient_bars"]["y"] \
                    or sig["loss_curves"]["n"] != seen[-1]["loss_curves"]["n"]:
                seen.append(sig)
                if first_change is None and len(seen) >= 2:
                    first_change = time.monotonic() - t0
        # Three distinct frames in which both charts moved on.
        if len(seen) >= 3 and seen[-1]["loss_curves"]["n"] > seen[0]["loss_curves"]["n"] \
                and len({str(s["gradient_bars"]["y"]) for s in seen}) >= 3:
            break
        time.sleep(0.25)

    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
    assert len(seen) >= 3, f"the charts did not change over time: {seen}"
    first, last = seen[0], seen[-1]
    bars = last["gradient_bars"]
    assert len(bars["y"]) == 5                        # 4 hidden layers + the output layer
    assert all(v is not None and v > 0 for v in bars["y"])
    assert last["loss_curves"]["n"] > first["loss_curves"]["n"]
    assert bars["updates"] >= 2, "the chart was remounted instead of updated in place"
    assert (tmp_path / "playground.png").stat().st_size > 10_000
    assert not errors, errors
    print(f"Play -> first chart change: {first_change:.1f} s")

    # Pause stops the charts.
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_text("paused", exact=True).wait_for(timeout=30_000)
    time.sleep(1.5)
    a = _signature(page)
    time.sleep(1.5)
    assert _signature(page)["loss_curves"]["n"] == a["loss_curves"]["n"]


STEP_JS = """() => {
  const v = document.querySelector('[data-testid="stMetricValue"]');
  return v ? parseInt(v.textContent.split('/')[0].replace(/[^0-9]/g, '') || '0') : -1;
}"""


def test_several_tabs_all_progress_and_a_closed_tab_frees_its_share(streamlit_factory, browser):
    """Three students press Play: every tab trains at once (no one waits in line), the page
    says how many runs share the server, and closing a tab frees its share (the others'
    count goes down)."""
    url = streamlit_factory("app/main.py", env={"GRADLAB_EXECUTORS": "2"})
    query = "/?depth=2&width=16&steps=1000000&every=5"
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(3)]
    try:
        pages = [ctx.new_page() for ctx in contexts]
        for p in pages:
            p.goto(url + query, wait_until="domcontentloaded")
            p.get_by_role("button", name="Play", exact=True).click(timeout=90_000)
        for p in pages:
            p.bring_to_front()
            p.wait_for_function(f"({STEP_JS})() > 0", timeout=60_000)
            assert p.get_by_text("waiting", exact=False).count() == 0
        first = pages[0]
        first.bring_to_front()
        first.get_by_text("3 runs share this server's 2 training processes",
                          exact=False).wait_for(timeout=30_000)
        before = [p.evaluate(STEP_JS) for p in pages]
        time.sleep(2.0)
        for p, b in zip(pages, before, strict=True):
            p.bring_to_front()
            assert p.evaluate(STEP_JS) > b, "a tab stopped progressing"
        contexts[2].close()                # a student leaves: the run is dropped at once
        first.bring_to_front()
        first.get_by_text("2 runs share this server's 2 training processes",
                          exact=False).wait_for(timeout=30_000)
    finally:
        for ctx in contexts:
            try:
                ctx.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
