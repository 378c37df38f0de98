"""The live playground: press Play and watch a real network's gradients, layer by layer.

Full reruns (widgets, buttons) only adjust the session's Trainer; the panels live in a
fragment that redraws from a copy of the Trainer's buffer every ``FRAME_S`` seconds while
the run is active, and not at all while it is paused or done (CPU for the rest of the class).
"""

from __future__ import annotations

import time

import streamlit as st

from app import charts, controls, presenter, sidebar
from app import export as exp
from app.charts import compare as cmp
from app.env import env_float, env_int
from app.export_download import download_button
from app.live import (
    DIVERGED,
    ERROR,
    FINISHED,
    RUNNING,
    Trainer,
    TrainerView,
    frame_period,
    get_extras,
    get_pool,
    get_trainer,
    light,
    live_trainers,
)
from app.stream_chart import stream_chart
from core.compare import diff_labels, diff_line
from core.config import ConfigError, from_dict
from core.repeat import summarise

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
#: Waiting costs no CPU (a condition variable); under a class's load the first step can take
#: over a second, and a run that gives up waits for the frame clock instead (measured: the
#: first step then showed 2-5 s after Play in a 30-session load test).
NEWS_WAIT_S = 1.5
REPEAT_REQ = "pg__repeat_req"   # one-shot: Repeat x N was pressed (N)
REPEAT_MAX = 10
REPEAT_CHOICES = (1, 3, 5, 10)      # 1: no repeat (this run only)

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
        if presenter.active():             # larger type for the back row
            fig = presenter.enlarge(fig)
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


def _pinned_live(extras) -> Trainer | None:
    """Run A when it trains along with B (not a kept picture of a finished run)."""
    return extras.pinned if extras.pinned is not None and extras.pinned_live else None


def _play(trainer, extras) -> None:
    trainer.play()
    a = _pinned_live(extras)
    if a is not None:
        a.play()


def _pause(trainer, extras) -> None:
    trainer.pause()
    if extras.pinned is not None:
        extras.pinned.pause()


def _step(trainer, extras) -> None:
    trainer.step()
    a = _pinned_live(extras)
    if a is not None:
        a.step()


def _reset(trainer, extras) -> None:
    trainer.reset()
    if extras.pinned is not None:
        extras.pinned.reset()
        extras.pinned_live = True          # from now on A trains along with B


def _pin(trainer, extras) -> None:
    """Keep the current run as A (its picture as it is now); B goes on from the sidebar."""
    extras.unpin()
    view = trainer.view()
    a = Trainer(view.config)
    a.preload(view)
    extras.pinned = a
    extras.pinned_live = view.step == 0 and view.diverged is None
    extras.repeat = extras.repeat_key = None


def _on_pin(trainer, extras) -> None:
    if st.session_state.get("pg_pin"):
        _pin(trainer, extras)
    else:
        extras.unpin()


def _ask_repeat() -> None:
    n = int(st.session_state.get("pg_repeat") or 1)
    st.session_state[REPEAT_REQ] = n


