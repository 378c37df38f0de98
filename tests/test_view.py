"""app.live.view: what the page reads, and how often it redraws in a big class."""

from __future__ import annotations

from app.live.view import RUNNING, TrainerView, frame_period
from core.config import RunConfig


def test_the_frame_period_grows_only_past_the_full_rate() -> None:
    assert frame_period(0.75, 0, 16) == 0.75
    assert frame_period(0.75, 16, 16) == 0.75
    assert frame_period(0.75, 32, 16) == 1.5
    assert frame_period(0.75, 40, 16) == 1.88
    assert frame_period(0.75, 5, 0) == 3.75, "a nonsense full rate is taken as 1"


def _view(**kw) -> TrainerView:
    base = dict(status=RUNNING, config=RunConfig(), step=10, total_steps=100, steps_per_s=5.0,
                history=(), latest=None, diverged=None, message=None, lr=0.1, busy=False)
    return TrainerView(**{**base, **kw})


def test_the_sharing_line_says_how_many_runs_share_the_server() -> None:
    assert _view(sharing=1, executors=2).sharing_text is None
    assert _view(sharing=0, executors=0).sharing_text is None
    assert (_view(sharing=12, executors=2).sharing_text
            == "12 runs share this server's 2 training processes")
    assert (_view(sharing=3, executors=1).sharing_text
            == "3 runs share this server's 1 training process")
