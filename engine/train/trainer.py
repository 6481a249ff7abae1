"""Proxy training and evaluation of one network on one clip.

The budget is a number of optimizer steps (L1 loss, Adam, cosine decay), never seconds.
Evaluation runs the deployed network on whole held-out frames and scores uint8 outputs on Y.
"""

from __future__ import annotations

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
    steps: int
    train_seconds: float
    final_loss: float


def train(
    net: nn.Module, sampler: PatchSampler, budget: TrainBudget, seed: int,
    progress: ProgressCallback | None = None, progress_every: int = 50,
    state_file: Path | None = None, save_every: int = 200,
) -> TrainStats:
    """Train for `budget.steps` optimizer steps. With `state_file`, the run is resumable: the
    weights, optimizer, schedule, data stream and step are saved every `save_every` steps and
    picked up by the next call, which then continues exactly where the last one stopped."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=budget.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=budget.steps, eta_min=budget.learning_rate * 0.01
    )
    first, recent = 1, []
    if state_file is not None and state_file.is_file():
        saved = torch.load(state_file, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        sampler.generator.set_state(saved["sampler"])
        torch.set_rng_state(saved["torch"])
        first, recent = int(saved["step"]) + 1, list(saved["recent"])
    net.train()
    start = time.perf_counter()
    with torch_threads(budget.threads):
        for step in range(first, budget.steps + 1):
            inputs, targets = sampler.next_batch()
            loss = F.l1_loss(net(inputs), targets)
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"loss became {value} at step {step} of {budget.steps}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            recent = (recent + [value])[-20:]
            if state_file is not None and step % save_every == 0 and step < budget.steps:
                _save_state(state_file, step, recent, net, optimizer, schedule, sampler)
            if progress and (step % progress_every == 0 or step == budget.steps):
                progress(step, sum(recent) / len(recent))
    seconds = time.perf_counter() - start
    if state_file is not None:
        state_file.unlink(missing_ok=True)
    return TrainStats(budget.steps, seconds, sum(recent) / len(recent) if recent else 0.0)


def _save_state(path: Path, step: int, recent: list[float], net: nn.Module,
                optimizer: torch.optim.Optimizer, schedule: object,
                sampler: PatchSampler) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "recent": recent, "net": net.state_dict(),
                "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "sampler": sampler.generator.get_state(), "torch": torch.get_rng_state()}, tmp)
    tmp.replace(path)  # atomic: an interruption never leaves half a state


@torch.no_grad()
def enhance(net: nn.Module, degraded: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run a network on one HxWx3 float frame; returns HxWx3 float32 clipped to [0,1]."""
    x = torch.from_numpy(np.ascontiguousarray(degraded.transpose(2, 0, 1))).unsqueeze(0)
    with torch_threads(threads), torch.inference_mode():
        out = net(x.float())
    return out[0].clamp(0.0, 1.0).permute(1, 2, 0).numpy()


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
