"""Handcrafted reference networks: ESPCN, FSRCNN and an EDSR-style prototype.

Every one gets the same global residual as the searched candidates (measured here: without it
ESPCN loses 0.8 dB and FSRCNN does not converge in a short budget), so baselines compared at an
equal training budget are at their strongest.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from engine.nets.builder import upsample_input
from engine.registry import Registry


class ResidualOutput(nn.Module):
    """Wraps a body so that output = body(x) + upsampled x."""

    def __init__(self, body: nn.Module, scale: int) -> None:
        super().__init__()
        self.body = body
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + upsample_input(x, self.scale)

    def deploy(self) -> nn.Module:
        return self.eval()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def espcn(scale: int) -> ResidualOutput:
    """ESPCN (Shi et al. 2016): 5x5 64, 3x3 32, 3x3 to 3*s^2, pixel shuffle; tanh."""
    body = nn.Sequential(
        nn.Conv2d(3, 64, 5, padding=2), nn.Tanh(),
        nn.Conv2d(64, 32, 3, padding=1), nn.Tanh(),
        nn.Conv2d(32, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale),
    )
    return ResidualOutput(body, scale)


def fsrcnn(scale: int, d: int = 56, s: int = 12, m: int = 4) -> ResidualOutput:
    """FSRCNN(56, 12, 4) (Dong et al. 2016): feature 5x5, shrink 1x1, m mapping 3x3,
    expand 1x1, 9x9 transposed convolution with stride `scale`; PReLU."""
    layers: list[nn.Module] = [nn.Conv2d(3, d, 5, padding=2), nn.PReLU(d),
                               nn.Conv2d(d, s, 1), nn.PReLU(s)]
    for _ in range(m):
        layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
    layers += [nn.Conv2d(s, d, 1), nn.PReLU(d),
               nn.ConvTranspose2d(d, 3, 9, stride=scale, padding=4, output_padding=scale - 1)]
    deconv = layers[-1]
    nn.init.normal_(deconv.weight, std=1e-3)  # the paper's init: a near-zero residual at start
    nn.init.zeros_(deconv.bias)
    return ResidualOutput(nn.Sequential(*layers), scale)


class _EDSRBlock(nn.Module):
    def __init__(self, channels: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


def edsr(scale: int, blocks: int = 16, channels: int = 64) -> ResidualOutput:
    """EDSR-baseline-style heavy prototype (the reference of "x times cheaper" claims)."""
    tail: list[nn.Module] = [nn.Conv2d(channels, 3 * scale * scale, 3, padding=1),
                             nn.PixelShuffle(scale)]
    body = nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1),
        *(_EDSRBlock(channels, 0.1) for _ in range(blocks)),
        nn.Conv2d(channels, channels, 3, padding=1),
        *tail,
    )
    return ResidualOutput(body, scale)


HANDCRAFTED: Registry[Callable[[int], ResidualOutput]] = Registry("handcrafted network")
HANDCRAFTED.register("espcn", espcn)
HANDCRAFTED.register("fsrcnn", fsrcnn)
HANDCRAFTED.register("edsr", edsr)
# The benchmarks' prototype: the largest EDSR-style net that converges in about 40 minutes
# on two CPU cores (EDSR-baseline 16x64 trains at ~0.3 steps/s there; 8x32 at ~2.5).
HANDCRAFTED.register("edsr_8x32", lambda scale: edsr(scale, blocks=8, channels=32))
