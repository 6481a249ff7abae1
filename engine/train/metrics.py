"""PSNR / SSIM with the super-resolution literature's conventions.

Published SR numbers are computed on uint8 outputs, on the Y channel of MATLAB's
``rgb2ycbcr`` (BT.601 studio range), with ``scale`` pixels shaved from each border and
SSIM as in the original MATLAB code (mirrored by BasicSR's ``calculate_ssim``). Using
anything else shifts results by tenths of a dB, so numbers would not be comparable.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PSNR_CAP = 100.0  # identical images give inf; a finite cap keeps JSON reports valid

_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, rounded and clipped."""
    return np.clip(np.round(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """RGB (uint8 0..255, or float in [0, 1]) -> Y as float64 on the 0..255 scale.

    MATLAB ``rgb2ycbcr`` luma: Y = 16 + 65.481 R + 128.553 G + 24.966 B, R,G,B in [0, 1].
    Not rounded, matching BasicSR's ``to_y_channel``.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {img.shape}")
    rgb = img.astype(np.float64)
    if not np.issubdtype(img.dtype, np.floating):
        rgb = rgb / 255.0
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def _prepare(
    output: np.ndarray, reference: np.ndarray, border: int
) -> tuple[np.ndarray, np.ndarray]:
    if output.shape != reference.shape:
        raise ValueError(f"shape mismatch: output {output.shape} vs reference {reference.shape}")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    ys = []
    for img in (output, reference):
        # Quantise floats first: published numbers are measured on saved uint8 images.
        if np.issubdtype(img.dtype, np.floating):
            img = to_uint8(img)
        y = rgb_to_y(img)
        if border:
            y = y[border:-border, border:-border]
        ys.append(y)
    if ys[0].size == 0:
        raise ValueError(f"border {border} crops away the whole {output.shape} image")
    return ys[0], ys[1]


def psnr_y(output: np.ndarray, reference: np.ndarray, border: int = 0) -> float:
    """Y-channel PSNR (peak 255) after cropping ``border`` pixels per side, capped at 100."""
    y_out, y_ref = _prepare(output, reference, border)
    mse = float(np.mean((y_out - y_ref) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    # Port of BasicSR's _ssim: Gaussian 11x11 sigma 1.5; the 5 px crop after filtering
    # leaves exactly the 'valid' correlation, so cv2's border handling never matters.
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1 = filt(a)
    mu2 = filt(b)
    mu1_sq = mu1**2
    mu2_sq = mu2**2
    mu1_mu2 = mu1 * mu2
    sigma1_sq = filt(a**2) - mu1_sq
    sigma2_sq = filt(b**2) - mu2_sq
    sigma12 = filt(a * b) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _SSIM_C1) * (2 * sigma12 + _SSIM_C2)) / (
        (mu1_sq + mu2_sq + _SSIM_C1) * (sigma1_sq + sigma2_sq + _SSIM_C2)
    )
    return float(ssim_map.mean())


def ssim_y(output: np.ndarray, reference: np.ndarray, border: int = 0) -> float:
    """Y-channel SSIM (MATLAB / BasicSR ``calculate_ssim``) after cropping ``border``."""
    y_out, y_ref = _prepare(output, reference, border)
    if min(y_out.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 after cropping, got {y_out.shape}")
    return _ssim_plane(y_out, y_ref)


def psnr_ssim_y(output: np.ndarray, reference: np.ndarray, border: int = 0) -> tuple[float, float]:
    """Both Y-channel metrics with the same border crop."""
    return psnr_y(output, reference, border), ssim_y(output, reference, border)
