"""A session's bounded history: light snapshots, thinned so that a long run keeps the shape
of its whole curve within a fixed memory budget."""

from __future__ import annotations

import dataclasses

from core.snapshot import Snapshot

#: Layer-records (snapshots x layers) the history may hold: ~270 bytes each -> ~27 MB.
HISTORY_BUDGET = 100_000
HISTORY_MAX = 1000      # snapshots, at most
HISTORY_MIN = 64        # snapshots, at least (depth 1000 still keeps a curve)
HISTORY_RECENT = 0.25   # fraction of the buffer never thinned (the newest points)


def light(s: Snapshot) -> Snapshot:
    """The snapshot without its per-layer arrays: what the history curves need."""
    return dataclasses.replace(
        s,
        layers=[dataclasses.replace(la, act_hist=None, grad_hist=None,
                                    weight_singular_values=None, delta_top=[])
                for la in s.layers],
        jacobian_singular_values=None, jacobian_log_singular_values=None,
        time_grad_norms=None, act_edges=None, grad_edges=None,
    )


def history_cap(n_layers: int) -> int:
    """How many snapshots the history keeps for a net with ``n_layers`` layers."""
    return int(max(HISTORY_MIN, min(HISTORY_MAX, HISTORY_BUDGET // max(1, n_layers))))


def thin(items: list, cap: int) -> list:
    """When ``items`` is full, drop every other *old* entry (the first one always stays);
    the newest quarter is kept whole. A long run keeps the shape of its whole curve."""
    if len(items) < cap:
        return items
    recent = max(1, int(cap * HISTORY_RECENT))
    old, new = items[:-recent], items[-recent:]
    return old[::2] + new
