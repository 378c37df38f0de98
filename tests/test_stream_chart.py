"""app/stream_chart: charts that update IN PLACE.

Fast tests check the payload and the component wiring (AppTest). The browser test runs a
real Streamlit server with a fragment (run_every=0.3 s) that feeds new data to the charts,
opens it in Debian Chromium and checks that every chart div is created exactly once and
survives the updates, that the data really changes, that a user's zoom survives them
(uirevision), that plotly.js comes from the server itself (no CDN), and it saves a
screenshot of the page to look at.
"""

from __future__ import annotations

import json
import pickle
import textwrap
import time
from pathlib import Path

import plotly.graph_objects as go
import pytest

from app import charts
from app.stream_chart import FRONTEND_DIR, PLOTLY_DIR, _loader_js, payload
from core.config import RunConfig
from core.train import run_all

LIVE_KEYS = ("live_bars", "live_speed")
STATIC_KEYS = ("neurons", "loss", "activations", "grad_hist")


@pytest.fixture(scope="module")
def history():
    """A depth-20 MLP: 7 snapshots whose gradients change from one to the next."""
    return run_all(RunConfig(depth=20, width=32, n_train=256, n_test=64, steps=30,
                             every=5)).snapshots


# ---- fast: payload and wiring --------------------------------------------------------------


def test_payload_is_small_json_with_the_figure(history) -> None:
    fig = charts.gradient_bars(history[-1])
    raw = payload(fig, key="k", height=300)
    msg = json.loads(raw)
    assert msg["key"] == "k" and msg["height"] == 300
    assert msg["config"]["displaylogo"] is False
    assert msg["plotly_path"].startswith("app.stream_chart.plotlyjs/plotly.min.js?v=")
    assert msg["figure"]["layout"]["uirevision"] == "gradient_bars"
    assert msg["figure"]["data"][0]["y"]["dtype"] == "f8"   # NumPy goes as base64, as-is
    # the bytes per update for a depth-20 gradient_bars (plus a ~300-byte loader)
    assert len(raw) < 6_000, len(raw)
    assert len(_loader_js()) < 500


def test_figure_json_equals_plotlys_own_for_every_panel(history) -> None:
    """figure_json skips Figure.to_dict's deep copy: the text must not change, and the
    figure must be left as it was (the copy of its dicts takes the base64 rewrite)."""
    import plotly.io as pio

    from app.stream_chart import figure_json

    snap, figs = history[-1], []
    for name in charts.CAPTIONS:                       # one caption per panel builder
        build = getattr(charts, name)
        figs.append(build(history if "curves" in name or name == "update_ratio" else snap))
    figs.append(go.Figure(go.Scatter(y=[1.0, float("nan")])))       # a validated figure
    for fig in figs:
        before = pio.to_json(fig, validate=False)
        assert json.loads(figure_json(fig)) == json.loads(before)
        assert pio.to_json(fig, validate=False) == before               # not mutated


def test_raw_figures_serialise_like_the_plotly_figures(history) -> None:
    """The live page builds its panels inside charts.raw_figures() (plain dicts, no
    go.Figure): every builder's JSON must be the one its go.Figure gives, on real
    snapshots, on an empty history and on a diverged run's last snapshot."""
    from app.stream_chart import figure_json
    from core.presets import preset

    diverged = run_all(preset("exploding-lr")).snapshots
    assert diverged[-1].diverged
    cases = []
    for hist in (history, history[:1], diverged):
        for name in charts.CAPTIONS:
            cases.append((name, hist if "curves" in name or name == "update_ratio"
                          else hist[-1]))
        cases.append(("loss_curves", []))
    for name, arg in cases:
        build = getattr(charts, name)
        with charts.raw_figures():
            raw = build(arg)
        assert isinstance(raw, charts.RawFigure), name
        first = figure_json(raw)
        assert json.loads(first) == json.loads(figure_json(build(arg))), name
        assert figure_json(raw) == first, name                    # serialising changed nothing
    assert isinstance(charts.gradient_bars(history[-1]), go.Figure)   # outside the block


