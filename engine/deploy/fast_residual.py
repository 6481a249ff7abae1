"""The global residual's bicubic upsampling as a fixed convolution, for exported graphs.

`F.interpolate(..., mode="bicubic")` exports to an ONNX `Resize` (cubic) that ONNX Runtime's
CPU provider runs roughly 10x slower than PyTorch (~0.5 s for 640x360 -> 1280x720), which
dominated every exported network. For an integer scale s, bicubic upsampling is a polyphase
filter: output pixel (s*qy + py, s*qx + px) is a fixed 4x4 combination of the input around
(qy, qx). So it equals replicate padding + a depthwise convolution with s*s fixed 5x5 kernels
per channel + pixel shuffle, all of which ONNX Runtime runs fast. `export_form(net)` swaps
that in for the networks' `F.interpolate` residual; the result is numerically the same network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.nets.builder import EnhancementNet
from engine.nets.handcrafted import ResidualOutput

CUBIC_A = -0.75  # PyTorch's (and OpenCV's) bicubic coefficient
_TAPS = 5  # the 4 taps of every phase lie within offsets -2..+2 of the source pixel
_PAD = _TAPS // 2


def _cubic(x: float) -> float:
    """Keys' cubic convolution kernel with a = CUBIC_A, as PyTorch's upsample_bicubic2d."""
    x, a = abs(x), CUBIC_A
    if x <= 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return 0.0


def phase_taps(scale: int) -> torch.Tensor:
    """[scale, _TAPS] 1-D weights: row p gives output s*q + p from inputs q-2..q+2.

    PyTorch (align_corners=False) samples output o at source (o + 0.5)/s - 0.5, takes the 4
    inputs floor(src)-1 .. floor(src)+2 and clamps indices at the borders (= replicate pad).
    For o = s*q + p the source is q + (p + 0.5)/s - 0.5, whose floor is q-1 or q, so the taps
    sit at offsets -2..+1 or -1..+2 from q: 5 positions cover every integer scale.
    """
    taps = torch.zeros(scale, _TAPS, dtype=torch.float64)
    for p in range(scale):
        src = (p + 0.5) / scale - 0.5
        base = math.floor(src)
        t = src - base
        for k, weight in enumerate((_cubic(1.0 + t), _cubic(t), _cubic(1.0 - t),
                                    _cubic(2.0 - t))):
            taps[p, base - 1 + k + _PAD] = weight
    return taps


class BicubicUpsample(nn.Module):
    """Exactly `F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False)` for an
    integer s, on 3-channel input, as Pad(replicate) -> depthwise Conv -> PixelShuffle."""

    weight: torch.Tensor

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be at least 1, got {scale}")
        self.scale = scale
        self.channels = channels
        taps = phase_taps(scale)
        # Kernel (py, px) = outer product of the row and column phases; grouped conv output
        # channel c*s*s + py*s + px is what PixelShuffle reads as channel c, phase (py, px).
        kernels = torch.einsum("ik,jl->ijkl", taps, taps).reshape(scale * scale, 1, _TAPS, _TAPS)
        weight = kernels.repeat(channels, 1, 1, 1).to(torch.float32)
        self.register_buffer("weight", weight, persistent=False)  # fixed, never trained
        self.shuffle = nn.PixelShuffle(scale)

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """The upsampled image before PixelShuffle: [N, C*s*s, H, W]."""
        padded = F.pad(x, (_PAD, _PAD, _PAD, _PAD), mode="replicate")
        return F.conv2d(padded, self.weight, groups=self.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        return self.shuffle(self.phases(x))


class _ResidualBeforeShuffle(nn.Module):
    """shuffle(features(x) + bicubic phases of x): the net's `shuffle(features) + bicubic(x)`
    with the residual added before the (linear, permuting) shuffle, so the graph has one
    DepthToSpace instead of two (each ~20 ms at 720p in ONNX Runtime) and no Resize."""

    def __init__(self, features: nn.Module, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.features = features
        self.residual = BicubicUpsample(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual.shuffle(self.features(x) + self.residual.phases(x))


class _ResidualAfter(nn.Module):
    """body(x) + bicubic(x), for bodies that do not end in a PixelShuffle (FSRCNN)."""

    def __init__(self, body: nn.Module, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.body = body
        self.residual = BicubicUpsample(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.residual(x)


def _ends_in_shuffle(module: nn.Module, scale: int) -> bool:
    return (isinstance(module, nn.Sequential) and len(module) > 1
            and isinstance(module[-1], nn.PixelShuffle) and module[-1].upscale_factor == scale)


def _with_residual(body: nn.Module, scale: int) -> nn.Module:
    if _ends_in_shuffle(body, scale):
        return _ResidualBeforeShuffle(nn.Sequential(*list(body)[:-1]), scale).eval()
    return _ResidualAfter(body, scale).eval()


def export_form(net: nn.Module) -> nn.Module:
    """An eval-mode module computing `net`'s output with a conv-based bicubic residual.

    `net` should already be deployed (blocks collapsed); its submodules are shared, not
    copied. Nets without a bicubic residual (restoration, scale 1; a genome without global
    residual) and networks of other classes are returned unchanged.
    """
    if isinstance(net, EnhancementNet) and net.genome.global_residual and net.scale > 1:
        return _with_residual(nn.Sequential(net.stem, net.body, *net.tail), net.scale)
    if isinstance(net, ResidualOutput) and net.scale > 1:
        return _with_residual(net.body, net.scale)
    return net
