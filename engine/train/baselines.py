"""Baselines of every report: the non-learned one (bicubic / identity) and ESPCN and FSRCNN
trained with exactly the trials' budget, data stream, threads and global residual."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.config import TrainBudget
from engine.data.dataset import FramePair, PatchSampler
from engine.data.enhancement import EnhancementTask
from engine.nets.handcrafted import HANDCRAFTED
from engine.train.checkpoint import save_checkpoint
from engine.train.cost import measure_cost
from engine.train.trainer import evaluate, evaluate_baseline, train

LEARNED_BASELINES = ("espcn", "fsrcnn")


def non_learned_baseline(task: EnhancementTask, eval_pairs: list[FramePair]) -> dict:
    quality = evaluate_baseline(eval_pairs, task)
    return {
        "name": task.baseline_name, "learned": False, "psnr": quality.psnr,
        "ssim": quality.ssim, "macs": 0, "params": 0, "steps": 0, "latency_ms": None,
        "train_seconds": 0.0, "per_frame_psnr": quality.per_frame_psnr,
    }


def learned_baseline(
    name: str, task: EnhancementTask, train_pairs: list[FramePair],
    eval_pairs: list[FramePair], budget: TrainBudget, resolution: tuple[int, int], seed: int,
    progress: Callable[[int, float], None] | None = None, save_to: Path | None = None,
) -> dict:
    net = HANDCRAFTED.get(name)(task.scale)
    sampler = PatchSampler(task, train_pairs, budget.patch_size, budget.batch_size, seed)
    stats = train(net, sampler, budget, seed, progress)
    quality = evaluate(net, eval_pairs, task, budget.threads)
    cost = measure_cost(net, resolution, task.scale)
    if save_to is not None:
        save_checkpoint(save_to, net, task.scale, {"handcrafted": name, "steps": stats.steps})
    return {
        "name": name, "learned": True, "psnr": quality.psnr, "ssim": quality.ssim,
        **cost.to_dict(), "steps": stats.steps, "train_seconds": stats.train_seconds,
        "per_frame_psnr": quality.per_frame_psnr,
    }
