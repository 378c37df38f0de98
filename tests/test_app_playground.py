"""The playground page under Streamlit's AppTest: controls, buttons, presets, URL, errors.

The page file is tested directly (AppTest runs one script; ``app/main.py`` only adds the
navigation). Training runs on the page's real worker thread; tests use tiny configs.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from streamlit.testing.v1 import AppTest

from app import live
from app.live.trainer import TRAINERS, Trainer
from core.config import RunConfig, from_query
from tests.test_session import executors_caught_up

PAGE = str(Path(__file__).resolve().parent.parent / "app" / "views" / "playground.py")
TINY = dict(depth=2, width=8, n_train=64, n_test=16, batch_size=16, hist_bins=8, steps=60,
            every=5)


@pytest.fixture(autouse=True)
def _stop_workers():
    yield
    live.release_all()


def _app(query: dict | str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    q = TINY if query is None else query
    items = dict(parse_qsl(q)) if isinstance(q, str) else {k: str(v) for k, v in q.items()}
    for k, v in items.items():
        at.query_params[k] = v
    return at.run()


def _status(at: AppTest) -> str:
    return {m.label: m.value for m in at.metric}.get("Status", "")


def _step(at: AppTest) -> int:
    return int({m.label: m.value for m in at.metric}["Step"].split("/")[0].replace(",", ""))


def _wait(at: AppTest, pred, timeout: float = 30.0) -> AppTest:
    """Rerun the page until ``pred(at)`` holds (the run trains in an executor); fails with
    the status and step shown if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if pred(at):
            return at
        if time.monotonic() > deadline:
            metrics = {m.label: m.value for m in at.metric}
            raise AssertionError(f"not reached within {timeout:g} s; the page shows {metrics}")
        time.sleep(0.1)


def _trainer() -> Trainer:
    """The page session's trainer (each test's are released by ``_stop_workers``)."""
    (trainer,) = [t for t in list(TRAINERS) if not t.closed]
    return trainer


