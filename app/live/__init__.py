"""Running sessions: the trainer a page talks to, fair turns at training, the shared step-0
pictures, history thinning and the process settings.

    process   torch's thread count, the warm-up run, giving memory back (malloc_trim)
    slots     SlotQueue: at most GRADLAB_MAX_WORKERS runs train at once, the rest in line
    initial   INITIAL: each config's step-0 snapshot, measured once per process and shared
    history   light snapshots and thinning: a bounded history that keeps a run's shape
    view      the statuses and TrainerView, the immutable copy a page draws from
    trainer   Trainer: play / pause / step / reset on a worker thread
    binding   get_trainer (one per browser session), release_all, live_trainers

Only this package starts threads; ``core`` stays pure.
"""

from app.live.binding import get_trainer, live_trainers, release_all
from app.live.history import history_cap, light, thin
from app.live.initial import INITIAL, InitialSnapshots
from app.live.process import configure_torch, warm_up
from app.live.slots import SLOTS, SlotQueue, TurnQueue
from app.live.trainer import LIVE_FIELDS, Trainer
from app.live.view import (
    ACTIVE,
    CLOSED,
    DIVERGED,
    ERROR,
    FINISHED,
    IDLE,
    PAUSED,
    RUNNING,
    WAITING,
    TrainerView,
    ordinal,
)

__all__ = [
    "ACTIVE", "CLOSED", "DIVERGED", "ERROR", "FINISHED", "IDLE", "INITIAL", "LIVE_FIELDS",
    "PAUSED", "RUNNING", "SLOTS", "WAITING", "InitialSnapshots", "SlotQueue", "Trainer",
    "TrainerView", "TurnQueue", "configure_torch", "get_trainer", "history_cap", "light",
    "live_trainers", "ordinal", "release_all", "thin", "warm_up",
]
