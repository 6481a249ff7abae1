"""Baselines of every report: the non-learned one (bicubic / identity) and ESPCN and FSRCNN
trained with exactly the trials' top-rung budget, schedule, data stream, threads and global
residual. A trained baseline is cached per clip content, task, budget and seed, so another
search on the same clip does not train it again."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from engine.config import TrainBudget
from engine.data.dataset import FramePair, PatchSampler
from engine.data.enhancement import EnhancementTask
from engine.data.frame_cache import atomic_write
from engine.nets.handcrafted import HANDCRAFTED
from engine.train.checkpoint import save_checkpoint
from engine.train.cost import measure_cost
from engine.train.trainer import evaluate, evaluate_baseline, train

LEARNED_BASELINES = ("espcn", "fsrcnn")
_CACHE_VERSION = 2  # bump when training or evaluation changes what a cached row means


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
    steps: int | None = None, cache: Path | None = None,
) -> dict:
    """Train handcrafted `name` to `steps` (default `budget.steps`) on the trials' schedule.

    With `cache` (a file stem: `<stem>.json` + `<stem>.pt`), a result trained before with the
    same key is reused: the caller's key names the clip content, task, budget and seed."""
    steps = steps or budget.steps
    if cache is not None:
        reused = _cached(cache, save_to)
        if reused is not None:
            return reused
    torch.manual_seed(seed)  # the same initial weights in every run with this seed
    net = HANDCRAFTED.get(name)(task.scale)
    sampler = PatchSampler(task, train_pairs, budget.patch_size, budget.batch_size, seed)
    stats = train(net, sampler, budget, seed, progress, progress_every=max(1, steps // 50),
                  steps=steps)
    quality = evaluate(net, eval_pairs, task, budget.threads)
    cost = measure_cost(net, resolution, task.scale)
    row = {
        "name": name, "learned": True, "psnr": quality.psnr, "ssim": quality.ssim,
        **cost.to_dict(), "steps": stats.steps, "train_seconds": stats.train_seconds,
        "per_frame_psnr": quality.per_frame_psnr,
    }
    if save_to is not None:
        save_checkpoint(save_to, net, task.scale, {"handcrafted": name, "steps": stats.steps})
    if cache is not None:
        save_checkpoint(cache.with_suffix(".pt"), net, task.scale,
                        {"handcrafted": name, "steps": stats.steps})
        row_file = cache.with_suffix(".json")
        atomic_write(row_file, lambda f: f.write(json.dumps(row).encode()))
    return row


def baseline_cache_key(name: str, clip_key: str, task: EnhancementTask, budget: TrainBudget,
                       steps: int, seed: int, frames: tuple[list[int], list[int]],
                       resolution: tuple[int, int]) -> str:
    """What a trained baseline depends on; threads only change its speed."""
    payload = {"name": name, "clip": clip_key, "task": task.describe(), "steps": steps,
               "budget": {k: v for k, v in asdict(budget).items() if k != "threads"},
               "seed": seed, "frames": frames, "resolution": list(resolution),
               "version": _CACHE_VERSION}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode())
    return f"{name}-{digest.hexdigest()[:24]}"


def _cached(cache: Path, save_to: Path | None) -> dict | None:
    row_file, weights = cache.with_suffix(".json"), cache.with_suffix(".pt")
    if not (row_file.is_file() and weights.is_file()):
        return None
    row = json.loads(row_file.read_text())
    if save_to is not None:
        with open(weights, "rb") as source:  # atomic, and a full disk leaves nothing
            atomic_write(save_to, lambda out: shutil.copyfileobj(source, out))
    return {**row, "cached": True}
