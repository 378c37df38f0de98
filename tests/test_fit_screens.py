"""Every page fits a classroom screen, in a real browser (Debian Chromium via Playwright).

At 1280 x 720, 1366 x 768 and 1920 x 1080, light and dark, on the playground (normal and
presenter mode) and on every lesson page (1280 x 720, the tightest): no metric value,
widget label, button, navigation link or heading is cut off (its text's scrollWidth fits
its clientWidth, and it does not stick out of a column that clips it), no chart title,
legend or axis title leaves its chart, and no chart title overlaps its legend, an axis
title or an annotation, nor two annotations each other (Plotly draws them in SVG:
getBoundingClientRect). Presenter mode: axis text >= 18 px at 1920 x 1080, the sidebar
collapsed, the link on screen; and the keyboard shortcuts (space, right arrow, r) drive the
run but never fire while typing in a field. Screenshots go to test-results/fit/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.page_helpers import wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = ((1280, 720), (1366, 768), (1920, 1080))
SHOTS = Path(__file__).resolve().parent.parent / "test-results" / "fit"
RUN = "depth=20&steps=2000&every=20"

#: Everything that is cut off or overlaps on the page, as a list of findings.
FIT_JS = r"""() => {
  const bad = [];
  const clipsX = (el) => getComputedStyle(el).overflowX !== 'visible';
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > 0
      && !el.closest('[data-testid="stSidebar"][aria-expanded="false"], '
        + '[data-testid="stSidebar"][data-collapsed="true"]');
  };
  const name = (el) => (el.innerText || el.textContent || '').trim()
    .replace(/\s+/g, ' ').slice(0, 50);
  const sel = ['[data-testid="stMetricValue"]', '[data-testid="stMetricLabel"]',
    '[data-testid="stWidgetLabel"]', '[data-testid="stButtonGroup"] [role="radiogroup"]',
    '[data-testid="stButtonGroup"] button', '[data-testid^="stBaseButton"]',
    '[data-testid="stSidebarNavLink"]', '[data-testid="stExpander"] summary',
    '[data-testid="stCheckbox"] label', 'h1', 'h2', 'h3'].join(',');
  for (const el of document.querySelectorAll(sel)) {
    if (!visible(el)) continue;
    // 1. text cut inside the element, or inside a descendant that clips
    for (const c of [el, ...el.querySelectorAll('*')]) {
      if (!name(c) || c.closest('svg')) continue;
      if (c.scrollWidth > c.clientWidth + 1 && c.clientWidth > 0 && clipsX(c)) {
        bad.push({kind: 'clipped-text', text: name(c), sw: c.scrollWidth, cw: c.clientWidth});
        break;
      }
    }
    // 2. the element sticks out of the nearest ancestor that clips (a column, the sidebar)
    const r = el.getBoundingClientRect();
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (!clipsX(a)) continue;
      const q = a.getBoundingClientRect();
      if (r.right > q.right + 1 || r.left < q.left - 1) {
        bad.push({kind: 'sticks-out', text: name(el), right: Math.round(r.right),
                  clip: Math.round(q.right)});
      }
      break;
    }
  }
  const overlap = (a, b) => !(a.right <= b.left + 1 || b.right <= a.left + 1
    || a.bottom <= b.top + 1 || b.bottom <= a.top + 1);
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (!visible(gd)) continue;
    const box = gd.getBoundingClientRect();
    const title = gd.querySelector('.gtitle');
    const chart = (gd.layout && gd.layout.uirevision) || (title ? name(title) : '?');
    const parts = [];
    const add = (kind, el) => { if (el && visible(el)) parts.push([kind, el]); };
    add('title', title);
    add('legend', gd.querySelector('.legend'));
    gd.querySelectorAll('.g-xtitle, .g-ytitle, .g-x2title, .g-y2title')
      .forEach((x) => add('axis title', x));
    gd.querySelectorAll('.annotation').forEach((a) => add('annotation ' + name(a), a));
    for (const [kind, el] of parts) {
      const q = el.getBoundingClientRect();
      if (['title', 'legend', 'axis title'].includes(kind) && (q.right > box.right + 1
          || q.left < box.left - 1 || q.top < box.top - 1 || q.bottom > box.bottom + 1)) {
        bad.push({kind: 'outside-chart', chart, part: kind, text: name(el)});
      }
    }
    for (let i = 0; i < parts.length; i++) {
      for (let j = i + 1; j < parts.length; j++) {
        const [ka, a] = parts[i], [kb, b] = parts[j];
        const keyed = ka === 'title' || kb === 'title' || ka === 'legend' || kb === 'legend'
          || (ka.startsWith('annotation') && kb.startsWith('annotation'));
        if (keyed && overlap(a.getBoundingClientRect(), b.getBoundingClientRect())) {
          bad.push({kind: 'overlap', chart, a: ka, b: kb});
        }
      }
    }
  }
  return bad;
}"""

STEP_JS = """() => {
  const v = document.querySelector('[data-testid="stMetricValue"]');
  return v ? parseInt(v.textContent.split('/')[0].replace(/[^0-9]/g, '') || '0') : -1;
}"""

#: The smallest axis text on the page, in CSS pixels, and how many tick labels there are.
AXIS_TEXT_JS = """() => {
  const sizes = [...document.querySelectorAll('.js-plotly-plot .xtick text, '
      + '.js-plotly-plot .ytick text, .js-plotly-plot .g-xtitle text, '
      + '.js-plotly-plot .g-ytitle text')]
    .filter(t => t.getBoundingClientRect().width > 0)
    .map(t => parseFloat(getComputedStyle(t).fontSize));
  return {n: sizes.length, min: sizes.length ? Math.min(...sizes) : 0};
}"""

DARK_JS = """() => {
  const bg = getComputedStyle(document.querySelector('.stApp')).backgroundColor;
  const [r, g, b] = bg.match(/[0-9.]+/g).map(Number);
  const gd = document.querySelector('.gl-stream-chart');
  return {page: (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255,
          paper: gd && gd._fullLayout ? gd._fullLayout.paper_bgcolor : null};
}"""


#: The lesson charts (Streamlit's st.plotly_chart, not the playground's stream charts): the
#: relative luminance (WCAG) of each one's background, and the contrast ratio against it of
#: every text it draws (title, ticks, axis titles, legend, annotations, colour bars), as the
#: browser renders them.
LESSON_CHART_THEME_JS = r"""() => {
  const lum = (css) => {
    let r, g, b, a = 1;
    const hex = /^#([0-9a-f]{6})$/i.exec((css || '').trim());
    const m = /rgba?\(([^)]+)\)/.exec(css || '');
    if (hex) [r, g, b] = [0, 2, 4].map((i) => parseInt(hex[1].slice(i, i + 2), 16));
    else if (m) [r, g, b, a = 1] = m[1].split(',').map(Number);
    else return null;
    if (a === 0) return null;
    const lin = (c) => { c /= 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.closest('.gl-stream-chart') || !gd._fullLayout) continue;
    const paper = lum(gd._fullLayout.paper_bgcolor);
    const texts = [...gd.querySelectorAll('.gtitle, .xtick text, .ytick text, .g-xtitle text, '
        + '.g-ytitle text, .g-x2title text, .g-y2title text, .legendtext, .annotation-text, '
        + '.cbaxis text, .cbtitle text')]
      .filter((t) => t.getBoundingClientRect().width > 0 && (t.textContent || '').trim())
      .map((t) => [t.textContent.trim().slice(0, 30), lum(getComputedStyle(t).fill)])
      .filter(([, l]) => l !== null && paper !== null)
      .map(([t, l]) => [t, (Math.max(l, paper) + 0.05) / (Math.min(l, paper) + 0.05)]);
    out.push({chart: ((gd.querySelector('.gtitle') || {}).textContent || '?').slice(0, 40),
              paper, texts});
  }
  return out;
}"""

#: The first row of presenter panels, each as [top, bottom] on screen, and the screen height.
FIRST_ROW_JS = """() => {
  const boxes = [...document.querySelectorAll('.gl-stream-chart')]
    .map((c) => c.getBoundingClientRect()).filter((r) => r.width > 0);
  const first = Math.min(...boxes.map((r) => r.top));
  return {screen: window.innerHeight,
          row: boxes.filter((r) => r.top < first + 120).map((r) => [r.top, r.bottom])};
}"""


def _settle(page, seconds: float = 1.5) -> None:
    """Let Streamlit finish and Plotly follow the new width (it resizes on a frame)."""
    wait_idle(page)
    time.sleep(seconds)


def _open(page, url: str, charts: int) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Play", exact=True).wait_for(timeout=90_000)
    page.wait_for_function(
        f"() => document.querySelectorAll('.gl-stream-chart .main-svg').length >= {charts}",
        timeout=90_000)
    _settle(page)


def _check(page, where: str) -> None:
    problems = page.evaluate(FIT_JS)
    assert not problems, f"{where}: {problems}"


def _first_row_on_screen(page, where: str) -> None:
    """Presenter mode: the first row of panels, legends and axis titles included (they lie
    inside the chart's box: FIT_JS), is on the screen without scrolling."""
    fit = page.evaluate(FIRST_ROW_JS)
    assert fit["row"], f"{where}: no panels"
    for top, bottom in fit["row"]:
        assert top >= 0 and bottom <= fit["screen"] + 1, f"{where}: a panel runs off the " \
            f"screen ({top:.0f}..{bottom:.0f} px of {fit['screen']})"


#: The least contrast a chart's text may have against the chart's background (WCAG's ratio
#: for large text and graphics; body text on both themes is far above it, about 15).
MIN_TEXT_CONTRAST = 3.0


def _lesson_chart_colours(page, where: str, dark: bool) -> int:
    """Every lesson chart on the page has the page's background (dark: relative luminance
    < 0.05; light: > 0.8) and every text on it reads (contrast >= MIN_TEXT_CONTRAST).
    Returns how many charts it checked."""
    charts = page.evaluate(LESSON_CHART_THEME_JS)
    for c in charts:
        assert c["paper"] is not None and (c["paper"] < 0.05 if dark else c["paper"] > 0.8), \
            f"{where}: chart {c['chart']!r} background luminance {c['paper']}"
        assert c["texts"], f"{where}: chart {c['chart']!r} draws no text"
        bad = [(t, round(k, 2)) for t, k in c["texts"] if k < MIN_TEXT_CONTRAST]
        assert not bad, f"{where}: chart {c['chart']!r} has text that does not read: {bad[:6]}"
    return len(charts)


def _run_to_the_end(page) -> None:
    page.get_by_role("button", name="Play", exact=True).click()
    page.get_by_text("finished (2,000 steps)").first.wait_for(timeout=180_000)
    _settle(page, 2.5)


def test_playground_fits_at_three_sizes_light_and_dark(streamlit_server, browser) -> None:
    """The issue's page: a 20-layer net run to "2,000 / 2,000" (the readout that was cut)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    try:
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        _open(page, f"{streamlit_server}/?{RUN}", 8)
        _check(page, "1280x720 at step 0")                 # the loss legend at step 0
        _run_to_the_end(page)
        assert page.evaluate(STEP_JS) == 2000
        for w, h in SIZES:
            page.set_viewport_size({"width": w, "height": h})
            _settle(page)
            _check(page, f"{w}x{h} light")
        page.set_viewport_size({"width": 1280, "height": 720})
        _settle(page)
        page.screenshot(path=str(SHOTS / "playground-1280x720.png"))
        page.emulate_media(color_scheme="dark")
        _settle(page, 2.5)
        dark = page.evaluate(DARK_JS)
        assert dark["page"] < 0.4, "the page did not follow the dark system setting"
        assert dark["paper"] == "rgba(0,0,0,0)", "the charts did not follow the dark theme"
        for w, h in SIZES:
            page.set_viewport_size({"width": w, "height": h})
            _settle(page)
            _check(page, f"{w}x{h} dark")
        page.set_viewport_size({"width": 1280, "height": 720})
        _settle(page)
        page.screenshot(path=str(SHOTS / "playground-dark-1280x720.png"))
    finally:
        ctx.close()
    assert not errors, errors


def test_presenter_mode_fits_and_reads_from_the_back_row(streamlit_server, browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        page = ctx.new_page()
        _open(page, f"{streamlit_server}/?{RUN}&present=1&panels=grad,loss,speed,neurons", 4)
        assert page.locator('[data-testid="stSidebar"][data-collapsed="true"]').count() == 1
        assert page.locator(".gl-stream-chart").count() == 4, "only the picked panels"
        assert page.locator("h1").count() == 0
        link = page.locator('[data-testid="stCode"]').first.inner_text()
        assert "present=1" in link and "panels=grad,loss,speed,neurons" in link
        page.get_by_role("button", name="Step", exact=True).click()
        page.wait_for_function(f"({STEP_JS})() >= 1", timeout=60_000)
        _settle(page)
        text = page.evaluate(AXIS_TEXT_JS)
        assert text["n"] > 20 and text["min"] >= 18, text
        for w, h in SIZES:
            page.set_viewport_size({"width": w, "height": h})
            _settle(page)
            _check(page, f"presenter {w}x{h}")
            _first_row_on_screen(page, f"presenter {w}x{h}")
        page.set_viewport_size({"width": 1280, "height": 720})
        _settle(page)
        page.screenshot(path=str(SHOTS / "presenter-1280x720.png"))
    finally:
        ctx.close()


def test_lesson_pages_fit_at_1280x720(streamlit_server, browser) -> None:
    """Each lesson as it opens (its live parts drawn: lesson 2's chain; the heavy Run
    buttons are left alone), and lesson 2 after "Make it explode"."""
    from app import lessons

    slugs = [m.__name__.rsplit(".", 1)[-1] for m in lessons.discover()]
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = ctx.new_page()
        page.goto(streamlit_server, wait_until="domcontentloaded")   # registers the pages
        page.get_by_role("button", name="Play", exact=True).wait_for(timeout=90_000)
        for slug in slugs:
            page.goto(f"{streamlit_server}/{slug}", wait_until="domcontentloaded")
            page.locator("h1").first.wait_for(timeout=120_000)
            _settle(page)
            _check(page, slug)
            _lesson_chart_colours(page, f"{slug} light", dark=False)
            if slug == "l02_nielsen_chain":
                page.get_by_role("button", name="Make it explode").click()
                _settle(page)
                _check(page, f"{slug} exploded")
                page.screenshot(path=str(SHOTS / f"{slug}-1280x720.png"))
    finally:
        ctx.close()


def test_lesson_charts_follow_the_dark_theme(streamlit_server, browser) -> None:
    """On a dark page every lesson chart (lesson 11's phase map and its colour bar, lesson
    3's sample grid, the per-layer curves) has a dark background and light text, and still
    fits. Before: the lessons drew their charts with ``theme=None``, white on the dark page."""
    from app import lessons

    slugs = [m.__name__.rsplit(".", 1)[-1] for m in lessons.discover()]
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="dark")
    checked = 0
    try:
        page = ctx.new_page()
        page.goto(streamlit_server, wait_until="domcontentloaded")   # registers the pages
        page.get_by_role("button", name="Play", exact=True).wait_for(timeout=90_000)
        for slug in slugs:
            page.goto(f"{streamlit_server}/{slug}", wait_until="domcontentloaded")
            page.locator("h1").first.wait_for(timeout=120_000)
            _settle(page)
            _check(page, f"{slug} dark")
            checked += _lesson_chart_colours(page, f"{slug} dark", dark=True)
            if slug == "l11_phase_map":
                page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
                _settle(page, 0.5)
                page.screenshot(path=str(SHOTS / f"{slug}-dark-1280x720.png"))
    finally:
        ctx.close()
    assert checked >= 8, f"only {checked} lesson charts drawn as the lessons open"


def test_presenter_default_panels_fit_the_screen_light_and_dark(streamlit_server,
                                                                browser) -> None:
    """The two default panels at 1280 x 720: the loss legend's last row and the gradient
    bars' axis title are on screen, light and dark (they ran past the bottom edge)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    try:
        page = ctx.new_page()
        _open(page, f"{streamlit_server}/?{RUN}&present=1", 2)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            _settle(page, 2.5)
            for w, h in SIZES:
                page.set_viewport_size({"width": w, "height": h})
                _settle(page)
                _check(page, f"presenter default {w}x{h} {scheme}")
                _first_row_on_screen(page, f"presenter default {w}x{h} {scheme}")
            page.set_viewport_size({"width": 1280, "height": 720})
            _settle(page)
            page.screenshot(path=str(SHOTS / f"presenter-default-{scheme}-1280x720.png"))
    finally:
        ctx.close()


def _enabled(page, key: str) -> None:
    """Until the button ``key`` can be pressed (a rerun may still be drawing it)."""
    page.wait_for_function(
        f"() => {{ const b = document.querySelector('.st-key-{key} button');"
        " return b && !b.disabled; }", timeout=30_000)


def test_keyboard_shortcuts_drive_the_run_but_not_while_typing(streamlit_server,
                                                               browser) -> None:
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = ctx.new_page()
        _open(page, f"{streamlit_server}/?depth=4&width=32&steps=100000&every=5&present=1", 2)
        status = page.locator('[data-testid="stMetric"]', has_text="Status").locator(
            '[data-testid="stMetricValue"]')
        page.locator('[data-testid="stMetricValue"]').first.click()   # focus on the page
        page.keyboard.press("Space")
        page.get_by_text("running", exact=True).wait_for(timeout=60_000)
        _enabled(page, "pg_pause")
        page.keyboard.press("Space")
        page.get_by_text("paused", exact=True).wait_for(timeout=30_000)
        _settle(page, 1.0)
        _enabled(page, "pg_step")
        before = page.evaluate(STEP_JS)
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"({STEP_JS})() > {before}", timeout=30_000)
        _settle(page, 1.0)
        _enabled(page, "pg_step")
        # (the first readout after a pause may lag the run by a step or two: count from here)
        before = page.evaluate(STEP_JS)
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"({STEP_JS})() > {before}", timeout=30_000)
        _settle(page, 1.0)
        assert page.evaluate(STEP_JS) == before + 1, "→ made more than one step"
        page.keyboard.press("r")
        page.wait_for_function(f"({STEP_JS})() === 0", timeout=30_000)
        _settle(page, 1.0)
        assert status.inner_text().strip() == "ready"
        # typing a space (and r) in a text field is typing, not a shortcut
        page.locator('[data-testid="stExpandSidebarButton"]').click()
        seed = page.locator(".st-key-pg_seed input")
        seed.wait_for(timeout=30_000)
        seed.click()
        page.keyboard.press("Space")
        page.keyboard.press("r")
        page.keyboard.press("ArrowRight")
        time.sleep(2.0)
        assert page.evaluate(STEP_JS) == 0
        assert status.inner_text().strip() == "ready"
    finally:
        ctx.close()
