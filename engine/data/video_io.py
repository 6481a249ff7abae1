"""OpenCV frame loader: probe a clip, sample frames, read them as RGB uint8 HxWx3 arrays.

A clip is either a video file (any container/codec FFmpeg can decode; the extension is never
trusted) or a folder of PNG frames taken in file-name order. Every bad input raises ClipError
with one line saying what was wrong and what to do, never a raw cv2 traceback.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

# A PNG folder carries no timing, so we assume the common PAL rate of the Vid4-style sets.
PNG_FOLDER_FPS = 25.0
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_THUMB_SIZE = (32, 32)  # near-duplicate test resolution: cheap and robust to noise
_UPLOAD_HINT = "upload an H.264/H.265/VP9/AV1/MPEG-4 video or a folder of PNG frames"


class ClipError(ValueError):
    """A clip that cannot be used; the message is one line meant for the end user."""


@dataclass
class DecodeStats:
    """Process-wide counters so tests can prove that a cached load decodes nothing."""

    frames_decoded: int = 0  # frames turned into pixels (retrieve()/imread)
    frames_grabbed: int = 0  # frames skipped over with grab() (demuxed, not converted)

    def reset(self) -> None:
        self.frames_decoded = 0
        self.frames_grabbed = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


DECODE_STATS = DecodeStats()


@dataclass(frozen=True)
class ClipInfo:
    path: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float

    def to_dict(self) -> dict[str, str | int | float]:
        return asdict(self)


def png_frames(folder: str | Path) -> list[Path]:
    """The folder's .png files sorted by name (other files are ignored)."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() == ".png"]
    return sorted(files, key=lambda p: p.name)


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR header, so a folder is checked without decoding it."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ClipError(f"frame '{path}' is not a valid PNG file; re-export the frames as PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """OpenCV hands out BGR (or grey/BGRA, 16-bit) frames; normalise to RGB uint8 HxWx3."""
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ClipError(f"clip not found: {path} — check the path")


def _cv_failure(path: Path, exc: cv2.error) -> ClipError:
    msg = str(getattr(exc, "msg", exc)).strip().splitlines()[0]  # keep the message one line
    return ClipError(f"cannot decode '{path}': OpenCV failed ({msg}); {_UPLOAD_HINT}")


def _open_video(path: Path) -> cv2.VideoCapture:
    if path.stat().st_size == 0:
        raise ClipError(f"clip '{path}' is empty (0 bytes); the upload probably failed, retry it")
    try:
        # Force FFmpeg: other backends (e.g. CAP_IMAGES) would treat '%d' names as patterns.
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    except cv2.error as exc:
        raise _cv_failure(path, exc) from exc
    if not cap.isOpened():
        cap.release()
        raise ClipError(f"cannot decode '{path}': OpenCV found no video stream; {_UPLOAD_HINT}")
    return cap


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))  # -1 when the backend does not know it
    text = code.to_bytes(4, "little").decode("ascii", "replace") if code > 0 else ""
    return text.replace("\x00", "").strip().lower() or "unknown"


def _probe_folder(folder: Path) -> ClipInfo:
    files = png_frames(folder)
    if not files:
        raise ClipError(f"folder '{folder}' holds no .png frames; add frames named in order")
    width, height = _png_size(files[0])
    for f in files[1:]:
        w, h = _png_size(f)
        if (w, h) != (width, height):
            raise ClipError(
                f"folder '{folder}': frame '{f.name}' is {w}x{h} but '{files[0].name}' is "
                f"{width}x{height}; all frames in a folder must have the same size"
            )
    first = _read_png(files[0])  # headers can lie: prove the first frame really decodes
    if first.shape[:2] != (height, width):
        raise ClipError(f"frame '{files[0]}' decodes to an unexpected size; re-export it")
    n = len(files)
    return ClipInfo(str(folder), "png", width, height, PNG_FOLDER_FPS, n, n / PNG_FOLDER_FPS)


def _read_png(path: Path) -> np.ndarray:
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey/16-bit PNGs come back as 8-bit BGR
    if frame is None:
        raise ClipError(f"cannot decode frame '{path}'; re-export it as PNG")
    DECODE_STATS.frames_decoded += 1
    return _to_rgb(frame)


