"""Reading source files as syntax trees (the boundary and hardening checks)."""

from __future__ import annotations

import ast


def dotted(node: ast.AST) -> str | None:
    """``torch.optim.SGD`` -> "torch.optim.SGD"; None for anything but a Name/Attribute chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None
