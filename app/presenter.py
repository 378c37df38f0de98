"""Presenter mode: the playground on a classroom projector.

A teacher switches it on with the "Presenter mode" toggle or a link with ``?present=1``
(``&panels=grad,loss`` names the panels). Then the sidebar starts collapsed, the page drops
its intro, only the panels picked are drawn, larger, with every font scaled by ``SCALE``
(axis ticks 22 px: readable from the back row at 1920 x 1080), keyboard shortcuts drive the
run (space: play / pause, right arrow: one step, r: reset; never while typing in a field),
and the link of exactly what is on screen is shown for the students to open.

This module also holds the page CSS every page gets (``page_style``): metric values, widget
labels and navigation links wrap instead of being cut off at 1280 x 720.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from app import controls
from app.charts.base import TITLE_LINE_PX

PRESENT_PARAM = "present"          # ?present=1
PANELS_PARAM = "panels"            # ?panels=grad,loss
#: Query keys of this module (``app.controls`` leaves them out of the config).
QUERY_KEYS = frozenset({PRESENT_PARAM, PANELS_PARAM})
TOGGLE_KEY = "pg_present"          # the toggle's widget key
PANELS_KEY = "pg_present_panels"   # the panel picker's widget key
URL_READ = "pg__present_url_read"  # the query string this module last adopted
URL_WRITTEN = "pg__present_url_written"   # the view keys the page last wrote
#: Font and margin scale of the charts in presenter mode (16 px ticks -> 22 px).
SCALE = 1.35

#: The playground's panels: short name (in the link) -> (builder name, label in the picker).
PANELS: dict[str, tuple[str, str]] = {
    "grad": ("gradient_bars", "Gradient per layer"),
    "loss": ("loss_curves", "Loss and accuracy"),
    "speed": ("speed_curves", "Speed of learning"),
    "neurons": ("neuron_bars", "dC/db per neuron"),
    "spectrum": ("spectrum", "Singular values"),
    "update": ("update_ratio", "Update : data ratio"),
    "act": ("activation_panel", "Activations"),
    "gradhist": ("grad_hist_panel", "Back-propagated gradients"),
}
DEFAULT_PANELS: tuple[str, ...] = ("grad", "loss")
MAX_PANELS = 4
#: Chart height (pixels) by the number of panels shown.
HEIGHTS = {1: 560, 2: 480}
HEIGHT_MANY = 420


# ---- state ----------------------------------------------------------------------------------


def _query() -> dict[str, str]:
    """This module's keys of the query string (read, like every URL value, in controls)."""
    return controls.view_items()


def parse_panels(raw: str | None) -> list[str]:
    """'grad, loss,nope' -> ['grad', 'loss'] (unknown names and repeats dropped, at most
    ``MAX_PANELS``); nothing valid -> the defaults."""
    out: list[str] = []
    for part in (raw or "").split(","):
        name = part.strip().lower()
        if name in PANELS and name not in out:
            out.append(name)
    return out[:MAX_PANELS] or list(DEFAULT_PANELS)


def adopt_url() -> None:
    """``?present=1&panels=...`` -> the toggle and the picker, once per query string the
    page did not write itself (a followed link), before the widgets are drawn."""
    q = _query()
    mine = {k: v for k, v in q.items() if k in QUERY_KEYS}
    ss = st.session_state
    if ss.get(URL_READ) == mine or ss.get(URL_WRITTEN, {}) == mine:
        ss[URL_READ] = mine
        return
    ss[URL_READ] = mine
    if PRESENT_PARAM in mine:
        ss[TOGGLE_KEY] = mine[PRESENT_PARAM].strip().lower() not in ("", "0", "false", "no")
    if PANELS_PARAM in mine:
        ss[PANELS_KEY] = parse_panels(mine[PANELS_PARAM])


def active() -> bool:
    """Is presenter mode on in this session (the toggle, or the link before it is drawn)?"""
    if TOGGLE_KEY in st.session_state:
        return bool(st.session_state[TOGGLE_KEY])
    v = _query().get(PRESENT_PARAM)
    return v is not None and v.strip().lower() not in ("", "0", "false", "no")


