"""Enhancement tasks: how a clean frame is degraded, and what "no enhancement" looks like.

`TASKS` maps a name to a factory taking the task options; `make_task(name, ...)` is the entry.
Degraded inputs are float32 RGB in [0, 1]; targets stay uint8 so metrics see exact pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engine.data.resize import imresize, modcrop
from engine.registry import Registry


@dataclass(frozen=True)
class EnhancementTask:
    name: str
    scale: int  # output size / input size; 1 for restoration tasks
    label: str

    # A stochastic degradation (noise) is redrawn per training batch on the patches;
    # deterministic ones (bicubic, JPEG) are computed once per full frame.
    stochastic: bool = False

    @property
    def border(self) -> int:
        """Pixels cropped on every side before PSNR/SSIM (the SR convention: `scale`)."""
        return self.scale

    @property
    def baseline_name(self) -> str:
        return "bicubic" if self.scale > 1 else "identity"

    def target(self, frame: np.ndarray) -> np.ndarray:
        """The clean uint8 frame the network must produce (cropped to a multiple of scale)."""
        return modcrop(frame, self.scale)

    def degrade(self, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def degrade_patches(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Redraw a stochastic degradation on a batch of clean patches (N, 3, H, W)."""
        raise NotImplementedError(f"task {self.name} is not stochastic")

    def baseline(self, degraded: np.ndarray) -> np.ndarray:
        """The non-learned reference output: bicubic upscaling, or the input itself."""
        if self.scale == 1:
            return degraded
        return np.clip(imresize(degraded, float(self.scale)), 0.0, 1.0)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "scale": self.scale, "label": self.label}


@dataclass(frozen=True)
class SuperResolution(EnhancementTask):
    def degrade(self, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # MATLAB-style antialiased bicubic on uint8 (rounded between passes): the SR convention.
        low = imresize(target, 1.0 / self.scale)
        return low.astype(np.float32) / 255.0


@dataclass(frozen=True)
class Denoise(EnhancementTask):
    sigma: float = 25.0  # on the 0-255 scale

    def degrade(self, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0.0, self.sigma / 255.0, size=target.shape).astype(np.float32)
        return target.astype(np.float32) / 255.0 + noise  # AWGN benchmark: not clipped

    def degrade_patches(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        return clean + noise * (self.sigma / 255.0)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "sigma": self.sigma}


@dataclass(frozen=True)
class Deblock(EnhancementTask):
    quality: int = 20

    def degrade(self, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        bgr = cv2.cvtColor(target, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        if not ok:
            raise RuntimeError("OpenCV failed to JPEG-encode a frame")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "quality": self.quality}


TASKS: Registry = Registry("task")
for _scale in (2, 3, 4):
    TASKS.register(
        f"sr_x{_scale}",
        lambda sigma=25.0, quality=20, _s=_scale: SuperResolution(
            name=f"sr_x{_s}", scale=_s, label=f"Super-resolution x{_s}"
        ),
    )
TASKS.register(
    "denoise",
    lambda sigma=25.0, quality=20: Denoise(
        name="denoise", scale=1, label=f"Denoise (Gaussian, sigma {sigma:g})",
        stochastic=True, sigma=float(sigma),
    ),
)
TASKS.register(
    "deblock",
    lambda sigma=25.0, quality=20: Deblock(
        name="deblock", scale=1, label=f"Deblock (JPEG quality {quality})", quality=int(quality)
    ),
)


def make_task(name: str, sigma: float = 25.0, quality: int = 20) -> EnhancementTask:
    """The registered task `name`; raises UnknownNameError listing the valid names."""
    return TASKS.get(name)(sigma=sigma, quality=quality)
