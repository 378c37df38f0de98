"""What the class board shows, as pure functions of the stored posts: the table rows, the
filters, the CSV and the scatter figure. No Streamlit and no database here, so that each
piece is unit-tested on plain dicts (``tests/test_board_present.py``); ``app/views/board.py``
only lays them out.

Everything a student typed (the nickname) reaches the page as data only: the table is an
``st.dataframe`` (plain text cells), the scatter's hover text is HTML-escaped (Plotly reads
a small HTML subset in hover labels), and a CSV cell that a spreadsheet would run as a
formula is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import functools
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app.charts import style
from app.export import csv_cell
from core.choices import choices
from core.config import ConfigError, from_query
from core.presets import PRESETS, preset

#: Fields that do not make a run a different experiment (for "which preset is this?").
_NOT_EXPERIMENT = frozenset({"seed", "steps", "every", "device", "hist_bins", "jacobian"})
#: A post is labelled with its nearest preset when at most this many settings differ.
PRESET_MAX_CHANGES = 2
CUSTOM = "custom"

#: Marker colour per activation, in the registry's order (``core.choices``): fixed, so a
#: colour keeps its meaning however many activations the class has used so far.
_ACT_PALETTE = (style.BLUE, style.ORANGE, style.GREEN, "#7b3294", "#8c564b", "#e377c2",
                style.RED, "#17becf", "#bcbd22", "#4d4d4d", "#9ecae1")
#: Marker symbol per initialiser, in the registry's order (filled, distinct at a glance).
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star",
            "triangle-down", "pentagon", "hexagon", "star-square", "hourglass")

SCATTER_TITLE = "Where the gradient vanished: the whole class"
SCATTER_X = "Depth (hidden layers)"
SCATTER_Y = "First-layer / output-layer gradient ‖δ¹‖/‖δᴸ‖ (log scale)"
SCATTER_CAPTION = ("Each marker is one shared run: how large the first hidden layer's "
                   "gradient ‖dC/db‖ is relative to the output layer's at the end of the run "
                   "(1 = the same; 10⁻⁶ = a millionth, vanished), against the network's "
                   "depth; colour is the activation, shape the initialiser.")


# ---- text -----------------------------------------------------------------------------------

_MD_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~:$=\"'&")


def md_escape(text: str) -> str:
    """``text`` as literal Markdown: every ASCII punctuation mark that Markdown, Streamlit's
    emoji / icon shortcodes (``:smile:``) or its LaTeX (``$``) would act on is
    backslash-escaped, and newlines become spaces. For class names and nicknames shown
    in headings and captions."""
    flat = " ".join(str(text).split())
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in flat)


# ---- presets --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _preset_fields() -> tuple[tuple[str, dict[str, Any]], ...]:
    out = []
    for name in PRESETS:
        try:
            d = preset(name).to_dict()
        except Exception:  # noqa: BLE001 - a broken preset is simply not a label
            continue
        out.append((name, {k: v for k, v in d.items() if k not in _NOT_EXPERIMENT}))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def nearest_preset(query: str) -> str:
    """The preset a run is (or was started from: at most ``PRESET_MAX_CHANGES`` settings
    changed, seed and step counts aside); ``CUSTOM`` otherwise or when the query is bad."""
    try:
        cfg = from_query(query)
    except (ConfigError, ValueError):
        return CUSTOM
    mine = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_EXPERIMENT}
    best, best_n = CUSTOM, PRESET_MAX_CHANGES + 1
    for name, fields in _preset_fields():
        n = sum(1 for k, v in mine.items() if fields.get(k) != v)
        if n < best_n:
            best, best_n = name, n
    return best


# ---- rows, filters, links -------------------------------------------------------------------


def run_link(base_url: str, query: str) -> str:
    """The playground link that reproduces a post's run (the app's root + its query)."""
    base = (base_url or "/").split("?")[0].split("#")[0]
    if not base.endswith("/"):
        base += "/"
    return f"{base}?{query}" if query else base


def app_root(page_url: str | None) -> str:
    """The app's root URL from the board page's URL (``.../board?x`` -> ``.../``)."""
    base = (page_url or "/").split("?")[0].split("#")[0]
    for tail in ("/board", "/board/"):
        if base.endswith(tail):
            base = base[: -len(tail)]
    return base if base.endswith("/") else base + "/"


def log10_ratio(p: Mapping[str, Any]) -> float | None:
    r = p.get("grad_ratio")
    return math.log10(r) if isinstance(r, (int, float)) and r > 0 and math.isfinite(r) else None


def table_rows(posts: Sequence[Mapping[str, Any]], base_url: str) -> list[dict[str, Any]]:
    """One row per post, newest first, for ``st.dataframe`` (the link column opens the run)."""
    rows = []
    for p in reversed(list(posts)):
        rows.append({
            "student": p["nickname"], "run": run_link(base_url, p["query"]),
            "depth": p["depth"], "activation": p["activation"], "initialiser": p["init"],
            "first/last gradient": p["grad_ratio"], "accuracy": p["accuracy"],
            "loss": p["loss"], "steps": p["steps"], "diverged at": p["diverged_at"],
            "preset": nearest_preset(p["query"]),
        })
    return rows


def filter_options(posts: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The values present on the board, per filter (sorted): preset, activation, init,
    and the depth range as [min, max]."""
    depths = [int(p["depth"]) for p in posts]
    return {
        "preset": sorted({nearest_preset(p["query"]) for p in posts}),
        "activation": sorted({p["activation"] for p in posts}),
        "init": sorted({p["init"] for p in posts}),
        "depth": [min(depths), max(depths)] if depths else [],
    }


