"""Shared pieces of the lesson pages: cached runs of the real core, the
predict-then-run pattern, and "published vs this run" tables.

Runs are cached globally by config (``st.cache_data``): a class of 200 opening the same
lesson computes each preset once. Results are plain JSON documents (no tensors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from core.config import RunConfig, from_dict, preset


@st.cache_data(max_entries=256, show_spinner=False)
def _run_json(cfg_json: str) -> dict[str, Any]:
    import json

    from core.train import run_all

    return run_all(from_dict(json.loads(cfg_json))).to_json()


def run_cached(cfg: RunConfig) -> dict[str, Any]:
    """The run's JSON document (same shape as ``gradlab run --json``), cached by config."""
    return _run_json(cfg.to_json())


def load_preset(name: str, **changes: Any) -> RunConfig:
    cfg = preset(name)
    return cfg.replace(**changes) if changes else cfg


def predict(key: str, question: str, options: Sequence[str]) -> str | None:
    """'Predict, then run': the student commits to an answer before the result shows."""
    return st.radio(question, list(options), index=None, key=f"predict_{key}")


def run_button(key: str, label: str = "Run it") -> bool:
    """True once the button was pressed in this session (stays true across reruns)."""
    flag = f"ran_{key}"
    if st.button(label, key=f"btn_{key}", type="primary"):
        st.session_state[flag] = True
    return bool(st.session_state.get(flag))


def compare_table(rows: Sequence[dict[str, Any]]) -> None:
    """'Published vs this run' table: rows of {quantity, published, this run, ...}."""
    st.dataframe(list(rows), hide_index=True, width="stretch")


def open_in_playground(cfg: RunConfig, label: str = "Open in the playground") -> None:
    """A link that loads this exact config (seed included) in the live playground."""
    st.link_button(label, f"/?{cfg.to_query()}")


def style_figure(fig: go.Figure, height: int, *, margin: dict[str, int],
                 legend_y: float, font: int = 16) -> go.Figure:
    """The lessons' projector style: no Plotly template, large fonts, light grid,
    horizontal legend under the plot (each page passes the margins its labels need)."""
    fig.update_layout(template="none", height=height, font=dict(size=font), margin=margin,
                      legend=dict(font=dict(size=font), orientation="h", x=0, y=legend_y))
    fig.update_annotations(font=dict(size=18))
    for update in (fig.update_xaxes, fig.update_yaxes):
        update(showline=True, gridcolor="#e3e3e3", tickfont=dict(size=font),
               title_font=dict(size=18))
    return fig