def _buttons(trainer, view: TrainerView, extras) -> None:
    c = st.columns([1, 1, 1, 1, 1.4, 1.6], vertical_alignment="center")
    running = view.status == RUNNING
    c[0].button("Play", key="pg_play", icon=":material/play_arrow:", type="primary",
                on_click=_pressed, args=(trainer, lambda: _play(trainer, extras)),
                disabled=running, width="stretch",
                help="Train until paused or done (after a finished run: start again).")
    c[1].button("Pause", key="pg_pause", icon=":material/pause:",
                on_click=_pause, args=(trainer, extras), disabled=not running, width="stretch")
    c[2].button("Step", key="pg_step", icon=":material/skip_next:", on_click=_pressed,
                args=(trainer, lambda: _step(trainer, extras)),
                disabled=view.status in (FINISHED, DIVERGED, ERROR), width="stretch",
                help="Pause, then make exactly one optimiser step.")
    c[3].button("Reset", key="pg_reset", icon=":material/restart_alt:", on_click=_reset,
                args=(trainer, extras), width="stretch",
                help="Back to step 0 with a fresh network (same seed); A too, when pinned.")
    pinned = extras.pinned.config if extras.pinned is not None else None
    c[4].toggle("Presenter", key=presenter.TOGGLE_KEY, persist_state="session",
                help="For a projector: the sidebar folds away, the panels you pick are drawn "
                     "large, and the keyboard drives the run (space: play / pause, → : one "
                     "step, r: reset). The link ?present=1 opens the page this way.")
    if presenter.active():                 # the link is on the page; pick the panels here
        with c[5].popover("Panels", icon=":material/dashboard:", width="stretch"):
            presenter.panel_picker()
        presenter.install_shortcuts()       # the link is on the status row (_status)
        return
    with c[5].popover("Share this run", icon=":material/link:"):
        st.caption("This link reproduces the run exactly (seed included)"
                   + (", and run A of the compare:" if pinned is not None else ":"))
        st.code(controls.share_link(view.config, pinned), language=None, wrap_lines=True)

    c = st.columns([1.2, 2.2, 2], vertical_alignment="bottom")
    st.session_state["pg_pin"] = extras.pinned is not None
    c[0].toggle("Pin as A", key="pg_pin", on_change=_on_pin, args=(trainer, extras),
                help="Keep this run as A; change any setting and press Play to run B "
                     "beside it (same data and seed unless you change them). Off: back to "
                     "one run.")
    if REPEAT_REQ not in st.session_state and (
            extras.pinned is not None or extras.repeat is None
            or extras.repeat_key != view.config):
        st.session_state["pg_repeat"] = 1
    c[1].segmented_control(
        "Repeat over seeds", REPEAT_CHOICES, key="pg_repeat", required=True,
        format_func=lambda n: "one seed" if n == 1 else f"× {n}", on_change=_ask_repeat,
        disabled=extras.pinned is not None, width="stretch",
        help="Train this config over N seeds (this seed and the next ones) as one batched "
             "model: the curves show the median with the interquartile band, the bars the "
             "median with whiskers." + (" Unpin A first: Repeat works on one run."
                                        if extras.pinned is not None else ""))
    with c[2].popover("Export and reproduce", icon=":material/download:", width="stretch"):
        _export_box(trainer, view, extras)


def _export_box(trainer, view: TrainerView, extras) -> None:
    """Downloads of the run(s) on the page, and the command / code that reproduce them."""
    cfg = view.config
    stem = exp.file_stem(cfg)

    def doc_of(t):
        v = t.view()
        hist = list(v.history) + ([light(v.diverged)] if v.diverged is not None else [])
        return exp.run_document(v.config, hist)

    runs = [("", trainer)]
    if extras.pinned is not None:
        runs = [("B: ", trainer), ("A: ", extras.pinned)]
    for label, t in runs:
        name = stem if not label else f"{stem}-{label[0]}"
        d1, d2 = st.columns(2)
        with d1:   # over the websocket, not a per-worker media URL (app/export_download.py)
            download_button(f"{label}CSV", lambda t=t: exp.csv_text(doc_of(t)),
                            file_name=f"{name}.csv", mime="text/csv",
                            key=f"pg_dl_csv{label[:1]}")
        with d2:
            download_button(f"{label}JSON", lambda t=t: exp.json_text(doc_of(t)),
                            file_name=f"{name}.json", mime="application/json",
                            key=f"pg_dl_json{label[:1]}")
    rep = _repeat_for(extras, cfg)
    if rep is not None:
        d1, d2 = st.columns(2)
        with d1:
            download_button("Seeds CSV", lambda: exp.repeat_csv_text(rep.to_json()),
                            file_name=f"{stem}-seeds.csv", mime="text/csv", key="pg_dl_rcsv")
        with d2:
            download_button("Seeds JSON", lambda: exp.json_text(rep.to_json()),
                            file_name=f"{stem}-seeds.json", mime="application/json",
                            key="pg_dl_rjson")
    st.caption("One CSV row per snapshot and layer, columns named as the JSON keys (the "
               "`gradlab run --json` document of the snapshots on screen). Each chart: the "
               "camera in its toolbar downloads a PNG, the disk an SVG.")
    st.markdown("**Reproduce** this run headless:")
    st.code(exp.reproduce_command(cfg), language="bash", wrap_lines=True)
    if rep is not None:
        st.code(exp.reproduce_command(cfg, "seeds.json", seeds=rep.seeds), language="bash",
                wrap_lines=True)
    st.markdown("or in Python (same numbers):")
    st.code(exp.reproduce_python(cfg), language="python")