def filter_posts(posts: Iterable[Mapping[str, Any]], *, presets: Iterable[str] = (),
                 activations: Iterable[str] = (), inits: Iterable[str] = (),
                 depth: tuple[int, int] | None = None) -> list[Mapping[str, Any]]:
    """The posts that pass every filter given (an empty selection lets everything pass)."""
    ps, acts, ins = set(presets), set(activations), set(inits)
    out = []
    for p in posts:
        if ps and nearest_preset(p["query"]) not in ps:
            continue
        if acts and p["activation"] not in acts:
            continue
        if ins and p["init"] not in ins:
            continue
        if depth is not None and not depth[0] <= int(p["depth"]) <= depth[1]:
            continue
        out.append(p)
    return out


# ---- CSV ------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "student", "preset", "depth", "activation", "init", "steps", "loss",
               "accuracy", "grad_ratio", "log10_grad_ratio", "diverged_at",
               "delta_norm_start", "delta_norm_end", "settings", "created")


def _safe_cell(v: Any) -> str:
    """A CSV cell as the run export writes it (:func:`app.export.csv_cell`); text a
    spreadsheet would evaluate (=, +, -, @, tab, CR) gets a leading apostrophe (OWASP's
    CSV-injection advice)."""
    s = csv_cell(v)
    if v is None or isinstance(v, (int, float)):       # bool is an int
        return s
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def _norms_cell(values: Any) -> str:
    return " ".join("" if x is None else repr(float(x)) for x in (values or []))


def csv_text(posts: Sequence[Mapping[str, Any]]) -> str:
    """The board as CSV, one row per post (oldest first); the per-layer ``delta_norm`` at
    the start and the end are space-separated lists, layer 1 first, the output layer last."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for p in posts:
        created = p.get("created")
        w.writerow([_safe_cell(x) for x in (
            p["id"], p["nickname"], nearest_preset(p["query"]), p["depth"], p["activation"],
            p["init"], p["steps"], p["loss"], p["accuracy"], p["grad_ratio"], log10_ratio(p),
            p["diverged_at"])]
            + [_norms_cell(p.get("delta_start")), _norms_cell(p.get("delta_end")),
               _safe_cell(p["query"]),
               created.isoformat() if hasattr(created, "isoformat") else _safe_cell(created)])
    return out.getvalue()


# ---- the scatter ----------------------------------------------------------------------------


def _palette(kind: str, names: Iterable[str], styles: Sequence[str]) -> dict[str, str]:
    """A fixed style per choice name: its index in the registry (unknown names after)."""
    order = list(choices(kind))
    out = {}
    for n in sorted(names):
        i = order.index(n) if n in order else len(order) + len(out)
        out[n] = styles[i % len(styles)]
    return out


def _hover(p: Mapping[str, Any]) -> str:
    """One post's hover label; the nickname is escaped (Plotly renders <b>, <a>, ... here)."""
    parts = [f"<b>{html.escape(str(p['nickname']))}</b>",
             f"depth {p['depth']}, {html.escape(str(p['activation']))}, "
             f"{html.escape(str(p['init']))}",
             f"first/last gradient {p['grad_ratio']:.3g}"]
    if p.get("accuracy") is not None:
        parts.append(f"accuracy {p['accuracy']:.1%} after {p['steps']:,} steps")
    if p.get("diverged_at") is not None:
        parts.append(f"diverged at step {p['diverged_at']}")
    return "<br>".join(parts)


