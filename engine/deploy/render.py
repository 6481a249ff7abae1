"""Preview renders: run a trained network over a clip and write browser-playable H.264 videos.

Two modes:

* ``measured``: each frame is degraded as the task defines (bicubic down-scale, noise, JPEG),
  enhanced, and scored against the clean frame. Writes ``output.mp4`` (enhanced),
  ``input.mp4`` (the "before": the task's baseline, i.e. the degraded input bicubic-upscaled
  for SR or as-is for restoration), ``reference.mp4`` (the clean target) and
  ``metrics.json`` (per-frame PSNR/SSIM on Y, border = task.border, of the output and of the
  baseline). All three videos are all-intra so stepping frame by frame is exact and the
  three stay in lock-step.
* ``apply``: the network enhances the clip's ORIGINAL frames as they are (so SR goes beyond
  the clip's resolution). Writes ``output.mp4`` and ``input.mp4`` (the original, bicubic
  upscaled to the output size for side-by-side viewing); there is no ground truth, so no
  metrics (a ``reference.mp4``/``metrics.json`` left in ``out_dir`` by an earlier measured
  render is deleted so the folder never mixes two renders). Apply mode uses normal GOPs.

Frames rendered are the FIRST ``max_frames`` of the clip (consecutive, so the preview plays
smoothly at the clip's frame rate), not an even sample of the whole clip. Frames are
streamed: decode -> enhance -> encode, one at a time, so memory does not grow with the count.

The degradation's random generator (noise for denoise) is ``np.random.default_rng(0)``,
created once per render and drawn frame by frame in order, so a render is reproducible.

Videos: H.264 (libx264), yuv420p, ``+faststart``. yuv420p needs even sizes: an odd width or
height is PADDED by one replicated edge row/column (bottom/right), never cropped or resized,
so every pixel of the frame is shown. Only the returned ``width``/``height`` (the frame size)
differ from the coded size in that case.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import cv2
import imageio_ffmpeg
import numpy as np
from torch import nn

from engine.data.enhancement import EnhancementTask
from engine.data.video_io import ClipError, _iter_frames, probe
from engine.safe_files import DiskFull, is_disk_full, new_folder, public_message, write_bytes_atomic
from engine.train.cost import deployed
from engine.train.metrics import psnr_ssim_y, to_uint8
from engine.train.trainer import enhance

Mode = Literal["measured", "apply"]
ProgressCallback = Callable[[int, int], None]  # (frames done, frames total)

# Below this much free space, an ffmpeg failure is taken for a full disk (VideoWriter._ffmpeg).
LOW_SPACE_BYTES = 8 << 20
DEFAULT_CRF = 18  # visually near-lossless: compression must not hide the network's artefacts


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad an odd height/width by one replicated edge row/column so yuv420p can code it."""
    h, w = frame.shape[:2]
    pad_h, pad_w = h % 2, w % 2
    if not (pad_h or pad_w):
        return frame
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 frame, got {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(_even(frame))


class VideoWriter:
    """Streaming H.264 writer; the file appears at `path` only once `close()` succeeds.

    Use as a context manager: leaving the block normally finishes the file (rename from a
    temporary name next to it); leaving it with an exception deletes the temporary file.
    """

    def __init__(self, path: Path, fps: float, *, intra: bool = False,
                 crf: int = DEFAULT_CRF) -> None:
        if not (fps > 0):
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.intra = intra
        self.crf = int(crf)
        # Keep the .mp4 suffix so ffmpeg picks the container; hidden name so nobody serves it.
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{os.getpid()}.mp4")
        self._gen: Any = None  # imageio_ffmpeg's write_frames generator, once started
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def _open(self, size: tuple[int, int]) -> None:
        params = ["-crf", str(self.crf), "-preset", "veryfast", "-movflags", "+faststart"]
        if self.intra:
            params += ["-g", "1", "-keyint_min", "1", "-bf", "0"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp), size, pix_fmt_in="rgb24", pix_fmt_out="yuv420p", fps=self.fps,
            quality=None, codec="libx264", macro_block_size=2, ffmpeg_log_level="error",
            output_params=params,
        )
        with self._ffmpeg():
            self._gen.send(None)  # start ffmpeg
        self._size = size

    @contextmanager
    def _ffmpeg(self) -> Iterator[None]:
        """ffmpeg prints its own errors to stderr, which imageio-ffmpeg leaves uncaptured (its
        exception says 'Broken pipe' and quotes the command): a failure while the disk has
        almost no room left is taken for a full disk (DiskFull, a message fit for users)."""
        try:
            yield
        except Exception as error:
            if is_disk_full(error) or _low_space(self.path.parent):
                raise DiskFull(f"ffmpeg writing {self.path.name}: "
                               f"{public_message(error)}") from error
            raise

    def append(self, frame: np.ndarray) -> None:
        frame = _check_frame(frame)
        size = (frame.shape[1], frame.shape[0])
        if self._gen is None:
            self._open(size)
        elif size != self._size:
            raise ValueError(f"frame size changed from {self._size} to {size} mid-video")
        with self._ffmpeg():
            self._gen.send(frame)
        self.frames += 1

    def close(self) -> Path:
        if self._gen is None:
            raise ValueError(f"no frames were written to {self.path}")
        gen, self._gen = self._gen, None
        try:
            with self._ffmpeg():
                gen.close()  # flushes and waits for ffmpeg
            self._tmp.replace(self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)  # never a half video under any name
            raise
        return self.path

    def abort(self) -> None:
        gen, self._gen = self._gen, None
        if gen is not None:
            try:
                gen.close()
            except Exception:  # ffmpeg may already be gone; the file is discarded anyway
                pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    frames: Iterable[np.ndarray], path: Path, fps: float, *, intra: bool = False,
    crf: int = DEFAULT_CRF,
) -> Path:
    """Write RGB uint8 frames as a browser-playable H.264 .mp4 (atomically); returns `path`.

    `intra=True` makes every frame a keyframe (GOP 1), so seeking/stepping is frame-exact.
    Odd sizes are padded by one replicated edge row/column. Raises ValueError on no frames.
    """
    writer = VideoWriter(Path(path), fps, intra=intra, crf=crf)
    with writer:
        for frame in frames:
            writer.append(frame)
    return writer.path


