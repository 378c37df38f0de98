"""The class board: a teacher creates a class, students share runs, the board shows them all.

Three views of one page, chosen by the URL:

* no parameter: the create-a-class form;
* ``?teacher=TOKEN`` (the teacher's private link): the join code and the links to hand out,
  the live table and scatter with filters, CSV, auto-post, "clear" and "close class";
* ``?view=TOKEN`` (the projector link): the same board, read-only, with the join code big.

The board redraws in a fragment that polls the class's (latest post id, post count) every
``POLL_S`` seconds, one indexed query, and reads the posts again only when that changed,
so a post shows within ~1 s without reloading the page. The posts and the figures come
from ``app.board.present``; nothing a student typed is rendered as Markdown or HTML.
Tokens are never logged (the page logs only error types).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import streamlit as st

from app import controls
from app.board import db, present, store
from app.board.store import BoardError
from app.env import env_float
from app.export_download import download_button
from app.stream_chart import freeze, stream_chart

_LOG = logging.getLogger("gradlab.board")

#: Seconds between the board's checks for new posts (env GRADLAB_BOARD_POLL_S, 0.25-5).
POLL_S = min(5.0, env_float("GRADLAB_BOARD_POLL_S", 1.0, lo=0.25))
TEACHER_PARAM, VIEW_PARAM = "teacher", "view"
CACHE = "bd__cache"             # ((class id, latest id, count), posts without layer lists)
FIG = "bd__fig"                 # (deps, frozen figure)
CREATED_AT = "bd__created_at"   # monotonic time of this session's last new class
CREATE_EVERY_S = 10.0           # one new class per session per this many seconds
MSG = "bd__msg"
SCATTER_KEY = "board_scatter"


def _engine():
    return db.get_engine()


def _trouble(e: Exception) -> None:
    _LOG.warning("class board database error: %s", type(e).__name__)
    st.error("The class board's database did not answer. Check GRADLAB_DATABASE_URL (hosted) "
             "or the data directory (GRADLAB_DATA_DIR), then reload.",
             icon=":material/cloud_off:")


def _page_url() -> str:
    try:
        return st.context.url or ""
    except Exception:  # noqa: BLE001
        return ""


def _links(info: store.ClassInfo, view_token: str | None, teacher_token: str | None
           ) -> dict[str, str]:
    """Absolute links of this server: the students', the projector's, the teacher's."""
    root = present.app_root(_page_url())
    board = root + "board"
    out = {"student": f"{root}?class={info.code}"}
    if view_token:
        out["projector"] = f"{board}?{VIEW_PARAM}={view_token}"
    if teacher_token:
        out["teacher"] = f"{board}?{TEACHER_PARAM}={teacher_token}"
    return out


# ---- create a class -------------------------------------------------------------------------


def _create() -> None:
    ss = st.session_state
    last = ss.get(CREATED_AT)
    if last is not None and time.monotonic() - last < CREATE_EVERY_S:
        ss[MSG] = "You just created a class: wait a few seconds before making another."
        return
    try:
        new = store.create_class(_engine(), ss.get("bd_name") or "",
                                 auto_post=bool(ss.get("bd_auto_new")))
    except BoardError as e:
        ss[MSG] = str(e)
        return
    except Exception as e:  # noqa: BLE001
        _LOG.warning("class board database error: %s", type(e).__name__)
        ss[MSG] = "The class board's database did not answer; try again in a moment."
        return
    ss[CREATED_AT] = time.monotonic()
    controls.replace_url({TEACHER_PARAM: new.teacher_token})


def _create_form() -> None:
    st.title("Class board")
    st.markdown("Run a class: each student trains their own network in the playground and "
                "presses **Share with the class**; this board collects every run, live, in "
                "one table and one chart: depth against how far the gradient vanished.")
    with st.container(border=True, key="bd_create_box"):
        st.text_input("Class name", key="bd_name", max_chars=store.NAME_MAX,
                      placeholder="e.g. Year 12 ML, Tuesday")
        st.toggle("Share finished runs automatically", key="bd_auto_new",
                  help="When a student's run finishes (or diverges), it is posted without "
                       "them pressing Share. You can change this later.")
        st.button("Create the class", key="bd_create", type="primary", on_click=_create,
                  icon=":material/add_circle:")
        msg = st.session_state.pop(MSG, None)
        if msg:
            st.error(msg, icon=":material/error:")
    st.caption("You get a six-character join code, a link for your students, a read-only "
               "link for the projector and a private link to this board (keep that one to "
               "yourself: it can clear and close the class). Students give only a nickname.")