def picked() -> list[str]:
    """The panels the teacher picked (short names, in the page's order)."""
    chosen = st.session_state.get(PANELS_KEY)
    if not chosen:
        chosen = parse_panels(_query().get(PANELS_PARAM))
    return [name for name in PANELS if name in chosen][:MAX_PANELS]


def query() -> dict[str, str]:
    """This module's part of the page's link: empty unless presenter mode is on."""
    if not active():
        return {}
    return {PRESENT_PARAM: "1", PANELS_PARAM: ",".join(picked())}


def written_query() -> dict[str, str]:
    """:func:`query`, remembered as what the page writes into its URL (so that the next
    script run does not take the page's own link for a followed one)."""
    q = query()
    st.session_state[URL_WRITTEN] = q
    return q


def sidebar_state() -> str:
    """``st.set_page_config``'s initial_sidebar_state: collapsed while presenting."""
    return "collapsed" if active() else "expanded"


def height(n_panels: int) -> int:
    return HEIGHTS.get(n_panels, HEIGHT_MANY)


# ---- the charts, larger ---------------------------------------------------------------------

_FONT_KEYS = ("font", "tickfont", "title_font")


def _scaled_font(font: Any, scale: float) -> Any:
    if isinstance(font, Mapping) and isinstance(font.get("size"), (int, float)):
        return {**font, "size": round(font["size"] * scale, 1)}
    return font


def _scale_node(node: Any, scale: float) -> Any:
    """A copy of a layout (sub)tree with every ``font.size`` scaled; lists and dicts are
    copied, leaves shared."""
    if isinstance(node, Mapping):
        out = {}
        for k, v in node.items():
            if k in _FONT_KEYS:
                v = _scaled_font(v, scale)
                if isinstance(v, Mapping):
                    v = {kk: (_scale_node(vv, scale) if kk != "size" else vv)
                         for kk, vv in v.items()}
                out[k] = v
            else:
                out[k] = _scale_node(v, scale)
        return out
    if isinstance(node, list):
        return [_scale_node(v, scale) for v in node]
    return node


def _one_line_title(layout: dict[str, Any]) -> dict[str, Any]:
    """A presenter's column is wide: a title wrapped for a half-width column
    (``style.wrap_title``) goes back on one line, and gives its second line's height back
    to the plot."""
    title = layout.get("title")
    text = title.get("text") if isinstance(title, Mapping) else None
    if not isinstance(text, str) or "<br>· " not in text or text.count("<br>") != 1:
        return layout
    layout["title"] = {**title, "text": text.replace("<br>· ", " · "), "pad": {"t": 0}}
    margin = layout.get("margin")
    if isinstance(margin, Mapping) and isinstance(margin.get("t"), (int, float)):
        layout["margin"] = {**margin, "t": margin["t"] - TITLE_LINE_PX}
    return layout


def enlarge(fig: Any, scale: float = SCALE) -> Any:
    """A copy of a figure (a plain plotly dict, ``app.charts.RawFigure``, or a go.Figure)
    with every font scaled by ``scale`` (titles, ticks, axis titles, legends, annotations,
    colour bars) and the margins with it; a go.Figure comes back as a plain dict."""
    if hasattr(fig, "to_plotly_json"):
        fig = fig.to_plotly_json()
    if not isinstance(fig, Mapping):
        return fig
    layout = _one_line_title(dict(fig.get("layout") or {}))
    layout = _scale_node(layout, scale)
    base = layout.get("font") if isinstance(layout.get("font"), Mapping) else {}
    if not isinstance(base.get("size"), (int, float)):
        layout["font"] = {**base, "size": round(16 * scale, 1)}
    margin = layout.get("margin")
    if isinstance(margin, Mapping):
        layout["margin"] = {k: (round(v * scale) if k in "lrtb" and isinstance(v, (int, float))
                                else v) for k, v in margin.items()}
    data = [_scale_node(t, scale) if isinstance(t, Mapping) else t
            for t in fig.get("data") or ()]
    out = type(fig)(fig) if isinstance(fig, dict) else dict(fig)
    out["layout"] = layout
    out["data"] = data
    return out


# ---- the page -------------------------------------------------------------------------------