def test_payload_accepts_dicts_and_a_config() -> None:
    fig = {"data": [{"type": "bar", "y": [1, 2, 3]}], "layout": {"title": {"text": "t"}}}
    msg = json.loads(payload(fig, config={"staticPlot": True}))
    assert msg["figure"]["data"][0]["y"] == [1, 2, 3]
    assert msg["config"] == {"staticPlot": True}
    msg = json.loads(payload(go.Figure(go.Scatter(y=[1.0, float("nan")]))))
    assert msg["figure"]["data"][0]["type"] == "scatter"


def test_assets_exist_and_loader_is_inline_js() -> None:
    assert (FRONTEND_DIR / "stream_chart.js").is_file()
    assert (PLOTLY_DIR / "plotly.min.js").stat().st_size > 1_000_000
    js = _loader_js()
    # Streamlit treats a one-line string that looks like a path as a file to load
    assert "\n" in js and "export default" in js
    assert "app.stream_chart.assets/stream_chart.js?v=" in js
    assert "cdn" not in js.lower() and "https://" not in js


def test_stream_chart_runs_under_apptest() -> None:
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import plotly.graph_objects as go
        import streamlit as st

        from app.stream_chart import stream_chart

        @st.fragment(run_every=10)
        def panel() -> None:
            stream_chart(go.Figure(go.Bar(y=[1, 2])), key="a")

        panel()
        stream_chart({"data": [{"type": "bar", "y": [3]}], "layout": {}}, key="b", height=200)
        st.write("after the charts")

    at = AppTest.from_function(script).run(timeout=60)
    assert not at.exception
    assert at.markdown[0].value == "after the charts"
    at.run(timeout=60)   # a rerun in the same runtime: still fine
    assert not at.exception


def test_key_is_required() -> None:
    from app.stream_chart import stream_chart

    with pytest.raises(ValueError, match="key"):
        stream_chart(go.Figure(), key="")


# ---- the real thing: Streamlit + Chromium ------------------------------------------------------

PAGE = """
import pickle

import streamlit as st

from app import charts
from app.stream_chart import stream_chart

st.set_page_config(layout="wide")
with open({path!r}, "rb") as f:
    HIST = pickle.load(f)
if "frame" not in st.session_state:
    st.session_state.frame = 0


@st.fragment(run_every=0.3)
def live():
    st.session_state.frame += 1
    n = st.session_state.frame
    st.caption(f"frame {{n}}")
    left, right = st.columns(2)
    with left:
        stream_chart(charts.gradient_bars(HIST[n % len(HIST)]), key="live_bars", height=380)
    with right:
        stream_chart(charts.speed_curves(HIST[: 1 + n % len(HIST)]), key="live_speed",
                     height=380)
    if n % 2:   # elements that come and go around the charts
        st.info("odd frame")


live()
left, right = st.columns(2)
with left:
    stream_chart(charts.neuron_bars(HIST[-1]), key="neurons", height=380)
    stream_chart(charts.activation_panel(HIST[-1]), key="activations", height=400)
with right:
    stream_chart(charts.loss_curves(HIST), key="loss", height=380)
    stream_chart(charts.grad_hist_panel(HIST[-1]), key="grad_hist", height=400)
"""

# Count plot divs (.js-plotly-plot) by identity from the very first one, every 5 ms: each
# new div is a (re)mount. stream_chart's div carries its key; any other plot counts as "?".
COUNT_MOUNTS = """
window.__glMounts = {};
window.__glSeen = new WeakSet();
setInterval(() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (window.__glSeen.has(gd)) continue;
    window.__glSeen.add(gd);
    const k = gd.dataset.chartKey || "?";
    window.__glMounts[k] = (window.__glMounts[k] || 0) + 1;
  }
}, 5);
"""

FRAME = """(() => {
  const caps = Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'));
  const m = caps.map(c => c.textContent.match(/frame (\\d+)/)).filter(Boolean);
  return m.length ? Number(m[m.length - 1][1]) : 0;
})()"""

