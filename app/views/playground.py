"""The live playground: press Play and watch a real network's gradients, layer by layer.

Full reruns (widgets, buttons) only adjust the session's Trainer; the panels live in a
fragment that redraws from a copy of the Trainer's buffer every ``FRAME_S`` seconds while
the run is active, and not at all while it is paused or done (CPU for the rest of the class).
"""

from __future__ import annotations

import time

import streamlit as st

from app import charts, controls, sidebar
from app.env import env_float, env_int
from app.live import (
    DIVERGED,
    ERROR,
    FINISHED,
    RUNNING,
    TrainerView,
    frame_period,
    get_trainer,
    light,
    live_trainers,
)
from app.stream_chart import stream_chart

#: Redraw period of the live panels while a run is active (env GRADLAB_FRAME_S, 0.25-5 s),
#: and of the curves over the whole history (twice that; see _panels): redraws share the
#: server's CPU with the training (README, "Hosting it for a class").
FRAME_S = min(5.0, env_float("GRADLAB_FRAME_S", 0.75, lo=0.25))
HISTORY_S = 2 * FRAME_S
#: Running sessions one web process redraws at the full frame rate; beyond that the frame
#: period grows in proportion, so a big class's redraws cannot starve clicks and training.
FRAME_SESSIONS = env_int("GRADLAB_FRAME_SESSIONS", 16)
HISTORY_TICK = "pg__history_tick"
MAX_POINTS = 400       # points per curve sent to the browser (the buffer holds more)
ACTIVE_SEEN = "pg__active_seen"
HAD_TRAINER = "pg__had_trainer"
PRESSED = "pg__pressed"   # the step shown when Play / Step was pressed (the first frame waits)
#: How long a script run waits for news it can draw at once: the first step after Play /
#: Step, the step-0 picture of a new config. Longer waits fall back to the frame clock.
NEWS_WAIT_S = 0.6

INTRO = ("Train a real neural network live and watch its gradients layer by layer: press "
         "**Play**, then change the depth, activation or initialiser in the sidebar and see "
         "the gradient vanish or explode.")


# ---- small helpers --------------------------------------------------------------------------


def _decimate(history, n: int = MAX_POINTS) -> list:
    """At most ``n`` snapshots, evenly spread, always keeping the first and the last."""
    h = list(history)
    if len(h) <= n:
        return h
    step = (len(h) - 1) / (n - 1)
    return [h[round(i * step)] for i in range(n)]


def _panel(name: str, build, key: str, deps: tuple, cache: dict, height: int = 360,
           sequence: bool = False) -> None:
    """The chart (its title is in the figure), then a one-sentence caption (``sequence``:
    the RNN/GRU variant of the panel's). ``deps`` identify the inputs; a failing builder
    shows a note, never a traceback."""
    hit = cache.get(key)
    if hit is not None and hit[0] == deps:
        fig = hit[1]
    else:
        try:
            with charts.raw_figures():        # plain dicts: the page only serialises them
                fig = build()
        except Exception as e:  # noqa: BLE001 - one bad panel must not take the page down
            st.caption(f"This panel could not be drawn ({type(e).__name__}).")
            fig = None
        cache[key] = (deps, fig)
    if fig is not None:
        stream_chart(fig, key=key, height=height)
    text = charts.caption(name, sequence)
    if text:
        st.caption(text)


# ---- the page -------------------------------------------------------------------------------


def _pressed(trainer, command) -> None:
    """A Play / Step click: remember what was on screen, so that this script run can wait
    for the first new step and draw it at once instead of on the next frame."""
    command()
    view = trainer.view()
    st.session_state[PRESSED] = (view.epoch, view.step)


def _wait_for_news(trainer) -> None:
    """Before drawing: the first step after a click, or a new config's step-0 picture,
    if it comes within NEWS_WAIT_S (the executors usually need tens of milliseconds)."""
    pressed = st.session_state.pop(PRESSED, None)
    if pressed is not None:
        epoch, step = pressed
        trainer.wait_for(lambda v: v.epoch != epoch or v.diverged is not None or not v.active
                         or (v.latest is not None and v.latest.step > step),
                         timeout=NEWS_WAIT_S)
    elif trainer.view().busy:
        trainer.wait_for(lambda v: not v.busy, timeout=NEWS_WAIT_S)


