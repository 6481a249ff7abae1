"""IMDN (Hui et al., ACM MM 2019) with its authors' pretrained weights: the heavy prototype.

Never trained here: it is the converged reference of "x times cheaper" claims and a teacher.
The module names match the authors' state dicts (``IMDN_x{2,3,4}.pth`` under
``../shared/data/models``, keys prefixed ``module.``), so they load strictly.

Besides the plain ``forward``, ``forward_tiled`` computes the same frame tile by tile with a
callback between tiles (the cancel point of long computations). It is exact, not an
approximation: the contrast-aware channel attention needs per-channel mean and standard
deviation over the whole frame, so every module is run in two tiled passes with the
statistics taken on the whole frame in between.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.registry import Registry

SCALES = (2, 3, 4)
MODELS_ENV = "PIXEL_MODELS_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_SLOPE = 0.05  # the authors' LeakyReLU slope
_DISTILL_HALO = 4  # c1..c4: four 3x3 convolutions before the attention needs the whole frame
_TAIL_HALO = 2  # LR_conv then the upsampler's conv

TileCallback = Callable[[], None]


def default_models_dir() -> Path:
    """``$PIXEL_MODELS_DIR``, else ``../shared/data/models`` beside the repository."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    return (_REPO_ROOT.parent / "shared" / "data" / "models").resolve()


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, _SLOPE)


def _conv(c_in: int, c_out: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)


