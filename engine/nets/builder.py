"""build_network(genome, task): the SRVGG-style template every candidate is an instance of.

stem conv [-> shrink conv] -> body blocks [-> 1x1 expand conv] -> tail conv to 3*s^2 channels
-> pixel shuffle (factor s; 1 for restoration) -> + bicubic-upsampled (or identity) input.
With a wide stem, shrink and expand it covers FSRCNN's shape; with no body blocks, ESPCN's.
Kept apart from the blocks (ops.py) and from training (engine.train), as in BasicSR / timm.
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


def _conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)


class EnhancementNet(nn.Module):
    """A searched candidate. `deploy()` returns the inference form (blocks collapsed).

    `stem` holds the stem conv and activation, then the optional shrink conv and activation;
    `tail` the optional expand conv and activation, then the tail conv and the pixel shuffle.
    The original template's modules keep their names (stem.0, stem.1, body.N, tail.0), so
    checkpoints saved before the shrink/expand genes existed load unchanged.
    """

    def __init__(self, genome: Genome, scale: int) -> None:
        super().__init__()
        self.genome = genome
        self.scale = scale
        act, width, stem_width = genome.activation, genome.width, genome.stem_channels
        stem: list[nn.Module] = [_conv(3, stem_width, genome.stem_kernel),
                                 make_activation(act, stem_width)]
        if genome.shrinks:
            stem += [_conv(stem_width, width, genome.shrink_kernel), make_activation(act, width)]
        self.stem = nn.Sequential(*stem)
        self.body = nn.Sequential(
            *(OPS.get(op)(width, kernel, act) for op, kernel in genome.blocks)
        )
        tail: list[nn.Module] = []
        if genome.expands:
            tail += [_conv(width, stem_width, 1), make_activation(act, stem_width)]
        tail += [_conv(genome.tail_channels, 3 * scale * scale, genome.tail_kernel),
                 nn.PixelShuffle(scale)]
        self.tail = nn.Sequential(*tail)

    @property
    def output_conv(self) -> nn.Conv2d:
        """The last convolution (to 3*s^2 channels), before the pixel shuffle."""
        conv = self.tail[-2]
        assert isinstance(conv, nn.Conv2d)
        return conv

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