def panel_picker() -> list[str]:
    """The pills that pick the panels shown (at most ``MAX_PANELS``); returns the picks."""
    ss = st.session_state
    if not ss.get(PANELS_KEY):
        ss[PANELS_KEY] = list(DEFAULT_PANELS)
    chosen = st.pills("Panels on screen", list(PANELS), key=PANELS_KEY, selection_mode="multi",
                      format_func=lambda n: PANELS[n][1], persist_state="session",
                      help=f"Pick up to {MAX_PANELS}; they are drawn large, in this order.")
    chosen = [n for n in PANELS if n in (chosen or [])]
    if len(chosen) > MAX_PANELS:
        st.caption(f"Showing the first {MAX_PANELS}.")
    return chosen[:MAX_PANELS] or list(DEFAULT_PANELS)


def share_caption(link: str) -> None:
    """The link of what is on screen, for the students to copy (or type)."""
    st.caption("**Open this view:**")
    st.code(link, language=None, wrap_lines=True)


#: The keyboard shortcuts: installed into the page (the component's iframe shares its
#: origin), they click the playground's own buttons, found by their widget keys
#: (``.st-key-<key>``) or else by their accessible label. A key pressed while typing in an
#: input, a text area, a select or a slider is left alone.
SHORTCUTS_JS = r"""
<script>
(() => {
  const host = window.parent;
  const doc = host.document;
  const frame = window.frameElement;
  if (host.__glKeysOff) host.__glKeysOff();
  const TYPING = /^(INPUT|TEXTAREA|SELECT)$/;
  const ROLES = new RegExp("^(textbox|combobox|listbox|option|slider|spinbutton|searchbox"
                           + "|menuitem|radio|tab)$");
  const typing = (el) => {
    for (let e = el; e && e !== doc.body; e = e.parentElement) {
      if (TYPING.test(e.tagName) || e.isContentEditable) return true;
      const role = e.getAttribute && e.getAttribute("role");
      if (role && ROLES.test(role)) return true;
    }
    return false;
  };
  const button = (key, label) => {
    let b = doc.querySelector(`.st-key-${key} button`);
    if (!b) b = [...doc.querySelectorAll("button")].find(
      (x) => (x.getAttribute("aria-label") || x.innerText || "").trim().endsWith(label));
    return b && !b.disabled ? b : null;
  };
  const onKey = (ev) => {
    if (!frame || !frame.isConnected) { off(); return; }
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
    if (typing(ev.target) || typing(doc.activeElement)) return;
    let b = null;
    if (ev.key === " " || ev.code === "Space") {
      b = button("pg_play", "Play") || button("pg_pause", "Pause");
    }
    else if (ev.key === "ArrowRight") b = button("pg_step", "Step");
    else if (ev.key === "r" || ev.key === "R") b = button("pg_reset", "Reset");
    if (!b) return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    b.click();
  };
  const off = () => { host.removeEventListener("keydown", onKey, true); host.__glKeysOff = null; };
  host.addEventListener("keydown", onKey, true);
  host.__glKeysOff = off;
})();
</script>
"""


