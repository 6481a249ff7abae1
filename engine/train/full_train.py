"""Full training of a chosen candidate: its proxy checkpoint trained on for a longer budget,
resumable after an interruption, saved as a new checkpoint that previews and exports use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from engine.config import TrainBudget
from engine.data.dataset import FramePair, PatchSampler
from engine.data.enhancement import EnhancementTask
from engine.train.checkpoint import load_checkpoint, save_checkpoint
from engine.train.trainer import evaluate, train


def full_train(
    checkpoint: Path, out: Path, task: EnhancementTask, train_pairs: list[FramePair],
    eval_pairs: list[FramePair], budget: TrainBudget, steps: int, seed: int,
    progress: Callable[[int, float], None] | None = None, save_every: int = 200,
) -> dict:
    """Train the network of `checkpoint` for `steps` more steps (same data, a fresh cosine
    schedule over the long budget). Interrupted runs resume from `<out>.state.pt`."""
    net, payload = load_checkpoint(checkpoint)
    long_budget = replace(budget, steps=steps)
    sampler = PatchSampler(task, train_pairs, budget.patch_size, budget.batch_size, seed)
    state_file = out.with_name(out.stem + ".state.pt")
    stats = train(net, sampler, long_budget, seed, progress,
                  progress_every=max(1, steps // 50), state_file=state_file,
                  save_every=save_every)
    quality = evaluate(net, eval_pairs, task, budget.threads)
    meta = {**payload.get("meta", {}), "full_steps": steps,
            "proxy_steps": payload.get("meta", {}).get("steps"), "psnr": quality.psnr,
            "ssim": quality.ssim, "handcrafted": payload.get("handcrafted")}
    save_checkpoint(out, net, int(payload["scale"]), meta)
    return {"psnr": quality.psnr, "ssim": quality.ssim, "steps": steps,
            "train_seconds": stats.train_seconds, "per_frame_psnr": quality.per_frame_psnr}
