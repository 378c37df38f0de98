"""RunConfig: the one typed description of an experiment, its validation and
(de)serialisation to dict / JSON / URL query string. The named presets are in
``core.presets``, the choice names with their help in ``core.choices``.

This module imports no torch: the app parses URLs and validates widgets with it cheaply.
Pure: it reads no environment. Every limit lives here (``LIMITS``, ``Limits``), so the app,
the CLI and the hosted profile all refuse the same things with the same message; the
caller that knows it is hosted passes ``Limits.hosted()``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode

from core.choices import names

# ---- the names every choice may take (core.choices has them with their help) ----------
ARCHS = names("arch")
ACTIVATIONS = names("activation")
INITS = names("init")
BIAS_INITS = names("bias_init")
NORMS = names("norm")
DATASETS = names("dataset")
SEQUENCE_DATASETS = ("adding", "recall")
LOSSES = names("loss")
OPTIMIZERS = names("optimizer")
DEVICES = names("device")

#: (min, max) of every numeric field. Caps are part of validation, nowhere else.
LIMITS: dict[str, tuple[float, float]] = {
    "depth": (1, 1000),
    "width": (2, 1024),
    "seq_len": (1, 500),
    "batch_size": (0, 5000),        # 0 = full batch
    "n_train": (16, 4000),
    "n_test": (0, 1000),
    "input_dim": (2, 1024),
    "lr": (1e-6, 100.0),
    "momentum": (0.0, 0.999),
    "l2": (0.0, 100.0),
    "clip_norm": (0.0, 1e6),
    "clip_value": (0.0, 1e6),
    "init_gain": (0.0, 10.0),
    "sigma_w": (0.0, 10.0),
    "sigma_b": (0.0, 10.0),
    "fold_k": (0, 10),
    "gate_bias": (-10.0, 10.0),
    "noise": (0.0, 5.0),
    "steps": (0, 1_000_000),
    "every": (1, 100_000),
    "spectrum_every": (0, 1_000_000),
    "eval_every": (0, 1_000_000),
    "seed": (0, 2**31 - 1),
    "hist_bins": (8, 128),
}
#: depth * width * batch (and * seq_len for RNNs) caps the work of one step.
MAX_WORK = 2**27          # ~134M: depth 1000 x width 128 x batch 1024 still fits
HOSTED_MAX_WORK = 2**23   # ~8M: the hosted profile's tighter cap
HOSTED_MAX_STEPS = 20_000


@dataclass(frozen=True)
class Limits:
    """Caps on one run beyond the per-field ranges: the defaults (CLI, local app) or the
    hosted profile's tighter ones (``Limits.hosted()``, applied by the hosted app)."""

    max_work: int = MAX_WORK        # cap on ``RunConfig.work`` (depth x width x batch ...)
    max_steps: int | None = None    # None: only LIMITS["steps"]
    hosted_profile: bool = False    # the messages say "hosted cap"

    @classmethod
    def hosted(cls) -> Limits:
        return cls(max_work=HOSTED_MAX_WORK, max_steps=HOSTED_MAX_STEPS, hosted_profile=True)