READ = """key => {
  const gd = document.querySelector(`.gl-stream-chart[data-chart-key="${key}"]`);
  if (!gd || !gd._fullData) return null;
  // gd.data keeps the base64 specs as sent; _fullData holds the decoded typed arrays
  return {updates: gd.__glUpdates || 0, tag: gd.__testTag || null,
          y: Array.from(gd._fullData[0].y || []), title: gd.layout.title.text,
          xrange: gd.layout.xaxis.range ? Array.from(gd.layout.xaxis.range) : null,
          xauto: gd.layout.xaxis.autorange};
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_charts_update_in_place_in_a_real_browser(
    history, tmp_path: Path, browser, streamlit_factory
) -> None:
    snaps = tmp_path / "history.pkl"
    snaps.write_bytes(pickle.dumps(history))
    script = tmp_path / "stream_page.py"
    script.write_text(textwrap.dedent(PAGE.format(path=str(snaps))))
    url = streamlit_factory(str(script))

    context = browser.new_context(viewport={"width": 1400, "height": 1900})
    page = context.new_page()
    errors: list[str] = []
    warnings: list[str] = []
    requests: list[str] = []
    ws_bytes: list[tuple[float, int]] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: (errors if m.type == "error" else warnings).append(m.text)
            if m.type in ("error", "warning") else None)
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda p: ws_bytes.append((time.monotonic(), len(p or b"")))))
    page.add_init_script(COUNT_MOUNTS)
    try:
        page.goto(url)
        all_keys = LIVE_KEYS + STATIC_KEYS
        page.wait_for_function(
            f"document.querySelectorAll('.gl-stream-chart.js-plotly-plot').length >= "
            f"{len(all_keys)}", timeout=90_000)
        page.wait_for_function(f"({READ})('live_bars')?.updates >= 2", timeout=30_000)

        # tag the live divs: the same elements must still be there at the end
        for key in LIVE_KEYS:
            page.evaluate("k => { document.querySelector("
                          "`.gl-stream-chart[data-chart-key=\"${k}\"]`).__testTag = k; }", key)
        first = {k: page.evaluate(READ, k) for k in LIVE_KEYS}

        # a user zooms the live bar chart (a horizontal drag = x-only zoom box)
        drag = page.locator('.gl-stream-chart[data-chart-key="live_bars"] .nsewdrag').first
        box = drag.bounding_box()
        assert box is not None
        y = box["y"] + box["height"] * 0.5
        page.mouse.move(box["x"] + box["width"] * 0.3, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.45, y + 2, steps=5)
        page.mouse.move(box["x"] + box["width"] * 0.6, y + 3, steps=5)
        page.mouse.up()
        zoomed = page.evaluate(READ, "live_bars")["xrange"]
        assert zoomed is not None

        # watch ~5 s of updates, sampling the data
        t0 = time.monotonic()
        frame0, start = page.evaluate(FRAME), page.evaluate(READ, "live_bars")
        seen_y, seen_titles = set(), set()
        while time.monotonic() - t0 < 5.0:
            now = page.evaluate(READ, "live_bars")
            seen_y.add(tuple(round(v, 12) for v in now["y"]))
            seen_titles.add(now["title"])
            time.sleep(0.2)
        window_s = time.monotonic() - t0
        last = {k: page.evaluate(READ, k) for k in LIVE_KEYS}
        frames = page.evaluate(FRAME) - frame0
        mounts = page.evaluate("({...window.__glMounts})")

        shot = tmp_path / "stream_chart.png"
        page.screenshot(path=str(shot), full_page=True)
        plotly_src = page.evaluate(
            "document.querySelector('script[data-gradlab=\"plotly\"]')?.src || null")
    finally:
        context.close()

    updates = last["live_bars"]["updates"] - start["updates"]
    frame_bytes = sum(n for t, n in ws_bytes if t >= t0) / max(frames, 1)
    print(f"\nmounts per chart: {mounts}; live_bars: {updates} in-place updates for "
          f"{frames} fragment runs in {window_s:.1f} s; websocket: {frame_bytes:.0f} bytes "
          f"per fragment run (two live charts + caption); screenshot: {shot}")

    # ONE div per chart for the whole session, and it is the same element as at the start
    assert mounts == dict.fromkeys(LIVE_KEYS + STATIC_KEYS, 1), mounts
    for key in LIVE_KEYS:
        assert last[key]["tag"] == key, f"{key}: the chart div was replaced"
    # ... while the data did change, many times
    assert updates >= 5, f"only {updates} updates in {window_s:.1f} s"
    assert updates <= frames + 2, f"{updates} redraws for {frames} runs: redundant redraws"
    assert len(seen_y) >= 3 and len(seen_titles) >= 3, (len(seen_y), seen_titles)
    assert last["live_speed"]["updates"] > first["live_speed"]["updates"]
    # the user's zoom survived every one of those updates (layout.uirevision)
    assert last["live_bars"]["xauto"] is False
    assert last["live_bars"]["xrange"] == pytest.approx(zoomed)
    # plotly.js came from this server, not from a CDN; nothing went elsewhere
    assert plotly_src and plotly_src.startswith(url) and "plotly.min.js" in plotly_src
    foreign = [u for u in requests if not u.startswith((url, "blob:", "data:"))]
    assert not foreign, foreign[:5]
    assert not errors, errors[:5]
    assert not [w for w in warnings if "Invalid color" in w], warnings[:5]
    assert frame_bytes < 40_000
    assert shot.stat().st_size > 50_000


OFFSCREEN_PAGE = """
import plotly.graph_objects as go
import streamlit as st

