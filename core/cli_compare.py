"""``gradlab compare``: two runs side by side, one row per layer.

    gradlab compare A.json B.json                        # two `gradlab run --json` files
    gradlab compare --set activation=sigmoid --b-set activation=relu [--steps N] ...
    gradlab compare --preset nielsen-2 --b-preset nielsen-4 --at first

Without files, both runs are trained here: run A from ``--preset`` / ``--set``, run B from
``--b-preset`` (default: A's preset) / ``--b-set`` on top of it; ``--steps``, ``--every``
and ``--seed`` apply to both (same data and seed unless a ``--b-set`` changes them).
Prints the one-line config diff, then ``delta_norm``, ``weight_grad_norm`` and
``saturation`` of A and B and B/A per layer at the ``--at`` snapshot (first, last, or a
step). ``--json PATH|-`` writes ``{"diff", "a", "b", "rows"}``. Bad input: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from core.compare import config_diff, diff_labels, diff_line, layer_table
from core.config import ConfigError, from_dict
from core.presets import preset


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="two runs side by side, one row per layer")
    c.add_argument("files", nargs="*", metavar="RUN.json",
                   help="two documents written by `gradlab run --json` (or none: train here)")
    c.add_argument("--preset", default="default", help="run A's preset")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one of run A's fields; repeatable")
    c.add_argument("--b-preset", help="run B's preset (default: run A's)")
    c.add_argument("--b-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one of run B's fields (on top of A's); repeatable")
    c.add_argument("--steps", help="optimiser steps of both runs")
    c.add_argument("--every", help="snapshot cadence of both runs")
    c.add_argument("--seed", help="seed of both runs")
    c.add_argument("--at", default="last", help="first, last (default) or a step")
    c.add_argument("--json", metavar="PATH|-", help="also write the table as JSON")
    c.set_defaults(handler=main)


def _fail(msg: str) -> int:
    print(f"gradlab: error: {msg}", file=sys.stderr)
    return 2


def _overrides(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(flag, f"expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def _load(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError("compare", f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError("compare", f"{path} is not valid JSON: {e.msg} at line "
                                     f"{e.lineno}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("snapshots"), list) \
            or not isinstance(doc.get("config"), dict):
        raise ConfigError("compare", f"{path} is not a `gradlab run --json` document "
                                     "(no config / snapshots)")
    return doc


def _train(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    common = {k: getattr(args, k) for k in ("steps", "every", "seed")
              if getattr(args, k) is not None}
    a = from_dict({**_overrides(args.set, "--set"), **common}, base=preset(args.preset))
    b_base = preset(args.b_preset) if args.b_preset else a
    b_over = _overrides(args.b_set, "--b-set")
    if args.b_preset:
        b_over = {**_overrides(args.set, "--set"), **b_over}
    b = from_dict({**b_over, **common}, base=b_base)
    import torch

    from core.train import run_all

    torch.set_num_threads(1)
    return run_all(a).to_json(), run_all(b).to_json()


def _cell(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if math.isfinite(v) else str(v)


def main(args: argparse.Namespace) -> int:
    try:
        if len(args.files) not in (0, 2):
            raise ConfigError("compare", f"give two run files or none, got {len(args.files)}")
        if args.files and (args.set or args.b_set or args.b_preset or args.steps
                           or args.every or args.seed):
            raise ConfigError("compare", "give two run files or --set / --b-set groups, "
                                         "not both")
        at: str | int = args.at
        if at not in ("first", "last"):
            try:
                at = int(at)
            except ValueError:
                raise ConfigError("--at", f"expected first, last or a step, got {at!r}") \
                    from None
        if args.files:
            a_doc, b_doc = _load(args.files[0]), _load(args.files[1])
        else:
            a_doc, b_doc = _train(args)
        step_a, step_b, rows = layer_table(a_doc, b_doc, at=at)
    except (ConfigError, ValueError) as e:
        return _fail(str(e))
    la, lb = diff_labels(a_doc["config"], b_doc["config"])
    out = [f"A: {la}   B: {lb}", f"diff: {diff_line(a_doc['config'], b_doc['config'])}",
           f"at step {step_a} (A) / {step_b} (B)"]
    keys = ("delta_norm", "weight_grad_norm", "saturation")
    head = f"{'layer':9s}" + "".join(f" {'A ' + k:>18s} {'B ' + k:>18s} {'B/A':>7s}"
                                     for k in keys)
    out.append(head)
    for r in rows:
        out.append(f"{r['layer']:9s}" + "".join(
            f" {_cell(r['A ' + k]):>18s} {_cell(r['B ' + k]):>18s} {_cell(r['B/A ' + k]):>7s}"
            for k in keys))
    text = "\n".join(out)
    if args.json:
        doc = json.dumps({"diff": [list(d) for d in config_diff(a_doc["config"],
                                                                 b_doc["config"])],
                          "a": la, "b": lb, "step_a": step_a, "step_b": step_b,
                          "rows": rows}, allow_nan=True)
        if args.json == "-":
            sys.stdout.write(doc + "\n")
            print(text, file=sys.stderr)
            return 0
        try:
            Path(args.json).write_text(doc, encoding="utf-8")
        except OSError as e:
            return _fail(f"--json: cannot write {args.json}: {e.strerror}")
    print(text)
    return 0
