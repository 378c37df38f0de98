"""app.lessons.common.compute, the one way a lesson runs the core: module-level functions of
core only (the function, or its name "core.module:qualname"), plain values as arguments, one
process-wide cache per core function keyed by a canonical form of the arguments."""

from __future__ import annotations

import numpy as np
import pytest

from app.lessons import common
from core import theory
from core.config import RunConfig
from core.presets import preset
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


def test_compute_takes_a_core_function_by_name() -> None:
    """A name is checked without importing its module (the page process must not load
    torch): a module of core, found on the path, that defines the name at its top level."""
    assert common._target("core.theory:window_width") == ("core.theory", "window_width")
    assert common._target(common.RUN_ALL) == ("core.train", "run_all")
    assert common.compute("core.theory:window_width_max", label="…") == \
        theory.window_width_max()
    for bad in ("numpy:sqrt", "core.theory.window_width", "core.theory:", "coreish.x:f",
                "core.nope:f", "core.theory:no_such_function", "core.theory:<lambda>",
                "core.theory.sub:f"):
        with pytest.raises(AssertionError, match="module-level functions of core"):
            common.compute(bad, label="…")


def test_a_function_and_its_name_share_one_cache() -> None:
    common.clear_results()
    first = common.compute(theory.window_width, 6.9, label="…")
    assert common.compute("core.theory:window_width", 6.9, label="…") is first
    assert list(common._RESULTS) == ["core.theory.window_width"]


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


def test_one_bounded_cache_per_core_function(monkeypatch) -> None:
    common.clear_results()
    monkeypatch.setitem(common.MAX_ENTRIES, "window_width", 2)
    for x in (6.0, 6.5, 7.0):
        common.compute(theory.window_width, x, label="…")
    store = common._RESULTS["core.theory.window_width"]
    assert len(store) == 2 and list(store) == [common._canonical((6.5,)) + "{}",
                                               common._canonical((7.0,)) + "{}"]
    assert common.MAX_ENTRIES["run_all"] >= 64
    assert common._qualified_name(run_all) == "core.train.run_all"
    assert common._target(run_all) == common._target(common.RUN_ALL)


def test_a_computation_runs_on_an_executor_and_its_failure_is_an_error() -> None:
    """The executor imports the function by name and sends the result back; a failing
    computation raises with its message (the page shows it) and is not cached."""
    common.clear_results()
    cfg = RunConfig(depth=2, width=8, n_train=64, n_test=16, batch_size=16, steps=5, every=5,
                    device="cpu")
    res = common.compute(run_all, cfg, label="…")
    assert [s.step for s in res.snapshots] == [0, 5]
    assert common.compute(run_all, cfg, label="…") is res, "the second call is a cache hit"
    with pytest.raises(RuntimeError, match="unknown preset 'nope'"):
        common.compute(preset, "nope", label="…")
    assert "core.presets.preset" not in common._RESULTS or not common._RESULTS[
        "core.presets.preset"]