def _config(at: AppTest) -> RunConfig:
    """The config in force, read back from the URL the page wrote."""
    q = {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    return from_query(urlencode(q))


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_page_renders_with_defaults():
    at = _app({})
    _ok(at)
    assert at.title[0].value == "Gradient Lab"
    assert [b.key for b in at.button if b.key.startswith("pg_")] == [
        "pg_play", "pg_pause", "pg_step", "pg_reset"]
    assert _config(at) == RunConfig()
    assert dict(at.query_params) == {}                 # defaults make an empty query
    at = _wait(at, lambda a: _status(a) == "ready")
    assert _step(at) == 0


def test_play_step_reset():
    at = _app()
    at = _wait(at, lambda a: _status(a) == "ready")      # step 0 is measured at once
    assert _step(at) == 0
    at.button(key="pg_step").click().run()
    at = _wait(at, lambda a: _step(a) == 1 and _status(a) == "paused")
    at.button(key="pg_step").click().run()
    at = _wait(at, lambda a: _step(a) == 2 and _status(a) == "paused")
    at.button(key="pg_play").click().run()
    at = _wait(at, lambda a: _status(a).startswith("finished"))
    assert _status(at) == "finished (60 steps)" and _step(at) == 60
    _ok(at)
    at.button(key="pg_reset").click().run()
    at = _wait(at, lambda a: _status(a) == "ready")
    assert _step(at) == 0


def test_pause_stops_a_running_run():
    at = _app({**TINY, "steps": 100_000})
    at.button(key="pg_play").click().run()
    at = _wait(at, lambda a: _status(a) == "running" and _step(a) > 0)
    at.button(key="pg_pause").click().run()
    at = _wait(at, lambda a: _status(a) == "paused")
    # The steps in flight when Pause was pressed still land (the model took them): let them.
    executors_caught_up()
    s1 = _step(at.run())
    executors_caught_up()                  # a run still playing would have had a turn
    at.run()
    assert _status(at) == "paused" and _step(at) == s1


# (kind, key, value) for every control; the order makes the conditional ones appear.
CONTROLS = [
    ("segmented_control", "pg_arch", "mlp"),
    ("select_slider", "pg_depth", 3),
    ("select_slider", "pg_width", 16),
    ("selectbox", "pg_activation", "relu"),
    ("toggle", "pg_residual", True),
    ("segmented_control", "pg_norm", "layer"),
    ("selectbox", "pg_init", "he"),
    ("slider", "pg_init_gain", 1.5),
    ("selectbox", "pg_init", "gaussian"),
    ("slider", "pg_sigma_w", 1.25),
    ("slider", "pg_sigma_b", 0.05),
    ("selectbox", "pg_init", "fold"),
    ("slider", "pg_fold_k", 2),
    ("selectbox", "pg_bias_init", "zero"),
    ("selectbox", "pg_dataset", "circles"),
    ("selectbox", "pg_loss", "quadratic"),
    ("segmented_control", "pg_optimizer", "momentum"),
    ("slider", "pg_momentum", 0.5),
    ("select_slider", "pg_lr", 0.02),
    ("select_slider", "pg_batch_size", 0),
    ("segmented_control", "pg_clip_mode", "by norm"),
    ("number_input", "pg_clip_norm", 2.5),
    ("segmented_control", "pg_clip_mode", "norm and value"),
    ("number_input", "pg_clip_value", 0.5),
    ("select_slider", "pg_l2", 0.1),
    ("number_input", "pg_seed", 7),
    ("select_slider", "pg_every", 2),
    ("number_input", "pg_steps", 300),
    ("toggle", "pg_jacobian", True),
    ("number_input", "pg_n_train", 96),
    ("number_input", "pg_n_test", 32),
    ("slider", "pg_noise", 0.2),
    ("number_input", "pg_input_dim", 16),
    ("slider", "pg_hist_bins", 12),
    ("selectbox", "pg_device", "cpu"),
    # recurrent nets: arch switches the dataset to a sequence task by itself
    ("segmented_control", "pg_arch", "gru"),
    ("slider", "pg_gate_bias", 2.0),
    ("select_slider", "pg_seq_len", 5),
    ("selectbox", "pg_dataset", "adding"),
]

EXPECTED = dict(
    depth=3, width=16, residual=True, norm="layer", init="fold", init_gain=1.5, sigma_w=1.25,
    sigma_b=0.05, fold_k=2, bias_init="zero", optimizer="momentum", momentum=0.5, lr=0.02,
    batch_size=0, clip_norm=2.5, clip_value=0.5, l2=0.1, seed=7, every=2, steps=300,
    jacobian=True, n_train=96, n_test=32, noise=0.2, input_dim=16, hist_bins=12, device="cpu",
    arch="gru", gate_bias=2.0, seq_len=5, dataset="adding",
)


def _open_lazy_sections(at: AppTest) -> AppTest:
    """"Data and loss" and "More settings" draw their widgets only while open."""
    at.session_state["pg_exp_data"] = True
    at.session_state["pg_exp_more"] = True
    return at.run()


def test_collapsed_sections_draw_nothing_but_their_values_apply():
    at = _app({**TINY, "n_train": 96, "dataset": "circles", "hist_bins": 12})
    _ok(at)
    keys = {w.key for w in at.sidebar.number_input} | {w.key for w in at.sidebar.selectbox}
    assert "pg_n_train" not in keys and "pg_dataset" not in keys
    assert _config(at).n_train == 96 and _config(at).dataset == "circles"
    at = _open_lazy_sections(at)
    assert at.number_input(key="pg_n_train").value == 96
    assert at.selectbox(key="pg_dataset").value == "circles"
    at.number_input(key="pg_n_train").set_value(128).run()
    at.session_state["pg_exp_more"] = False
    at.run()
    _ok(at)
    assert not [w for w in at.sidebar.number_input if w.key == "pg_n_train"]
    assert _config(at).n_train == 128, "a closed section forgot the user's value"
    at.session_state["pg_exp_more"] = True
    at.run()
    assert at.number_input(key="pg_n_train").value == 128


def test_every_control_by_key():
    at = _open_lazy_sections(_app())
    for kind, key, value in CONTROLS:
        widget = getattr(at, kind)(key=key)
        widget.set_value(value).run()
        _ok(at)
        assert getattr(at, kind)(key=key).value == value, key
    cfg = _config(at)
    for name, value in EXPECTED.items():
        assert getattr(cfg, name) == pytest.approx(value) if isinstance(value, float) \
            else getattr(cfg, name) == value, name
    # The values of hidden controls survive (activation is hidden for a GRU).
    assert cfg.activation == "relu" and cfg.loss == "quadratic"


def test_structural_change_resets_and_says_so_lr_does_not():
    at = _app({**TINY, "steps": 100_000})
    at.button(key="pg_play").click().run()
    at = _wait(at, lambda a: _step(a) >= 10)
    at.select_slider(key="pg_lr").set_value(0.05).run()
    _ok(at)
    assert any("applied live" in t.value for t in at.toast)
    assert _status(at) == "running" and _step(at) >= 10      # not reset
    assert _config(at).lr == 0.05
    at.select_slider(key="pg_depth").set_value(4).run()
    _ok(at)
    assert any(t.value == "Depth changed — the run was reset." for t in at.toast)
    at = _wait(at, lambda a: _status(a) == "ready")
    assert _step(at) == 0 and _config(at).depth == 4


def test_invalid_combination_keeps_the_last_valid_config():
    at = _open_lazy_sections(_app())
    before = _config(at)
    at.select_slider(key="pg_batch_size").set_value(128).run()   # > n_train = 64
    assert not at.exception
    assert len(at.sidebar.error) == 1
    assert "batch_size" in at.sidebar.error[0].value and "n_train" in at.sidebar.error[0].value
    assert _config(at) == before                      # the URL / run keep the valid config
    assert at.select_slider(key="pg_batch_size").value == 128  # and the user's choice stays
    at.number_input(key="pg_n_train").set_value(200).run()
    assert not at.sidebar.error
    assert _config(at).batch_size == 128 and _config(at).n_train == 200


def test_a_preset_loads():
    at = _app()
    at.selectbox(key="pg_preset").set_value("nielsen-3").run()
    _ok(at)
    cfg = _config(at)
    assert cfg.depth == 3 and cfg.activation == "sigmoid" and cfg.dataset == "mnist"
    assert at.select_slider(key="pg_depth").value == 3
    assert at.selectbox(key="pg_init").value == "nielsen"
    assert any(c.value.startswith("Nielsen's [784,30,30,30,10]") for c in at.sidebar.caption)
    assert [t.value for t in at.toast] == ["Loaded the preset “nielsen-3”. The run was reset."]
    at.select_slider(key="pg_depth").set_value(4).run()
    assert any(c.value.endswith("*(modified)*") for c in at.sidebar.caption)


def test_shared_link_reproduces_the_config():
    cfg = RunConfig(depth=3, width=16, activation="relu", init="he", lr=0.03, seed=42,
                    n_train=64, n_test=16, batch_size=16, steps=10)
    at = _app(cfg.to_query())
    _ok(at)
    assert not at.warning
    assert _config(at) == cfg
    assert at.select_slider(key="pg_depth").value == 3
    assert at.number_input(key="pg_seed").value == 42
    link = at.code[0].value
    assert link.endswith("?" + cfg.to_query())


def test_a_link_followed_inside_the_session_loads():
    at = _app()
    assert _config(at).depth == 2
    at.query_params.clear()
    at.query_params.update({**{k: str(v) for k, v in TINY.items()}, "depth": "5"})
    at.run()
    _ok(at)
    assert _config(at).depth == 5
    assert at.select_slider(key="pg_depth").value == 5


def test_main_entry_point_serves_the_playground():
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "main.py"), default_timeout=60)
    for k, v in TINY.items():
        at.query_params[k] = str(v)
    at.run()
    _ok(at)
    assert at.title[0].value == "Gradient Lab"
    assert at.button(key="pg_play") is not None


