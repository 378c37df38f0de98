"""Presenter mode without a browser: the link parameters, the panel picker, the larger
charts, and the playground page under AppTest with ``?present=1``. (The browser side, keyboard
shortcuts and what fits on a projector's screen, is tests/test_fit_screens.py.)"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from streamlit.testing.v1 import AppTest

from app import controls, live, presenter
from app.charts import style
from core.config import RunConfig, from_query
from tests.chart_helpers import every_figure, spec

pytest_plugins = ("tests.chart_fixtures",)

PAGE = str(Path(__file__).resolve().parent.parent / "app" / "views" / "playground.py")
TINY = dict(depth=2, width=8, n_train=64, n_test=16, batch_size=16, hist_bins=8, steps=60,
            every=5)


@pytest.fixture(autouse=True)
def _stop_workers():
    yield
    live.release_all()


def _app(**extra: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in {**{k: str(v) for k, v in TINY.items()}, **extra}.items():
        at.query_params[k] = v
    return at.run()


def _query(at: AppTest) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


# ---- pure parts -----------------------------------------------------------------------------


def test_parse_panels_keeps_known_names_in_order_and_caps_them() -> None:
    assert presenter.parse_panels("loss, grad,nope,loss") == ["loss", "grad"]
    assert presenter.parse_panels("") == list(presenter.DEFAULT_PANELS)
    assert presenter.parse_panels("<script>") == list(presenter.DEFAULT_PANELS)
    assert len(presenter.parse_panels(",".join(presenter.PANELS))) == presenter.MAX_PANELS


def test_every_panel_has_a_builder_and_a_caption() -> None:
    from app import charts

    for name, (builder, label) in presenter.PANELS.items():
        assert callable(getattr(charts, builder)), name
        assert charts.caption(builder) and label


def test_enlarged_figures_have_back_row_type(small) -> None:
    """Every panel, enlarged: axis ticks >= 18 px (the issue's bar at 1920 x 1080), titles
    and margins scaled by SCALE, and the original figure untouched."""
    for name, fig in every_figure(small).items():
        before = spec(fig)["layout"]
        big = presenter.enlarge(fig)
        lay = big["layout"]
        for key, axis in lay.items():
            if key.startswith(("xaxis", "yaxis")) and axis.get("visible", True) is not False:
                size = (axis.get("tickfont") or {}).get("size", lay["font"]["size"])
                assert size >= 18, (name, key, size)
        assert lay["title"]["font"]["size"] == pytest.approx(
            before["title"]["font"]["size"] * presenter.SCALE, abs=0.06), name
        assert lay["margin"]["l"] == round(before["margin"]["l"] * presenter.SCALE), name
        assert spec(fig)["layout"] == before, f"{name}: the original figure was changed"


def test_enlarge_scales_annotations_and_colour_bars(small) -> None:
    big = presenter.enlarge(every_figure(small)["gradient_bars"])
    sizes = [a["font"]["size"] for a in big["layout"]["annotations"]]
    assert sizes and min(sizes) >= style.FONT_SIZE * presenter.SCALE - 0.05
    heat = presenter.enlarge(every_figure(small)["activation_panel"])
    bars = [t["colorbar"] for t in heat["data"] if isinstance(t.get("colorbar"), dict)]
    for cb in bars:
        assert cb["title"]["font"]["size"] >= style.FONT_SIZE * presenter.SCALE - 0.05


def test_share_link_carries_the_view_and_the_config_ignores_it() -> None:
    cfg = RunConfig(depth=5, seed=3)
    link = controls.share_link(cfg, None, {"present": "1", "panels": "grad,loss"})
    q = dict(parse_qsl(link.split("?", 1)[1]))
    assert q == {**dict(parse_qsl(cfg.to_query())), "present": "1", "panels": "grad,loss"}
    assert "panels=grad,loss" in link                         # readable: no %2C
    assert controls.share_link(cfg, None, {"evil": "1"}) == controls.share_link(cfg)


# ---- the page -------------------------------------------------------------------------------


def test_present_link_opens_presenter_mode() -> None:
    at = _app(present="1", panels="loss,speed")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning, [w.value for w in at.warning]      # no "unknown setting present"
    assert at.toggle(key=presenter.TOGGLE_KEY).value is True
    assert not at.title                                       # the panels get the room
    q = _query(at)
    assert q["present"] == "1" and q["panels"] == "loss,speed"
    assert from_query(urlencode({k: v for k, v in q.items()
                                 if k not in presenter.QUERY_KEYS})).depth == 2
    shown = [c.value for c in at.code]
    assert any("present=1" in c and "panels=loss,speed" in c for c in shown), shown
    # the shortcuts are installed (an invisible component), the picker holds the link's panels
    assert at.get("pills")[0].value == ["loss", "speed"]


def test_presenter_toggle_off_returns_to_the_normal_page() -> None:
    at = _app(present="1")
    at.toggle(key=presenter.TOGGLE_KEY).set_value(False).run()
    assert not at.exception
    assert at.title[0].value == "Gradient Lab"
    assert "present" not in _query(at) and "panels" not in _query(at)
    at.toggle(key=presenter.TOGGLE_KEY).set_value(True).run()
    q = _query(at)
    assert q["present"] == "1" and q["panels"] == ",".join(presenter.DEFAULT_PANELS)


def test_normal_page_has_no_view_keys() -> None:
    at = _app()
    assert not at.exception
    assert at.toggle(key=presenter.TOGGLE_KEY).value is False
    assert not set(_query(at)) & presenter.QUERY_KEYS
