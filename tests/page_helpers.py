"""What the lesson-page tests share: a lesson under Streamlit's AppTest (optionally shrunk
through module attributes set before ``render()``), the text a page shows, and a walk through
lesson pages in a real browser (each renders its title with no exception box; screenshots in
test-results/lessons/)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from streamlit.testing.v1 import AppTest

TIMEOUT = 300   # seconds per script run: the machine may be shared; runs are cached after
SHOTS = Path(__file__).resolve().parent.parent / "test-results" / "lessons"

_BUSY_JS = """() => {
  const st = document.querySelector('[data-testid="stStatusWidget"]');
  const running = st && /Running|Stop/i.test(st.innerText);
  const spin = document.querySelectorAll('[data-testid="stSpinner"]').length;
  const stale = document.querySelectorAll('[data-stale="true"]').length;
  return Boolean(running) || spin > 0 || stale > 0;
}"""


def lesson_app(module: str, setup: str = "") -> AppTest:
    """``app.lessons.<module>`` rendered once (``setup``: lines run before ``render()``,
    with the module as ``lesson``), checked for exceptions."""
    at = AppTest.from_string(
        f"from app.lessons import {module} as lesson\n"
        f"{setup}\n"
        "lesson.render()\n",
        default_timeout=TIMEOUT,
    )
    at.run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    """Everything the page says in prose, captions, verdicts and tables."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [s.value for s in at.success] + [i.value for i in at.info]
    parts += [df.value.to_string() for df in at.dataframe]
    return "\n".join(parts)


def click_all(at: AppTest, keys: list[str]) -> None:
    """Press each button in turn; none may raise."""
    for key in keys:
        at.button(key=key).click().run()
        assert not at.exception, (key, at.exception)


def check_lesson_modules(names: list[str]) -> None:
    """Each lesson module follows the plugin pattern of ``app.lessons``: a numbered TITLE,
    a Material ICON, a render(), and presets the core knows."""
    from app import lessons
    from core.presets import preset

    mods = {m.__name__.rsplit(".", 1)[-1]: m for m in lessons.discover()}
    for name in names:
        m = mods[name]
        assert isinstance(m.TITLE, str) and m.TITLE.startswith(str(int(name[1:3])) + " ·")
        assert m.ICON.startswith(":material/")
        assert callable(m.render)
        for p in m.PRESETS:
            preset(p)   # raises on an unknown preset


def wait_idle(page, timeout_s: float = 120.0) -> None:
    """Until the page has had no spinner, stale element or running script for 1.5 s."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline:
        quiet = 0 if page.evaluate(_BUSY_JS) else quiet + 1
        if quiet >= 3:
            return
        time.sleep(0.5)
    raise AssertionError("the page did not finish running")


def walk_lessons(server: str, page, titles: Mapping[str, str], first_link: str,
                 on_page: Callable[[str, object], None] | None = None) -> None:
    """Open each lesson (slug -> its h1) by its URL: the heading shows, with no "Page not
    found" and no exception box; ``on_page(slug, page)`` may act on it; then a screenshot
    of the whole page. No page error on the way."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Open the app's root first: on a fresh server, Streamlit 1.67 answers the very first
    # direct URL of an st.navigation page with a spurious "Page not found" dialog (the pages
    # are registered by that first run); the lessons' own links are tested after that.
    page.goto(server, wait_until="domcontentloaded")
    page.get_by_text(first_link).first.wait_for(timeout=120_000)
    for slug, title in titles.items():
        page.goto(f"{server}/{slug}", wait_until="domcontentloaded")
        page.get_by_role("heading", name=title).wait_for(timeout=120_000)
        wait_idle(page)
        assert page.get_by_text("Page not found").count() == 0, slug
        assert page.locator('[data-testid="stException"]').count() == 0, slug
        if on_page is not None:
            on_page(slug, page)
        # Streamlit scrolls inside its main container: grow the viewport to the content.
        height = page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]')"
                               " || document.body).scrollHeight")
        page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 8000)})
        page.screenshot(path=str(SHOTS / f"{slug}.png"))
        page.set_viewport_size({"width": 1280, "height": 900})
    assert not errors, errors