def probe(path: str | Path) -> ClipInfo:
    """Describe a clip after proving that its first frame decodes.

    The container's frame count is used when positive; when it is missing (<= 0, NaN or the
    FFmpeg 'no timestamp' sentinel) the frames are counted with grab(). The count of a
    truncated file whose index survived can still be too high: read_frames() catches that.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        return _probe_folder(path)
    cap = _open_video(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            if cap.get(cv2.CAP_PROP_FRAME_COUNT) == 0:
                raise ClipError(f"clip '{path}' has zero frames; upload a clip with video in it")
            raise ClipError(
                f"cannot decode the first frame of '{path}'; the file is corrupt or truncated, "
                "re-export or re-upload it"
            )
        DECODE_STATS.frames_decoded += 1
        height, width = frame.shape[:2]  # the decoded frame, not metadata, is what we'll get
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not math.isfinite(fps) or fps <= 0:
            fps = PNG_FOLDER_FPS
        count_prop = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        if math.isfinite(count_prop) and count_prop > 0:
            count = round(count_prop)
        else:
            count = 1
            while cap.grab():
                DECODE_STATS.frames_grabbed += 1
                count += 1
        return ClipInfo(str(path), _fourcc(cap), width, height, fps, count, count / fps)
    except cv2.error as exc:
        raise _cv_failure(path, exc) from exc
    finally:
        cap.release()


def sample_indices(frame_count: int, n: int) -> list[int]:
    """n frame indices spread evenly from the first to the last frame (all when n >= count)."""
    if frame_count <= 0 or n <= 0:
        raise ValueError(f"need frame_count > 0 and n > 0, got {frame_count} and {n}")
    if n >= frame_count:
        return list(range(frame_count))
    # The step is > 1 here, so rounding keeps the indices unique (n == 1 gives [0]).
    step = (frame_count - 1) / max(n - 1, 1)
    return [round(i * step) for i in range(n)]


def _iter_frames(path: Path, wanted: Sequence[int] | None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame) in increasing order: wanted ones, or every frame when None.

    Video is decoded sequentially with grab()/retrieve(): seeking with CAP_PROP_POS_FRAMES is
    not frame-exact on long-GOP H.264, and grab() skips the colour conversion and copy.
    """
    _check_exists(path)
    if path.is_dir():
        files = png_frames(path)
        for i in range(len(files)) if wanted is None else wanted:
            if i >= len(files):
                raise ClipError(
                    f"folder '{path}' has {len(files)} frames but frame {i} was requested"
                )
            yield i, _read_png(files[i])
        return
    cap = _open_video(path)
    try:
        targets = iter(wanted) if wanted is not None else None
        target = next(targets, None) if targets is not None else 0
        pos = 0
        while target is not None:
            if not cap.grab():
                if wanted is None:
                    return
                raise ClipError(
                    f"clip '{path}' ended after {pos} frames but frame {target} was requested; "
                    "the file is probably truncated, re-upload it"
                )
            if pos == target:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise ClipError(f"cannot decode frame {pos} of '{path}'; re-encode the clip")
                DECODE_STATS.frames_decoded += 1
                yield pos, _to_rgb(frame)
                target = next(targets, None) if targets is not None else pos + 1
            else:
                DECODE_STATS.frames_grabbed += 1
            pos += 1
    except cv2.error as exc:
        raise _cv_failure(path, exc) from exc
    finally:
        cap.release()


def read_frames(path: str | Path, indices: Sequence[int]) -> list[np.ndarray]:
    """Frames at `indices` (any order, repeats allowed) as RGB uint8 HxWx3 arrays."""
    wanted = sorted({int(i) for i in indices})
    if wanted and wanted[0] < 0:
        raise ValueError(f"frame indices must be >= 0, got {wanted[0]}")
    decoded: dict[int, np.ndarray] = {}
    for i, frame in _iter_frames(Path(path), wanted):
        if decoded and frame.shape != decoded[wanted[0]].shape:
            raise ClipError(
                f"clip '{path}' changes size at frame {i} ({frame.shape[1]}x{frame.shape[0]}); "
                "re-encode it at one resolution"
            )
        decoded[i] = frame
    return [decoded[int(i)] for i in indices]


def _thumb(frame: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, _THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


def read_sampled(
    path: str | Path,
    n: int,
    skip_near_duplicates: bool = False,
    duplicate_threshold: float = 1.0,
    *,
    info: ClipInfo | None = None,
) -> tuple[list[int], list[np.ndarray]]:
    """Read n frames spread evenly over the clip; returns (indices, frames).

    Without skipping this is read_frames(path, sample_indices(frame_count, n)).

    With skip_near_duplicates the rule is:
      1. Walk every frame in order and keep a frame when the mean absolute difference between
         its 32x32 grey thumbnail and that of the last KEPT frame is >= duplicate_threshold
         (0..255 units). Frame 0 is always kept. The kept frames are the clip's distinct frames.
      2. Pick sample_indices(len(distinct), n) among the distinct frames and decode those.
    So a dropped duplicate is replaced by another distinct frame, and n frames come back
    whenever the clip has at least n distinct ones (fewer otherwise). This decodes the whole
    clip once more, which the frame cache pays only once per clip.

    Pass `info` (a probe() result) to avoid probing the clip a second time.
    """
    path = Path(path)
    info = info or probe(path)
    if not skip_near_duplicates:
        indices = sample_indices(info.frame_count, n)
        return indices, read_frames(path, indices)
    distinct: list[int] = []
    last: np.ndarray | None = None
    for i, frame in _iter_frames(path, None):
        thumb = _thumb(frame)
        if last is None or float(np.abs(thumb - last).mean()) >= duplicate_threshold:
            distinct.append(i)
            last = thumb
    if not distinct:
        raise ClipError(f"clip '{path}' has zero frames; upload a clip with video in it")
    indices = [distinct[k] for k in sample_indices(len(distinct), n)]
    return indices, read_frames(path, indices)
