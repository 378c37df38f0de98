"""Everything a run can be downloaded as: the CLI's JSON document, a CSV of it (one row per
snapshot and layer, columns named as the JSON keys), and the way to reproduce it (the exact
``gradlab run`` command, and a five-line Python snippet over the core API).

Pure functions of a config and snapshots: the playground's Export box calls them, and so
can a lesson. The charts' PNG / SVG come from each chart's own toolbar (in the browser,
nothing rendered on the server).
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from core.config import RunConfig
from core.snapshot import RunResult, Snapshot

#: Per-snapshot columns of the CSV (the snapshot's JSON keys that hold one number).
SNAPSHOT_COLUMNS = ("step", "loss", "train_accuracy", "test_accuracy", "test_loss",
                    "elapsed_s", "spectrum_step", "diverged")
#: Per-layer columns (the layer's JSON keys that hold one number or a name).
LAYER_COLUMNS = ("index", "name", "weight_grad_norm", "bias_grad_norm", "delta_norm",
                 "activation_mean", "activation_std", "saturation", "update_ratio",
                 "weight_norm")
#: Flags of ``gradlab run`` for these fields (the others go through ``--set``).
_FLAGS = ("steps", "every", "seed")


def run_document(cfg: RunConfig, snapshots: Iterable[Snapshot],
                 device: str = "executor") -> dict[str, Any]:
    """The ``gradlab run --json`` document of a run the page holds (its history: light
    snapshots, so per-layer histograms and spectra are left out)."""
    res = RunResult(config=cfg.to_dict(), device=device)
    for s in snapshots:
        res.snapshots.append(s)
        if s.diverged and res.diverged_at is None:
            res.diverged_at, res.diverged_layer = s.step, s.diverged_layer
    return res.to_json()


def csv_text(doc: Mapping[str, Any], seed: int | None = None) -> str:
    """One row per snapshot and layer of a ``gradlab run`` document, columns named as its
    JSON keys (a ``seed`` column first when given). Numbers are written with ``repr``, so
    the CSV parses back to exactly the JSON's numbers."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    head = (["seed"] if seed is not None else []) + list(SNAPSHOT_COLUMNS) + list(LAYER_COLUMNS)
    w.writerow(head)
    for s in doc.get("snapshots", []):
        base = (([seed] if seed is not None else [])
                + [csv_cell(s.get(k)) for k in SNAPSHOT_COLUMNS])
        for la in s.get("layers", []):
            w.writerow(base + [csv_cell(la.get(k)) for k in LAYER_COLUMNS])
    return out.getvalue()


def repeat_csv_text(doc: Mapping[str, Any]) -> str:
    """The CSV of a ``gradlab run --seeds`` document: every seed's rows, a ``seed`` column
    first."""
    parts = []
    for i, run in enumerate(doc.get("runs", [])):
        text = csv_text(run, seed=int(run.get("seed", i)))
        parts.append(text if i == 0 else text.split("\n", 1)[1])
    return "".join(parts)


def csv_cell(v: Any) -> str:
    """One CSV cell: empty for None, true/false, floats by ``repr`` (every digit)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def json_text(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, allow_nan=False)


def _set_items(cfg: RunConfig) -> list[tuple[str, str]]:
    """The fields that differ from the defaults, as the URL writes them."""
    return parse_qsl(cfg.to_query(), keep_blank_values=True)


def reproduce_command(cfg: RunConfig, json_path: str = "run.json",
                      seeds: Sequence[int] | None = None) -> str:
    """The exact ``gradlab run`` command that trains ``cfg`` headless and writes its JSON
    (``seeds``: the ``--seeds`` form of a Repeat)."""
    parts = ["gradlab", "run"]
    for k, v in _set_items(cfg):
        if k not in _FLAGS:
            parts += ["--set", f"{k}={v}"]
    parts += ["--steps", str(cfg.steps), "--every", str(cfg.every)]
    if seeds:
        from core.repeat import seeds_text

        parts += ["--seeds", seeds_text(seeds)]
    else:
        parts += ["--seed", str(cfg.seed)]
    parts += ["--json", json_path]
    return " ".join(shlex.quote(p) for p in parts)


def reproduce_python(cfg: RunConfig) -> str:
    """Five lines of Python over the core API that give the same numbers as the page."""
    query = cfg.to_query(only_changed=True)
    if "seed=" not in query:
        query = f"{query}&seed={cfg.seed}" if query else f"seed={cfg.seed}"
    return ("from core.config import from_query\n"
            "from core.train import run\n"
            f"cfg = from_query({query!r})\n"
            "for snap in run(cfg):\n"
            "    print(snap.step, snap.loss, [layer.delta_norm for layer in snap.layers])\n")


def file_stem(cfg: RunConfig) -> str:
    """A short file name for downloads: 'gradlab-mlp-tanh-d6-seed0'."""
    return f"gradlab-{cfg.arch}-{cfg.activation}-d{cfg.depth}-seed{cfg.seed}"


__all__ = ["LAYER_COLUMNS", "SNAPSHOT_COLUMNS", "csv_text", "file_stem", "json_text",
           "repeat_csv_text", "reproduce_command", "reproduce_python", "run_document"]
