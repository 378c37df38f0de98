"""End to end in Chromium: a teacher's tab and three students' tabs, the class board live.

The teacher creates a class; three students (three browser contexts: three sessions) open
the student link with a short config, type a nickname, train and press "Share with the
class". The teacher's board, never reloaded, shows three rows and three markers within
2 s of the last share being stored; the projector link shows the same board without the
teacher's controls; a nickname made of HTML stays text. Screenshots go to
/tmp/h/shots/board-*.png when that folder exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/h/shots")
#: Three small, different runs: (nickname, query). Depth and activation differ so that the
#: scatter has three distinct markers.
STUDENTS = (
    ("Ada", "depth=3&width=16&steps=40&every=10&activation=sigmoid"),
    ("<b>Bob</b>", "depth=6&width=16&steps=40&every=10&activation=relu&init=he"),
    ("Cy", "depth=10&width=16&steps=40&every=10&activation=tanh"),
)
BOARD_DEADLINE_MS = 2_000   # the "within 2 s of a post, without reloading"

#: The board scatter's drawn points: per activation trace, the number of (x, y) markers.
SCATTER_JS = """() => {
  const gd = Array.from(document.querySelectorAll('.gl-stream-chart'))
      .find(g => g.dataset.chartKey === 'board_scatter');
  if (!gd || !gd._fullData) return null;
  return gd._fullData.filter(t => t.legendgroup === 'activation')
      .map(t => ({name: t.name, n: (t.x || []).filter(v => v !== null).length}));
}"""
#: Data rows of the board's table (the grid's aria-rowcount counts the header row too).
ROWS_JS = """() => {
  const g = document.querySelector('.st-key-bd_table [role="grid"]')
      || document.querySelector('[data-testid="stDataFrame"] [role="grid"]');
  return g ? Number(g.getAttribute('aria-rowcount')) - 1 : -1;
}"""


def _shot(page, name: str, whole: bool = True) -> None:
    """A screenshot (``whole``: the whole page; Streamlit scrolls inside its main
    container, so the viewport grows to it), the mouse parked off any tooltip."""
    if not SHOTS.is_dir():
        return
    page.mouse.move(1, 1)
    if not whole:
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / f"board-{name}.png"))
        return
    height = page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]')"
                           " || document.body).scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(SHOTS / f"board-{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


def _create_class(page, url: str) -> tuple[str, str, str]:
    """Create a class on the board page; returns (join code, student link, projector link)."""
    page.goto(f"{url}/board", wait_until="domcontentloaded")
    name = page.get_by_role("textbox", name="Class name")
    name.wait_for(timeout=90_000)
    name.fill("Year 12 ML")
    name.press("Enter")
    page.get_by_role("button", name="Create the class").click()
    page.wait_for_function("() => location.search.includes('teacher=')", timeout=30_000)
    page.get_by_text("Join code").wait_for(timeout=30_000)
    page.get_by_text("Projector and private links").click()
    for part in ("?class=", "/board?view=", "/board?teacher="):   # code blocks draw late
        page.get_by_text(part, exact=False).first.wait_for(timeout=30_000)
    body = page.inner_text("body")
    student = re.search(r"http\S+\?class=([A-Z0-9]{6})", body)
    projector = re.search(r"http\S+/board\?view=[\w-]+", body)
    assert student and projector, body[:2000]
    assert "teacher=" in page.url and len(page.url.split("teacher=")[1]) >= 22  # >= 128 bits
    return student.group(1), student.group(0), projector.group(0)


def _student_runs_and_shares(page, link: str, nick: str, query: str, shot: str = ""
                             ) -> None:
    page.goto(f"{link}&{query}", wait_until="domcontentloaded")
    box = page.get_by_role("textbox", name="Your nickname")
    box.wait_for(timeout=90_000)
    if shot:
        page.get_by_role("button", name="Play", exact=True).wait_for(timeout=60_000)
        _shot(page, shot, whole=False)
    box.fill(nick)
    box.press("Enter")
    page.get_by_role("button", name="Join the class").click()
    page.get_by_text("You joined the class").wait_for(timeout=30_000)
    assert "class=" not in page.url, "the code is taken out of the URL (not a run setting)"
    assert "Some settings in the link could not be used" not in page.inner_text("body")
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function("() => document.body.innerText.includes('finished (40 steps)')",
                           timeout=180_000)


def test_three_students_share_and_the_board_updates_live(streamlit_factory, browser,
                                                         tmp_path) -> None:
    url = streamlit_factory(env={"GRADLAB_DATA_DIR": str(tmp_path / "data"),
                                 "GRADLAB_DATABASE_URL": "", "GRADLAB_BOARD_POLL_S": "1"})
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(5)]
    try:
        teacher = contexts[0].new_page()
        errors: list[str] = []
        teacher.on("pageerror", lambda e: errors.append(str(e)))
        code, link, projector_link = _create_class(teacher, url)
        teacher.evaluate("() => { window.__boardNotReloaded = true; }")
        teacher.get_by_text("0 runs shared").wait_for(timeout=30_000)

        students = [c.new_page() for c in contexts[1:4]]
        for i, (page, (nick, query)) in enumerate(zip(students, STUDENTS, strict=True)):
            _student_runs_and_shares(page, link, nick, query, "student-join" if i == 0 else "")
        for i, page in enumerate(students):
            page.get_by_role("button", name="Share with the class").click()
            page.get_by_text("Shared with the class: this run").wait_for(timeout=30_000)
            if i < len(STUDENTS) - 1:      # the board follows each post, not only the last
                teacher.get_by_text(f"{i + 1} run{'s' if i else ''} shared",
                                    exact=True).wait_for(timeout=10_000)
        # The last post is stored (its confirmation is on screen): the board must show it
        # within BOARD_DEADLINE_MS, without a reload.
        teacher.wait_for_function(
            "() => { const pts = (" + SCATTER_JS + ")();"
            " return /\\b3 runs shared\\b/.test(document.body.innerText)"
            " && pts !== null && pts.reduce((a, t) => a + t.n, 0) === 3"
            " && (" + ROWS_JS + ")() === 3; }",
            polling=100, timeout=BOARD_DEADLINE_MS)
        assert teacher.evaluate("() => window.__boardNotReloaded === true"), "page reloaded"
        traces = {t["name"]: t["n"] for t in teacher.evaluate(SCATTER_JS)}
        assert traces == {"sigmoid": 1, "relu": 1, "tanh": 1}, traces
        _shot(teacher, "teacher")
        _shot(students[1], "student", whole=False)

        # A nickname made of HTML is shown as text on the student's own page, never as HTML.
        assert "<b>Bob</b>" in students[1].inner_text("body")
        assert students[1].locator("b", has_text="Bob").count() == 0

        # The projector: the same board, no teacher controls.
        proj = contexts[4].new_page()
        proj.goto(projector_link, wait_until="domcontentloaded")
        proj.get_by_text("3 runs shared", exact=True).wait_for(timeout=60_000)
        proj.locator("[data-testid='stMetricValue']", has_text=code).wait_for(timeout=10_000)
        for control in ("Clear the board", "Download CSV"):
            assert proj.get_by_role("button", name=control).count() == 0, control
        assert "teacher=" not in proj.inner_text("body"), "the projector shows no teacher link"
        _shot(proj, "projector")
        assert not errors, errors
    finally:
        for c in contexts:
            c.close()