def test_bad_query_string_warns_and_falls_back():
    at = _app("depth=abc&lr=nan&activation=%3Cscript%3E&width=16&bogus=1&seed=-5")
    assert not at.exception
    assert len(at.warning) == 1
    text = at.warning[0].value
    for field in ("depth", "lr", "activation", "bogus", "seed"):
        assert f"{field}:" in text, field
    cfg = _config(at)
    d = RunConfig()
    assert (cfg.depth, cfg.lr, cfg.activation, cfg.seed) == (d.depth, d.lr, d.activation, d.seed)
    assert cfg.width == 16                                     # the good key is kept
    assert "bogus" not in at.query_params                      # the URL is cleaned up


@pytest.mark.parametrize("query", [
    "preset=nope", "depth=1e9", "lr=-1&lr=inf", "arch=rnn", "steps=1%00", "%ff=%fe",
    "depth=" + "9" * 400, "jacobian=maybe&residual=2",
])
def test_hostile_queries_never_crash(query):
    at = _app(query)
    assert not at.exception
    assert at.title[0].value == "Gradient Lab"


def test_diverging_run_shows_the_banner():
    at = _app("preset=exploding-lr")
    _ok(at)
    at.button(key="pg_play").click().run()
    at = _wait(at, lambda a: _status(a).startswith("diverged"))
    assert not at.exception
    assert _status(at).startswith("diverged at step ")
    assert " in hidden" in _status(at)
    banner = [e.value for e in at.error]
    assert len(banner) == 1 and banner[0].startswith("**Diverged at step")
    assert "NaN or infinite" in banner[0] and "last good values" in banner[0]
    # Play again starts a fresh run, which diverges again the same way.
    first_status, first_epoch = _status(at), _trainer().view().epoch
    at.button(key="pg_play").click().run()
    at = _wait(at, lambda a: _trainer().view().epoch > first_epoch
               and _status(a).startswith("diverged"))
    assert _status(at) == first_status
    assert [e.value for e in at.error] == banner
