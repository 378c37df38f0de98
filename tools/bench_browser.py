"""The bench's live-app section: the real playground (``streamlit run app/main.py``) in
Debian's Chromium via Playwright, streaming a run; steps/s on the page over steps/s headless,
chart mounts per panel, websocket bytes per redraw."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

from tools.bench_steps import Sizes
from tools.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from tools.server import serving

#: Injected into every frame (init script): counts elements that become ``.js-plotly-plot``
#: (a fresh chart mount); the same element updated in place (Plotly.react) is not counted.
_OBSERVER_JS = r"""
(() => {
  if (window.__glBench) return;
  const st = {mounts: 0, seen: new WeakSet()};
  window.__glBench = st;
  const look = (el) => {
    if (!(el instanceof Element)) return;
    const hits = el.matches('.js-plotly-plot') ? [el] : [];
    for (const e of el.querySelectorAll('.js-plotly-plot')) hits.push(e);
    for (const e of hits) if (!st.seen.has(e)) { st.seen.add(e); st.mounts += 1; }
  };
  const obs = new MutationObserver((muts) => {
    for (const m of muts) {
      if (m.type === 'attributes') look(m.target);
      else m.addedNodes.forEach(look);
    }
  });
  const start = () => obs.observe(document.documentElement,
      {childList: true, subtree: true, attributes: true, attributeFilter: ['class']});
  if (document.documentElement) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
"""

_COUNT_JS = """() => { const s = window.__glBench;
  return {mounts: s ? s.mounts : 0,
          present: document.querySelectorAll('.js-plotly-plot').length}; }"""

#: The playground's "Step" metric reads "1,234 / 1,000,000".
_STEP_JS = """() => {
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    const value = m.querySelector('[data-testid="stMetricValue"]');
    if (label && value && label.innerText.trim() === 'Step') return value.innerText;
  }
  return null; }"""


#: In the page: when the gradient bars last finished drawing (performance.now(), ms).
_BARS_AT_JS = """() => {
  for (const gd of document.querySelectorAll('.gl-stream-chart')) {
    if (gd.layout && gd.layout.uirevision === 'gradient_bars') return gd.__glUpdatedAt || 0;
  }
  return -1; }"""
#: Records the moment of the next click on Play in the page's own clock.
_ARM_CLICK_JS = """(sel) => { window.__glClickAt = null;
  document.querySelector(sel).addEventListener('click',
    () => { window.__glClickAt = performance.now(); }, {once: true, capture: true}); }"""


def _click_to_chart(page, clicks: int = 5) -> list[float]:
    """Seconds from a click on Play to the end of the gradient bars' first redraw after it,
    ``clicks`` times, each from a reset, settled page (what a student sees after pressing
    Play). Both moments are read from the page's own clock: timing it from here would add
    however long the browser's busy main thread takes to answer Playwright."""
    out = []
    button = {k: page.locator(f".st-key-pg_{k} button").first for k in ("play", "pause", "reset")}
    for _ in range(clicks):
        if button["pause"].is_enabled():
            button["pause"].click()
        button["reset"].click()
        page.wait_for_function("b => !b.disabled", arg=button["play"].element_handle(),
                               timeout=30_000)
        page.wait_for_timeout(1500)                     # the step-0 picture drawn, quiet
        page.evaluate(_ARM_CLICK_JS, ".st-key-pg_play button")
        button["play"].click()
        page.wait_for_function(
            f"() => window.__glClickAt !== null && ({_BARS_AT_JS})() > window.__glClickAt",
            polling=10, timeout=30_000)
        out.append(page.evaluate(f"() => (({_BARS_AT_JS})() - window.__glClickAt) / 1000"))
        page.wait_for_timeout(500)
    if button["pause"].is_enabled():
        button["pause"].click()
    return out


def _headless_steps_per_s(cfg, seconds: float) -> tuple[int, float]:
    """Steps and seconds of ``core.train.run(cfg)`` run here for about ``seconds``."""
    from core.train import run

    gen = run(cfg)
    first = next(gen)
    t0, s0 = time.perf_counter(), first.step
    last = first
    for snap in gen:
        last = snap
        if time.perf_counter() - t0 >= seconds or snap.diverged:
            break
    gen.close()
    return last.step - s0, time.perf_counter() - t0


def _parse_step(text: str | None) -> int | None:
    if not text:
        return None
    m = re.match(r"\s*([\d,]+)", text)
    return int(m.group(1).replace(",", "")) if m else None


def browser_ready() -> str | None:
    """None when the live-app measurement can run, else the reason it cannot."""
    missing = chromium_missing()
    if missing:
        return missing
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def bench_browser(sizes: Sizes) -> dict[str, Any]:
    """Open the real playground, press Play, stream for ``stream_s`` and measure."""
    from playwright.sync_api import sync_playwright
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from core.config import RunConfig

    # The default page, but long enough never to finish inside the window.
    cfg = RunConfig(steps=1_000_000)
    query = cfg.to_query()
    half = sizes.headless_s / 2
    h_steps, h_secs = _headless_steps_per_s(cfg.replace(device="cpu"), half)

    ws = {"bytes": 0, "frames": 0, "redraws": 0, "full_runs": 0}
    frames_log = {"attached": 0, "detached": 0}

    def on_frame(payload) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        ws["bytes"] += len(data)
        ws["frames"] += 1
        if len(data) < 2048:                          # script_finished is a tiny message
            try:
                msg = ForwardMsg.FromString(data)
            except Exception:  # noqa: BLE001 - not a ForwardMsg
                return
            if msg.WhichOneof("type") == "script_finished":
                if msg.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    ws["redraws"] += 1
                elif msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                    ws["full_runs"] += 1

    out: dict[str, Any] = {}
    with serving(hosted=False, timeout=60, log_prefix="gradlab-bench-") as server, \
            sync_playwright() as pw:
        url = server.url
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(_OBSERVER_JS)
            page = context.new_page()
            page.on("websocket", lambda w: w.on("framereceived", on_frame))
            page.on("frameattached", lambda f: frames_log.__setitem__(
                "attached", frames_log["attached"] + 1))
            page.on("framedetached", lambda f: frames_log.__setitem__(
                "detached", frames_log["detached"] + 1))
            page.goto(f"{url}/?{query}", wait_until="domcontentloaded", timeout=60_000)
            play = page.locator(".st-key-pg_play button").first   # (stale copy mid-rerun)
            play.wait_for(state="visible", timeout=60_000)
            page.wait_for_function("b => !b.disabled", arg=play.element_handle(),
                                   timeout=30_000)
            page.wait_for_timeout(1000)                 # let the first full run settle
            t_play = time.perf_counter()
            play.click()

            def counts() -> tuple[int, int]:
                mounts = present = 0
                for f in page.frames:
                    with contextlib.suppress(Exception):
                        c = f.evaluate(_COUNT_JS)
                        mounts += c["mounts"]
                        present += c["present"]
                return mounts, present

            def step_now() -> int | None:
                with contextlib.suppress(Exception):
                    return _parse_step(page.evaluate(_STEP_JS))
                return None

            # first chart after Play
            first_chart = None
            while time.perf_counter() - t_play < 30:
                if counts()[1] > 0:
                    first_chart = time.perf_counter() - t_play
                    break
                page.wait_for_timeout(100)
            if first_chart is None:
                raise RuntimeError("no Plotly chart appeared within 30 s of pressing Play")
            page.wait_for_timeout(1500)                 # every panel drawn at least once
            m0, p0 = counts()
            f0 = dict(frames_log)
            w0 = dict(ws)
            s0, t0 = step_now(), time.perf_counter()
            page.wait_for_timeout(int(sizes.mounts_s * 1000))
            m1, p1 = counts()
            f1 = dict(frames_log)
            page.wait_for_timeout(int(max(0.0, sizes.stream_s - sizes.mounts_s) * 1000))
            s1, t1 = step_now(), time.perf_counter()
            w1 = dict(ws)
            clicks = _click_to_chart(page)
            context.close()
        finally:
            browser.close()
    h2_steps, h2_secs = _headless_steps_per_s(cfg.replace(device="cpu"), half)
    headless = (h_steps + h2_steps) / (h_secs + h2_secs)
    if s0 is None or s1 is None:
        raise RuntimeError("could not read the 'Step' metric from the page")
    streaming = (s1 - s0) / (t1 - t0)
    # Frames that came and went inside the window took their charts with them: count each
    # as one more mount (a chart living in a component iframe that was re-created).
    gone = max(0, f1["detached"] - f0["detached"])
    mounts = (m1 - m0) + gone
    redraws = w1["redraws"] - w0["redraws"]
    out.update(
        stream_over_headless=streaming / headless if headless > 0 else None,
        click_to_chart_s=sorted(clicks)[len(clicks) // 2],
        chart_mounts_per_panel=(p0 + mounts) / p1 if p1 else None,
        snapshot_bytes=(w1["bytes"] - w0["bytes"]) / redraws if redraws else None,
        details={
            "first_chart_after_play_s": first_chart,
            "click_to_chart_each_s": clicks,
            "streaming_steps_per_s": streaming, "headless_steps_per_s": headless,
            "panels": p1, "mounts_in_window": mounts, "frames_detached": gone,
            "redraws": redraws, "redraws_per_s": redraws / (t1 - t0),
            "full_reruns": w1["full_runs"] - w0["full_runs"],
            "ws_bytes": w1["bytes"] - w0["bytes"], "ws_frames": w1["frames"] - w0["frames"],
            "ws_bytes_per_s": (w1["bytes"] - w0["bytes"]) / (t1 - t0),
            "window_s": t1 - t0, "config_query": query,
        },
    )
    return out