def _buttons(trainer, view: TrainerView) -> None:
    c = st.columns([1, 1, 1, 1, 3], vertical_alignment="center")
    running = view.status == RUNNING
    c[0].button("Play", key="pg_play", icon=":material/play_arrow:", type="primary",
                on_click=_pressed, args=(trainer, trainer.play), disabled=running,
                width="stretch",
                help="Train until paused or done (after a finished run: start again).")
    c[1].button("Pause", key="pg_pause", icon=":material/pause:", on_click=trainer.pause,
                disabled=not running, width="stretch")
    c[2].button("Step", key="pg_step", icon=":material/skip_next:", on_click=_pressed,
                args=(trainer, trainer.step),
                disabled=view.status in (FINISHED, DIVERGED, ERROR), width="stretch",
                help="Pause, then make exactly one optimiser step.")
    c[3].button("Reset", key="pg_reset", icon=":material/restart_alt:", on_click=trainer.reset,
                width="stretch", help="Back to step 0 with a fresh network (same seed).")
    with c[4].popover("Share this run", icon=":material/link:"):
        st.caption("This link reproduces the run exactly (seed included):")
        st.code(controls.share_link(view.config), language=None, wrap_lines=True)


def _status(view: TrainerView) -> None:
    c = st.columns([1, 1, 2])
    c[0].metric("Step", f"{view.step:,} / {view.total_steps:,}")
    c[1].metric("Steps per second", f"{view.steps_per_s:,.0f}" if view.steps_per_s else "—")
    c[2].metric("Status", view.status_text)
    if view.sharing_text and view.status == RUNNING:
        st.caption(f"{view.sharing_text}: each gets an equal share, so this run's speed "
                   "rises as others pause or finish.")
    if view.status == DIVERGED and view.diverged is not None:
        d = view.diverged
        layer = d.diverged_layer or "an unknown layer"
        st.error(f"**Diverged at step {d.step}, first in {layer}.** The numbers became "
                 "NaN or infinite, so the run stopped; the charts keep the last good values.  "
                 "\nTry a smaller learning rate or gradient clipping, then press Play to start "
                 "again.", icon=":material/warning:")
    elif view.status == ERROR:
        st.error(view.message or "The run stopped with an error.", icon=":material/error:")
    elif view.message:
        st.info(view.message, icon=":material/pause_circle:")


def _panels(view: TrainerView, cache: dict) -> None:
    snap = view.latest                       # the last good snapshot (None before step 0)
    hist = _decimate(view.history)
    if view.diverged is not None:            # the curves end with a "diverged" mark
        hist.append(light(view.diverged))
    # What each figure depends on (objects in the buffer are never mutated: ids suffice).
    s_id = (view.epoch, id(snap), snap.step if snap else -1)
    h_id = (view.epoch, len(hist), id(hist[-1]) if hist else 0, hist[-1].step if hist else -1)
    # While a run streams, the curves over the whole history (three panels, most of a
    # redraw's build and JSON cost: the server's Python shares one core with the training
    # thread) are rebuilt at most every HISTORY_S; the panels of the latest snapshot follow
    # every frame. A quiet run (paused, done, diverged) draws its final curves at once.
    if view.active and hist and not hist[-1].diverged:
        prev = st.session_state.get(HISTORY_TICK)
        now = time.monotonic()
        if prev is not None and prev[0] == view.epoch and now - prev[2] < HISTORY_S:
            h_id = prev[1]
        else:
            st.session_state[HISTORY_TICK] = (view.epoch, h_id, now)

    left, right = st.columns(2, gap="large")
    with left:
        a, b = st.columns([3, 2], vertical_alignment="bottom")
        metric = a.segmented_control(
            "Bar height", ["delta_norm", "weight_grad_norm"], key="pg_grad_metric",
            required=True, default="delta_norm", persist_state="session",
            format_func=lambda m: "‖dC/db‖ (speed)" if m == "delta_norm" else "‖dC/dW‖",
            help="‖dC/db‖: Nielsen's speed of learning of each layer. ‖dC/dW‖: the norm of "
                 "the weight gradient.") or "delta_norm"
        fixed = b.toggle("Fixed axis", key="pg_grad_fixed", value=True,
                         persist_state="session",
                         help="Keep the y-axis at 1e-8 … 1e4 so bars are comparable over time.")
        _panel("gradient_bars",
               lambda: charts.gradient_bars(snap, metric=metric,
                                            fixed_range=(1e-8, 1e4) if fixed else None),
               "pg_chart_grad", (s_id, metric, fixed), cache)
    with right:
        log_y = st.toggle("Log-scale loss", key="pg_loss_log", value=False,
                          persist_state="session")
        _panel("loss_curves", lambda: charts.loss_curves(hist, log_y=log_y),
               "pg_chart_loss", (h_id, log_y), cache)

    left, right = st.columns(2, gap="large")
    with left:
        _panel("speed_curves", lambda: charts.speed_curves(hist), "pg_chart_speed",
               h_id, cache)
    with right:
        _panel("neuron_bars", lambda: charts.neuron_bars(snap), "pg_chart_neurons",
               s_id, cache)

    left, right = st.columns(2, gap="large")
    with left:
        # Weight / Jacobian spectra change only every spectrum_every steps (the figure
        # names the step they are from); the RNN's gradient through time changes each time.
        spec_id = (s_id if view.config.is_sequence or snap is None
                   or snap.spectrum_step is None
                   else (view.epoch, snap.spectrum_step, snap.diverged))
        _panel("spectrum", lambda: charts.spectrum(snap), "pg_chart_spectrum", spec_id, cache,
               sequence=view.config.is_sequence)
    with right:
        _panel("update_ratio", lambda: charts.update_ratio(hist), "pg_chart_update",
               h_id, cache)

    left, right = st.columns(2, gap="large")
    with left:
        _panel("activation_panel", lambda: charts.activation_panel(snap), "pg_chart_act",
               s_id, cache, height=400)
    with right:
        _panel("grad_hist_panel", lambda: charts.grad_hist_panel(snap), "pg_chart_gradhist",
               s_id, cache, height=400)


