"""Two runs side by side: what differs between their configs, and a per-layer table.

The playground's A/B compare and ``gradlab compare`` both name a pair of runs by the
settings that differ ("A: sigmoid, B: relu") and put their per-layer statistics side by
side. NumPy-free and torch-free: plain dicts in (config dicts, ``gradlab run`` documents).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.config import RunConfig

#: Fields that are shown by value alone in a short label ("sigmoid"), not "key=value".
_BARE = {"activation", "init", "optimizer", "arch", "dataset", "loss", "norm"}


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The fields whose values differ, in the config's field order: (name, a, b)."""
    order = list(RunConfig().to_dict())
    keys = [k for k in order if k in a or k in b] + sorted((set(a) | set(b)) - set(order))
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


def _value(name: str, v: Any) -> str:
    if isinstance(v, bool):
        return f"{name} {'on' if v else 'off'}"
    if isinstance(v, float):
        v = f"{v:g}"
    return str(v) if name in _BARE else f"{name}={v}"


def diff_labels(a: Mapping[str, Any], b: Mapping[str, Any], limit: int = 3
                ) -> tuple[str, str]:
    """Short names of the two runs from what differs: ("sigmoid", "relu"),
    ("depth=6, lr=0.1", "depth=20, lr=0.01"); ("same settings", ...) when nothing does."""
    diff = config_diff(a, b)
    if not diff:
        return "same settings", "same settings"
    shown = diff[:limit]
    more = f" (+{len(diff) - limit} more)" if len(diff) > limit else ""
    la = ", ".join(_value(k, va) for k, va, _ in shown) + more
    lb = ", ".join(_value(k, vb) for k, _, vb in shown) + more
    return la, lb


def diff_line(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """The one-line config diff: 'activation: sigmoid → relu; lr: 0.1 → 0.01'."""
    diff = config_diff(a, b)
    if not diff:
        return "A and B have the same settings."
    return "; ".join(f"{k}: {_fmt(va)} → {_fmt(vb)}" for k, va, vb in diff)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def layer_table(a_doc: Mapping[str, Any], b_doc: Mapping[str, Any],
                keys: Sequence[str] = ("delta_norm", "weight_grad_norm", "saturation"),
                at: str | int = "last") -> tuple[int, int, list[dict[str, Any]]]:
    """Per-layer rows of two ``gradlab run`` documents at one snapshot each (``at``:
    "first", "last" or a step both have). Returns (step of A, step of B, rows), each row
    ``{"layer", "A <key>", "B <key>", "B/A <key>"}``; layers that one run lacks are None."""
    sa, sb = _pick(a_doc, at, "A"), _pick(b_doc, at, "B")
    la = {x["index"]: x for x in sa["layers"]}
    lb = {x["index"]: x for x in sb["layers"]}
    rows = []
    for idx in sorted(set(la) | set(lb)):
        xa, xb = la.get(idx), lb.get(idx)
        row: dict[str, Any] = {"layer": (xa or xb)["name"]}
        for k in keys:
            va = _num(xa.get(k)) if xa else None
            vb = _num(xb.get(k)) if xb else None
            row[f"A {k}"], row[f"B {k}"] = va, vb
            row[f"B/A {k}"] = vb / va if va not in (None, 0.0) and vb is not None else None
        rows.append(row)
    return int(sa["step"]), int(sb["step"]), rows


def _num(v: Any) -> float | None:
    if v is None:
        return None
    return float(v)          # "nan" / "inf" strings of the JSON parse as floats too


def _pick(doc: Mapping[str, Any], at: str | int, name: str) -> Mapping[str, Any]:
    snaps = doc.get("snapshots") or []
    if not snaps:
        raise ValueError(f"run {name} has no snapshots")
    if at == "first":
        return snaps[0]
    if at == "last":
        return snaps[-1]
    for s in snaps:
        if s.get("step") == int(at):
            return s
    raise ValueError(f"run {name} has no snapshot at step {at}")


__all__ = ["config_diff", "diff_labels", "diff_line", "layer_table"]
