"""``gradlab phase``: the trainability phase map, measured beside mean-field theory.

    gradlab phase --activation tanh --set sigma_b2=0.05 --depth 50 [--grid N]
                  [--train-steps K] [--json PATH|-]

Writes one JSON document (``phase_document``): the at-initialisation map over ``--grid``
values of sigma_w^2 x depths 1..``--depth`` (measured chi_1, correlations, depth scales, and
the theory of ``core.theory``) and, with ``--train-steps K``, the test accuracy of every cell
of a coarser grid trained K SGD steps on MNIST. Bad flags or values: one line on stderr,
exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from core.experiments.phase_results import PHASE_ACTIVATIONS, PhaseMap, TrainabilityMap

#: ``--set`` keys: name -> (type, default, lowest, highest, what it sets).
SET_KEYS: dict[str, tuple[type, float, float, float, str]] = {
    "sigma_b2": (float, 0.05, 0.0, 10.0, "bias variance sigma_b^2"),
    "sigma_w2_min": (float, 0.5, 1e-3, 100.0, "smallest sigma_w^2 of the grid"),
    "sigma_w2_max": (float, 4.0, 1e-3, 100.0, "largest sigma_w^2 of the grid"),
    "width": (int, 128, 2, 4096, "units per layer of the at-init nets"),
    "nets": (int, 4, 1, 256, "independent nets per sigma_w^2"),
    "pairs": (int, 2, 1, 256, "input pairs per net"),
    "c0": (float, 0.99, -0.999, 0.999, "correlation of each input pair"),
    "seed": (int, 0, 0, 2**31 - 1, "random seed"),
    "train_grid": (int, 8, 2, 64, "sigma_w^2 values of the trainability grid"),
    "train_depths": (int, 6, 1, 64, "depths of the trainability grid (up to --depth)"),
    "train_width": (int, 64, 2, 1024, "units per layer of the trained nets"),
    "lr": (float, 0.01, 1e-6, 10.0, "SGD learning rate"),
    "batch_size": (int, 32, 1, 4000, "images per SGD step"),
}
MAX_DEPTH = 2000
MAX_GRID = 256
MAX_TRAIN_STEPS = 100_000


class PhaseArgError(ValueError):
    """A bad flag value: its message is the one line the CLI prints."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``gradlab phase`` to the gradlab parser (``core.cli.COMMAND_MODULES``)."""
    p = sub.add_parser("phase", help="the trainability phase map vs mean-field theory")
    p.add_argument("--activation", default="tanh", choices=PHASE_ACTIVATIONS,
                   help="the nonlinearity (default tanh)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one of: " + ", ".join(SET_KEYS) + "; repeatable")
    p.add_argument("--depth", default="200", help="deepest layer of the map (default 200)")
    p.add_argument("--grid", default="32", help="sigma_w^2 values (default 32)")
    p.add_argument("--train-steps", default="0",
                   help="train a coarser grid this many SGD steps on MNIST (default 0: no)")
    p.add_argument("--json", metavar="PATH|-", help="write the document here (- : stdout)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(handler=main)


def _int(flag: str, text: str, lo: int, hi: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise PhaseArgError(f"{flag}: expected an integer, got {text!r}") from None
    if not lo <= v <= hi:
        raise PhaseArgError(f"{flag}: {v} is outside {lo}..{hi}")
    return v


def parse_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The validated settings of one ``gradlab phase`` call (raises PhaseArgError)."""
    s: dict[str, Any] = {k: t(d) for k, (t, d, *_rest) in SET_KEYS.items()}
    for item in args.set:
        if "=" not in item:
            raise PhaseArgError(f"--set: expected KEY=VALUE, got {item!r}")
        key, text = (x.strip() for x in item.split("=", 1))
        if key not in SET_KEYS:
            raise PhaseArgError(f"--set: unknown key {key!r}; one of {', '.join(SET_KEYS)}")
        typ, _, lo, hi, _ = SET_KEYS[key]
        if typ is int:
            s[key] = _int(f"--set {key}", text, int(lo), int(hi))
            continue
        try:
            v = float(text)
        except ValueError:
            raise PhaseArgError(f"--set {key}: expected a number, got {text!r}") from None
        if not (math.isfinite(v) and lo <= v <= hi):
            raise PhaseArgError(f"--set {key}: {text} is outside {lo:g}..{hi:g}")
        s[key] = v
    if s["sigma_w2_min"] >= s["sigma_w2_max"]:
        raise PhaseArgError("--set: sigma_w2_min must be below sigma_w2_max")
    s["activation"] = args.activation
    s["depth"] = _int("--depth", args.depth, 1, MAX_DEPTH)
    s["grid"] = _int("--grid", args.grid, 2, MAX_GRID)
    s["train_steps"] = _int("--train-steps", args.train_steps, 0, MAX_TRAIN_STEPS)
    return s


def train_depths(depth: int, count: int) -> tuple[int, ...]:
    """``count`` depths spread evenly over 1..depth (distinct, rounded, deepest last)."""
    return tuple(sorted({max(1, round(depth * (i + 1) / count)) for i in range(count)}))


def _clean(x: Any) -> Any:
    """JSON-safe: arrays to lists, inf and nan to null."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def phase_document(m: PhaseMap, t: TrainabilityMap | None) -> dict[str, Any]:
    """The JSON document of ``gradlab phase``: one map and (optionally) its trainability."""
    th = m.theory
    doc: dict[str, Any] = {
        "activation": m.activation, "sigma_b2": m.sigma_b2, "width": m.width,
        "nets": m.nets, "pairs": m.pairs, "c0": m.c0,
        "sigma_w2": m.sigma_w2, "depths": m.depths,
        "chi1_measured": m.chi1_measured, "chi1_theory": th.chi_1,
        "critical_sigma_w2_measured": m.critical_sigma_w2_measured,
        "critical_sigma_w2_theory": th.critical_sigma_w2,
        "xi_c_theory": th.xi_c, "xi_grad_theory": th.xi_grad, "xi_c_measured": m.xi_c_measured,
        "c_star_theory": th.c_star, "c_star_measured": m.c_star_measured,
        "q_star_theory": th.q_star,
        "log10_gain": m.log_gain / math.log(10.0),       # (S, L) at depths 1..L
        "corr": m.corr,                                  # (S, L + 1) at depths 0..L
        "elapsed_s": m.elapsed_s,
    }
    if t is not None:
        doc["trainability"] = {
            "sigma_w2": t.sigma_w2, "depth": t.depths, "test_accuracy": t.test_accuracy,
            "diverged": t.diverged, "steps": t.steps, "width": t.width, "lr": t.lr,
            "batch_size": t.batch_size, "elapsed_s": t.elapsed_s}
    return _clean(doc)


def _summary(m: PhaseMap, t: TrainabilityMap | None) -> str:
    th = m.theory
    lines = [f"{m.activation}, sigma_b^2 = {m.sigma_b2:g}: critical sigma_w^2 measured "
             f"{m.critical_sigma_w2_measured:.4g}, theory {th.critical_sigma_w2:.4g}",
             "sigma_w2  chi1_meas  chi1_theory  xi_c_meas  xi_c_theory"]
    for i, sw in enumerate(m.sigma_w2):
        lines.append(f"{sw:8.3f}  {m.chi1_measured[i]:9.4f}  {th.chi_1[i]:11.4f}  "
                     f"{m.xi_c_measured[i]:9.3g}  {th.xi_c[i]:11.3g}")
    if t is not None:
        lines.append("test accuracy (rows sigma_w^2, columns depth "
                     + " ".join(str(d) for d in t.depths) + ")")
        for i, sw in enumerate(t.sigma_w2):
            lines.append(f"{sw:8.3f}  " + " ".join(f"{a:.2f}" for a in t.test_accuracy[i]))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run ``gradlab phase``; returns the exit code."""
    try:
        s = parse_settings(args)
    except PhaseArgError as e:
        print(f"gradlab: error: {e}", file=sys.stderr)
        return 2
    import torch

    from core.experiments.phase import at_init_map, trainability

    torch.set_num_threads(max(1, args.threads))       # the CLI owns its process
    sw2 = tuple(float(v) for v in np.linspace(s["sigma_w2_min"], s["sigma_w2_max"], s["grid"]))
    m = at_init_map(s["activation"], s["sigma_b2"], sw2, depth=s["depth"], width=s["width"],
                    nets=s["nets"], pairs=s["pairs"], c0=s["c0"], seed=s["seed"])
    t = None
    if s["train_steps"]:
        tw2 = tuple(float(v) for v in np.linspace(s["sigma_w2_min"], s["sigma_w2_max"],
                                                  s["train_grid"]))
        try:
            t = trainability(s["activation"], s["sigma_b2"], tw2,
                             train_depths(s["depth"], s["train_depths"]),
                             steps=s["train_steps"], width=s["train_width"], lr=s["lr"],
                             batch_size=s["batch_size"], seed=s["seed"])
        except (FileNotFoundError, ValueError) as e:    # e.g. the MNIST file is missing
            print(f"gradlab: error: {e}", file=sys.stderr)
            return 2
    from core.cli import write_document

    return write_document(json.dumps(phase_document(m, t), allow_nan=False), args.json,
                          _summary(m, t))
