"""Temporal consistency of an output clip: the warping error against the ground truth's.

The video-SR "warping error" warps output frame t onto t+1 with optical flow and measures
what is left. Used alone (or as an "excess" over the ground truth's own residual) it rewards
blur: a smoothed clip leaves less residual than the sharp truth. So we compare the output's
warped temporal change with the ground truth's, pixel by pixel, and count any difference:

    D_out = Y(out_{t+1}) - W(Y(out_t)),  D_gt = Y(gt_{t+1}) - W(Y(gt_t))
    e_t   = mean over valid x of |D_out(x) - D_gt(x)|      (Y on the 0..255 scale)

W warps with the ground truth's flow t+1 -> t (DIS, OpenCV) by bilinear ``cv2.remap``.
Valid pixels pass the forward-backward check and sample inside the frame. It is exactly 0 for
the ground truth, grows with flicker (change the truth lacks) and with lost motion detail
(change the truth has), and a constant offset or gain common to every frame barely moves it.
Warping is linear, so e_t is the warping error of the error clip out - gt: error that moves
with the content is free, error that changes from frame to frame is counted. High-frequency
error (blur) is not carried exactly by a sub-pixel bilinear warp, so blur counts too.

Flows depend on the ground truth only, so ``TemporalReference`` computes them once per clip
and scores any number of outputs of that clip with remaps and subtractions alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.train.metrics import to_uint8

# Forward-backward rule of Sundaram et al. (ECCV 2010) as used by Ruder et al. and the
# video-SR warping-error code: occluded where |w + w'|^2 > 0.01 (|w|^2 + |w'|^2) + 0.5.
_FB_RELATIVE = 0.01
_FB_ABSOLUTE = 0.5  # px^2: sub-pixel disagreement of small flows is estimation noise

_Y_MATRIX = np.array([[65.481 / 255, 128.553 / 255, 24.966 / 255, 16.0]], dtype=np.float32)

# The preset is part of the definition (scores move by ~5% between presets): "fast" is the
# default, ~10x cheaper than "medium" at the same ranking on Vid4, since the metric must cost
# little beside a preview render.
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class TemporalScore:
    """Warping-error difference per consecutive pair (pair t is frames t, t+1) and its mean."""

    per_pair: list[float]
    mean: float
    valid_fraction: list[float]  # share of each pair's pixels that were counted

    def to_dict(self) -> dict[str, object]:
        return {"per_pair": self.per_pair, "mean": self.mean, "valid_fraction": self.valid_fraction}


def frame_y(frame: np.ndarray) -> np.ndarray:
    """RGB frame (uint8, or float in [0, 1] quantised first like PSNR) -> float32 Y, 0..255."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB frame, got shape {frame.shape}")
    if np.issubdtype(frame.dtype, np.floating):
        frame = to_uint8(frame)
    # The luma of metrics.rgb_to_y (MATLAB BT.601) in float32 through cv2: 5x faster at 720p.
    return cv2.transform(frame.astype(np.float32), _Y_MATRIX).reshape(frame.shape[:2])