def _ui_state(view: TrainerView) -> tuple:
    """What the full-run part of the page shows (buttons, refresh timer); when it changes
    under a running fragment, the fragment asks for one full rerun."""
    return view.active, view.status


def live(trainer) -> None:
    """The fragment body: status and panels from one copy of the buffer."""
    view = trainer.view()
    # The run went quiet (finished, diverged, paused, idle) or woke up:
    # one full rerun updates the buttons and switches the refresh timer on or off. Done
    # before drawing anything: a fragment that draws and then reruns the app makes the
    # browser remount its first chart (measured), one that draws nothing does not.
    if st.session_state.get(ACTIVE_SEEN) != _ui_state(view):
        st.session_state[ACTIVE_SEEN] = _ui_state(view)
        st.rerun(scope="app")
    _status(view)
    _panels(view, trainer.ui_cache)


def main() -> None:
    ctrl = sidebar.draw()
    trainer = get_trainer()
    trainer.touch()
    if not trainer.configured:
        if st.session_state.get(HAD_TRAINER):
            st.info("The connection to the server was lost, so the run started again "
                    "from step 0.", icon=":material/sync_problem:")
        trainer.reset(ctrl.config)
        st.session_state[HAD_TRAINER] = True
        changed: list[str] = []
    else:
        changed = trainer.set_config(ctrl.config)
    note = controls.toast_text(changed, ctrl.config, ctrl.notice)
    if note:
        st.toast(note, icon=":material/restart_alt:" if "reset" in note else ":material/tune:")
    controls.sync_url(ctrl.config)

    st.title("Gradient Lab")
    st.markdown(INTRO)
    if ctrl.url_warnings:
        st.warning("Some settings in the link could not be used, so their defaults apply:\n\n"
                   + "\n".join(f"- `{w}`" for w in ctrl.url_warnings),
                   icon=":material/link_off:")
    _wait_for_news(trainer)
    view = trainer.view()
    _buttons(trainer, view)
    st.session_state[ACTIVE_SEEN] = _ui_state(view)
    frame = frame_period(FRAME_S, len(live_trainers()), FRAME_SESSIONS)
    if view.active and frame > FRAME_S:
        st.caption(f"A big class is training: the charts redraw every {frame:g} s so that "
                   "everyone's runs keep their speed.")
    st.fragment(run_every=frame if view.active else None)(live)(trainer)


main()
