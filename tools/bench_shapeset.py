"""Bench section: Shapeset-3x2 generation speed (issue 17).

* ``shapeset_images_per_s``: images per second of ``core.shapeset.stream_chunk`` (the
  training stream's unit of work, 2000 images) on ONE CPU thread, the median of several
  chunks (the first is a warm-up). The goal, 20,000 / s, keeps the stream far from
  slowing a 5 x 1000 net's training step at minibatch 10 (10 images = 0.5 ms at the goal).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from core import shapeset
from tools.bench_steps import Sizes

KEYS = ("shapeset_images_per_s",)
TARGETS: dict[str, tuple[str, float]] = {"shapeset_images_per_s": (">=", 20000.0)}


def measure(sizes: Sizes) -> dict[str, Any]:
    """Median images/s over chunks of the stream, one thread (``sizes`` is not used)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        shapeset.stream_chunk(0, 0)                                   # warm-up
        rates = []
        for k in range(1, 8):
            t = time.perf_counter()
            shapeset.stream_chunk(0, k)
            rates.append(shapeset.STREAM_CHUNK / (time.perf_counter() - t))
    finally:
        torch.set_num_threads(threads)
    return {"shapeset_images_per_s": statistics.median(rates),
            "details": {"rates": rates, "chunk": shapeset.STREAM_CHUNK}}