# ---- the teacher's controls -----------------------------------------------------------------


def _set_auto(token: str) -> None:
    _guarded(lambda: store.set_auto_post(_engine(), token, bool(st.session_state.get(
        "bd_auto"))))


def _set_closed(token: str) -> None:
    _guarded(lambda: store.set_closed(_engine(), token, bool(st.session_state.get(
        "bd_closed"))))


def _clear(token: str) -> None:
    def run() -> None:
        n = store.clear(_engine(), token)
        st.session_state[MSG] = f"Cleared {n} run{'s' if n != 1 else ''} from the board."
    _guarded(run)


def _guarded(fn) -> None:
    try:
        fn()
    except BoardError as e:
        st.session_state[MSG] = str(e)
    except Exception as e:  # noqa: BLE001
        _LOG.warning("class board database error: %s", type(e).__name__)
        st.session_state[MSG] = "The class board's database did not answer; try again."


def _teacher_controls(info: store.ClassInfo, token: str) -> None:
    st.session_state["bd_auto"] = info.auto_post
    st.session_state["bd_closed"] = info.closed
    c = st.columns([1.6, 1, 1.1, 1.1], vertical_alignment="center")
    c[0].toggle("Auto-share finished runs", key="bd_auto", on_change=_set_auto,
                args=(token,), help="A student's run is posted by itself when it finishes or "
                                    "diverges (students see that it was).")
    c[1].toggle("Class closed", key="bd_closed", on_change=_set_closed,
                args=(token,), help="A closed class keeps its board but takes no more runs; "
                                    "switch off to reopen it.")
    with c[2].popover("Clear the board", icon=":material/delete_sweep:", width="stretch"):
        st.markdown("Delete **every** run on this board? This cannot be undone.")
        st.button("Yes, clear it", key="bd_clear", on_click=_clear, args=(token,),
                  type="primary")

    def csv_data() -> str:
        return present.csv_text(store.posts(_engine(), info.id))

    with c[3]:
        download_button("Download CSV", csv_data, key="bd_csv",
                        file_name=f"gradlab-class-{info.code}.csv", mime="text/csv",
                        help="Every run on the board, one row each, with each layer's "
                             "‖dC/db‖ at the start and the end.")
    msg = st.session_state.pop(MSG, None)
    if msg:
        st.info(msg, icon=":material/info:")


def _join_panel(info: store.ClassInfo, links: dict[str, str], teacher: bool) -> None:
    left, right = st.columns([1, 2.2], vertical_alignment="center")
    with left:
        st.metric("Join code", info.code)
    with right:
        st.markdown("**Students:** open this link (or the playground, then type the code "
                    "under *Join a class* in the sidebar):")
        st.code(links["student"], language=None, wrap_lines=True)
    if teacher:
        with st.expander("Projector and private links", icon=":material/link:"):
            st.markdown("**Projector** (read-only, safe to show; open it on the projector "
                        "rather than this page, whose address bar holds your private link):")
            st.code(links["projector"], language=None, wrap_lines=True)
            st.markdown("**This board** (private: anyone with it can clear or close the "
                        "class; bookmark it):")
            st.code(links["teacher"], language=None, wrap_lines=True)


# ---- the live board -------------------------------------------------------------------------


def _posts(class_id: int) -> tuple[tuple, list[dict[str, Any]]]:
    """The class's posts (without per-layer lists), read again only when the cheap
    (latest id, count) poll says something changed."""
    latest = store.latest_id(_engine(), class_id)
    deps = (class_id, *latest)
    hit = st.session_state.get(CACHE)
    if hit is None or hit[0] != deps:
        hit = (deps, store.posts(_engine(), class_id, layers=False))
        st.session_state[CACHE] = hit
    return hit


