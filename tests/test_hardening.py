"""Hardening of the hosted instance (issue 6), checked on the repository itself:

- no ``unsafe_allow_html`` / ``unsafe_allow_javascript`` / ``components.html`` with
  non-literal content anywhere in app/ (an AST scan);
- URL query parameters reach the app only through ``app/controls.py``, which hands them
  to the core's validating parsers (``from_query`` / ``parse_query_lenient``);
- no ``eval`` / ``exec`` / pickle / unsafe YAML on anything in app/ or core/;
- ``.streamlit/config.toml`` sets the hosting keys (each key is its own test, so a
  failure names exactly what to add), and every key in it is a real Streamlit option;
- a live server (slow) refuses a DNS-rebinding websocket (foreign Host header).
"""

from __future__ import annotations

import ast
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomllib

from tests.ast_helpers import dotted

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app"
CORE = REPO / "core"
CONFIG_TOML = REPO / ".streamlit" / "config.toml"
CONTROLS = APP / "controls.py"


def _py_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_dir():
            yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"



def _is_literal_text(node: ast.AST | None) -> bool:
    """A str constant, or an implicit concatenation / f-string with no interpolated value."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_literal_text(node.left) and _is_literal_text(node.right)
    return False


# ---- 1. raw HTML / JS only with literal content -----------------------------------------------

UNSAFE_KWARGS = ("unsafe_allow_html", "unsafe_allow_javascript")
#: Streamlit 1.67 functions taking one of UNSAFE_KWARGS (grep of streamlit/elements).
RAW_HTML_FUNCS = ("markdown", "caption", "write", "html")


def unsafe_html_calls(tree: ast.AST) -> list[tuple[ast.Call, str]]:
    """Calls that render raw HTML/JS from something that is not a literal string."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func) or ""
        body_args = list(node.args) + [k.value for k in node.keywords
                                       if k.arg in ("body", "html", "unsafe_body")]
        for kw in node.keywords:
            if kw.arg in UNSAFE_KWARGS:
                off = isinstance(kw.value, ast.Constant) and kw.value.value is False
                if not off and not (body_args and all(_is_literal_text(a) for a in body_args)):
                    what = ast.unparse(body_args[0]) if body_args else "(none)"
                    found.append((node, f"{kw.arg}={ast.unparse(kw.value)} with non-literal "
                                        f"content {what}"))
            if kw.arg is None and name.rsplit(".", 1)[-1] in RAW_HTML_FUNCS:
                # **kwargs could carry unsafe_allow_html=True unseen
                found.append((node, f"{name}(**{ast.unparse(kw.value)}) may enable "
                                    "unsafe_allow_html: pass it explicitly"))
        # components.html / st.components.v1.html run arbitrary HTML + JS in an iframe
        if name.endswith("components.html") or name.endswith("components.v1.html"):
            if not (body_args and _is_literal_text(body_args[0])):
                found.append((node, f"{name}() with non-literal content"))
    return found


def test_the_unsafe_html_scan_finds_what_it_should() -> None:
    bad = ast.parse(
        "import streamlit as st\n"
        "st.markdown(f'<b>{name}</b>', unsafe_allow_html=True)\n"
        "st.markdown(text, unsafe_allow_html=True)\n"
        "st.write('a', x, unsafe_allow_html=True)\n"
        "st.html(page, unsafe_allow_javascript=True)\n"
        "st.caption(msg, unsafe_allow_html=flag)\n"
        "st.markdown(m, **opts)\n"
        "components.html(user_html)\n")
    assert len(unsafe_html_calls(bad)) == 7
    ok = ast.parse(
        "import streamlit as st\n"
        "st.markdown('<br>', unsafe_allow_html=True)\n"
        "st.markdown('<b>' 'x</b>', unsafe_allow_html=True)\n"
        "st.markdown(f'<hr>', unsafe_allow_html=True)\n"
        "st.markdown(user_text)\n"
        "st.markdown(user_text, unsafe_allow_html=False)\n"
        "components.html('<div></div>')\n")
    assert unsafe_html_calls(ok) == []


def test_no_raw_html_with_non_literal_content_in_app() -> None:
    problems = [f"{_where(p, node)}: {why}"
                for p in _py_files(APP) for node, why in unsafe_html_calls(_parse(p))]
    assert not problems, (
        "raw HTML/JS rendered from non-literal text (a student's text could reach it; render "
        "it with st.markdown/st.text without unsafe_allow_html, or escape it):\n  "
        + "\n  ".join(problems))


# ---- 2. query parameters only through core.config ---------------------------------------------

