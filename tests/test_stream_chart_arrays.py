"""app.stream_chart's own base64 step gives exactly plotly's JSON for every kind of array a
figure may hold (it skips plotly's generic, slow front door; tests/test_stream_chart.py
checks the real panels)."""

from __future__ import annotations

import numpy as np
import plotly.io as pio
from _plotly_utils.utils import convert_to_base64

from app.stream_chart import _containers, figure_json


def _plotlys(fig: dict) -> str:
    """What the page sent before: plotly's own base64 step on a copy, then its JSON."""
    tree = _containers(fig)
    convert_to_base64(tree)
    return pio.to_json(tree, validate=False)


def test_every_array_kind_serialises_as_plotly_does() -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "f8": rng.normal(size=7),
        "f4": rng.normal(size=5).astype(np.float32),
        "i64_small": np.arange(-5, 5),
        "i64_mid": np.array([0, 40_000, -3]),
        "i64_big": np.array([0, 2**40]),
        "u64": np.array([1, 300], dtype=np.uint64),
        "u64_big": np.array([0, 2**40], dtype=np.uint64),
        "i32": np.arange(3, dtype=np.int32),
        "u8": np.arange(3, dtype=np.uint8),
        "bool": np.array([True, False]),
        "str": np.array(["a", "b"]),
        "obj": np.array([1, "x"], dtype=object),
        "empty": np.array([], dtype=float),
        "strided": np.arange(20, dtype=float)[::3],
        "two_d": rng.normal(size=(3, 4)),
        "fortran": np.asfortranarray(rng.normal(size=(3, 2))),
        "nan_inf": np.array([np.nan, np.inf, -1.0]),
    }
    for name, arr in arrays.items():
        fig = {"data": [{"type": "scatter", "x": arr, "y": arr, "customdata": [arr],
                         "marker": {"color": arr}, "meta": (arr,)}],
               "layout": {"xaxis": {"range": np.array([0.0, 1.0])}, "title": {"text": name}}}
        assert figure_json(fig) == _plotlys(fig), name


def test_the_figure_itself_is_left_unchanged() -> None:
    x = np.arange(4, dtype=float)
    fig = {"data": [{"type": "bar", "x": x}], "layout": {}}
    figure_json(fig)
    assert fig["data"][0]["x"] is x
