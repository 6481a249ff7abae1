"""Proxy training and evaluation of one network on one clip.

The budget is a number of optimizer steps (L1 loss, Adam, warmup-stable-decay), never seconds.
Evaluation runs the deployed network on whole held-out frames and scores uint8 outputs on Y.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.config import TrainBudget
from engine.data.dataset import FramePair, PatchSampler
from engine.data.enhancement import EnhancementTask
from engine.safe_files import write_bytes_atomic
from engine.train.cost import deployed, torch_threads
from engine.train.metrics import psnr_ssim_y, to_uint8

ProgressCallback = Callable[[int, float], None]  # (step, loss)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial is recorded as failed."""


@dataclass(frozen=True)
class Quality:
    psnr: float  # mean over held-out frames, dB on Y
    ssim: float
    per_frame_psnr: list[float]
    per_frame_ssim: list[float]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class TrainStats:
    steps: int  # where the run ended
    train_seconds: float
    final_loss: float
    start_step: int = 0  # steps already done by the state it continued from


def stable_steps(total: int, budget: TrainBudget) -> int:
    """Last step of the constant-rate phase of a `total`-step run."""
    return total - int(round(total * budget.decay_fraction))


def learning_rate_at(step: int, total: int, budget: TrainBudget) -> float:
    """Warmup-stable-decay: constant, then linear down to 1% over the last `decay_fraction`.
    A pure function of (step, total), so any saved state continues exactly."""
    stable = stable_steps(total, budget)
    if step <= stable:
        return budget.learning_rate
    fraction = (step - stable) / max(1, total - stable)
    return budget.learning_rate * (1.0 - 0.99 * fraction)


def train(
    net: nn.Module, sampler: PatchSampler, budget: TrainBudget, seed: int,
    progress: ProgressCallback | None = None, progress_every: int = 50,
    state_file: Path | None = None, save_every: int = 200, *,
    steps: int | None = None, start_from: Path | None = None,
    stable_state: Path | None = None, teacher_weight: float = 0.0,
) -> TrainStats:
    """Train to `steps` (default `budget.steps`) optimizer steps on the WSD schedule.

    - `start_from`: a stable-phase state of a shorter run of the same network (see
      `stable_state`); training continues from it instead of starting over. Promotion to a
      longer rung is this: the result is the run to `steps` in one go, step for step.
    - `stable_state`: where to save the state at the end of this run's constant-rate phase
      (weights, optimizer, data stream, step), for a later continuation.
    - `state_file`: resumability after an interruption: saved every `save_every` steps and
      picked up first by the next call, which then continues exactly where this one stopped.
    - `teacher_weight`: with a sampler that yields teacher patches, the loss adds this
      weight times the L1 distance to the teacher's output (distillation).
    """
    total = steps or budget.steps
    stable = stable_steps(total, budget)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=budget.learning_rate)
    first, recent = 1, []
    resume = state_file if state_file is not None and state_file.is_file() else None
    if resume is None and start_from is not None and start_from.is_file():
        resume = start_from
    if resume is not None:
        saved = torch.load(resume, map_location="cpu", weights_only=True)
        if resume == start_from and int(saved["step"]) > stable:
            raise ValueError(f"{start_from} is at step {saved['step']}, past the constant-rate "
                             f"phase of a {total}-step run: it cannot be continued to {total}")
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        sampler.generator.set_state(saved["sampler"])
        torch.set_rng_state(saved["torch"])
        first, recent = int(saved["step"]) + 1, list(saved["recent"])
    device = next(net.parameters()).device
    net.train()
    start = time.perf_counter()
    with torch_threads(budget.threads):
        for step in range(first, total + 1):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step, total, budget)
            batch = sampler.next_batch()
            inputs, targets = batch[0].to(device), batch[1].to(device)
            outputs = net(inputs)
            loss = F.l1_loss(outputs, targets)
            if teacher_weight and len(batch) > 2:
                loss = loss + teacher_weight * F.l1_loss(outputs, batch[2].to(device))
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"loss became {value} at step {step} of {total}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recent = (recent + [value])[-20:]
            if stable_state is not None and step == stable:
                _save_state(stable_state, step, recent, net, optimizer, sampler)
            if state_file is not None and step % save_every == 0 and step < total:
                _save_state(state_file, step, recent, net, optimizer, sampler)
            if progress and (step % progress_every == 0 or step == total):
                progress(step, sum(recent) / len(recent))
    seconds = time.perf_counter() - start
    if state_file is not None:
        state_file.unlink(missing_ok=True)
    return TrainStats(total, seconds, sum(recent) / len(recent) if recent else 0.0,
                      start_step=first - 1)


def _save_state(path: Path, step: int, recent: list[float], net: nn.Module,
                optimizer: torch.optim.Optimizer, sampler: PatchSampler) -> None:
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    buffer = io.BytesIO()  # serialized in memory first: a full disk fails a plain write
    torch.save({"step": step, "recent": recent, "net": state,
                "optimizer": optimizer.state_dict(),
                "sampler": sampler.generator.get_state(), "torch": torch.get_rng_state()}, buffer)
    # atomic: an interruption or a full disk (DiskFull) never leaves half a state nor a temp
    write_bytes_atomic(path, buffer.getbuffer())


@torch.no_grad()
def enhance(net: nn.Module, degraded: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run a network on one HxWx3 float frame (on the network's device); returns HxWx3
    float32 clipped to [0,1], on the CPU."""
    x = torch.from_numpy(np.ascontiguousarray(degraded.transpose(2, 0, 1))).unsqueeze(0)
    device = next(net.parameters()).device
    with torch_threads(threads), torch.inference_mode():
        out = net(x.float().to(device))
    return out[0].clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()


def score(outputs: list[np.ndarray], pairs: list[FramePair], border: int) -> Quality:
    psnrs, ssims = [], []
    for output, pair in zip(outputs, pairs, strict=True):
        psnr, ssim = psnr_ssim_y(to_uint8(output), pair.target, border)
        psnrs.append(psnr)
        ssims.append(ssim)
    return Quality(float(np.mean(psnrs)), float(np.mean(ssims)), psnrs, ssims)


def evaluate(
    net: nn.Module, pairs: list[FramePair], task: EnhancementTask, threads: int = 1,
) -> Quality:
    """PSNR/SSIM (Y, border = scale) of the deployed network on whole held-out frames."""
    model = deployed(net)
    return score([enhance(model, p.degraded, threads) for p in pairs], pairs, task.border)


def evaluate_baseline(pairs: list[FramePair], task: EnhancementTask) -> Quality:
    """Bicubic upscaling (SR) or the degraded input itself (restoration)."""
    return score([task.baseline(p.degraded) for p in pairs], pairs, task.border)
