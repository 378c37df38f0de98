"""Scaffolding shared by the lesson-claim tests (``test_lesson_claims_*.py``): each claims
module imports :func:`one_torch_thread` (an autouse fixture) and sets
``pytestmark = LESSON``. Not a test module itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

LESSON = pytest.mark.lesson


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread, as the app runs (and much faster on a busy 2-core machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
