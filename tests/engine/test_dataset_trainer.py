"""Patch pairs, the held-out split, proxy training and evaluation on real frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import TrainBudget
from engine.data.dataset import PatchSampler, make_pairs, split_frames
from engine.data.enhancement import make_task
from engine.data.frame_cache import FrameCache
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.train.trainer import TrainingDiverged, evaluate, evaluate_baseline, train


@pytest.fixture
def tiny_frames(tiny_clip, cache_root) -> np.ndarray:
    return FrameCache(cache_root).load(tiny_clip, 16).frames


def test_split_is_a_contiguous_tail() -> None:
    train, held_out = split_frames(list(range(0, 30, 2)), 0.2)
    assert held_out == [12, 13, 14] and train == list(range(12))
    assert split_frames([5, 9], 0.9) == ([0], [1])  # always at least one of each
    with pytest.raises(ValueError, match="at least 2 frames"):
        split_frames([3], 0.2)


@pytest.mark.parametrize("task_name", ["sr_x2", "sr_x3", "deblock"])
def test_patches_are_aligned_through_flips(task_name: str, tiny_frames: np.ndarray) -> None:
    task = make_task(task_name, quality=95)
    pairs = make_pairs(task, tiny_frames[:3], seed=0)
    sampler = PatchSampler(task, pairs, patch_size=24, batch_size=32, seed=1)
    inputs, targets = sampler.next_batch()
    s = task.scale
    assert inputs.shape == (32, 3, 24, 24) and targets.shape == (32, 3, 24 * s, 24 * s)
    # Downscaling the target patch must give back the input patch (up to the patch edge).
    down = torch.nn.functional.avg_pool2d(targets, s) if s > 1 else targets
    aligned = (down - inputs)[:, :, 2:-2, 2:-2].abs().mean()
    shifted = (down[:, :, :, 1:] - inputs[:, :, :, :-1])[:, :, 2:-2, 2:-2].abs().mean()
    assert aligned < 0.03 and aligned < shifted / 2


def test_sampler_is_reproducible_and_refuses_small_frames(tiny_frames: np.ndarray) -> None:
    task = make_task("sr_x2")
    pairs = make_pairs(task, tiny_frames[:2], seed=0)
    a = PatchSampler(task, pairs, 16, 4, seed=7).next_batch()
    b = PatchSampler(task, pairs, 16, 4, seed=7).next_batch()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="too small"):
        PatchSampler(task, pairs, 200, 4, seed=0)


def test_training_beats_the_bicubic_baseline(tiny_frames: np.ndarray) -> None:
    task = make_task("sr_x2")
    pairs = make_pairs(task, tiny_frames, seed=0)
    train_pairs, eval_pairs = pairs[:12], pairs[12:]
    net = build_network(Genome.uniform(8, 2, "repconv"), 2)
    before = evaluate(net, eval_pairs, task)
    budget = TrainBudget(steps=150, batch_size=8, patch_size=24)
    seen: list[tuple[int, float]] = []
    stats = train(net, PatchSampler(task, train_pairs, 24, 8, 0), budget, seed=0,
                  progress=lambda step, loss: seen.append((step, loss)), progress_every=50)
    after = evaluate(net, eval_pairs, task)
    bicubic = evaluate_baseline(eval_pairs, task)
    assert stats.steps == 150 and [s for s, _ in seen] == [50, 100, 150]
    assert seen[-1][1] < seen[0][1]  # the loss went down
    assert after.psnr > before.psnr and after.psnr > bicubic.psnr
    assert len(after.per_frame_psnr) == 3 and 0 < after.ssim <= 1


def test_nan_loss_raises_training_diverged(tiny_frames: np.ndarray) -> None:
    task = make_task("deblock")
    pairs = make_pairs(task, tiny_frames[:2], seed=0)
    pairs[0].degraded[:] = np.nan  # a poisoned frame makes the loss NaN at once
    pairs[1].degraded[:] = np.nan
    net = build_network(Genome.uniform(8, 1), 1)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 1"):
        train(net, PatchSampler(task, pairs, 16, 2, 0), TrainBudget(steps=5), seed=0)
