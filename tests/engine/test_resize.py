"""Acceptance tests for the MATLAB-compatible bicubic imresize."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.resize import imresize, modcrop

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared/data"
SET5 = SHARED_DATA / "images/Set5"
SET5_NAMES = sorted(p.stem for p in (SET5 / "HR").glob("*.png"))
SCALES = (2, 3, 4)
MIN_PSNR_DB = 55.0


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"cannot read {path}"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _rgb_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_set5_present() -> None:
    # Without this the parametrised test below would silently collect nothing.
    assert len(SET5_NAMES) == 5, f"Set5 HR images missing under {SET5}"


@pytest.mark.parametrize("name", SET5_NAMES)
@pytest.mark.parametrize("scale", SCALES)
def test_matches_matlab_set5(scale: int, name: str) -> None:
    hr = modcrop(_read_rgb(SET5 / "HR" / f"{name}.png"), scale)
    ref = _read_rgb(SET5 / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
    lr = imresize(hr, 1 / scale)
    assert lr.dtype == np.uint8
    assert lr.shape == ref.shape
    psnr = _rgb_psnr(lr, ref)
    max_err = int(np.abs(lr.astype(np.int16) - ref.astype(np.int16)).max())
    print(f"Set5 x{scale} {name}: RGB PSNR {psnr:.2f} dB, max abs err {max_err}")
    assert psnr >= MIN_PSNR_DB


@pytest.mark.parametrize(
    ("shape", "kwargs", "expected"),
    [
        ((7, 9), {"scale": 0.5}, (4, 5)),  # ceil(3.5), ceil(4.5)
        ((7, 9, 3), {"scale": 0.5}, (4, 5, 3)),
        ((10, 12, 3), {"scale": 2}, (20, 24, 3)),
        ((12, 12, 3), {"scale": 1 / 3}, (4, 4, 3)),
        ((10, 12, 3), {"output_shape": (5, 7)}, (5, 7, 3)),  # (height, width)
        ((10, 12), {"output_shape": (15, 6)}, (15, 6)),
        ((10, 12, 1), {"scale": 0.5}, (5, 6, 1)),
    ],
)
def test_shape_rules(shape: tuple[int, ...], kwargs: dict, expected: tuple[int, ...]) -> None:
    img = np.zeros(shape, dtype=np.uint8)
    assert imresize(img, **kwargs).shape == expected


def test_bad_arguments() -> None:
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        imresize(img)
    with pytest.raises(ValueError):
        imresize(img, scale=0.5, output_shape=(4, 4))
    with pytest.raises(ValueError):
        imresize(np.zeros((2, 2, 2, 2), dtype=np.uint8), scale=0.5)
    with pytest.raises(TypeError):
        imresize(img.astype(np.int32), scale=0.5)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_dtype_rules(dtype: type) -> None:
    img = np.full((8, 8, 3), 100, dtype=dtype)
    out = imresize(img, 0.5)
    assert out.dtype == (np.uint8 if dtype is np.uint8 else np.float32)


@pytest.mark.parametrize("value", [0, 1, 77, 255])
def test_upscale_constant_stays_constant(value: int) -> None:
    img = np.full((9, 11, 3), value, dtype=np.uint8)
    up = imresize(img, 2)
    assert up.shape == (18, 22, 3)
    assert np.all(up == value)
    down = imresize(up, 0.5)
    assert np.array_equal(down, img)

    f = np.full((9, 11), value / 255, dtype=np.float64)
    np.testing.assert_allclose(imresize(f, 2), value / 255, atol=1e-6)


def test_float_path_not_rounded_and_matches_uint8() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    out_u8 = imresize(img, 0.5)
    out_f = imresize(img.astype(np.float64), 0.5)
    assert out_f.dtype == np.float32
    # No rounding on the float path: fractional values survive.
    assert np.any(np.abs(out_f - np.round(out_f)) > 1e-3)
    # The uint8 path only differs by MATLAB's per-pass rounding (and the clip).
    diff = np.abs(np.clip(out_f, 0, 255) - out_u8.astype(np.float64))
    assert diff.max() <= 1.5


def test_float_linear_ramp_is_preserved_in_interior() -> None:
    # The cubic kernel reproduces linear functions; away from the mirrored border
    # the x0.5 output at 1-based index x samples the ramp at u = 2x - 0.5.
    ramp = np.tile(np.arange(1, 41, dtype=np.float64), (40, 1))
    out = imresize(ramp, 0.5)
    expected = 2 * np.arange(1, 21) - 0.5
    np.testing.assert_allclose(out[:, 3:-3], np.tile(expected, (20, 1))[:, 3:-3], atol=1e-4)


def test_modcrop() -> None:
    img = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    out = modcrop(img, 3)
    assert out.shape == (6, 9, 3)
    assert np.array_equal(out, img[:6, :9])
    assert modcrop(img[..., 0], 4).shape == (4, 8)
    assert modcrop(img, 1).shape == img.shape
