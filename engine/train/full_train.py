"""Full training of a chosen candidate: trained on to a longer budget, resumable after an
interruption, saved as a new checkpoint that previews and exports use.

A search candidate left its constant-rate training state (weights, optimizer, data stream,
step) at its highest rung: full training continues that state on the same warmup-stable-decay
schedule, so the result is the candidate trained to `steps` in one go; it never restarts the
optimizer. Without a usable state (a baseline, or a state past the new budget's constant
phase) it starts from the checkpoint's weights with a fresh optimizer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from engine.config import TrainBudget
from engine.data.dataset import FramePair, PatchSampler
from engine.data.enhancement import EnhancementTask
from engine.train.checkpoint import load_checkpoint, save_checkpoint
from engine.train.trainer import evaluate, stable_steps, train

CHECK_EVERY = 25  # steps between two cancel checks: well under a second for the nets searched


class FullTrainingCancelled(Exception):
    """`should_stop()` said so; the last saved state (every `save_every` steps) resumes it."""


def full_train(
    checkpoint: Path, out: Path, task: EnhancementTask, train_pairs: list[FramePair],
    eval_pairs: list[FramePair], budget: TrainBudget, steps: int, seed: int,
    progress: Callable[[int, float], None] | None = None, save_every: int = 200,
    start_from: Path | None = None, should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Train the network of `checkpoint` to `steps` steps, continuing `start_from` (a
    candidate's saved state, engine.train.checkpoint.latest_state) when it can. Interrupted
    runs resume from `<out>.state.pt`. `should_stop` is asked every CHECK_EVERY steps: when it
    says so, the state is saved and FullTrainingCancelled raised (starting again resumes)."""
    net, payload = load_checkpoint(checkpoint)
    long_budget = replace(budget, steps=steps)
    sampler = PatchSampler(task, train_pairs, budget.patch_size, budget.batch_size, seed)
    state_file = out.with_name(out.stem + ".state.pt")
    if start_from is not None and not _continuable(start_from, steps, budget):
        start_from = None
    report_every = max(1, steps // 50)

    def checked(step: int, loss: float) -> None:
        if should_stop is not None and should_stop():
            raise FullTrainingCancelled(f"cancelled at step {step} of {steps}")
        if progress is not None and (step % report_every < CHECK_EVERY or step == steps):
            progress(step, loss)

    stats = train(net, sampler, long_budget, seed, checked,
                  progress_every=min(CHECK_EVERY, report_every), state_file=state_file,
                  save_every=save_every, start_from=start_from)
    quality = evaluate(net, eval_pairs, task, budget.threads)
    meta = {**payload.get("meta", {}), "full_steps": steps,
            "proxy_steps": payload.get("meta", {}).get("steps"), "psnr": quality.psnr,
            "ssim": quality.ssim, "handcrafted": payload.get("handcrafted")}
    save_checkpoint(out, net, int(payload["scale"]), meta)
    return {"psnr": quality.psnr, "ssim": quality.ssim, "steps": steps,
            "continued_from_step": stats.start_step,
            "train_seconds": stats.train_seconds, "per_frame_psnr": quality.per_frame_psnr}


def _continuable(state: Path, steps: int, budget: TrainBudget) -> bool:
    if not state.is_file():
        return False
    saved = torch.load(state, map_location="cpu", weights_only=True)
    return int(saved["step"]) <= stable_steps(steps, budget)