def _low_space(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
    except OSError:
        return False


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=2).encode())


def _summary(per_frame: list[dict[str, float | int]], border: int) -> dict[str, Any]:
    psnrs = [f["psnr"] for f in per_frame]
    return {
        "border": border,
        "per_frame": per_frame,
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean([f["ssim"] for f in per_frame])),
        "baseline_psnr": float(np.mean([f["baseline_psnr"] for f in per_frame])),
        "baseline_ssim": float(np.mean([f["baseline_ssim"] for f in per_frame])),
        "worst_frame": int(per_frame[int(np.argmin(psnrs))]["index"]),
    }


def _as_float(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) / 255.0


def render_preview(
    net: nn.Module, task: EnhancementTask, clip: Path, out_dir: Path, *,
    mode: Mode = "measured", max_frames: int = 60, threads: int = 1,
    progress: ProgressCallback | None = None, device: str = "cpu",
) -> dict[str, Any]:
    """Render the first `max_frames` frames of `clip` through `net`; see the module doc.

    Returns frames, width/height (output frame size), input_width/input_height (what the
    network saw), fps, files (name -> file name in out_dir), and in measured mode per_frame
    [{index, psnr, ssim, baseline_psnr, baseline_ssim}], mean psnr/ssim/baseline_psnr/
    baseline_ssim and worst_frame (the index with the lowest output PSNR); also
    render_seconds (decode + degrade + enhance + metrics + encode) and render_fps.
    """
    if mode not in ("measured", "apply"):
        raise ValueError(f"mode must be 'measured' or 'apply', got {mode!r}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    clip, out_dir = Path(clip), Path(out_dir)
    info = probe(clip)
    total = min(max_frames, info.frame_count)
    model = deployed(net).to(device)  # enhance() runs where the model is, returns CPU frames
    rng = np.random.default_rng(0)
    measured = mode == "measured"
    names = ["output", "input"] + (["reference"] if measured else [])
    writers = {n: VideoWriter(out_dir / f"{n}.mp4", info.fps, intra=measured) for n in names}
    per_frame: list[dict[str, float | int]] = []
    shape: tuple[int, ...] | None = None
    in_shape: tuple[int, ...] = ()
    files: dict[str, str] = {}
    start = time.perf_counter()
    # A render that fails (a full disk, a cancel) leaves no temp file, none of its videos
    # without their metrics, and no folder it made.
    with new_folder(out_dir):
        try:
            for done, (index, frame) in enumerate(_iter_frames(clip, list(range(total))), 1):
                if shape is not None and frame.shape != shape:
                    raise ClipError(f"clip '{clip.name}' changes size at frame {index}; "
                                    "re-encode it")
                shape = frame.shape
                if measured:
                    target = task.target(frame)
                    degraded = task.degrade(target, rng)
                else:
                    degraded = _as_float(frame)
                before = to_uint8(task.baseline(degraded))
                in_shape = degraded.shape
                output = to_uint8(enhance(model, degraded, threads))
                writers["output"].append(output)
                writers["input"].append(before)
                if measured:
                    writers["reference"].append(target)
                    psnr, ssim = psnr_ssim_y(output, target, task.border)
                    b_psnr, b_ssim = psnr_ssim_y(before, target, task.border)
                    per_frame.append({"index": index, "psnr": psnr, "ssim": ssim,
                                      "baseline_psnr": b_psnr, "baseline_ssim": b_ssim})
                if progress is not None:
                    progress(done, total)
            for n, w in writers.items():
                files[n] = w.close().name
            seconds = time.perf_counter() - start
            result: dict[str, Any] = {
                "mode": mode, "task": task.name, "frames": total,
                "width": output.shape[1], "height": output.shape[0],
                "input_width": in_shape[1], "input_height": in_shape[0], "fps": info.fps,
                "files": files, "render_seconds": seconds, "render_fps": total / seconds,
            }
            if measured:
                result.update(_summary(per_frame, task.border))
                files["metrics"] = "metrics.json"
                _write_json(out_dir / "metrics.json", result)
        except BaseException:
            for w in writers.values():
                w.abort()
            for name in files.values():  # this render's own finished files
                (out_dir / name).unlink(missing_ok=True)
            raise
    if not measured:  # a measured render's leftovers in the same folder would not match
        for stale in ("reference.mp4", "metrics.json"):
            (out_dir / stale).unlink(missing_ok=True)
    return result


def _png(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("OpenCV failed to PNG-encode a crop")
    return encoded.tobytes()


def render_crop(
    net: nn.Module, task: EnhancementTask, frame: np.ndarray, box: tuple[int, int, int, int],
    *, mode: Mode = "measured", threads: int = 1, seed: int = 0,
) -> tuple[bytes, bytes]:
    """(before PNG, after PNG) of one crop of an RGB uint8 `frame`, for live previews.

    `box` is (x, y, width, height) in `frame` pixels, clipped to the frame. Measured mode
    degrades the crop itself (so pixels near the crop's edge can differ slightly from a
    full-frame render) and returns baseline vs enhanced at the crop's size (rounded down to
    a multiple of the scale); apply mode enhances the original crop and returns bicubic vs
    enhanced at `scale` times the crop's size.
    """
    x, y, w, h = (int(v) for v in box)
    fh, fw = frame.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(fw, x + w), min(fh, y + h)
    crop = frame[y0:y1, x0:x1]
    if mode == "measured":
        target = task.target(crop)
        if min(target.shape[:2]) < task.scale:
            raise ValueError(f"box {box} is too small for scale {task.scale} on {fw}x{fh}")
        degraded = task.degrade(target, np.random.default_rng(seed))
    elif mode == "apply":
        if crop.size == 0:
            raise ValueError(f"box {box} lies outside the {fw}x{fh} frame")
        degraded = _as_float(crop)
    else:
        raise ValueError(f"mode must be 'measured' or 'apply', got {mode!r}")
    before = to_uint8(task.baseline(degraded))
    after = to_uint8(enhance(deployed(net), degraded, threads))
    return _png(before), _png(after)
