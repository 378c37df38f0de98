"""RunConfig: validation names the field and the range; the hosted limits; round trips;
presets; the one table of choice names."""

from __future__ import annotations

import json

import pytest

from core.config import (
    LIMITS,
    ConfigError,
    Limits,
    RunConfig,
    from_dict,
    from_json,
    from_query,
    parse_query_lenient,
    validate,
)
from core.presets import PRESETS, preset


def test_defaults_valid_and_frozen() -> None:
    cfg = RunConfig()
    with pytest.raises(AttributeError):
        cfg.depth = 3  # type: ignore[misc]


@pytest.mark.parametrize("field,value,needle", [
    ("depth", 0, "depth"), ("depth", 1001, "[1, 1000]"), ("width", 1, "width"),
    ("width", 4096, "[2, 1024]"), ("seq_len", 501, "seq_len"), ("lr", 0.0, "lr"),
    ("activation", "swish", "one of"), ("init", "magic", "init"), ("lr", float("nan"), "lr"),
])
def test_bad_values_name_field_and_range(field: str, value, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_dict({field: value})
    assert field in str(e.value) and needle in str(e.value)
    assert e.value.field == field


def test_work_cap() -> None:
    with pytest.raises(ConfigError, match="exceeds the cap"):
        RunConfig(depth=1000, width=1024, n_train=4000, batch_size=4000, dataset="mnist",
                  n_test=1000)


def test_hosted_limits_tighten() -> None:
    cfg = dict(depth=500, width=256, batch_size=256, n_train=1000)
    validate(RunConfig(**cfg))
    with pytest.raises(ConfigError, match="cap"):
        validate(RunConfig(**cfg), Limits.hosted())
    with pytest.raises(ConfigError, match="cap"):
        from_dict(cfg, limits=Limits.hosted())
    with pytest.raises(ConfigError, match="steps: 30000 exceeds the hosted cap of 20000"):
        from_query("steps=30000", limits=Limits.hosted())
    # The lenient parser drops the key over the cap and keeps the others.
    got, errors = parse_query_lenient("steps=30000&depth=3", limits=Limits.hosted())
    assert got.depth == 3 and got.steps == RunConfig().steps
    assert len(errors) == 1 and errors[0].startswith("steps:")
    for name in PRESETS:                       # every preset runs on the hosted instance
        validate(preset(name), Limits.hosted())


def test_config_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same config passes or fails the same way whatever the environment says; only
    # the app, which knows it is hosted, passes Limits.hosted().
    monkeypatch.setenv("GRADLAB_PROFILE", "hosted")
    RunConfig(depth=500, width=256, batch_size=256, n_train=1000, steps=30_000)


def test_app_env_gives_the_hosted_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.env import run_limits

    monkeypatch.delenv("GRADLAB_PROFILE", raising=False)
    assert run_limits() == Limits()
    monkeypatch.setenv("GRADLAB_PROFILE", " Hosted ")
    assert run_limits() == Limits.hosted()


def test_sequence_rules() -> None:
    with pytest.raises(ConfigError, match="sequence"):
        RunConfig(arch="rnn", dataset="spiral")
    with pytest.raises(ConfigError, match="rnn or gru"):
        RunConfig(arch="mlp", dataset="recall")


@pytest.mark.parametrize("name", list(PRESETS))
def test_round_trips(name: str) -> None:
    cfg = preset(name)
    assert from_dict(cfg.to_dict()) == cfg
    assert from_json(cfg.to_json()) == cfg
    assert from_query(cfg.to_query()) == cfg
    assert from_query(cfg.to_query(only_changed=False)) == cfg
    assert from_query(f"preset={name}") == cfg


def test_query_coercion_and_unknown() -> None:
    cfg = from_query("depth=12&residual=true&lr=1e-3&activation=Leaky-ReLU")
    assert (cfg.depth, cfg.residual, cfg.lr, cfg.activation) == (12, True, 1e-3, "leaky_relu")
    with pytest.raises(ConfigError, match="unknown field"):
        from_query("dpeth=3")


def test_lenient_query_keeps_good_keys() -> None:
    cfg, errors = parse_query_lenient("depth=abc&width=32&lr=nan&activation=%3Cscript%3E"
                                      "&preset=nope&zzz=1")
    assert cfg.width == 32 and cfg.depth == RunConfig().depth
    assert len(errors) == 5
    assert any(e.startswith("depth:") for e in errors)
    assert any("preset" in e for e in errors)


def test_json_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        from_json("{depth: 3")
    with pytest.raises(ConfigError, match="mapping"):
        from_dict([1, 2])  # type: ignore[arg-type]


def test_every_limit_is_a_field() -> None:
    assert set(LIMITS) <= set(RunConfig().to_dict())
    json.dumps(RunConfig().to_dict())


def test_registry_matches_config_names() -> None:
    from core import config, registry

    assert set(registry.ACTIVATIONS) == set(config.ACTIVATIONS)
    assert set(registry.INITS) == set(config.INITS)
    assert set(registry.OPTIMIZERS) == set(config.OPTIMIZERS)
    assert set(registry.ACT_RANGE) == set(config.ACTIVATIONS)


def test_one_table_of_choices() -> None:
    # config's allowed values are the table's names, in the table's order, and every name
    # has a one-line help text (the controls show it).
    from core import config, registry
    from core.choices import KINDS, choices

    assert registry.choices is choices
    for kind, names in [("arch", config.ARCHS), ("activation", config.ACTIVATIONS),
                        ("init", config.INITS), ("bias_init", config.BIAS_INITS),
                        ("norm", config.NORMS), ("dataset", config.DATASETS),
                        ("loss", config.LOSSES), ("optimizer", config.OPTIMIZERS),
                        ("device", config.DEVICES)]:
        table = choices(kind)
        assert kind in KINDS and tuple(table) == names, kind
        assert all(h and "\n" not in h and len(h) < 80 for h in table.values()), kind
    assert choices("init")["he"] == "N(0, 2/n_in): Kaiming He, for ReLU"
    with pytest.raises(KeyError):
        choices("colour")


def test_config_imports_no_torch() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = "import core.config, core.presets, core.choices, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"
