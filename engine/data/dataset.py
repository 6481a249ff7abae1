"""(degraded, clean) pairs from cached frames: training patches and held-out frames.

The held-out frames are a contiguous tail of the sampled frames, never interleaved with
training frames: neighbouring video frames are near copies, so interleaving would test on
what was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.data.enhancement import EnhancementTask


def split_frames(indices: list[int], eval_fraction: float) -> tuple[list[int], list[int]]:
    """Positions (into `indices`) of training frames and of the held-out tail."""
    count = len(indices)
    if count < 2:
        raise ValueError(
            f"need at least 2 frames (one to train on, one to evaluate), the clip gave {count}"
        )
    n_eval = min(count - 1, max(1, round(count * eval_fraction)))
    return list(range(count - n_eval)), list(range(count - n_eval, count))


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 (uint8 or float [0,1]) -> 3xHxW float32 in [0,1]."""
    array = image.astype(np.float32)
    if image.dtype == np.uint8:
        array /= 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


@dataclass
class FramePair:
    degraded: np.ndarray  # HxWx3 float32 in [0,1] (noise may leave it)
    target: np.ndarray  # (H*s)x(W*s)x3 uint8


def make_pairs(task: EnhancementTask, frames: np.ndarray, seed: int) -> list[FramePair]:
    """Degrade every frame once (a fixed seed keeps evaluation noise reproducible)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for frame in frames:
        target = task.target(np.asarray(frame))
        pairs.append(FramePair(task.degrade(target, rng), target))
    return pairs


class PatchSampler:
    """Random aligned patch pairs with the 8 flips/transposes, reproducible from a seed."""

    def __init__(
        self, task: EnhancementTask, pairs: list[FramePair], patch_size: int,
        batch_size: int, seed: int, teacher: list[np.ndarray] | None = None,
    ) -> None:
        if not pairs:
            raise ValueError("no training frames")
        self.task, self.scale = task, task.scale
        self.patch_size, self.batch_size = patch_size, batch_size
        self.degraded = [_to_tensor(p.degraded) for p in pairs]
        self.clean = [_to_tensor(p.target) for p in pairs]
        # A teacher's outputs on the same frames (distillation): cropped like the targets.
        self.teacher = [_to_tensor(t) for t in teacher] if teacher is not None else None
        if self.teacher is not None and len(self.teacher) != len(pairs):
            raise ValueError(f"{len(self.teacher)} teacher frames for {len(pairs)} pairs")
        smallest = min(min(t.shape[1:]) for t in self.degraded)
        if smallest < patch_size:
            raise ValueError(
                f"frames are too small for {patch_size}px patches (smallest input side "
                f"{smallest}px): lower the patch size or use a larger clip"
            )
        self.generator = torch.Generator().manual_seed(seed)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def next_batch(self) -> tuple[torch.Tensor, ...]:
        """(inputs, targets) or, with a teacher, (inputs, targets, teacher outputs)."""
        p, s = self.patch_size, self.scale
        inputs, targets, taught = [], [], []
        for _ in range(self.batch_size):
            i = self._randint(len(self.degraded))
            _, h, w = self.degraded[i].shape
            y, x = self._randint(h - p + 1), self._randint(w - p + 1)
            low = self.degraded[i][:, y : y + p, x : x + p]
            window = (slice(None), slice(y * s, (y + p) * s), slice(x * s, (x + p) * s))
            patches = [low, self.clean[i][window]]
            if self.teacher is not None:
                patches.append(self.teacher[i][window])
            flips = self._randint(8)
            if flips & 1:
                patches = [t.flip(2) for t in patches]
            if flips & 2:
                patches = [t.flip(1) for t in patches]
            if flips & 4:
                patches = [t.transpose(1, 2) for t in patches]
            inputs.append(patches[0])
            targets.append(patches[1])
            if self.teacher is not None:
                taught.append(patches[2])
        clean = torch.stack(targets)
        extra = (torch.stack(taught),) if self.teacher is not None else ()
        if self.task.stochastic:  # a fresh noise draw every batch, not a memorised one
            return self.task.degrade_patches(clean, self.generator), clean, *extra
        return torch.stack(inputs), clean, *extra