def _flow(dis: cv2.DISOpticalFlow, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    # DIS wants 8-bit single-channel images; rounding Y to 8 bits is harmless for motion.
    a = np.clip(np.round(src), 0, 255).astype(np.uint8)
    b = np.clip(np.round(dst), 0, 255).astype(np.uint8)
    return dis.calc(a, b, None)


def _sample_points(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def _valid_mask(
    back: np.ndarray, fwd: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, border: int
) -> np.ndarray:
    """Pixels of frame t+1 whose flow to t is trusted: not occluded, both ends inside the crop."""
    h, w = back.shape[:2]
    # Forward flow read where the backward flow lands; a round trip should come back to x.
    fwd_there = cv2.remap(fwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    bx, by = back[..., 0], back[..., 1]
    fx, fy = fwd_there[..., 0], fwd_there[..., 1]
    err = (bx + fx) ** 2 + (by + fy) ** 2
    scale = bx**2 + by**2 + fx**2 + fy**2
    consistent = err <= _FB_RELATIVE * scale + _FB_ABSOLUTE
    # Samples off frame t would be replicated border pixels, not real content; with a border
    # crop, neither end of a comparison may lie in the crop.
    lo_x, hi_x, lo_y, hi_y = border, w - 1 - border, border, h - 1 - border
    inside = (map_x >= lo_x) & (map_x <= hi_x) & (map_y >= lo_y) & (map_y <= hi_y)
    if border:
        inside[:border] = inside[-border:] = False
        inside[:, :border] = inside[:, -border:] = False
    return consistent & inside


@dataclass
class _Pair:
    maps: tuple[np.ndarray, np.ndarray]  # fixed-point remap tables of flow t+1 -> t
    mask: np.ndarray  # bool HxW, valid pixels of frame t+1
    d_gt: np.ndarray  # float32 values of D_gt at the valid pixels only


class TemporalReference:
    """Ground-truth flows and masks of one run of consecutive frames, to score outputs against.

    ``border`` pixels per side are left out, like PSNR's ``scale`` crop: SR outputs are least
    reliable there and flow has no support outside the frame.
    """

    def __init__(
        self, gt_frames: Sequence[np.ndarray], border: int = 0, preset: str = "fast"
    ) -> None:
        if len(gt_frames) < 2:
            raise ValueError(
                f"temporal metric needs at least 2 consecutive frames, got {len(gt_frames)}"
            )
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; one of {sorted(DIS_PRESETS)}")
        ys = [frame_y(f) for f in gt_frames]
        shape = ys[0].shape
        if any(y.shape != shape for y in ys):
            raise ValueError("ground-truth frames differ in size")
        if border < 0 or 2 * border >= min(shape):
            raise ValueError(f"border {border} does not fit a {shape[1]}x{shape[0]} frame")
        self.shape = shape
        self.border = border
        dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        self._pairs = [self._pair(dis, ys[t], ys[t + 1]) for t in range(len(ys) - 1)]

    def _pair(self, dis: cv2.DISOpticalFlow, y_t: np.ndarray, y_next: np.ndarray) -> _Pair:
        back = _flow(dis, y_next, y_t)  # for each pixel of t+1, where it was in t
        fwd = _flow(dis, y_t, y_next)
        map_x, map_y = _sample_points(back)
        mask = _valid_mask(back, fwd, map_x, map_y, self.border)
        # Fixed-point tables: what remap uses internally anyway, 6 instead of 8 bytes a pixel.
        maps = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        d_gt = self._change(y_t, y_next, maps)[mask]
        return _Pair(maps=maps, mask=mask, d_gt=d_gt)

    @staticmethod
    def _change(
        y_t: np.ndarray, y_next: np.ndarray, maps: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        warped = cv2.remap(y_t, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return y_next - warped

    @property
    def pairs(self) -> int:
        return len(self._pairs)

    def valid_fractions(self) -> list[float]:
        return [float(p.mask.mean()) for p in self._pairs]

    def score_pair(self, t: int, out_t: np.ndarray, out_next: np.ndarray) -> float:
        """Error of pair t (frames t, t+1): lets a renderer score frames as they come."""
        return self._score_y(t, frame_y(out_t), frame_y(out_next))

    def _score_y(self, t: int, y_t: np.ndarray, y_next: np.ndarray) -> float:
        pair = self._pairs[t]
        if y_t.shape != self.shape or y_next.shape != self.shape:
            raise ValueError(
                f"output frame {y_t.shape} does not match the ground truth {self.shape}"
            )
        if not pair.d_gt.size:
            return 0.0  # nothing trustworthy to compare (e.g. across a scene cut)
        d_out = self._change(y_t, y_next, pair.maps)[pair.mask]
        return float(np.abs(d_out - pair.d_gt).mean(dtype=np.float64))

    def score(self, output_frames: Sequence[np.ndarray]) -> TemporalScore:
        """Per-pair errors of a whole output run (same length and size as the ground truth)."""
        if len(output_frames) != self.pairs + 1:
            raise ValueError(f"expected {self.pairs + 1} output frames, got {len(output_frames)}")
        ys = [frame_y(f) for f in output_frames]  # each frame is in two pairs: convert once
        per_pair = [self._score_y(t, ys[t], ys[t + 1]) for t in range(self.pairs)]
        return TemporalScore(
            per_pair=per_pair,
            mean=float(np.mean(per_pair)),
            valid_fraction=self.valid_fractions(),
        )


def temporal_error(
    gt_frames: Sequence[np.ndarray],
    output_frames: Sequence[np.ndarray],
    border: int = 0,
    preset: str = "fast",
) -> TemporalScore:
    """One-off scoring; build a ``TemporalReference`` to score several outputs of one run."""
    return TemporalReference(gt_frames, border=border, preset=preset).score(output_frames)
