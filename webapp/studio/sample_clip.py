"""A sample clip made from real photos, so a newcomer can try a search without footage.

scikit-image's bundled photos (astronaut, coffee, chelsea) are slowly panned and zoomed into
48 frames of 384x256 and written as VP8 `.webm` with OpenCV (its pip build cannot encode
H.264, and VP8 plays in every browser). The file is made once, under DATA_DIR/sample.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings
from skimage import data as skdata

from engine.data.video_io import ClipError, probe

SAMPLE_NAME = "sample-photos-v1.webm"
DISPLAY_NAME = "sample clip (astronaut, coffee, cat).webm"
SIZE = (384, 256)  # width, height
FPS = 24.0
FRAMES_PER_PHOTO = 16
PHOTOS = ("astronaut", "coffee", "chelsea")
FOURCCS = ("VP80", "VP90")


def _pan_zoom(photo: np.ndarray, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """n frames of a slow diagonal pan with a gentle zoom-in over an RGB photo."""
    out_w, out_h = size
    height, width = photo.shape[:2]
    aspect = out_w / out_h
    full_w = min(width, height * aspect)  # the largest crop with the output's aspect
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        crop_w = full_w * (0.92 - 0.12 * t)
        crop_h = crop_w / aspect
        x0 = (width - crop_w) * (0.2 + 0.6 * t)
        y0 = (height - crop_h) * (0.3 + 0.4 * t)
        # An affine warp gives sub-pixel pan steps (no jitter from integer crops).
        sx, sy = out_w / crop_w, out_h / crop_h
        matrix = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], dtype=np.float64)
        frames.append(cv2.warpAffine(photo, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT))
    return frames


def sample_frames() -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    for name in PHOTOS:
        photo = getattr(skdata, name)()
        if photo.ndim == 2:
            photo = np.stack([photo] * 3, axis=-1)
        frames += _pan_zoom(np.ascontiguousarray(photo[..., :3]), FRAMES_PER_PHOTO, SIZE)
    return frames


def write_webm(path: Path, frames: list[np.ndarray], fps: float = FPS) -> None:
    height, width = frames[0].shape[:2]
    for fourcc in FOURCCS:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps,
                                 (width, height))
        if writer.isOpened():
            break
        writer.release()
    else:
        raise RuntimeError("this OpenCV build cannot encode VP8 or VP9 .webm")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def _usable(path: Path) -> bool:
    try:
        info = probe(path)
    except ClipError:
        return False
    return (info.width, info.height) == SIZE and info.frame_count >= 2


def sample_clip_path(root: Path | None = None) -> Path:
    """The cached sample clip, made (atomically) on first use."""
    folder = Path(root or Path(settings.DATA_DIR) / "sample")
    target = folder / SAMPLE_NAME
    if target.is_file() and _usable(target):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".building-", suffix=".webm")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_webm(tmp, sample_frames())
        if not _usable(tmp):
            raise RuntimeError("the sample clip did not decode back; OpenCV's VP8 encoder failed")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
