"""The standard test sets of ../shared/data as frames, and scoring a model on them.

Super-resolution: Set5, Set14 and Vid4 calendar (frames no model of the city search trained
on; the Vid4 city frames are not used: the search trains on frames sampled over the clip).
Denoising (sigma 25): the CBSD68 and Kodak24 crops. Scores follow the engine's convention:
PSNR/SSIM on Y of uint8 outputs, `scale` pixels of border cropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.cache import Cache, source_fingerprint
from bench.common import BenchContext
from engine.data.dataset import make_pairs
from engine.data.enhancement import EnhancementTask
from engine.train.checkpoint import load_checkpoint
from engine.train.cost import deployed
from engine.train.trainer import evaluate, evaluate_baseline

METRIC_SOURCES = ("engine/data", "engine/train")


def sets_for(ctx: BenchContext, task: str) -> dict[str, list[Path]]:
    """Set name -> image files, for `task`."""
    def pngs(*parts: str) -> list[Path]:
        return sorted(ctx.data(*parts).glob("*.png"))

    if task.startswith("sr_"):
        if ctx.quick:
            return {"Set5": pngs("images", "Set5", "HR")[:2]}
        return {"Set5": pngs("images", "Set5", "HR"), "Set14": pngs("images", "Set14", "HR"),
                "Vid4 calendar": pngs("video", "vid4", "calendar")}
    if ctx.quick:
        return {"Kodak24": pngs("images", "Kodak24")[:2]}
    return {"CBSD68": pngs("images", "CBSD68"), "Kodak24": pngs("images", "Kodak24")}


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grayscale files come back as 3 channels
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def score_on_set(cache: Cache, task: EnhancementTask, files: list[Path],
                 checkpoint: str | None, threads: int = 1) -> dict[str, Any]:
    """Mean PSNR/SSIM of a checkpoint (None: the non-learned baseline) on `files`; cached by
    the checkpoint's identity, the files and the metric code."""
    # A search's checkpoints are named per trial (trial-3.pt): its folder names the run.
    model_id = (f"{Path(checkpoint).parent.parent.name}/{Path(checkpoint).stem}" if checkpoint
                else task.baseline_name)
    key = {"model": model_id, "task": task.describe(), "files": [f.name for f in files],
           "folder": files[0].parent.name if files else "", "code":
           source_fingerprint(*METRIC_SOURCES)}

    def compute() -> dict[str, Any]:
        pairs = make_pairs(task, [read_rgb(f) for f in files], seed=0)
        if checkpoint is None:
            quality = evaluate_baseline(pairs, task)
        else:
            net, _ = load_checkpoint(checkpoint)
            quality = evaluate(deployed(net), pairs, task, threads)
        return {"psnr": quality.psnr, "ssim": quality.ssim}

    value, _, _ = cache.cached("score", key, compute)
    return value
