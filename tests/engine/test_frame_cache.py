"""Tests for engine.data.frame_cache: decode once, reuse across calls and processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data import frame_cache as fc
from engine.data.frame_cache import FrameCache, content_hash, default_cache_root
from engine.data.video_io import DECODE_STATS, ClipError, read_frames, sample_indices

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
TINY = DATA / "video" / "city_tiny.mp4"
CITY_PNG = DATA / "video" / "vid4" / "city"


_CHILD = """
import json, sys
from engine.data.frame_cache import FrameCache
from engine.data.video_io import DECODE_STATS
cached = FrameCache(sys.argv[1]).load(sys.argv[2], int(sys.argv[3]))
print(json.dumps({"frames_decoded": DECODE_STATS.frames_decoded,
                  "frames_grabbed": DECODE_STATS.frames_grabbed,
                  "hit": cached.hit, "shape": list(cached.frames.shape)}))
"""


def _load_in_child(root: Path, clip: Path, n: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(clip), str(n)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_miss_then_hit_in_process(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    before = DECODE_STATS.frames_decoded
    first = cache.load(TINY, 5)
    assert not first.hit
    assert DECODE_STATS.frames_decoded > before
    assert first.indices == sample_indices(15, 5)
    assert first.frames.shape == (5, 128, 192, 3) and first.frames.dtype == np.uint8
    assert (first.info.codec, first.info.frame_count) == ("h264", 15)
    entry = tmp_path / "cache" / first.key
    assert (entry / "frames.npy").is_file() and (entry / "meta.json").is_file()
    assert not list(entry.glob("*.tmp"))  # temp files were renamed into place

    stats = DECODE_STATS.to_dict()
    second = cache.load(TINY, 5)
    assert second.hit and second.key == first.key
    assert DECODE_STATS.to_dict() == stats  # nothing decoded, nothing grabbed
    np.testing.assert_array_equal(second.frames, first.frames)
    assert second.indices == first.indices and second.info == first.info
    # The cached frames are the loader's frames.
    for frame, ref in zip(second.frames, read_frames(TINY, first.indices), strict=True):
        np.testing.assert_array_equal(frame, ref)


def test_hit_never_opens_the_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = FrameCache(tmp_path)
    cache.load(TINY, 3)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("cv2 was used on a cache hit")

    monkeypatch.setattr(cv2, "VideoCapture", forbidden)
    monkeypatch.setattr(cv2, "imread", forbidden)
    assert cache.load(TINY, 3).hit


def test_other_process_decodes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "shared_cache"
    cold = _load_in_child(root, TINY, 4)
    assert cold["hit"] is False and cold["frames_decoded"] > 0
    warm = _load_in_child(root, TINY, 4)
    assert warm["hit"] is True
    assert warm["frames_decoded"] == 0 and warm["frames_grabbed"] == 0
    assert warm["shape"] == [4, 128, 192, 3]
    # And this process reads the same entry.
    assert FrameCache(root).load(TINY, 4).hit


def test_racing_processes_leave_a_valid_entry(tmp_path: Path) -> None:
    root = tmp_path / "race"
    cmd = [sys.executable, "-c", _CHILD, str(root), str(TINY), "6"]
    procs = [
        subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out.decode().strip().splitlines()[-1])["shape"] == [6, 128, 192, 3]
    (entry,) = root.iterdir()
    assert not list(entry.glob("*.tmp"))
    assert FrameCache(root).load(TINY, 6).hit


def test_sampling_params_change_the_key(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path)
    keys = {
        cache.load(TINY, 3).key,
        cache.load(TINY, 4).key,
        cache.load(TINY, 4, skip_near_duplicates=True).key,
        cache.load(TINY, 4, skip_near_duplicates=True, duplicate_threshold=5.0).key,
    }
    assert len(keys) == 4
    assert len(list(tmp_path.iterdir())) == 4


def test_same_bytes_other_name_is_a_hit(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    original = cache.load(TINY, 3)
    copy = tmp_path / "renamed upload.mov"
    shutil.copyfile(TINY, copy)
    again = cache.load(copy, 3)
    assert again.hit and again.key == original.key
    assert again.info.path == str(copy) and again.info.codec == "h264"
    np.testing.assert_array_equal(again.frames, original.frames)


def test_changed_bytes_change_the_key(tmp_path: Path) -> None:
    copy = tmp_path / "clip.mp4"
    data = bytearray(TINY.read_bytes())
    copy.write_bytes(data)
    same = content_hash(copy)
    assert same == content_hash(TINY)
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(data)
    assert content_hash(copy) != same
    cache = FrameCache(tmp_path / "cache")
    assert cache.key_for(copy, 3) != cache.key_for(TINY, 3)


def test_png_folder_hash_and_cache(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    shutil.copytree(CITY_PNG, folder)
    (folder / "Thumbs.db").write_bytes(b"junk")  # non-frame files do not matter
    assert content_hash(folder) == content_hash(CITY_PNG)
    cache = FrameCache(tmp_path / "cache")
    first = cache.load(folder, 2)
    assert not first.hit and first.frames.shape == (2, 576, 704, 3)
    assert cache.load(CITY_PNG, 2).hit
    (folder / "00000014.png").unlink()
    assert content_hash(folder) != content_hash(CITY_PNG)


def test_corrupt_entry_is_rebuilt(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path)
    first = cache.load(TINY, 3)
    (tmp_path / first.key / "frames.npy").write_bytes(b"garbage")
    rebuilt = cache.load(TINY, 3)
    assert not rebuilt.hit
    np.testing.assert_array_equal(rebuilt.frames, first.frames)
    assert cache.load(TINY, 3).hit


def test_bad_clip_raises_clip_error(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    with pytest.raises(ClipError, match="not found"):
        cache.load(tmp_path / "missing.mp4", 3)
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello")
    with pytest.raises(ClipError, match="cannot decode"):
        cache.load(fake, 3)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("meta.json"))


def test_default_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIXEL_CACHE_DIR", str(tmp_path))
    assert default_cache_root() == tmp_path
    monkeypatch.delenv("PIXEL_CACHE_DIR")
    assert default_cache_root() == REPO / ".cache" / "frames"
    assert Path(fc.__file__).resolve().parents[2] == REPO