def _filters(posts: list[dict[str, Any]]) -> dict[str, Any]:
    opts = present.filter_options(posts)
    c = st.columns([1.3, 1, 1, 1.2], vertical_alignment="bottom")
    chosen: dict[str, Any] = {
        "presets": c[0].multiselect("Preset", opts["preset"], key="bd_f_preset",
                                    placeholder="all", help="The preset a run is, or was "
                                    f"started from (at most {present.PRESET_MAX_CHANGES} "
                                    "settings changed); 'custom' otherwise."),
        "activations": c[1].multiselect("Activation", opts["activation"], key="bd_f_act",
                                        placeholder="all"),
        "inits": c[2].multiselect("Initialiser", opts["init"], key="bd_f_init",
                                  placeholder="all"),
        "depth": None,
    }
    lo, hi = opts["depth"] or [1, 1]
    if hi > lo:
        ss = st.session_state
        cur, prev = ss.get("bd_f_depth"), ss.get("bd__depth_bounds")
        if (not (isinstance(cur, (tuple, list)) and len(cur) == 2)
                or tuple(cur) == tuple(prev or ())):
            ss["bd_f_depth"] = (lo, hi)     # the whole range follows new posts
        else:                               # a narrowed choice stays, inside the range
            ss["bd_f_depth"] = (max(lo, min(cur[0], hi)), min(hi, max(cur[1], lo)))
        ss["bd__depth_bounds"] = (lo, hi)
        chosen["depth"] = tuple(c[3].slider("Depth", lo, hi, key="bd_f_depth"))
    return chosen


def board(class_id: int, teacher: bool) -> None:
    """The fragment: poll, then the count, the scatter and the table (with filters for the
    teacher)."""
    try:
        deps, posts = _posts(class_id)
    except Exception as e:  # noqa: BLE001
        _trouble(e)
        return
    chosen = _filters(posts) if teacher and posts else {}
    shown = present.filter_posts(posts, **chosen) if chosen else posts
    n, total = len(shown), len(posts)
    drawn = len(present.scatter_points(shown))
    count = f"{n} run{'s' if n != 1 else ''} shared" + (f" (of {total})" if n != total else "")
    if n != drawn:
        count += f"; {n - drawn} without a gradient ratio are in the table only"
    st.markdown(f"**{count}**", help="Updates by itself within a second or two of a post.")
    fig_deps = (deps, repr(sorted((k, str(v)) for k, v in chosen.items())))
    hit = st.session_state.get(FIG)
    if hit is None or hit[0] != fig_deps:
        hit = (fig_deps, freeze(present.scatter_figure(shown)))
        st.session_state[FIG] = hit
    stream_chart(hit[1], key=SCATTER_KEY, height=460)
    st.caption(present.SCATTER_CAPTION)
    root = present.app_root(_page_url())
    st.dataframe(
        present.table_rows(shown, root), hide_index=True, width="stretch", key="bd_table",
        height=min(600, 38 + 35 * max(1, n)),
        column_config={
            "run": st.column_config.LinkColumn("run", display_text="open this run",
                                               help="The playground with this run's "
                                                    "settings (its share link)."),
            "loss": st.column_config.NumberColumn(format="%.3g", width="small"),
            "depth": st.column_config.NumberColumn(width="small"),
            "steps": st.column_config.NumberColumn(width="small"),
            "diverged at": st.column_config.NumberColumn(width="small"),
            "accuracy": st.column_config.NumberColumn(format="percent"),
            "first/last gradient": st.column_config.NumberColumn(format="%.3g"),
        })


def _live(class_id: int, teacher: bool) -> None:
    st.fragment(run_every=POLL_S)(board)(class_id, teacher)


# ---- the page -------------------------------------------------------------------------------


def _param(name: str) -> str | None:
    return controls.url_param(name)


def _bad_link(e: BoardError) -> None:
    st.title("Class board")
    st.error(f"{e} Ask for the link again, or create a new class.", icon=":material/link_off:")
    if st.button("Create a new class", key="bd_new"):
        controls.replace_url()
        st.rerun()


def main() -> None:
    teacher_token, view_token = _param(TEACHER_PARAM), _param(VIEW_PARAM)
    if not teacher_token and not view_token:
        _create_form()
        return
    try:
        if teacher_token:
            info = store.by_token(_engine(), teacher_token, teacher=True)
            view_token = store.view_token(_engine(), teacher_token)
        else:
            info = store.by_token(_engine(), view_token, teacher=False)
    except BoardError as e:
        _bad_link(e)
        return
    except Exception as e:  # noqa: BLE001
        _trouble(e)
        return
    teacher = bool(teacher_token)
    st.title(f"Class board: {present.md_escape(info.name)}")
    if info.closed:
        st.warning("This class is closed: its board stays, but it takes no more runs.",
                   icon=":material/lock:")
    links = _links(info, view_token if teacher else None, teacher_token if teacher else None)
    _join_panel(info, links, teacher)
    if teacher:
        _teacher_controls(info, teacher_token)
    _live(info.id, teacher)


main()
