"""RunConfig: validation names the field and the range; round trips; presets."""

from __future__ import annotations

import json

import pytest

from core.config import (
    LIMITS,
    PRESETS,
    ConfigError,
    RunConfig,
    from_dict,
    from_json,
    from_query,
    parse_query_lenient,
    preset,
)


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


def test_hosted_profile_tightens(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = dict(depth=500, width=256, batch_size=256, n_train=1000)
    RunConfig(**cfg)
    monkeypatch.setenv("GRADLAB_PROFILE", "hosted")
    with pytest.raises(ConfigError, match="cap"):
        RunConfig(**cfg)


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
