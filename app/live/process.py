"""Process-wide settings: torch's thread count and warm-up (executors), connecting to the
executors early (web processes), and giving memory back to the OS after a class leaves.

Only ``app.live`` starts threads; ``core`` stays pure.
"""

from __future__ import annotations

import sys
import threading

from app.env import env_float, env_int

_TORCH_LOCK = threading.Lock()
_TORCH_CONFIGURED = False
_WARMED = False


def configure_torch() -> None:
    """Set torch's intra-op thread count once per process (env GRADLAB_TORCH_THREADS, 1):
    one thread is fastest while the server and a browser share the machine."""
    global _TORCH_CONFIGURED
    with _TORCH_LOCK:
        if _TORCH_CONFIGURED:
            return
        import torch

        torch.set_num_threads(env_int("GRADLAB_TORCH_THREADS", 1))
        _TORCH_CONFIGURED = True


def warm_torch() -> None:
    """Run one tiny net, so the first real run does not pay for torch's lazy set-up (an
    executor does this before it serves)."""
    from core.config import RunConfig
    from core.train import run

    configure_torch()
    try:
        cfg = RunConfig(depth=2, width=8, n_train=64, n_test=16, batch_size=16, steps=2,
                        every=1, device="cpu")
        for _ in run(cfg):
            pass
    except Exception:  # noqa: BLE001 - warming up is best effort
        pass


#: The interpreter's thread switch interval in a web process (env GRADLAB_SWITCH_MS, ms;
#: CPython's default is 5). Streamlit starts a thread for every script run and its event
#: loop waits until that thread runs; with a class's scripts on the interpreter lock, the
#: wait is a few switch intervals. Measured in a 30-session ``make load``: 1 ms cut the event
#: loop's time blocked in thread starts from 25 s to 15 s (p95 per start 38 -> 20 ms).
SWITCH_MS = env_float("GRADLAB_SWITCH_MS", 1.0, lo=0.1)


def quick_thread_switches() -> None:
    """Set :data:`SWITCH_MS` as this process's switch interval (web processes only: an
    executor trains on one thread and gains nothing from it)."""
    sys.setswitchinterval(SWITCH_MS / 1000)


def warm_up() -> None:
    """Once per web process, on a background thread: connect to the training executors
    (under ``streamlit run``, start them), so the first Play does not wait for that. (The
    guard lives here, in an imported module: Streamlit re-executes the main script on every
    rerun.)"""
    global _WARMED
    with _TORCH_LOCK:
        if _WARMED:
            return
        _WARMED = True
    quick_thread_switches()

    def work() -> None:
        from app.live.pool import get_pool

        try:
            get_pool()
        except Exception:  # noqa: BLE001 - the first Play reports what is wrong
            pass

    threading.Thread(target=work, name="gradlab-warmup", daemon=True).start()


# ---- giving memory back after a class closes its tabs -----------------------------------

_TRIM_LOCK = threading.Lock()
_TRIM_TIMER: threading.Timer | None = None
TRIM_DELAY_S = 5.0


def schedule_trim(delay: float | None = None) -> None:
    """Once things are quiet after trainers were released: a full garbage collection and,
    on glibc, ``malloc_trim(0)``, so a closed class's memory goes back to the OS
    (deploy/README.md, "Memory after a class"). Debounced: one pass ``TRIM_DELAY_S``
    after the last release."""
    global _TRIM_TIMER
    with _TRIM_LOCK:
        if _TRIM_TIMER is not None:
            _TRIM_TIMER.cancel()
        _TRIM_TIMER = threading.Timer(TRIM_DELAY_S if delay is None else delay, trim)
        _TRIM_TIMER.name = "gradlab-trim"
        _TRIM_TIMER.daemon = True
        _TRIM_TIMER.start()


def trim() -> None:
    """Collect garbage (a released trainer's history can sit in a reference cycle, and
    ``runner.postScriptGC`` is off) and hand freed heap memory back to the OS."""
    global _TRIM_TIMER
    with _TRIM_LOCK:
        if _TRIM_TIMER is threading.current_thread():
            _TRIM_TIMER = None
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (musl, macOS): nothing to trim
        pass
