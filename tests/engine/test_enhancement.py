"""Enhancement tasks: registry, degradations and their non-learned baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data.enhancement import TASKS, make_task
from engine.data.resize import imresize
from engine.registry import UnknownNameError
from engine.train.metrics import psnr_y, to_uint8


def _smooth_frame(height: int = 96, width: int = 120) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([np.sin(x / 9) + 1, np.cos(y / 7) + 1, np.sin((x + y) / 13) + 1], axis=-1)
    return (rgb * 127).astype(np.uint8)


def test_registry_holds_the_five_tasks() -> None:
    assert set(TASKS.keys()) == {"sr_x2", "sr_x3", "sr_x4", "denoise", "deblock"}


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="choose one of: sr_x2, sr_x3, sr_x4"):
        make_task("sr_x8")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_degrade_is_matlab_bicubic(scale: int) -> None:
    task = make_task(f"sr_x{scale}")
    target = task.target(_smooth_frame(97, 121))
    assert target.shape[0] % scale == 0 and target.shape[1] % scale == 0
    low = task.degrade(target, np.random.default_rng(0))
    assert low.dtype == np.float32
    assert low.shape == (target.shape[0] // scale, target.shape[1] // scale, 3)
    np.testing.assert_array_equal(to_uint8(low), imresize(target, 1 / scale))
    assert task.border == scale and task.baseline_name == "bicubic"
    upscaled = task.baseline(low)
    assert upscaled.shape == target.shape
    assert psnr_y(upscaled, target, scale) > 30  # a smooth frame survives bicubic well


def test_denoise_noise_level_is_sigma() -> None:
    task = make_task("denoise", sigma=15)
    target = np.full((200, 200, 3), 128, np.uint8)
    noisy = task.degrade(target, np.random.default_rng(1))
    assert abs(float(np.std(noisy * 255.0)) - 15) < 0.5
    patches = torch.full((4, 3, 32, 32), 0.5)
    redrawn = task.degrade_patches(patches, torch.Generator().manual_seed(0))
    again = task.degrade_patches(patches, torch.Generator().manual_seed(1))
    assert abs(float((redrawn - patches).std()) * 255 - 15) < 1.0
    assert not torch.equal(redrawn, again)  # fresh draws, not a memorised noise image
    assert task.stochastic and task.baseline_name == "identity"


def test_deblock_quality_controls_the_damage() -> None:
    frame = _smooth_frame()
    rng = np.random.default_rng(0)
    low = make_task("deblock", quality=10).degrade(frame, rng)
    high = make_task("deblock", quality=90).degrade(frame, rng)
    assert psnr_y(low, frame) < psnr_y(high, frame)
    assert make_task("deblock", quality=10).describe()["quality"] == 10


def test_sr_tasks_reject_patch_redraw() -> None:
    with pytest.raises(NotImplementedError):
        make_task("sr_x2").degrade_patches(torch.zeros(1, 3, 4, 4), torch.Generator())