def scatter_points(posts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The posts that can be drawn (a finite, positive ratio), as plain points."""
    return [{"x": int(p["depth"]), "y": float(p["grad_ratio"]), "activation": p["activation"],
             "init": p["init"], "hover": _hover(p), "id": p["id"]}
            for p in posts if log10_ratio(p) is not None]


def scatter_figure(posts: Sequence[Mapping[str, Any]], height: int = 460) -> go.Figure:
    """Depth against the first/last gradient ratio (log y; log x when depths span 20x or
    more), one trace per activation (its colour), the marker's shape by initialiser, a
    dotted line at 1 (no vanishing). Legend: activations, then a grey key of the shapes."""
    pts = scatter_points(posts)
    acts = sorted({p["activation"] for p in pts})
    inits = sorted({p["init"] for p in pts})
    colors = _palette("activation", acts, _ACT_PALETTE)
    symbols = _palette("init", inits, _SYMBOLS)
    fig = go.Figure()
    for a in acts:
        mine = [p for p in pts if p["activation"] == a]
        fig.add_trace(go.Scatter(
            x=[p["x"] for p in mine], y=[p["y"] for p in mine], mode="markers", name=a,
            legendgroup="activation", legendgrouptitle_text="activation",
            marker=dict(color=colors[a], size=15, symbol=[symbols[p["init"]] for p in mine],
                        line=dict(color="white", width=1)),
            hovertext=[p["hover"] for p in mine], hoverinfo="text",
            customdata=[p["id"] for p in mine]))
    for i in inits:                      # the shapes' key: legend entries with no points
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", name=i, legendgroup="init",
            legendgrouptitle_text="initialiser", hoverinfo="skip",
            marker=dict(color=style.GREY, size=13, symbol=symbols[i])))
    depths = [p["x"] for p in pts]
    log_x = bool(depths) and max(depths) / max(1, min(depths)) >= 20
    ys = [p["y"] for p in pts] + [1.0]
    lo, hi = math.floor(math.log10(min(ys))) - 0.3, math.ceil(math.log10(max(ys))) + 0.3
    style.style_figure(fig, height=height, title=SCATTER_TITLE, xtitle=SCATTER_X,
                       ytitle=SCATTER_Y, log_y=True, margin=(90, 20, 60, 70))
    fig.update_yaxes(range=[lo, hi], title_font=dict(size=15))
    if log_x:
        fig.update_xaxes(type="log", exponentformat="power")
    else:
        fig.update_xaxes(rangemode="tozero")
    fig.add_hline(y=1.0, line=dict(color=style.GREY, dash="dot", width=1.5))
    fig.add_annotation(text="equal: no vanishing", x=0.01, xref="paper", y=0.0, yref="y",
                       xanchor="left", yanchor="bottom", showarrow=False,
                       font=dict(size=14, color=style.GREY))   # y: log10(1) on a log axis
    fig.update_layout(uirevision="class_scatter", showlegend=bool(pts),
                      legend=dict(groupclick="toggleitem", font=dict(size=15)))
    if not pts:
        fig.add_annotation(text="No runs with a gradient ratio yet", x=0.5, y=0.5,
                           xref="paper", yref="paper", showarrow=False,
                           font=dict(size=20, color=style.GREY))
    return fig
