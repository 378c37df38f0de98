"""The palette stays readable under colour-vision deficiency and in greyscale.

Each colour is passed through Machado, Oliveira & Fernandes (2009)'s simulation of
deuteranopia and protanopia (severity 1.0, applied to linear sRGB) and through greyscale
(relative luminance), and every pair is compared with CIEDE2000 (Sharma, Wu & Dalal 2005;
the implementation here is checked against four of their published test pairs).

Thresholds, stated: the three gradient bands (vanished / can learn / exploding) stay at
ΔE00 >= 15 apart in normal vision, under both simulations AND in greyscale (they differ in
lightness, not only in hue). The categorical line palette stays >= 12 apart in normal vision
and under both simulations (greyscale is not claimed for it: lines also differ by dash,
marker and legend). For scale: ΔE00 ~ 2 is a just-noticeable difference; the old palette
(green #1a9850 vs red #c62828) was 9.4 under deuteranopia, and its blue and red 1.2 apart in
greyscale.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from app import charts
from app.charts import style
from tests.chart_helpers import spec, traces, with_layers

pytest_plugins = ("tests.chart_fixtures",)

# Machado et al. (2009), severity 1.0, on linear RGB.
PROTANOPIA = np.array([[0.152286, 1.052583, -0.204868],
                       [0.114503, 0.786281, 0.099216],
                       [-0.003882, -0.048116, 1.051998]])
DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968],
                         [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
D65 = np.array([0.95047, 1.0, 1.08883])

BAND_MIN_DE = 15.0
PALETTE_MIN_DE = 12.0


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _hex(color: str) -> np.ndarray:
    h = color.lstrip("#")
    return np.array([int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])


def seen(color: str, vision: str) -> np.ndarray:
    """Linear RGB of ``color`` as seen with ``vision`` (normal, deuteranopia, protanopia,
    greyscale), clipped to the gamut."""
    lin = _linear(_hex(color))
    if vision == "deuteranopia":
        lin = DEUTERANOPIA @ lin
    elif vision == "protanopia":
        lin = PROTANOPIA @ lin
    elif vision == "greyscale":
        lin = np.full(3, LUMINANCE @ lin)
    return np.clip(lin, 0.0, 1.0)


def lab(linear_rgb: np.ndarray) -> tuple[float, float, float]:
    """CIELAB (D65) of a linear sRGB colour."""
    xyz = SRGB_TO_XYZ @ linear_rgb / D65
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def ciede2000(lab1: tuple[float, float, float], lab2: tuple[float, float, float]) -> float:
    """CIEDE2000 colour difference (kL = kC = kH = 1)."""
    L1, a1, b1 = lab1
    L2, a2, b2 = lab2
    cbar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(cbar ** 7 / (cbar ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dl, dc = L2 - L1, c2p - c1p
    if c1p * c2p == 0:
        dh = 0.0
    else:
        dh = h2p - h1p
        dh -= 360 if dh > 180 else 0
        dh += 360 if dh < -180 else 0
    dhh = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    lbar, cbarp = (L1 + L2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbar = (h1p + h2p) / 2
    else:
        hbar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hbar - 30)) + 0.24 * math.cos(math.radians(2 * hbar))
         + 0.32 * math.cos(math.radians(3 * hbar + 6))
         - 0.20 * math.cos(math.radians(4 * hbar - 63)))
    dtheta = 30 * math.exp(-(((hbar - 275) / 25) ** 2))
    rc = 2 * math.sqrt(cbarp ** 7 / (cbarp ** 7 + 25 ** 7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / math.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = -math.sin(math.radians(2 * dtheta)) * rc
    return math.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2
                     + rt * (dc / sc) * (dhh / sh))


def difference(c1: str, c2: str, vision: str) -> float:
    return ciede2000(lab(seen(c1, vision)), lab(seen(c2, vision)))


def min_difference(colors, vision: str) -> tuple[float, str, str]:
    return min((difference(a, b, vision), a, b) for a, b in itertools.combinations(colors, 2))


# ---- the colour science is right ------------------------------------------------------------


@pytest.mark.parametrize(("lab1", "lab2", "expected"), [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),        # Sharma et al. pair 1
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),                     # pair 7
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),                  # pair 17
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),   # pair 25
])
def test_ciede2000_matches_sharma_test_data(lab1, lab2, expected) -> None:
    assert ciede2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)


def test_simulations_keep_white_and_grey() -> None:
    """Machado's matrices leave achromatic colours (almost) alone: rows sum to ~1."""
    for vision in ("deuteranopia", "protanopia", "greyscale"):
        assert difference("#ffffff", "#ffffff", vision) == 0
        assert difference("#808080", "#808080", vision) == 0
        np.testing.assert_allclose(seen("#808080", vision), seen("#808080", "normal"),
                                   atol=2e-3)


# ---- the palette ----------------------------------------------------------------------------

BANDS = (style.BANDS["vanished"], style.BANDS["can learn"], style.BANDS["exploding"])


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia", "greyscale"])
def test_gradient_bands_stay_apart(vision: str) -> None:
    de, a, b = min_difference(BANDS, vision)
    assert de >= BAND_MIN_DE, f"{a} vs {b}: ΔE00 {de:.1f} < {BAND_MIN_DE} ({vision})"


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia"])
def test_line_palette_stays_apart(vision: str) -> None:
    de, a, b = min_difference(style.PALETTE, vision)
    assert de >= PALETTE_MIN_DE, f"{a} vs {b}: ΔE00 {de:.1f} < {PALETTE_MIN_DE} ({vision})"


def test_the_old_palette_fails_the_same_test() -> None:
    """The test can fail: the blue / green / red this palette replaced does."""
    old = ("#2166ac", "#1a9850", "#c62828")
    assert min_difference(old, "deuteranopia")[0] < BAND_MIN_DE
    assert min_difference(old, "greyscale")[0] < BAND_MIN_DE


def test_bands_are_the_bar_colours_and_differ_by_pattern_too(small) -> None:
    """Each bar carries its band's colour AND pattern: hatched vanished, plain healthy,
    crossed exploding (readable without hue)."""
    snap = with_layers(small[-1], delta_norm=[1e-9, 1e-7, 1e-2, 1.0, 10.0, 1e5, 3e-3])
    (bar,) = traces(charts.gradient_bars(snap), type="bar")
    assert list(bar["marker"]["color"])[:6] == [style.BLUE, style.BLUE, style.GREEN,
                                                 style.GREEN, style.GREEN, style.RED]
    assert list(bar["marker"]["pattern"]["shape"]) == ["/", "/", "", "", "", "x", ""]
    assert len(set(style.BAND_PATTERNS.values())) == 3
    caption = charts.caption("gradient_bars")
    assert "hatched" in caption and "crossed" in caption
    assert spec(charts.gradient_bars(snap))["layout"]["annotations"]