def _repeat_for(extras, cfg):
    """The Repeat result on record if it belongs to ``cfg`` (else None)."""
    if extras.repeat is not None and extras.repeat_key == cfg and extras.pinned is None:
        return extras.repeat
    return None


def _run_repeat(extras, cfg, n: int) -> None:
    """Repeat x n: the config over seeds seed..seed+n-1 on an executor (one batched model
    when the shapes allow), with a progress bar; shared with anyone asking the same."""
    n = max(2, min(REPEAT_MAX, int(n)))
    seeds = list(range(cfg.seed, cfg.seed + n))
    bar = st.progress(0.0, text=f"Repeating over {n} seeds…")

    def on_progress(fraction, text) -> None:
        bar.progress(min(1.0, max(0.0, fraction or 0.0)), text=f"Repeat × {n}: {text}")

    try:
        result = get_pool().call("core.repeat:repeat", (cfg, seeds), {},
                                 on_progress=on_progress)
    except Exception as e:  # noqa: BLE001 - a failed repeat is a message, never a crash
        bar.empty()
        st.error(f"Repeat over {n} seeds failed: {controls.clean(str(e))}",
                 icon=":material/error:")
        return
    bar.empty()
    extras.repeat, extras.repeat_key = result, cfg


def _status(view: TrainerView, pinned: TrainerView | None = None, kept: bool = False
            ) -> None:
    prefix = "B: " if pinned is not None else ""
    if presenter.active():                 # the class needs the link more than the speed
        c = st.columns([1.2, 1.5, 2.3], vertical_alignment="center")
        c[0].metric(f"{prefix}Step", f"{view.step:,} / {view.total_steps:,}")
        c[1].metric(f"{prefix}Status", view.status_text)
        with c[2]:
            presenter.share_caption(controls.share_link(
                view.config, pinned.config if pinned is not None else None, presenter.query()))
    else:
        c = st.columns([1.6, 1, 1.4])      # room for "12,000 / 12,000" at 1280 x 720
        c[0].metric(f"{prefix}Step", f"{view.step:,} / {view.total_steps:,}")
        c[1].metric("Steps per second", f"{view.steps_per_s:,.0f}" if view.steps_per_s
                    else "—")
        c[2].metric(f"{prefix}Status", view.status_text)
    if pinned is not None:
        st.caption(f"**A:** step {pinned.step:,} / {pinned.total_steps:,}, "
                   f"{pinned.status_text}" + (" — kept as pinned: Reset runs A and B "
                                               "again together" if kept else ""))
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


def _summary_of(rep):
    """Quartiles across a Repeat's seeds, computed once per result."""
    hit = getattr(rep, "_gl_summary", None)
    if hit is None:
        hit = summarise([r.snapshots for r in rep.runs])
        rep._gl_summary = hit
    return hit


def _hist_of(view: TrainerView) -> list:
    hist = _decimate(view.history)
    if view.diverged is not None:            # the curves end with a "diverged" mark
        hist.append(light(view.diverged))
    return hist


def _bar_controls() -> tuple[str, bool]:
    a, b = st.columns([3, 2], vertical_alignment="bottom")
    metric = a.segmented_control(
        "Bar height", ["delta_norm", "weight_grad_norm"], key="pg_grad_metric",
        required=True, default="delta_norm", persist_state="session",
        format_func=lambda m: "‖dC/db‖" if m == "delta_norm" else "‖dC/dW‖",
        help="‖dC/db‖: Nielsen's speed of learning of each layer. ‖dC/dW‖: the norm of "
             "the weight gradient.") or "delta_norm"
    fixed = b.toggle("Fixed axis", key="pg_grad_fixed", value=True,
                     persist_state="session",
                     help="Keep the y-axis at 1e-8 … 1e4 so bars are comparable over time.")
    return metric, fixed


