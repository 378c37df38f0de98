"""The student's side of the class board: join a class, share a run, auto-post when done.

A student joins with the teacher's link (``?class=CODE``: :func:`adopt_class_link`, called by
``app/main.py`` before any page runs, takes the code out of the URL so that the
playground's settings parser never sees it) or by typing the code in the sidebar, and picks
a nickname; the session gets a random id (the rate limit's key). The playground calls
:func:`render_class_widget` once, under its buttons: "Share with the class" posts
``store.summary_from_snapshots`` of the run on screen (its share-link query and a few
numbers, never the history), and when the teacher turned auto-post on, a run that finishes
or diverges is posted once by itself.

Nothing here can break the playground: a database that is down, a closed class or a
refused post is a message under the buttons, and the run goes on.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import streamlit as st

from app import controls
from app.board import db, present, store
from app.board.store import BoardError

_LOG = logging.getLogger("gradlab.board")

CODE_PARAM = "class"             # the student link's query key: /?class=K7QXPA
PENDING = "cj__pending"          # a code from a followed link, not joined yet
JOINED = "cj__joined"            # {"code", "name", "nick"} once joined
SESSION = "cj__session"          # this browser session's random id (the rate limit's key)
INFO = "cj__info"                # (monotonic time, ClassInfo) of the last look at the class
AUTO_DONE = "cj__auto_done"      # the run key last auto-posted (one post per finished run)
MSG = "cj__msg"                  # one-shot (kind, text) shown under the buttons
INFO_TTL_S = 5.0                 # how often a rerun re-reads the class (auto-post, closed)
BOARD_URL_PATH = "board"


def pages(root: Path) -> list[st.Page]:
    """The class board's page for ``st.navigation`` (the teacher's board and projector)."""
    return [st.Page(root / "app" / "views" / "board.py", title="Class board",
                    icon=":material/groups:", url_path=BOARD_URL_PATH)]


def adopt_class_link() -> None:
    """A followed student link (``?class=CODE``): remember the code for this session and
    take it out of the URL (the playground's parser would call it an unknown setting)."""
    raw = controls.url_param(CODE_PARAM)
    if raw is None:
        return
    controls.drop_url_param(CODE_PARAM)
    try:
        code = store.normalise_code(str(raw))
    except BoardError as e:
        st.session_state[MSG] = ("error", str(e))
        return
    joined = st.session_state.get(JOINED)
    if not joined or joined.get("code") != code:
        st.session_state[PENDING] = code


def engine():
    """The board's database engine (migrated on first use in this process)."""
    return db.get_engine()


def session_id() -> str:
    """This browser session's random id (never shown, never linked to a person)."""
    sid = st.session_state.get(SESSION)
    if not sid:
        sid = st.session_state[SESSION] = uuid.uuid4().hex
    return sid


def summary_of(view: Any) -> dict[str, Any] | None:
    """The post for the run a ``TrainerView`` shows: its share-link query, steps, final
    loss / accuracy, per-layer delta_norm at the first and last good snapshots, the
    first/last gradient ratio and diverged-at. None before the first snapshot."""
    hist = list(view.history)
    last = view.latest if view.latest is not None else (hist[-1] if hist else None)
    if last is None:
        return None
    first = hist[0] if hist else last
    diverged = view.diverged.step if view.diverged is not None else None
    return store.summary_from_snapshots(view.config.to_query(), first, last, view.step,
                                        diverged)


def _class_info(code: str, fresh: bool = False) -> store.ClassInfo:
    hit = st.session_state.get(INFO)
    now = time.monotonic()
    if not fresh and hit is not None and hit[1].code == code and now - hit[0] < INFO_TTL_S:
        return hit[1]
    info = store.join(engine(), code)
    st.session_state[INFO] = (now, info)
    return info


def _db_trouble(e: Exception) -> str:
    _LOG.warning("class board database error: %s", type(e).__name__)
    return ("The class board cannot be reached right now (its database did not answer); "
            "your run is not affected. Try again in a moment.")


def _join(code_key: str, nick_key: str) -> None:
    """Join button: check the code and the nickname, then remember them."""
    ss = st.session_state
    try:
        code = store.normalise_code(ss.get(code_key) or ss.get(PENDING) or "")
        nick = store.check_nickname(ss.get(nick_key) or "")
        info = _class_info(code, fresh=True)
    except BoardError as e:
        ss[MSG] = ("error", str(e))
        return
    except Exception as e:  # noqa: BLE001 - a database failure is a message, not a crash
        ss[MSG] = ("error", _db_trouble(e))
        return
    ss[JOINED] = {"code": info.code, "name": info.name, "nick": nick}
    ss.pop(PENDING, None)
    session_id()
    note = " It is closed: the teacher takes no more runs." if info.closed else ""
    ss[MSG] = ("success", f"You joined the class “{info.name}” as {nick}.{note}")


def _leave() -> None:
    st.session_state.pop(JOINED, None)
    st.session_state.pop(INFO, None)
    st.session_state[MSG] = ("info", "You left the class; your shared runs stay on its board.")


def _post(view: Any, automatic: bool) -> tuple[str, str]:
    joined = st.session_state.get(JOINED) or {}
    summary = summary_of(view)
    if summary is None:
        return "info", "Nothing to share yet: press Play (or Step) first."
    try:
        store.post(engine(), joined.get("code", ""), joined.get("nick", ""), session_id(),
                   summary)
    except BoardError as e:
        return "error", f"Not shared: {e}"
    except Exception as e:  # noqa: BLE001
        return "error", _db_trouble(e)
    what = "finished" if view.diverged is None else "diverged"
    if automatic:
        return "success", (f"Your {what} run (step {view.step:,}) was shared with the class "
                           "automatically.")
    return "success", f"Shared with the class: this run at step {view.step:,}."


def _share(trainer: Any) -> None:
    """Share button: post the run on screen now."""
    st.session_state[MSG] = _post(trainer.view(), automatic=False)


def _auto_post(view: Any, info: store.ClassInfo) -> None:
    """Post a finished (or diverged) run once, when the teacher turned auto-post on."""
    if not info.auto_post or info.closed or view.status not in ("finished", "diverged"):
        return
    key = (view.epoch, view.config.to_query(), view.step)
    if st.session_state.get(AUTO_DONE) == key:
        return
    st.session_state[AUTO_DONE] = key
    st.session_state[MSG] = _post(view, automatic=True)


def _join_form(where: Any, pending: str | None) -> None:
    with where:
        if pending:
            st.text_input("Class code", value=pending, key="cj_code", disabled=True,
                          max_chars=12)
        else:
            st.text_input("Class code", key="cj_code", max_chars=12, placeholder="e.g. K7QXPA",
                          help="The six letters and digits your teacher shows.")
        st.text_input("Your nickname", key="cj_nick", max_chars=store.NICK_MAX,
                      placeholder="e.g. Ada",
                      help="Shown on the class board next to your runs; nothing else is "
                           "asked or kept about you.")
        st.button("Join the class", key="cj_join", on_click=_join, args=("cj_code", "cj_nick"),
                  icon=":material/login:", type="primary" if pending else "secondary")


def _show_message() -> None:
    msg = st.session_state.pop(MSG, None)
    if msg is None:
        return
    kind, text = msg
    show = {"error": st.error, "success": st.success, "info": st.info}.get(kind, st.info)
    show(text, icon={"error": ":material/error:", "success": ":material/check_circle:"}
         .get(kind, ":material/info:"))


def render_class_widget(trainer: Any) -> None:
    """The class box of the playground: a join form (in the sidebar, or under the buttons
    when the student followed a class link), or, once joined, the class's name, the
    nickname, "Share with the class" and "Leave"; auto-posts a finished run when the class
    asks for it. Never raises: a problem is a message."""
    ss = st.session_state
    joined = ss.get(JOINED)
    pending = ss.get(PENDING)
    if not joined:
        if pending:
            try:
                name = present.md_escape(_class_info(pending).name)
            except BoardError as e:
                ss.pop(PENDING, None)
                st.error(f"{e}", icon=":material/error:")
                return
            except Exception as e:  # noqa: BLE001
                st.warning(_db_trouble(e), icon=":material/cloud_off:")
                return
            box = st.container(border=True, key="cj_pending_box")
            box.markdown(f"**Join the class “{name}”** (code {pending}): type a nickname, "
                         "then share your runs with **Share with the class**.")
            _join_form(box, pending)
        else:
            _join_form(st.sidebar.expander("Join a class", icon=":material/groups:"), None)
        _show_message()
        return
    view = trainer.view()
    try:
        info = _class_info(joined["code"])
    except BoardError as e:        # the class is gone (or the code no longer matches)
        ss.pop(JOINED, None)
        st.error(f"{e} You are no longer in a class.", icon=":material/error:")
        return
    except Exception as e:  # noqa: BLE001
        st.warning(_db_trouble(e), icon=":material/cloud_off:")
        return
    _auto_post(view, info)
    c = st.columns([3, 1.3, 0.8], vertical_alignment="center")
    state = "closed: no more runs" if info.closed else (
        "your finished runs are shared automatically" if info.auto_post else "open")
    c[0].markdown(f"**Class:** {present.md_escape(info.name)} ({info.code}) · you are "
                  f"**{present.md_escape(joined['nick'])}** · {state}")
    c[1].button("Share with the class", key="cj_share", icon=":material/ios_share:",
                on_click=_share, args=(trainer,), disabled=info.closed, width="stretch",
                help="Posts this run's settings (its share link) and a few numbers: steps, "
                     "final loss and accuracy, each layer's ‖dC/db‖ at the start and the end. "
                     "Never the whole history.")
    c[2].button("Leave", key="cj_leave", on_click=_leave, width="stretch",
                help="Leave the class (what you shared stays on its board).")
    _show_message()


__all__ = ["CODE_PARAM", "adopt_class_link", "engine", "pages", "render_class_widget",
           "session_id", "summary_of"]