QUERY_ATTRS = ("query_params", "experimental_get_query_params", "experimental_set_query_params")
CONFIG_PARSERS = ("from_query", "parse_query_lenient")


def query_param_uses(tree: ast.AST) -> list[ast.AST]:
    return [n for n in ast.walk(tree)
            if (isinstance(n, ast.Attribute) and n.attr in QUERY_ATTRS)
            or (isinstance(n, ast.Name) and n.id in QUERY_ATTRS)
            or (isinstance(n, ast.alias) and n.name.split(".")[-1] in QUERY_ATTRS)]


def test_query_params_are_read_only_in_controls() -> None:
    others = [f"{_where(p, n)}: {ast.unparse(n) if not isinstance(n, ast.alias) else n.name}"
              for p in _py_files(APP) if p != CONTROLS for n in query_param_uses(_parse(p))]
    assert not others, (
        "st.query_params is used outside app/controls.py; URL values must reach the app only "
        "through controls.py -> core.config.from_query / parse_query_lenient:\n  "
        + "\n  ".join(others))


def test_controls_parse_the_url_with_core_config() -> None:
    tree = _parse(CONTROLS)
    assert query_param_uses(tree), "app/controls.py no longer reads the URL: update this test"
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert names & set(CONFIG_PARSERS), (
        "app/controls.py reads st.query_params but never calls core.config.from_query or "
        "parse_query_lenient: URL values must go through RunConfig validation")
    # no hand-made conversion of a URL value: int(st.query_params["depth"]) and the like
    hand_made = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("int", "float", "bool", "eval", "exec", "json.loads")
                and any(query_param_uses(a) for a in node.args)):
            hand_made.append(f"{_where(CONTROLS, node)}: {ast.unparse(node)}")
    assert not hand_made, ("URL values converted by hand instead of by core.config:\n  "
                           + "\n  ".join(hand_made))


# ---- 3. nothing executes or unpickles data ----------------------------------------------------

DANGEROUS = {"eval", "exec", "pickle.loads", "pickle.load", "marshal.loads", "yaml.load",
             "yaml.unsafe_load", "torch.load"}


def test_no_eval_exec_or_unpickling_in_app_and_core() -> None:
    found = []
    for p in _py_files(APP, CORE):
        for node in ast.walk(_parse(p)):
            if isinstance(node, ast.Call):
                name = dotted(node.func) or ""
                if name in DANGEROUS:
                    if name == "torch.load" and any(
                            k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                            and k.value.value is True for k in node.keywords):
                        continue
                    found.append(f"{_where(p, node)}: {ast.unparse(node)[:80]}")
    assert not found, "code execution / unpickling of data:\n  " + "\n  ".join(found)


# ---- 4. .streamlit/config.toml ------------------------------------------------------------------

# key -> (check, what to write, why). Values verified against `streamlit config show` and
# streamlit/config.py of Streamlit 1.67.
Check = Callable[[Any], bool]
REQUIRED: dict[str, tuple[Check, str, str]] = {
    "server.enableXsrfProtection": (
        lambda v: v is True, "enableXsrfProtection = true", "XSRF tokens on"),
    "server.enableCORS": (
        lambda v: v is True, "enableCORS = true", "refuse cross-origin websockets"),
    "server.allowedHosts": (
        lambda v: isinstance(v, list) and bool(v) and "*" not in v
        and {"localhost", "127.0.0.1"} <= set(v),
        'allowedHosts = ["localhost", "127.0.0.1"]',
        "DNS-rebinding guard (measured: without it a foreign Host was accepted); the "
        "deployment adds its public host via STREAMLIT_SERVER_ALLOWED_HOSTS"),
    "server.enableStaticServing": (
        lambda v: v is False, "enableStaticServing = false", "no files served from ./static"),
    "server.maxUploadSize": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1,
        "maxUploadSize = 0", "nothing is uploaded"),
    "server.maxMessageSize": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100,
        "maxMessageSize = 50", "bounds one websocket message (default 200 MB)"),
    "server.disconnectedSessionTTL": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 10 <= v <= 300,
        "disconnectedSessionTTL = 60",
        "session_state of closed tabs (up to 128) is dropped after this"),
    "runner.postScriptGC": (
        lambda v: v is False, "postScriptGC = false",
        "a full gc.collect() (~150 ms with torch) after every rerun: 101/200 sessions of a "
        "burst failed with it on (hidden option, verified in streamlit/config.py)"),
    "runner.magicEnabled": (
        lambda v: v is False, "magicEnabled = false",
        "no implicit st.write of bare expressions (pages draw what they call), and fewer "
        "config-lock lookups per rerun in a burst"),
    "client.showErrorDetails": (
        lambda v: v in ("none", "type"), 'showErrorDetails = "none"',
        "no tracebacks / messages shown to students (note: false means \"stacktrace\")"),
    "client.toolbarMode": (
        lambda v: v == "minimal", 'toolbarMode = "minimal"', "no developer toolbar / menu"),
    "browser.gatherUsageStats": (
        lambda v: v is False, "gatherUsageStats = false",
        "students' browsers send no usage telemetry"),
}