def _panels_ab(view: TrainerView, va: TrainerView, cache: dict) -> None:
    """Compare: every panel shows run A (purple) and run B (orange)."""
    ca, cb = controls.as_dict(va.config), controls.as_dict(view.config)
    labels = diff_labels(ca, cb)
    st.markdown(f"**Comparing A: {labels[0]} with B: {labels[1]}.** Settings that differ: "
                f"{diff_line(ca, cb)}")
    sb, sa = view.latest, va.latest
    hb, ha = _hist_of(view), _hist_of(va)
    ids = (view.epoch, va.epoch, id(sb), id(sa), len(hb), len(ha),
           hb[-1].step if hb else -1, ha[-1].step if ha else -1)
    left, right = st.columns(2, gap="large")
    with left:
        metric, fixed = _bar_controls()
        _panel("gradient_bars",
               lambda: cmp.gradient_bars_ab(sa, sb, labels, metric=metric,
                                            fixed_range=(1e-8, 1e4) if fixed else None),
               "pg_chart_grad", (ids, metric, fixed), cache)
    with right:
        log_y = st.toggle("Log-scale loss", key="pg_loss_log", value=False,
                          persist_state="session")
        _panel("loss_curves", lambda: cmp.loss_curves_ab(ha, hb, labels, log_y=log_y),
               "pg_chart_loss", (ids, log_y), cache)
    left, right = st.columns(2, gap="large")
    with left:
        _panel("speed_curves", lambda: cmp.layer_curves_ab(ha, hb, labels, "delta_norm"),
               "pg_chart_speed", ids, cache)
    with right:
        _panel("update_ratio", lambda: cmp.layer_curves_ab(ha, hb, labels, "update_ratio"),
               "pg_chart_update", ids, cache)
    left, right = st.columns(2, gap="large")
    with left:
        _panel("spectrum", lambda: cmp.spectrum_ab(sa, sb, labels), "pg_chart_spectrum",
               ids, cache, sequence=view.config.is_sequence)
    with right:
        _layer_table(sa, sb)
    for name, build, key, height in (
            ("neuron_bars", charts.neuron_bars, "pg_chart_neurons", 360),
            ("activation_panel", charts.activation_panel, "pg_chart_act", 400),
            ("grad_hist_panel", charts.grad_hist_panel, "pg_chart_gradhist", 400)):
        left, right = st.columns(2, gap="large")
        for col, run, snap, label in ((left, "A", sa, labels[0]), (right, "B", sb, labels[1])):
            with col:
                _panel(name, lambda build=build, snap=snap, run=run, label=label:
                       cmp.retitle(build(snap), f"{run}: {label}"),
                       f"{key}_{run}", (ids, run), cache, height=height,
                       sequence=view.config.is_sequence)


def _layer_table(sa, sb) -> None:
    """||dC/db|| of A and B per layer, and B/A: the numbers behind the bars."""
    if sa is None or sb is None:
        st.caption("The table of A and B per layer appears once both have a snapshot.")
        return
    la = {x.index: x for x in sa.layers}
    rows = []
    for x in sb.layers:
        a = la.get(x.index)
        ratio = x.delta_norm / a.delta_norm if a is not None and a.delta_norm else None
        rows.append({"layer": x.name, "A ‖dC/db‖": None if a is None else a.delta_norm,
                     "B ‖dC/db‖": x.delta_norm, "B / A": ratio})
    st.markdown(f"**Per layer** (A at step {sa.step}, B at step {sb.step})")
    st.dataframe(rows, hide_index=True, width="stretch", key="pg_ab_table",
                 column_config={k: st.column_config.NumberColumn(format="%.3g")
                                for k in ("A ‖dC/db‖", "B ‖dC/db‖", "B / A")})


