"""app.lessons.common.compute, the one way a lesson runs the core: module-level functions of
core only, plain values as arguments, one process-wide cache per core function keyed by a
canonical form of the arguments."""

from __future__ import annotations

import numpy as np
import pytest

from app.lessons import common
from core import theory
from core.config import RunConfig
from core.train import run_all


def test_compute_returns_what_the_core_function_returns() -> None:
    assert common.compute(theory.window_width_max, label="…") == theory.window_width_max()
    w = common.compute(theory.window_width, 6.9, label="…")
    assert w == pytest.approx(float(theory.window_width(6.9)))


def test_compute_takes_only_module_level_functions_of_core() -> None:
    with pytest.raises(AssertionError, match="module-level functions of core"):
        common.compute(lambda: 1, label="…")
    with pytest.raises(AssertionError, match="module-level functions of core"):
        common.compute(np.sqrt, 4.0, label="…")


def test_compute_takes_only_plain_values() -> None:
    with pytest.raises(TypeError, match="plain values"):
        common.compute(theory.window_width, np.array([6.9]), label="…")


def test_the_cache_key_is_canonical() -> None:
    key = common._canonical
    assert key(RunConfig(depth=3)) == key(RunConfig(depth=3))
    assert key(RunConfig(depth=3)) != key(RunConfig(depth=4))
    assert key({"a": 1, "b": (2.0, "x")}) == key({"b": (2.0, "x"), "a": 1})
    assert key(np.float64(0.1)) == key(0.1) and key(np.int64(3)) == key(3)
    assert key((1,)) != key([1])


def test_one_bounded_cache_per_core_function() -> None:
    runs = common._caller("core.train.run_all", "run_all")
    assert runs is common._caller("core.train.run_all", "run_all")
    assert runs is not common._caller("core.theory.window_width", "window_width")
    assert common.MAX_ENTRIES["run_all"] >= 64
    assert common._qualified_name(run_all) == "core.train.run_all"
