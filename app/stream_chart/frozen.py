"""A page's figure cache whose figures are frozen: serialised once, never changed."""

from __future__ import annotations

from typing import Any


class FrozenFigures(dict):
    """A figure cache of the page (``Trainer.ui_cache``). The page caches a figure with the
    inputs it was built from and never changes it afterwards, so a figure put here is
    frozen: :func:`app.stream_chart.freeze` serialises it once, and a panel whose inputs did
    not change costs no JSON on the next redraw (sessions waiting in line redraw twice a
    second). The dict for a shared step-0 snapshot is shared by every session that shows it.
    """

    def __setitem__(self, k: Any, value: Any) -> None:
        fig = value[1] if isinstance(value, tuple) and len(value) == 2 else None
        if fig is not None:
            from app.stream_chart import freeze  # the package imports this module first

            freeze(fig)
        super().__setitem__(k, value)