DEFAULT_LIMITS = Limits()


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and what is allowed."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class RunConfig:
    """One experiment. Every field has a default, a type and a range (``LIMITS``)."""

    # --- architecture -------------------------------------------------------------------
    arch: str = "mlp"            # mlp | rnn | gru; rnn/gru need a sequence dataset
    depth: int = 6               # hidden layers (MLP) or stacked recurrent layers; 1..1000
    width: int = 64              # units per hidden layer; wider = smoother statistics, slower
    activation: str = "tanh"     # hidden non-linearity (ignored by gru, whose gates are fixed)
    residual: bool = False       # identity skip around every hidden block after the first
    norm: str = "none"           # none | batch | layer, applied before the activation
    seq_len: int = 20            # time steps for rnn/gru tasks; 1..500
    # --- initialisation -----------------------------------------------------------------
    init: str = "xavier_normal"  # see INITS
    bias_init: str = "auto"      # auto = what the initialiser prescribes (mostly zero)
    init_gain: float = 1.0       # gain for orthogonal / identity / xavier / he / lecun / fold
    sigma_w: float = 1.0         # gaussian init: W ~ N(0, sigma_w^2 / n_in)
    sigma_b: float = 0.0         # gaussian / normal bias init: b ~ N(0, sigma_b^2)
    fold_k: int = 1              # fold init: how many times each matrix is folded
    gate_bias: float = 0.0       # gru: update-gate bias towards *keeping* h (chrono-like)
    # --- data ---------------------------------------------------------------------------
    dataset: str = "spiral"      # see DATASETS
    n_train: int = 1000          # training examples (mnist: the first n of the train split)
    n_test: int = 500            # held-out examples for test accuracy / loss (0 = none)
    input_dim: int = 64          # teacher map: input = output dimension
    noise: float = 0.1           # label / input noise of the toy datasets
    # --- objective and optimiser --------------------------------------------------------
    loss: str = "softmax_ce"     # softmax_ce | sigmoid_ce (Nielsen) | quadratic
    optimizer: str = "sgd"       # sgd | momentum | adam
    lr: float = 0.1              # learning rate; a big one diverges, which is data to show
    momentum: float = 0.9        # for optimizer=momentum
    batch_size: int = 64         # 0 = full batch (Nielsen's full-batch GD)
    l2: float = 0.0              # Nielsen's lambda: C += lambda / (2 n_train) * sum(W^2)
    clip_norm: float = 0.0       # clip the global gradient norm to this (0 = off)
    clip_value: float = 0.0      # clip each gradient entry to +-this (0 = off)
    # --- run and instrumentation --------------------------------------------------------
    steps: int = 2000            # optimiser steps; 0 = measure at initialisation only
    every: int = 10              # snapshot cadence: statistics every `every` steps
    seed: int = 0                # seeds data, init and batches (own torch.Generator)
    device: str = "auto"         # auto = cuda > mps > cpu
    jacobian: bool = False       # also compute the input-output Jacobian spectrum
    spectrum_every: int = 100    # weight (and Jacobian) spectra every N steps; 0 = every
    #                              snapshot. They cost more than a training step, so between
    #                              refreshes a snapshot carries the last ones (spectrum_step).
    eval_every: int = 10         # test loss / accuracy at most every N steps (0 = at every
    #                              snapshot); snapshots in between have test_* = None
    hist_bins: int = 41          # fixed bins of the activation / gradient histograms

    def __post_init__(self) -> None:
        validate(self)

    # ---- conversions -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_query(self, only_changed: bool = True) -> str:
        """URL query string; with ``only_changed`` only fields that differ from defaults."""
        d = self.to_dict()
        if only_changed:
            d = {k: v for k, v in d.items() if v != _DEFAULTS[k]}
        return urlencode({k: _fmt(v) for k, v in d.items()})

    def replace(self, **changes: Any) -> RunConfig:
        return from_dict({**self.to_dict(), **changes})

    @property
    def is_sequence(self) -> bool:
        return self.arch in ("rnn", "gru")

    @property
    def work(self) -> int:
        """Units of work of one step: depth x width x batch (x seq_len for RNNs)."""
        batch = self.batch_size or self.n_train
        w = self.depth * self.width * min(batch, self.n_train)
        return w * (self.seq_len if self.is_sequence else 1)


_TYPES = {f.name: f.type for f in fields(RunConfig)}
_DEFAULTS = {f.name: f.default for f in fields(RunConfig)}
_CHOICES: dict[str, tuple[str, ...]] = {
    "arch": ARCHS, "activation": ACTIVATIONS, "init": INITS, "bias_init": BIAS_INITS,
    "norm": NORMS, "dataset": DATASETS, "loss": LOSSES, "optimizer": OPTIMIZERS,
    "device": DEVICES,
}