# keys that must not be set to these values (they are off by default; keep them so)
FORBIDDEN: dict[str, tuple[Check, str]] = {
    "global.developmentMode": (lambda v: v is True, "lets a client shut the runtime down"),
    "global.e2eTest": (lambda v: v is True, "lets a client drop its websocket / runtime"),
    "server.enableAgentApi": (lambda v: v is True, "an unused HTTP API"),
    "server.runOnSave": (lambda v: v is True, "reruns every session on a file change"),
    "server.cookieSecret": (lambda v: True, "a secret in the repo: set "
                                            "STREAMLIT_SERVER_COOKIE_SECRET instead"),
    "server.unsafeMetricsUserAttributes": (lambda v: bool(v), "user data on /_stcore/metrics"),
    "client.showErrorLinks": (lambda v: v is True, "error links to search engines"),
    "server.enableCORS": (lambda v: v is False, "cross-origin websockets accepted"),
    "server.enableXsrfProtection": (lambda v: v is False, "XSRF off"),
}


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not key.startswith("theme"):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@pytest.fixture(scope="module")
def streamlit_config() -> dict[str, Any]:
    if not CONFIG_TOML.is_file():
        pytest.fail(f"{CONFIG_TOML.relative_to(REPO)} does not exist: the hosted instance needs "
                    "it (see the keys in tests/test_hardening.py REQUIRED)", pytrace=False)
    with open(CONFIG_TOML, "rb") as f:
        return _flatten(tomllib.load(f))


@pytest.mark.parametrize("key", sorted(REQUIRED))
def test_config_toml_sets_hardening_key(streamlit_config: dict[str, Any], key: str) -> None:
    check, line, why = REQUIRED[key]
    section = key.split(".")[0]
    assert key in streamlit_config and check(streamlit_config[key]), (
        f"MISSING HARDENING in .streamlit/config.toml: {key} = "
        f"{streamlit_config.get(key, '<unset>')!r}; add under [{section}]:  {line}   ({why})")


@pytest.mark.parametrize("key", sorted(FORBIDDEN))
def test_config_toml_does_not_weaken(streamlit_config: dict[str, Any], key: str) -> None:
    bad, why = FORBIDDEN[key]
    assert not (key in streamlit_config and bad(streamlit_config[key])), (
        f".streamlit/config.toml sets {key} = {streamlit_config[key]!r}: {why}")


def test_config_toml_keys_exist_in_streamlit(streamlit_config: dict[str, Any]) -> None:
    """A misspelt key is silently ignored by Streamlit: every key must be a real option."""
    from streamlit import config as st_config

    known = set(st_config._config_options_template)
    unknown = sorted(k for k in streamlit_config if k not in known and not k.startswith("theme"))
    assert not unknown, f"not Streamlit {_st_version()} options (typo?): {unknown}"


def _st_version() -> str:
    import streamlit

    return streamlit.__version__


# ---- 5. a live server refuses a DNS-rebinding websocket (slow) ----------------------------------


def _ws_handshake_status(base_url: str, host: str, origin: str) -> int:
    """HTTP status of a websocket upgrade to /_stcore/stream with these headers (loopback)."""
    port = int(base_url.rsplit(":", 1)[1])
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Origin: {origin}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        status_line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_live_server_refuses_dns_rebinding(streamlit_factory) -> None:
    url = streamlit_factory("app/main.py")
    port = url.rsplit(":", 1)[1]
    # the page's own origin is accepted ...
    assert _ws_handshake_status(url, f"127.0.0.1:{port}", url) == 101
    # ... a page on another domain whose DNS now points here (foreign Host and Origin) is not
    status = _ws_handshake_status(url, f"evil.example:{port}", f"http://evil.example:{port}")
    assert status == 403, (
        f"websocket with Host evil.example answered {status}: set server.allowedHosts in "
        ".streamlit/config.toml")
    # the health endpoint the probes use answers plainly
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as r:
        assert r.read().strip() == b"ok"