class ContrastChannelAttention(nn.Module):
    """CCA: (per-channel std + mean over the frame) -> 1x1 -> ReLU -> 1x1 -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, C, 1, 1) channel weights; population std, as the authors compute it."""
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return self.conv_du(std + mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class IMDB(nn.Module):
    """Information multi-distillation block: keep 16 channels, refine 48, three times."""

    def __init__(self, channels: int = 64, distill_rate: float = 0.25) -> None:
        super().__init__()
        self.kept = int(channels * distill_rate)
        self.passed = channels - self.kept
        self.c1 = _conv(channels, channels, 3)
        self.c2 = _conv(self.passed, channels, 3)
        self.c3 = _conv(self.passed, channels, 3)
        self.c4 = _conv(self.passed, self.kept, 3)
        self.c5 = _conv(self.kept * 4, channels, 1)
        self.cca = ContrastChannelAttention(self.kept * 4)

    def distill(self, x: torch.Tensor) -> torch.Tensor:
        """The four distilled 16-channel parts, concatenated: everything before the CCA."""
        split = (self.kept, self.passed)
        kept1, rest = torch.split(_lrelu(self.c1(x)), split, dim=1)
        kept2, rest = torch.split(_lrelu(self.c2(rest)), split, dim=1)
        kept3, rest = torch.split(_lrelu(self.c3(rest)), split, dim=1)
        return torch.cat([kept1, kept2, kept3, self.c4(rest)], dim=1)

    def fuse(self, parts: torch.Tensor, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """c5 over the attention-weighted parts, plus the module's input (pointwise)."""
        return self.c5(parts * attention) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.distill(x)
        return self.fuse(parts, x, self.cca.weights(parts))


class IMDN(nn.Module):
    """IMDN: input RGB in [0, 1] (no normalisation), output clamped to [0, 1]."""

    def __init__(self, scale: int, channels: int = 64, num_blocks: int = 6) -> None:
        super().__init__()
        self.scale = scale
        self.num_blocks = num_blocks
        self.fea_conv = _conv(3, channels, 3)
        for i in range(1, num_blocks + 1):
            self.add_module(f"IMDB{i}", IMDB(channels))  # the authors' names (state dicts)
        self.c = nn.Sequential(_conv(channels * num_blocks, channels, 1), nn.LeakyReLU(_SLOPE))
        self.LR_conv = _conv(channels, channels, 3)
        self.upsampler = nn.Sequential(_conv(channels, 3 * scale * scale, 3),
                                       nn.PixelShuffle(scale))

    @property
    def blocks(self) -> list[IMDB]:
        return [getattr(self, f"IMDB{i}") for i in range(1, self.num_blocks + 1)]

    def _tail(self, fused: torch.Tensor, fea: torch.Tensor) -> torch.Tensor:
        return self.upsampler(self.LR_conv(fused) + fea).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(x)
        outs, h = [], fea
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        return self._tail(self.c(torch.cat(outs, dim=1)), fea)

    @torch.no_grad()
    def forward_tiled(
        self, x: torch.Tensor, tile: int = 192, between_tiles: TileCallback | None = None,
    ) -> torch.Tensor:
        """`forward`, computed in input tiles of about `tile` pixels a side; `between_tiles`
        runs before every tile (raise from it to stop). Equal to `forward` up to float
        rounding: convolutions get real neighbours (halos), and the attention statistics are
        taken over the whole frame between a module's two passes."""
        if tile < 8:
            raise ValueError(f"tile must be at least 8 pixels, got {tile}")
        check = between_tiles or (lambda: None)
        fea = _tiled(self.fea_conv, [x], 1, tile, check)
        # c is a 1x1 conv over the six outputs concatenated: accumulate it module by module
        # so no more than one module's output is ever held.
        c_weight, c_bias = self.c[0].weight, self.c[0].bias
        width = fea.shape[1]
        acc = torch.zeros_like(fea)
        h = fea
        for i, block in enumerate(self.blocks):
            parts = _tiled(block.distill, [h], _DISTILL_HALO, tile, check)
            attention = block.cca.weights(parts)
            w_i = c_weight[:, i * width:(i + 1) * width]

            def fuse(p: torch.Tensor, h_t: torch.Tensor, a_t: torch.Tensor, block: IMDB = block,
                     attention: torch.Tensor = attention, w_i: torch.Tensor = w_i) -> torch.Tensor:
                out = block.fuse(p, h_t, attention)
                return torch.cat([out, a_t + F.conv2d(out, w_i)], dim=1)

            both = _tiled(fuse, [parts, h, acc], 0, tile, check)
            h, acc = both[:, :width], both[:, width:]

        def tail(a: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
            return self._tail(_lrelu(a + c_bias.view(1, -1, 1, 1)), f)

        return _tiled(tail, [acc, fea], _TAIL_HALO, tile, check, self.scale)


def _spans(length: int, tile: int) -> list[tuple[int, int]]:
    """Near-equal spans of at most `tile` covering [0, length)."""
    count = max(1, -(-length // tile))
    edges = [round(i * length / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _tiled(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], halo: int, tile: int,
    check: TileCallback, scale: int = 1,
) -> torch.Tensor:
    """Apply `fn` (same-padded convs and pointwise ops with a receptive radius <= `halo`)
    tile by tile: each tile sees `halo` real pixels around it (zero padding only at the frame
    edge, as on the whole frame), and only its centre is kept."""
    height, width = inputs[0].shape[-2:]
    out: torch.Tensor | None = None
    for y0, y1 in _spans(height, tile):
        for x0, x1 in _spans(width, tile):
            check()
            ty0, tx0 = max(0, y0 - halo), max(0, x0 - halo)
            ty1, tx1 = min(height, y1 + halo), min(width, x1 + halo)
            piece = fn(*(t[..., ty0:ty1, tx0:tx1] for t in inputs))
            oy, ox = (y0 - ty0) * scale, (x0 - tx0) * scale
            piece = piece[..., oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
            if out is None:
                out = piece.new_empty(*piece.shape[:2], height * scale, width * scale)
            out[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] = piece
    assert out is not None
    return out


def load_imdn(scale: int, models_dir: Path | None = None) -> IMDN:
    """The pretrained IMDN for `scale` (2, 3 or 4), in eval mode, on the CPU."""
    if scale not in SCALES:
        raise ValueError(
            f"IMDN is pretrained for x2, x3 and x4 super-resolution only, not scale {scale}"
        )
    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    path = folder / f"IMDN_x{scale}.pth"
    if not path.is_file():
        raise FileNotFoundError(
            f"IMDN x{scale} weights not found: expected {path}. They ship with the shared test "
            f"data (../shared/data/models beside the repository); set {MODELS_ENV} to the "
            "folder holding IMDN_x2.pth, IMDN_x3.pth and IMDN_x4.pth if they live elsewhere."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = IMDN(scale)
    net.load_state_dict(state, strict=True)
    return net.eval()


PROTOTYPES: Registry[Callable[[int], nn.Module]] = Registry("pretrained prototype")
PROTOTYPES.register("imdn", load_imdn)