#: The first row of panels takes the height the screen has left under the controls,
#: measured: the controls above vary (the share link wraps onto two or three lines), so a
#: fixed ``100vh - N px`` left the first row's legend and axis titles under the bottom
#: edge at 1280 x 720. The script marks the first row's charts ``data-gl-fit`` and sets
#: ``--gl-present-h`` on the page to the viewport's height minus that row's top (and a
#: small margin), within [MIN, MAX] px (MIN: the height at which the speed panel's legend
#: of 8 layers still fits); the charts' ResizeObserver (app/stream_chart) redraws them. It
#: re-measures on resize and twice a second (a rerun can change the controls above).
FIT_MIN_PX, FIT_MAX_PX, FIT_BOTTOM_PX = 340, 800, 8
FIT_SCREEN_JS = r"""
<script>
(() => {
  const host = window.parent;
  const doc = host.document;
  const frame = window.frameElement;
  if (host.__glFitOff) host.__glFitOff();
  const MIN = __MIN__, MAX = __MAX__, BOTTOM = __BOTTOM__;
  let last = null;
  const fit = () => {
    if (!frame || !frame.isConnected) { off(); return; }
    const charts = [...doc.querySelectorAll(".gl-stream-chart")]
      .map((el) => [el, el.getBoundingClientRect()]).filter(([, r]) => r.width > 0);
    if (!charts.length) return;
    const first = Math.min(...charts.map(([, r]) => r.top));
    const row = charts.filter(([, r]) => r.top < first + 120);
    for (const [el] of charts) el.toggleAttribute("data-gl-fit", row.some(([e]) => e === el));
    const rowTop = Math.max(...row.map(([, r]) => r.top));
    const top = rowTop + (host.scrollY || 0)
      + ((doc.querySelector('[data-testid="stMain"]') || {}).scrollTop || 0);
    const h = Math.round(Math.max(MIN, Math.min(MAX, host.innerHeight - top - BOTTOM)));
    if (h !== last) {
      last = h;
      doc.documentElement.style.setProperty("--gl-present-h", `${h}px`);
    }
  };
  const timer = host.setInterval(fit, 500);
  host.addEventListener("resize", fit);
  const off = () => {
    host.clearInterval(timer);
    host.removeEventListener("resize", fit);
    doc.documentElement.style.removeProperty("--gl-present-h");
    host.__glFitOff = null;
  };
  host.__glFitOff = off;
  fit();
})();
</script>
""".replace("__MIN__", str(FIT_MIN_PX)).replace("__MAX__", str(FIT_MAX_PX)) \
    .replace("__BOTTOM__", str(FIT_BOTTOM_PX))


def install_shortcuts() -> None:
    """Space, right arrow and r drive the run (see :data:`SHORTCUTS_JS`), and the panels
    fill the screen's height (:data:`FIT_SCREEN_JS`): a same-origin iframe of no height
    whose scripts act on the page around it."""
    st.iframe(SHORTCUTS_JS + FIT_SCREEN_JS, height=1)


#: CSS of every page: nothing a teacher must read is cut off at 1280 x 720 (metric values,
#: widget labels, button and pill labels, navigation links wrap instead of ending in "...").
PAGE_CSS = """
<style>
[data-testid="stMetricValue"] { font-size: clamp(1.6rem, 2.3vw, 2.25rem); }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] * ,
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * {
  white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; overflow-wrap: break-word;
}
[data-testid="stWidgetLabel"], [data-testid="stWidgetLabel"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}
[data-testid="stButtonGroup"] button { min-width: 0; height: auto; }
[data-testid="stButtonGroup"] button p,
[data-testid="stButtonGroup"] button div { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
[data-testid="stSidebarNavLink"] span, [data-testid="stSidebarNavLink"] div,
[data-testid="stSidebarNavLink"] p { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
</style>
"""

#: Extra CSS while presenting: less empty space above the panels.
PRESENT_CSS = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 3rem; padding-bottom: 1rem; }
/* the charts take the height the screen has left under the controls: a guess, and for the
   first row what FIT_SCREEN_JS measured */
.gl-stream-chart { height: clamp(340px, calc(100vh - 360px), 800px) !important; }
.gl-stream-chart[data-gl-fit] {
  height: var(--gl-present-h, clamp(340px, calc(100vh - 360px), 800px)) !important; }
[class*="st-key-gradlab_stream_chart"], [class*="st-key-gradlab_stream_chart"] .stBidiComponent,
[class*="st-key-gradlab_stream_chart"] .stBidiComponentRegular {
  height: auto !important; min-height: 0 !important; flex: 0 0 auto !important;
  overflow: visible !important; }
</style>
"""


def page_style() -> None:
    """Inject the page CSS (and presenter mode's, when on): call once per script run."""
    st.html(PAGE_CSS + (PRESENT_CSS if active() else ""))


__all__ = [
    "DEFAULT_PANELS", "FIT_SCREEN_JS", "MAX_PANELS", "PANELS", "PANELS_KEY", "PANELS_PARAM",
    "PRESENT_PARAM", "QUERY_KEYS", "SCALE", "SHORTCUTS_JS", "TOGGLE_KEY", "active",
    "adopt_url", "enlarge", "height", "install_shortcuts", "page_style", "panel_picker",
    "parse_panels", "picked",
    "query", "share_caption", "sidebar_state", "written_query",
]
