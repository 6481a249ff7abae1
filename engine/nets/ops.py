"""Named building blocks of the search space.

Each block maps `channels -> channels` at constant resolution and offers `deploy()`, the
module that runs at inference: the re-parameterizable block collapses its branches into one
convolution there, and cost (MACs, params, latency) is always measured on deployed modules.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.registry import Registry

ACTIVATIONS: Registry = Registry("activation")
ACTIVATIONS.register("relu", lambda channels: nn.ReLU(inplace=True))
ACTIVATIONS.register("lrelu", lambda channels: nn.LeakyReLU(0.1, inplace=True))
ACTIVATIONS.register("prelu", lambda channels: nn.PReLU(channels, init=0.1))
ACTIVATIONS.register("tanh", lambda channels: nn.Tanh())  # ESPCN's; converges fast


def make_activation(name: str, channels: int) -> nn.Module:
    return ACTIVATIONS.get(name)(channels)


class Block(nn.Module):
    def deploy(self) -> nn.Module:
        """The inference form (plain convolutions and activations only)."""
        return self


class ConvBlock(Block):
    """conv k x k, activation."""

    def __init__(self, channels: int, kernel: int, activation: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.act = make_activation(activation, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))

    def deploy(self) -> nn.Module:
        return nn.Sequential(self.conv, self.act)


class DepthwiseSeparableBlock(Block):
    """depthwise k x k, pointwise 1 x 1, activation: a wide receptive field for few MACs."""

    def __init__(self, channels: int, kernel: int, activation: str) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, padding=kernel // 2,
                                   groups=channels)
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.act = make_activation(activation, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pointwise(self.depthwise(x)))

    def deploy(self) -> nn.Module:
        return nn.Sequential(self.depthwise, self.pointwise, self.act)


class ResidualBlock(Block):
    """x + conv(act(conv(x))), EDSR style: two convolutions, not collapsible."""

    def __init__(self, channels: int, kernel: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.act = make_activation(activation, channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv2.weight)  # starts as identity: stable in short budgets
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class RepConvBlock(Block):
    """Train: k x k conv + 1 x 1 conv + identity, then activation (RepVGG/ECBSR style).

    All three branches are linear, so deploy() folds them into one k x k convolution
    with the same output: the extra branches ease optimisation and cost nothing at inference.
    """

    def __init__(self, channels: int, kernel: int, activation: str) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv_k = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.conv_1 = nn.Conv2d(channels, channels, 1)
        self.act = make_activation(activation, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_k(x) + self.conv_1(x) + x)

    @torch.no_grad()
    def fused_conv(self) -> nn.Conv2d:
        channels, k = self.conv_k.out_channels, self.kernel
        weight = self.conv_k.weight.clone()
        weight += F.pad(self.conv_1.weight, [k // 2] * 4)
        identity = torch.zeros_like(weight)
        identity[torch.arange(channels), torch.arange(channels), k // 2, k // 2] = 1.0
        weight += identity
        fused = nn.Conv2d(channels, channels, k, padding=k // 2)
        fused.weight.copy_(weight)
        fused.bias.copy_(self.conv_k.bias + self.conv_1.bias)
        return fused

    def deploy(self) -> nn.Module:
        return nn.Sequential(self.fused_conv(), self.act)


OPS: Registry[Callable[[int, int, str], Block]] = Registry("op")
OPS.register("conv", ConvBlock)
OPS.register("dwsep", DepthwiseSeparableBlock)
OPS.register("residual", ResidualBlock)
OPS.register("repconv", RepConvBlock)
