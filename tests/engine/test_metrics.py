"""Tests for the SR-convention PSNR / SSIM metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from engine.train.metrics import psnr_ssim_y, psnr_y, rgb_to_y, ssim_y, to_uint8


def _rand_rgb(seed: int, shape: tuple[int, int] = (40, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _gray_rgb(y_level: np.ndarray) -> np.ndarray:
    return np.repeat(y_level[..., None], 3, axis=2).astype(np.uint8)


def _slow_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Independent SSIM: explicit loop over valid 11x11 windows, numpy-built Gaussian."""
    xs = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-(xs**2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, wd = a.shape
    vals = []
    for i in range(h - 10):
        for j in range(wd - 10):
            pa = a[i : i + 11, j : j + 11]
            pb = b[i : i + 11, j : j + 11]
            mu_a = (w * pa).sum()
            mu_b = (w * pb).sum()
            var_a = (w * (pa - mu_a) ** 2).sum()
            var_b = (w * (pb - mu_b) ** 2).sum()
            cov = (w * (pa - mu_a) * (pb - mu_b)).sum()
            vals.append(
                ((2 * mu_a * mu_b + c1) * (2 * cov + c2))
                / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
            )
    return float(np.mean(vals))


def test_rgb_to_y_pure_colours() -> None:
    white = np.full((2, 2, 3), 255, dtype=np.uint8)
    black = np.zeros((2, 2, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(white), 235.0, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(black), 16.0, atol=1e-9)
    red = np.zeros((1, 1, 3), dtype=np.uint8)
    red[..., 0] = 255
    np.testing.assert_allclose(rgb_to_y(red), 16 + 65.481, atol=1e-9)
    # Float [0, 1] input gives the same Y on the 0..255 scale.
    np.testing.assert_allclose(rgb_to_y(np.ones((2, 2, 3))), 235.0, atol=1e-9)
    assert rgb_to_y(white).dtype == np.float64
    with pytest.raises(ValueError):
        rgb_to_y(np.zeros((4, 4), dtype=np.uint8))


def test_to_uint8_rounds_and_clips() -> None:
    x = np.array([-0.1, 0.0, 0.5 / 255, 1.4 / 255, 1.6 / 255, 1.0, 1.2])
    assert to_uint8(x).tolist() == [0, 0, 0, 1, 2, 255, 255]
    assert to_uint8(x).dtype == np.uint8


def test_psnr_matches_hand_computation() -> None:
    # Gray pixels: Y = 16 + v * 219/255, so an RGB offset d gives a Y offset d*219/255.
    ref = _gray_rgb(np.full((8, 8), 100))
    out = ref.copy()
    out[:4] += 10  # half the pixels off by 10 grey levels
    dy = 10 * (65.481 + 128.553 + 24.966) / 255
    mse = 0.5 * dy**2
    expected = 10 * math.log10(255**2 / mse)
    assert psnr_y(out, ref) == pytest.approx(expected, abs=1e-9)


def test_psnr_identical_capped() -> None:
    img = _rand_rgb(0)
    assert psnr_y(img, img) == 100.0
    assert math.isfinite(psnr_y(img, img))


def test_ssim_identical_is_one() -> None:
    img = _rand_rgb(1)
    assert ssim_y(img, img) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_slow_reference() -> None:
    a = _rand_rgb(2, (24, 27))
    noise = np.random.default_rng(3).normal(0, 20, a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    expected = _slow_ssim(rgb_to_y(b), rgb_to_y(a))
    assert ssim_y(b, a) == pytest.approx(expected, abs=1e-6)
    # And with a border crop applied before the windows.
    expected_b = _slow_ssim(rgb_to_y(b)[3:-3, 3:-3], rgb_to_y(a)[3:-3, 3:-3])
    assert ssim_y(b, a, border=3) == pytest.approx(expected_b, abs=1e-6)


def test_ssim_decreases_with_noise() -> None:
    # Smooth image so that noise is the dominant structure change.
    yy, xx = np.mgrid[0:64, 0:64]
    ref = _gray_rgb(128 + 60 * np.sin(xx / 6.0) * np.cos(yy / 9.0))
    rng = np.random.default_rng(4)
    base_noise = rng.normal(0, 1, ref.shape)
    scores = []
    for sigma in (2, 5, 10, 20, 40):
        noisy = np.clip(ref + sigma * base_noise, 0, 255).astype(np.uint8)
        scores.append(ssim_y(noisy, ref))
    assert all(s1 > s2 for s1, s2 in itertools.pairwise(scores))
    assert scores[0] < 1.0


def test_border_crop_ignores_border_errors() -> None:
    ref = _rand_rgb(5, (40, 40))
    out = ref.copy()
    out[:4] = 255 - out[:4]  # corrupt only the top 4 rows...
    out[:, -4:] = 0  # ...and the right 4 columns
    assert psnr_y(out, ref, border=4) == 100.0
    assert ssim_y(out, ref, border=4) == pytest.approx(1.0, abs=1e-12)
    assert psnr_y(out, ref, border=3) < 100.0
    assert ssim_y(out, ref, border=0) < 1.0


def test_float_and_uint8_inputs_agree() -> None:
    rng = np.random.default_rng(6)
    ref = _rand_rgb(7)
    out_f = np.clip(ref / 255.0 + rng.normal(0, 0.03, ref.shape), 0, 1)
    out_u8 = to_uint8(out_f)
    ref_f = ref.astype(np.float32) / 255.0
    assert psnr_y(out_f, ref) == psnr_y(out_u8, ref)
    assert psnr_y(out_f, ref_f) == psnr_y(out_u8, ref)
    assert ssim_y(out_f, ref_f, border=2) == ssim_y(out_u8, ref, border=2)
    # Sub-quantum float noise vanishes after rounding to uint8.
    tiny = ref / 255.0 + 0.1 / 255.0
    assert psnr_y(tiny, ref) == 100.0


def test_psnr_ssim_y_combines() -> None:
    ref = _rand_rgb(8)
    out = np.clip(ref.astype(np.int16) + 3, 0, 255).astype(np.uint8)
    assert psnr_ssim_y(out, ref, 2) == (psnr_y(out, ref, 2), ssim_y(out, ref, 2))


def test_shape_mismatch_raises() -> None:
    a = np.zeros((16, 16, 3), dtype=np.uint8)
    b = np.zeros((16, 17, 3), dtype=np.uint8)
    for fn in (psnr_y, ssim_y, psnr_ssim_y):
        with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(16, 17, 3\)"):
            fn(a, b)


def test_border_too_large_raises() -> None:
    a = np.zeros((16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        psnr_y(a, a, border=8)
    with pytest.raises(ValueError):
        ssim_y(a, a, border=3)  # 10x10 left: smaller than the 11x11 window