from app.stream_chart import stream_chart

if "frame" not in st.session_state:
    st.session_state.frame = 0


def fig(n: int) -> go.Figure:
    return go.Figure(go.Bar(y=[n]), layout={"uirevision": "keep"})


@st.fragment(run_every=0.25)
def live():
    st.session_state.frame += 1
    n = st.session_state.frame
    stream_chart(fig(n), key="top", height=250)
    st.html('<div style="height:2400px"></div>')
    stream_chart(fig(n), key="below", height=250)


live()
"""

SHOWN = """key => {
  const gd = document.querySelector(`.gl-stream-chart[data-chart-key="${key}"]`);
  return gd && gd._fullData ? {updates: gd.__glUpdates || 0, n: gd._fullData[0].y[0]} : null;
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_a_chart_out_of_view_is_redrawn_seldom_and_at_once_when_seen(
        tmp_path: Path, browser, streamlit_factory) -> None:
    """Every update redraws a chart in view; one scrolled out of view is redrawn at most
    every 2 s (eight panels redrawn four times a second compete with the training on a
    2-core laptop), and the moment it is scrolled into view it shows the latest data."""
    script = tmp_path / "offscreen_page.py"
    script.write_text(textwrap.dedent(OFFSCREEN_PAGE))
    url = streamlit_factory(str(script))
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function(f"({SHOWN})('below') !== null", timeout=90_000)
        top0, below0 = page.evaluate(SHOWN, "top"), page.evaluate(SHOWN, "below")
        page.wait_for_timeout(4000)
        top1, below1 = page.evaluate(SHOWN, "top"), page.evaluate(SHOWN, "below")
        top_n = top1["updates"] - top0["updates"]
        below_n = below1["updates"] - below0["updates"]
        assert top_n >= 8, (top0, top1)                 # ~16 frames in 4 s, all drawn
        assert 1 <= below_n <= 3, (below0, below1)      # one per 2 s (trailing timer)
        page.wait_for_function(                         # it lags while out of view...
            f"(() => ({SHOWN})('below').n < ({SHOWN})('top').n - 1)()", timeout=3000)
        below1 = page.evaluate(SHOWN, "below")
        page.locator('.gl-stream-chart[data-chart-key="below"]').scroll_into_view_if_needed()
        page.wait_for_function(             # ...and catches up at once when scrolled to
            f"(() => {{ const t = ({SHOWN})('top'), b = ({SHOWN})('below');"
            f" return b.updates > {below1['updates']} && b.n >= t.n - 1; }})()",
            timeout=1000)
    finally:
        context.close()
