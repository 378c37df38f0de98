"""A download button whose file travels over the page's own websocket, never by URL.

``st.download_button`` hands the browser a ``/media/...`` URL that only the web process
which made the file can answer: under ``gradlab-serve --workers N`` the browser's GET may
reach another worker and the download fails (measured with two workers: 11 of 18 CSV
downloads cancelled on a 404). This button keeps the whole exchange on the session's
connection:

1. the click sets a trigger (a components-v2 component: rendered in the page, no iframe);
2. the rerun that follows calls the caller's ``make()`` and sends its text to the
   component as ``data``, with a fresh nonce;
3. the component turns the text into a ``Blob`` and clicks an ``<a download>`` for it.

The file is made when asked for (like ``data=callable``: the numbers of that moment) and
sent once: the next rerun sends the button without it, and the browser remembers the
nonces it delivered, so a redrawn button never downloads twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import streamlit as st

_JS = """
const done = (window.__glDownloads = window.__glDownloads || new Set());
export default function (c) {
  const d = c.data || {};
  let b = c.parentElement.querySelector(":scope > button.gl-dl");
  if (!b) {
    b = document.createElement("button");
    b.type = "button";
    b.className = "gl-dl";
    b.addEventListener("click", () => {
      b.disabled = true;
      c.setTriggerValue("request", Date.now());
      setTimeout(() => { b.disabled = false; }, 1500);
    });
    c.parentElement.appendChild(b);
  }
  b.textContent = d.label || "Download";
  b.title = d.help || "";
  b.dataset.file = d.file_name || "";
  if (d.content != null && d.nonce && !done.has(d.nonce)) {
    done.add(d.nonce);
    const url = URL.createObjectURL(new Blob([d.content], {type: d.mime || "text/plain"}));
    const a = document.createElement("a");
    a.href = url;
    a.download = d.file_name || "download";
    a.style.display = "none";
    // inside the button's own element, the click kept from bubbling: a click that reaches
    // the page outside a popover closes the popover
    a.addEventListener("click", (e) => e.stopPropagation());
    c.parentElement.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 10000);
    b.disabled = false;
  }
}
"""

_CSS = """
button.gl-dl {
  width: 100%; min-height: 2.5rem; padding: 0.25rem 0.75rem; cursor: pointer;
  font: inherit; font-family: var(--st-font, inherit); line-height: 1.6;
  color: var(--st-text-color, inherit);
  background: var(--st-background-color, transparent);
  border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2));
  border-radius: var(--st-base-radius, 0.5rem);
}
button.gl-dl:hover { border-color: var(--st-primary-color, #ff4b4b);
                     color: var(--st-primary-color, #ff4b4b); }
button.gl-dl:disabled { cursor: progress; opacity: 0.6; }
"""

_MOUNT = st.components.v2.component("gradlab.download", js=_JS, css=_CSS,
                                    isolate_styles=False)

#: session_state key prefix of the "this button was clicked" flags.
_PENDING = "_gl_download_pending:"


def _ask(key: str) -> None:
    st.session_state[_PENDING + key] = True


def download_button(label: str, make: Callable[[], str], *, file_name: str, mime: str,
                    key: str, help: str | None = None) -> bool:  # noqa: A002 - Streamlit's name
    """A button that downloads ``make()`` (text) as ``file_name``. ``make`` is called only
    in the rerun that follows a click, so the file holds that moment's numbers. Returns
    True in the run that sent the file. Works under several web workers (module doc)."""
    pending = bool(st.session_state.pop(_PENDING + key, False))
    data: dict[str, object] = {"label": label, "file_name": file_name, "mime": mime,
                               "help": help or ""}
    if pending:
        data["content"] = make()
        data["nonce"] = uuid.uuid4().hex
    _MOUNT(key=key, data=data, on_request_change=lambda: _ask(key), height="content")
    return pending


__all__ = ["download_button"]