def field_names() -> tuple[str, ...]:
    return tuple(_TYPES)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _coerce(name: str, raw: Any) -> Any:
    """Turn a raw value (from a URL, a CLI flag, JSON, a widget) into the field's type."""
    typ = _TYPES[name]
    if typ == "bool":
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"expected true/false, got {show_value(raw)}")
    if typ == "int":
        if isinstance(raw, bool):
            raise ConfigError(name, f"expected an integer, got {show_value(raw)}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float):
            if math.isfinite(raw) and raw == int(raw):
                return int(raw)
            raise ConfigError(name, f"expected an integer, got {show_value(raw)}")
        s = str(raw).strip()
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except (ValueError, OverflowError):
                raise ConfigError(name, f"expected an integer, got {show_value(raw)}") from None
            if math.isfinite(f) and f == int(f):
                return int(f)
            raise ConfigError(name, f"expected an integer, got {show_value(raw)}") from None
    if typ == "float":
        if isinstance(raw, bool):
            raise ConfigError(name, f"expected a number, got {show_value(raw)}")
        try:
            f = float(raw if isinstance(raw, (int, float)) else str(raw).strip())
        except (ValueError, OverflowError, TypeError):
            raise ConfigError(name, f"expected a number, got {show_value(raw)}") from None
        if not math.isfinite(f):
            raise ConfigError(name, f"expected a finite number, got {show_value(raw)}")
        return f
    if not isinstance(raw, str):
        raise ConfigError(name, f"expected text, got {show_value(raw)}")
    return raw.strip().lower().replace("-", "_")


def show_value(raw: Any) -> str:
    """A raw value as an error message quotes it: repr, at most 40 characters."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() > 128:
        return "a huge integer"
    try:
        s = repr(raw)
    except (ValueError, RecursionError):   # e.g. ints beyond Python's str() digit limit
        return f"a {type(raw).__name__}"
    return s if len(s) <= 40 else s[:37] + "..."


def validate(cfg: RunConfig, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise ConfigError naming the first bad field and the allowed range / choices.
    Every RunConfig is checked against the default ``limits`` when it is made; the hosted
    app checks again with ``Limits.hosted()``."""
    for name, typ in _TYPES.items():
        v = getattr(cfg, name)
        want = {"int": int, "float": (int, float), "bool": bool, "str": str}[typ]
        if not isinstance(v, want) or (typ != "bool" and isinstance(v, bool)):
            raise ConfigError(name, f"expected {typ}, got {show_value(v)}")
        if name in _CHOICES and v not in _CHOICES[name]:
            raise ConfigError(name, f"{show_value(v)} is not one of: {', '.join(_CHOICES[name])}")
        if name in LIMITS:
            lo, hi = LIMITS[name]
            finite = not isinstance(v, float) or math.isfinite(v)   # huge ints: no float()
            if not (isinstance(v, (int, float)) and finite and lo <= v <= hi):
                raise ConfigError(
                    name, f"{show_value(v)} is outside the allowed range [{lo:g}, {hi:g}]")
    if cfg.is_sequence and cfg.dataset not in SEQUENCE_DATASETS:
        raise ConfigError(
            "dataset", f"arch={cfg.arch} needs a sequence dataset ({', '.join(SEQUENCE_DATASETS)})"
        )
    if not cfg.is_sequence and cfg.dataset in SEQUENCE_DATASETS:
        raise ConfigError("arch", f"dataset={cfg.dataset} is a sequence task: use rnn or gru")
    if cfg.batch_size > cfg.n_train:
        raise ConfigError(
            "batch_size", f"{cfg.batch_size} is larger than n_train={cfg.n_train} (0 = full batch)"
        )
    if cfg.dataset == "mnist" and cfg.n_train + cfg.n_test > 5000:
        raise ConfigError("n_train", "mnist has 5000 images: n_train + n_test must be <= 5000")
    max_work = limits.max_work
    if cfg.work > max_work:
        raise ConfigError(
            "depth",
            f"depth x width x batch{' x seq_len' if cfg.is_sequence else ''} = {cfg.work:,} "
            f"exceeds the cap of {max_work:,}; "
            "make the net shallower, narrower or the batch smaller",
        )
    if limits.max_steps is not None and cfg.steps > limits.max_steps:
        where = "the hosted cap" if limits.hosted_profile else "the cap"
        raise ConfigError("steps", f"{cfg.steps} exceeds {where} of {limits.max_steps}")
    if cfg.loss == "sigmoid_ce" and cfg.arch != "mlp":
        raise ConfigError("loss", "sigmoid_ce is for MLP classifiers; use softmax_ce or quadratic")


def from_dict(d: Mapping[str, Any], *, base: RunConfig | None = None,
              limits: Limits | None = None) -> RunConfig:
    """Build a RunConfig from a mapping of field -> raw value (unknown keys are an error),
    checked against ``limits`` too when given (the defaults always apply)."""
    if not isinstance(d, Mapping):
        raise ConfigError("config", f"expected a mapping of field -> value, got {show_value(d)}")
    values = (base or RunConfig()).to_dict()
    for key, raw in d.items():
        name = str(key).strip().replace("-", "_")
        if name not in _TYPES:
            k = str(key)
            raise ConfigError(
                k[:40] if k.isidentifier() else show_value(k),
                "unknown field; fields are e.g. depth, width, activation, init, lr, seed "
                "(README lists them all)")
        values[name] = _coerce(name, raw)
    cfg = RunConfig(**values)
    if limits is not None and limits != DEFAULT_LIMITS:
        validate(cfg, limits)
    return cfg


def from_json(text: str, *, limits: Limits | None = None) -> RunConfig:
    """Build a RunConfig from a JSON object of field -> value (see ``from_dict``)."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError("config", f"not valid JSON: {e.msg} at line {e.lineno}") from None
    except (RecursionError, ValueError):   # absurdly nested arrays, 5000-digit numbers
        raise ConfigError("config", "JSON too deeply nested or with too large numbers") from None
    return from_dict(d, limits=limits)


def _query_items(query: str | Mapping[str, Any]) -> dict[str, Any]:
    """Key -> last value of a query string or a mapping (lists: the last element)."""
    if isinstance(query, str):
        return dict(parse_qsl(query.lstrip("?"), keep_blank_values=True))
    return {k: ((v[-1] if v else "") if isinstance(v, (list, tuple)) else v)
            for k, v in query.items()}


def from_query(query: str | Mapping[str, Any], *, base: RunConfig | None = None,
               limits: Limits | None = None) -> RunConfig:
    """Parse a URL query string (or a mapping such as st.query_params). A ``preset`` key
    selects the base; the other keys override its fields."""
    from core.presets import preset  # presets are built from this module

    items = _query_items(query)
    if "preset" in items:
        base = preset(str(items.pop("preset")))
    return from_dict(items, base=base, limits=limits)


def parse_query_lenient(
    query: str | Mapping[str, Any], *, base: RunConfig | None = None,
    limits: Limits | None = None,
) -> tuple[RunConfig, list[str]]:
    """Like from_query, but never raises: bad keys are dropped, each with a message, and
    the remaining ones are applied one by one. Used for hand-edited URLs."""
    from core.presets import preset  # presets are built from this module

    items = _query_items(query)
    errors: list[str] = []
    cfg = base or RunConfig()
    if "preset" in items:
        name = str(items.pop("preset"))
        try:
            cfg = preset(name)
        except ConfigError as e:
            errors.append(str(e))
    # Keys depend on each other (batch_size <= n_train, arch <-> dataset), so first try
    # them all at once; only if that fails apply them one by one, in passes, until no
    # further key can be applied: a link made by to_query() always loads exactly.
    try:
        return from_dict(items, base=cfg, limits=limits), errors
    except Exception:  # noqa: BLE001 - fall through to the key-by-key repair
        pass
    pending = dict(items)
    last: dict[str, str] = {}
    while pending:
        progress = False
        for key, raw in list(pending.items()):
            try:
                cfg = from_dict({key: raw}, base=cfg, limits=limits)
                del pending[key]
                progress = True
            except ConfigError as e:
                last[key] = str(e)
            except Exception as e:  # noqa: BLE001 - a URL must never crash the page
                last[key] = f"{show_value(str(key))}: could not be read ({type(e).__name__})"
        if not progress:
            break
    errors += [last[k] for k in pending]
    return cfg, errors


__all__ = [
    "ACTIVATIONS", "ARCHS", "BIAS_INITS", "DEFAULT_LIMITS", "ConfigError", "DATASETS",
    "DEVICES", "HOSTED_MAX_STEPS", "HOSTED_MAX_WORK", "INITS", "LIMITS", "LOSSES", "Limits",
    "MAX_WORK", "NORMS", "OPTIMIZERS", "RunConfig", "SEQUENCE_DATASETS", "field_names",
    "from_dict", "from_json", "from_query", "parse_query_lenient", "show_value", "validate",
]
