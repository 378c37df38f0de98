"""The ``gradlab`` command: list presets, run one headless, serve the app, benchmark.

    gradlab presets
    gradlab run --preset NAME [--set key=value ...] [--steps N] [--every K] [--seed S]
                [--config FILE.json] [--json PATH|-]
    gradlab serve [--port P]
    gradlab bench [--quick] [--json PATH] [--device auto|cpu|cuda|mps]

Bad flags or values print one clear line on stderr and exit with code 2; a run that
diverges is a result (exit 0, ``diverged_at`` set), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from core.config import ConfigError, from_dict
from core.presets import preset, preset_descriptions
from core.repeat import parse_seeds, repeat, seed_table

#: Subcommands that live in their own modules. Each module defines
#: ``register(sub: argparse._SubParsersAction) -> None``, which adds its parser (built with
#: ``sub.add_parser``, so bad flags exit 2 with one line) and sets
#: ``set_defaults(handler=fn)`` with ``fn(args: argparse.Namespace) -> int`` (the exit code).
COMMAND_MODULES: tuple[str, ...] = ("core.cli_phase", "core.cli_compare")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"gradlab: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gradlab", description="Gradient Lab: watch gradients flow (or not).")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("presets", help="list preset names with one-line descriptions")
    r = sub.add_parser("run", help="run a preset or config headless and write JSON")
    r.add_argument("--preset", default="default", help="preset name (see `gradlab presets`)")
    r.add_argument("--config", help="a JSON file of config fields (applied after the preset)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field; repeatable")
    r.add_argument("--steps", help="optimiser steps (0 = measure at initialisation only)")
    r.add_argument("--every", help="snapshot every K steps")
    r.add_argument("--seed", help="random seed")
    r.add_argument("--seeds", metavar="RANGE",
                   help="repeat over seeds, e.g. 0-9 or 1,4,7: per-seed snapshots plus the "
                        "median and quartiles across seeds (core/repeat.py)")
    r.add_argument("--json", metavar="PATH|-", help="write the result document here")
    r.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    s = sub.add_parser("serve", help="start the web app")
    s.add_argument("--port", type=int, default=8501)
    b = sub.add_parser("bench", help="run the benchmark suite (python -m tools.bench)")
    b.add_argument("--quick", action="store_true",
                   help="smaller sizes, fewer repetitions, no browser session")
    b.add_argument("--json", metavar="PATH", help="also write the bench document here")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="where the timed steps run (auto: cuda > mps > cpu); reported")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


def _fail(msg: str) -> int:
    print(f"gradlab: error: {msg}", file=sys.stderr)
    return 2


def _build_config(args: argparse.Namespace):
    cfg = preset(args.preset)
    if args.config:
        try:
            text = Path(args.config).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError("--config", f"cannot read {args.config}: {e.strerror}") from None
        cfg = from_dict(_json_fields(text), base=cfg)
    overrides: dict[str, str] = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError("--set", f"expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k.strip()] = v
    for flag in ("steps", "every", "seed"):
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    return from_dict(overrides, base=cfg)


def _json_fields(text: str) -> dict:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError("--config", f"not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(d, dict):
        raise ConfigError("--config", "expected a JSON object of config fields")
    return d.get("config", d) if isinstance(d.get("config"), dict) else d


def _summary(res) -> str:
    last = res.snapshots[-1]
    hidden = [layer for layer in last.layers if layer.name != "output"]
    speeds = " ".join(f"{layer.delta_norm:.3g}" for layer in hidden[:8])
    more = " ..." if len(hidden) > 8 else ""
    acc = f" test_acc={last.test_accuracy:.4f}" if last.test_accuracy is not None else ""
    div = f" DIVERGED at step {res.diverged_at} ({res.diverged_layer})" if res.diverged_at \
        is not None else ""
    return f"step {last.step}: loss={last.loss:.4g}{acc} delta_norm[{speeds}{more}]{div}"


def _bench(quick: bool, json_path: str | None, device: str = "auto") -> int:
    """Run ``python -m tools.bench`` (the packaged tools, which core never imports) in a
    child process from the folder that holds that package; its exit code is ours."""
    from importlib.util import find_spec

    spec = find_spec("tools")
    homes = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    root = next((h.parent for h in homes if (h / "bench.py").is_file()), None)
    if root is None:
        return _fail("the benchmark suite (package tools) is not installed: pip install -e .")
    cmd = [sys.executable, "-m", "tools.bench", *(["--quick"] if quick else [])]
    if json_path:
        cmd += ["--json", str(Path(json_path).resolve())]
    if device != "auto":
        cmd += ["--device", device]
    return subprocess.call(cmd, cwd=root)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    if args.cmd == "presets":
        for name, desc in preset_descriptions().items():
            print(f"{name:24s} {desc}")
        return 0
    if args.cmd == "serve":
        app = Path(__file__).resolve().parent.parent / "app" / "main.py"
        cmd = [sys.executable, "-m", "streamlit", "run", str(app),
               "--server.port", str(args.port)]
        return subprocess.call(cmd)
    if args.cmd == "bench":
        return _bench(args.quick, args.json, args.device)
    try:
        cfg = _build_config(args)
        if args.seeds is not None and args.seed is not None:
            raise ConfigError("--seeds", "give --seed or --seeds, not both")
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    except ConfigError as e:
        return _fail(str(e))
    import torch

    from core.train import run_all

    torch.set_num_threads(max(1, args.threads))   # the CLI owns its process
    try:
        res = run_all(cfg) if seeds is None else repeat(cfg, seeds)
    except ValueError as e:      # e.g. a forced device that is not there
        return _fail(str(e))
    return write_document(json.dumps(res.to_json(), allow_nan=False), args.json,
                          _summary(res) if seeds is None else seed_table(res))


def write_document(doc: str, target: str | None, summary: str) -> int:
    """The ``--json PATH|-`` contract of every command: the document on stdout (``-``), or
    in PATH with the one-line ``summary`` on stderr, or only the summary on stdout. Returns
    the exit code (2, with one line on stderr, when PATH cannot be written)."""
    if target == "-":
        sys.stdout.write(doc + "\n")
    elif target:
        try:
            Path(target).write_text(doc, encoding="utf-8")
        except OSError as e:
            return _fail(f"--json: cannot write {target}: {e.strerror}")
        print(summary, file=sys.stderr)
    else:
        print(summary)
    return 0


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
