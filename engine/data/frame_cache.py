"""On-disk cache of decoded frames, keyed by the clip's content hash.

A clip is decoded once; every later trial and every worker process loads the saved array.
Layout: ``root/<key>/frames.npy`` (N,H,W,3 uint8) and ``root/<key>/meta.json`` (indices and
the probe() info). meta.json is written last, so its presence marks a complete entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.data.video_io import ClipError, ClipInfo, png_frames, probe, read_sampled
from engine.safe_files import write_atomic

_CHUNK = 1 << 20
_HASH_CHARS = 20
_FORMAT = "v1"  # bump when the sampling rule or layout changes, so old entries are ignored


def default_cache_root() -> Path:
    """$PIXEL_CACHE_DIR when set, else <repo root>/.cache/frames."""
    env = os.environ.get("PIXEL_CACHE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".cache" / "frames"


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def content_hash(path: str | Path) -> str:
    """sha256 (first 20 hex chars) of the clip's bytes; the file name plays no part.

    For a PNG folder it covers the sorted frame names and their bytes (other files ignored).
    """
    path = Path(path)
    if not path.exists():
        raise ClipError(f"clip not found: {path} — check the path")
    h = hashlib.sha256()
    if path.is_dir():
        h.update(b"png-folder\0")
        for frame in png_frames(path):
            name = frame.name.encode()
            # Length prefixes keep (name, bytes) boundaries unambiguous.
            h.update(len(name).to_bytes(8, "little") + name)
            h.update(frame.stat().st_size.to_bytes(8, "little"))
            for chunk in _chunks(frame):
                h.update(chunk)
        return h.hexdigest()[:_HASH_CHARS]
    # No (path, mtime) memo on purpose: mtime ticks are coarse, so a rewrite could go unseen.
    for chunk in _chunks(path):
        h.update(chunk)
    return h.hexdigest()[:_HASH_CHARS]


@dataclass
class CachedFrames:
    indices: list[int]
    frames: np.ndarray  # (N, H, W, 3) uint8, an ordinary in-memory array
    info: ClipInfo
    key: str
    hit: bool


def atomic_write(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write via a temp file in the same folder + os.replace, so readers never see half;
    a full disk raises engine.safe_files.DiskFull and leaves no temp file."""
    write_atomic(target, write)


class FrameCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def key_for(
        self,
        path: str | Path,
        n_frames: int,
        skip_near_duplicates: bool = False,
        duplicate_threshold: float = 1.0,
    ) -> str:
        sampling = f"dedup{duplicate_threshold:g}" if skip_near_duplicates else "even"
        return f"{content_hash(path)}-n{n_frames}-{sampling}-{_FORMAT}"

    def load(
        self,
        path: str | Path,
        n_frames: int,
        skip_near_duplicates: bool = False,
        *,
        duplicate_threshold: float = 1.0,
    ) -> CachedFrames:
        """Sampled frames of the clip, decoded only if no complete entry exists yet.

        A hit reads frames.npy and meta.json only: no probe(), no cv2.VideoCapture.
        """
        if n_frames <= 0:
            raise ValueError(f"n_frames must be > 0, got {n_frames}")
        key = self.key_for(path, n_frames, skip_near_duplicates, duplicate_threshold)
        entry = self.root / key
        cached = self._read_entry(entry, key)
        if cached is not None:
            # The entry may come from a copy under another name: report the path asked for.
            cached.info = replace(cached.info, path=str(path))
            return cached
        info = probe(path)
        indices, frames = read_sampled(
            path, n_frames, skip_near_duplicates, duplicate_threshold, info=info
        )
        array = np.ascontiguousarray(np.stack(frames), dtype=np.uint8)
        entry.mkdir(parents=True, exist_ok=True)
        atomic_write(entry / "frames.npy", lambda f: np.save(f, array, allow_pickle=False))
        meta = {"indices": indices, "info": info.to_dict(), "key": key}
        atomic_write(entry / "meta.json", lambda f: f.write(json.dumps(meta).encode()))
        return CachedFrames(indices, array, info, key, hit=False)

    @staticmethod
    def _read_entry(entry: Path, key: str) -> CachedFrames | None:
        """The cached entry, or None when absent or unreadable (it is then rebuilt)."""
        meta_path = entry / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            frames = np.load(entry / "frames.npy", allow_pickle=False)
            indices = [int(i) for i in meta["indices"]]
            info = ClipInfo(**meta["info"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) != len(indices):
            return None
        return CachedFrames(indices, frames, info, key, hit=True)