def _panels(view: TrainerView, cache: dict, rep=None) -> None:
    snap = view.latest                       # the last good snapshot (None before step 0)
    hist = _hist_of(view)
    summary = _summary_of(rep) if rep is not None else None
    n_rep = len(rep.seeds) if rep is not None else 0
    if rep is not None:
        st.markdown(f"**Repeat × {n_rep}** (seeds {rep.seeds[0]}–{rep.seeds[-1]}): the "
                    "gradient bars, loss, speed and update curves show the median across "
                    "seeds with the interquartile range (q1–q3) as a band or whiskers; the "
                    f"other panels show this run (seed {view.config.seed}).")
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

    def grad(height: int) -> None:
        metric, fixed = _bar_controls()
        if summary is not None:
            _panel("gradient_bars",
                   lambda: cmp.gradient_bars_band(summary, metric=metric, n_seeds=n_rep),
                   "pg_chart_grad", (id(rep), metric), cache, height=height)
        else:
            _panel("gradient_bars",
                   lambda: charts.gradient_bars(snap, metric=metric,
                                                fixed_range=(1e-8, 1e4) if fixed else None),
                   "pg_chart_grad", (s_id, metric, fixed), cache, height=height)

    def loss(height: int) -> None:
        log_y = st.toggle("Log-scale loss", key="pg_loss_log", value=False,
                          persist_state="session")
        if summary is not None:
            _panel("loss_curves", lambda: cmp.loss_curves_band(summary, n_seeds=n_rep),
                   "pg_chart_loss", (id(rep),), cache, height=height)
        else:
            _panel("loss_curves", lambda: charts.loss_curves(hist, log_y=log_y),
                   "pg_chart_loss", (h_id, log_y), cache, height=height)

    def speed(height: int) -> None:
        if summary is not None:
            _panel("speed_curves",
                   lambda: cmp.layer_curves_band(summary, "delta_norm", n_seeds=n_rep),
                   "pg_chart_speed", (id(rep),), cache, height=height)
        else:
            _panel("speed_curves", lambda: charts.speed_curves(hist), "pg_chart_speed",
                   h_id, cache, height=height)

    def neurons(height: int) -> None:
        _panel("neuron_bars", lambda: charts.neuron_bars(snap), "pg_chart_neurons",
               s_id, cache, height=height)

    def spectrum(height: int) -> None:
        # Weight / Jacobian spectra change only every spectrum_every steps (the figure
        # names the step they are from); the RNN's gradient through time changes each time.
        spec_id = (s_id if view.config.is_sequence or snap is None
                   or snap.spectrum_step is None
                   else (view.epoch, snap.spectrum_step, snap.diverged))
        _panel("spectrum", lambda: charts.spectrum(snap), "pg_chart_spectrum", spec_id, cache,
               height=height, sequence=view.config.is_sequence)

    def update(height: int) -> None:
        if summary is not None:
            _panel("update_ratio",
                   lambda: cmp.layer_curves_band(summary, "update_ratio", n_seeds=n_rep),
                   "pg_chart_update", (id(rep),), cache, height=height)
        else:
            _panel("update_ratio", lambda: charts.update_ratio(hist), "pg_chart_update",
                   h_id, cache, height=height)

    def act(height: int) -> None:
        _panel("activation_panel", lambda: charts.activation_panel(snap), "pg_chart_act",
               s_id, cache, height=height)

    def gradhist(height: int) -> None:
        _panel("grad_hist_panel", lambda: charts.grad_hist_panel(snap), "pg_chart_gradhist",
               s_id, cache, height=height)

    _lay_out({"grad": grad, "loss": loss, "speed": speed, "neurons": neurons,
              "spectrum": spectrum, "update": update, "act": act, "gradhist": gradhist})


#: The normal page: panels two by two, in this order, with these heights (pixels).
PANEL_ROWS = ((("grad", 360), ("loss", 360)), (("speed", 360), ("neurons", 360)),
              (("spectrum", 360), ("update", 360)), (("act", 400), ("gradhist", 400)))


