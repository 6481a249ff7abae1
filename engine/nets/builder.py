"""build_network(genome, task): the SRVGG-style template every candidate is an instance of.

stem conv -> body blocks -> tail conv to 3*s^2 channels -> pixel shuffle (factor s; 1 for
restoration) -> + bicubic-upsampled (or identity) input. Kept apart from the blocks (ops.py)
and from training (engine.train), as in BasicSR / timm.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from engine.nets.genome import Genome
from engine.nets.ops import OPS, Block, make_activation


def upsample_input(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The global residual's base: bicubic for SR, the input itself for restoration."""
    if scale == 1:
        return x
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class EnhancementNet(nn.Module):
    """A searched candidate. `deploy()` returns the inference form (blocks collapsed)."""

    def __init__(self, genome: Genome, scale: int) -> None:
        super().__init__()
        self.genome = genome
        self.scale = scale
        width = genome.width
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), make_activation(genome.activation, width)
        )
        self.body = nn.Sequential(
            *(OPS.get(op)(width, kernel, genome.activation) for op, kernel in genome.blocks)
        )
        self.tail = nn.Sequential(
            nn.Conv2d(width, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tail(self.body(self.stem(x)))
        if self.genome.global_residual:
            out = out + upsample_input(x, self.scale)
        return out

    @torch.no_grad()
    def deploy(self) -> EnhancementNet:
        """A copy with every block replaced by its collapsed inference form."""
        deployed = copy.deepcopy(self)
        deployed.body = nn.Sequential(
            *(block.deploy() if isinstance(block, Block) else block for block in deployed.body)
        )
        return deployed.eval()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_network(genome: Genome, scale: int) -> EnhancementNet:
    """The trainable network for `genome` at upscaling factor `scale` (1 for restoration)."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    return EnhancementNet(genome, scale)