def _lay_out(slots: dict) -> None:
    """Draw the panels: two by two (``PANEL_ROWS``), or in presenter mode only the ones
    the teacher picked, larger (one alone takes the full width)."""
    if presenter.active():
        names = [n for n in presenter.picked() if n in slots]
        height = presenter.height(len(names))
        rows = [names] if len(names) == 1 else [names[i:i + 2]
                                                 for i in range(0, len(names), 2)]
        for row in rows:
            cols = st.columns(2, gap="large") if len(names) > 1 else [st.container()]
            for col, name in zip(cols, row, strict=False):
                with col:
                    slots[name](height)
        return
    for row in PANEL_ROWS:
        for col, (name, height) in zip(st.columns(2, gap="large"), row, strict=True):
            with col:
                slots[name](height)


def _ui_state(view: TrainerView, pinned: TrainerView | None = None) -> tuple:
    """What the full-run part of the page shows (buttons, refresh timer); when it changes
    under a running fragment, the fragment asks for one full rerun."""
    return (view.active, view.status,
            None if pinned is None else (pinned.active, pinned.status))


def live(trainer, extras) -> None:
    """The fragment body: status and panels from one copy of the buffer(s)."""
    view = trainer.view()
    pinned = extras.pinned.view() if extras.pinned is not None else None
    # The run went quiet (finished, diverged, paused, idle) or woke up:
    # one full rerun updates the buttons and switches the refresh timer on or off. Done
    # before drawing anything: a fragment that draws and then reruns the app makes the
    # browser remount its first chart (measured), one that draws nothing does not.
    if st.session_state.get(ACTIVE_SEEN) != _ui_state(view, pinned):
        st.session_state[ACTIVE_SEEN] = _ui_state(view, pinned)
        st.rerun(scope="app")
    _status(view, pinned, kept=pinned is not None and not extras.pinned_live)
    if pinned is not None:
        _panels_ab(view, pinned, trainer.ui_cache)
    else:
        _panels(view, trainer.ui_cache, _repeat_for(extras, view.config))


def _adopt_url_pin(extras) -> None:
    """A followed link named a run A (``a=``): pin it, to train along with B."""
    want = st.session_state.pop(controls.URL_PIN, None)
    if want is None:
        return
    try:
        cfg = from_dict(want)
    except ConfigError:
        return
    extras.unpin()
    a = Trainer(cfg)
    a.reset(cfg)
    extras.pinned, extras.pinned_live = a, True


def main() -> None:
    presenter.adopt_url()                  # ?present=1 -> the toggle, before it is drawn
    ctrl = sidebar.draw()
    trainer = get_trainer()
    extras = get_extras()
    trainer.touch()
    _adopt_url_pin(extras)
    if extras.pinned is not None:
        extras.pinned.touch()
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
    controls.sync_url(ctrl.config, extras.pinned.config if extras.pinned is not None else None,
                      presenter.written_query())

    if not presenter.active():             # presenting: the panels get the room
        st.title("Gradient Lab")
        st.markdown(INTRO)
    if ctrl.url_warnings:
        st.warning("Some settings in the link could not be used, so their defaults apply:\n\n"
                   + "\n".join(f"- `{w}`" for w in ctrl.url_warnings),
                   icon=":material/link_off:")
    _wait_for_news(trainer)
    view = trainer.view()
    _buttons(trainer, view, extras)
    from app.views.class_join import render_class_widget  # the class board (student side)

    render_class_widget(trainer)
    req = st.session_state.pop(REPEAT_REQ, None)
    if req == 1:
        extras.repeat = extras.repeat_key = None
    elif req is not None and extras.pinned is None:
        _run_repeat(extras, view.config, req)
    elif extras.repeat is not None and extras.repeat_key != view.config:
        extras.repeat = extras.repeat_key = None     # the settings moved on
    pinned = extras.pinned.view() if extras.pinned is not None else None
    st.session_state[ACTIVE_SEEN] = _ui_state(view, pinned)
    frame = frame_period(FRAME_S, len(live_trainers()), FRAME_SESSIONS)
    active = view.active or (pinned is not None and pinned.active)
    if active and frame > FRAME_S:
        st.caption(f"A big class is training: the charts redraw every {frame:g} s so that "
                   "everyone's runs keep their speed.")
    st.fragment(run_every=frame if active else None)(live)(trainer, extras)


main()
