"""Tests for engine.data.video_io on the real Vid4 city clip and synthetic PNG folders."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.video_io import (
    ClipError,
    ClipInfo,
    probe,
    read_frames,
    read_sampled,
    sample_indices,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TINY = DATA / "video" / "city_tiny.mp4"
CITY = DATA / "video" / "city.mp4"
CITY_PNG = DATA / "video" / "vid4" / "city"



def _png_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _reference_decode(path: Path) -> list[np.ndarray]:
    """Plain cv2 read() loop, independent of the loader under test."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def _write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir()
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{i:08d}.png"), frame)
    return folder


def test_probe_tiny_mp4() -> None:
    info = probe(TINY)
    assert isinstance(info, ClipInfo)
    assert (info.codec, info.width, info.height) == ("h264", 192, 128)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 15
    assert info.duration_s == pytest.approx(0.6)
    assert info.to_dict()["codec"] == "h264"
    assert info.path == str(TINY)


def test_probe_ignores_extension(tmp_path: Path) -> None:
    renamed = tmp_path / "upload.txt"
    shutil.copyfile(TINY, renamed)
    info = probe(renamed)
    assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 192, 128, 15)


def test_probe_png_folder() -> None:
    info = probe(CITY_PNG)
    assert (info.codec, info.width, info.height, info.frame_count) == ("png", 704, 576, 15)
    assert info.fps == 25.0
    assert info.duration_s == pytest.approx(0.6)


def test_folder_frames_equal_pngs() -> None:
    pngs = sorted(CITY_PNG.glob("*.png"))
    frames = read_frames(CITY_PNG, range(len(pngs)))
    assert len(frames) == 15
    for frame, png in zip(frames, pngs, strict=True):
        assert frame.dtype == np.uint8 and frame.shape == (576, 704, 3)
        np.testing.assert_array_equal(frame, _png_rgb(png))


def test_video_frames_are_rgb() -> None:
    (frame,) = read_frames(CITY, [0])
    assert frame.dtype == np.uint8 and frame.shape == (576, 704, 3)
    rgb = _png_rgb(CITY_PNG / "00000000.png").astype(np.int16)
    err_rgb = np.abs(frame.astype(np.int16) - rgb).mean()
    err_bgr = np.abs(frame.astype(np.int16) - rgb[..., ::-1]).mean()
    assert err_rgb < 3.0  # crf 12 encoding of the same frame
    assert err_bgr > 2 * err_rgb


@pytest.mark.parametrize("count", [1, 2, 5, 15, 16, 100, 1001])
@pytest.mark.parametrize("n", [1, 2, 3, 8, 15, 50])
def test_sample_indices_properties(count: int, n: int) -> None:
    idx = sample_indices(count, n)
    assert idx == sorted(set(idx))
    assert len(idx) == min(n, count)
    assert idx[0] == 0 and idx[-1] < count
    if 1 < n < count:
        assert idx[-1] == count - 1
        gaps = np.diff(idx)
        assert gaps.max() - gaps.min() <= 1  # evenly spread


def test_sample_indices_rejects_bad_args() -> None:
    for count, n in [(0, 3), (5, 0), (-1, 2)]:
        with pytest.raises(ValueError):
            sample_indices(count, n)


def test_read_frames_matches_sequential_decode() -> None:
    reference = _reference_decode(TINY)
    assert len(reference) == 15
    everything = read_frames(TINY, range(15))
    for got, ref in zip(everything, reference, strict=True):
        np.testing.assert_array_equal(got, ref)
    wanted = [13, 2, 7, 2, 0, 14]  # any order, repeats allowed
    for i, frame in zip(wanted, read_frames(TINY, wanted), strict=True):
        np.testing.assert_array_equal(frame, reference[i])


def test_read_sampled_without_skipping() -> None:
    indices, frames = read_sampled(TINY, 4)
    assert indices == sample_indices(15, 4)
    assert len(frames) == 4 and all(f.shape == (128, 192, 3) for f in frames)


def _dup_clip(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Distinct frames A, B, C, D, as A x6, B x3, C x3, D x3 with +-2 noise on the repeats."""
    distinct = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    clip = []
    for base, reps in zip(distinct, [6, 3, 3, 3], strict=True):
        clip.append(base)
        for _ in range(reps - 1):
            noise = rng.integers(-2, 3, base.shape)
            clip.append(np.clip(base.astype(int) + noise, 0, 255).astype(np.uint8))
    return distinct, clip


def test_near_duplicates_are_skipped(tmp_path: Path) -> None:
    distinct, clip = _dup_clip(np.random.default_rng(0))
    folder = _write_folder(tmp_path / "clip", clip)
    # Even sampling lands on 0, 5, 9, 14: frame 5 repeats A and B is never seen.
    plain_idx, _ = read_sampled(folder, 4)
    assert plain_idx == [0, 5, 9, 14]
    indices, frames = read_sampled(folder, 4, skip_near_duplicates=True)
    assert indices == [0, 6, 9, 12]  # the first frame of every distinct run
    for frame, base in zip(frames, distinct, strict=True):
        np.testing.assert_array_equal(frame, base[..., ::-1])  # written BGR, read RGB
    # Asking for more frames than exist distinct returns each distinct one once.
    indices, frames = read_sampled(folder, 10, skip_near_duplicates=True)
    assert indices == [0, 6, 9, 12] and len(frames) == 4
    # A huge threshold makes everything a duplicate of frame 0.
    assert read_sampled(folder, 4, True, duplicate_threshold=300.0)[0] == [0]


def test_skipping_on_real_clip_keeps_n_distinct_frames() -> None:
    indices, frames = read_sampled(TINY, 5, skip_near_duplicates=True)
    assert len(indices) == 5 and indices[0] == 0 and indices == sorted(set(indices))
    assert len(frames) == 5


def test_grayscale_png_becomes_three_channels(tmp_path: Path) -> None:
    grey = np.tile(np.arange(64, dtype=np.uint8), (32, 1))
    folder = _write_folder(tmp_path / "grey", [grey, grey])
    assert probe(folder).width == 64
    (frame,) = read_frames(folder, [1])
    assert frame.shape == (32, 64, 3) and frame.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(frame[..., c], grey)


# ---------------------------------------------------------------- bad inputs


def _assert_clip_error(path: Path, match: str | None = None) -> str:
    """Probing and then reading every frame must end in a one-line ClipError."""
    with pytest.raises(ClipError, match=match) as caught:
        info = probe(path)
        read_frames(path, range(info.frame_count))
    message = str(caught.value)
    assert "\n" not in message and str(path.name) in message
    return message


def test_missing_path(tmp_path: Path) -> None:
    _assert_clip_error(tmp_path / "nope.mp4", "not found")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n")
    _assert_clip_error(fake, "cannot decode .*no video stream")


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    _assert_clip_error(empty, "empty")


def test_truncated_mp4(tmp_path: Path) -> None:
    data = TINY.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 30 // 100])
    # city_tiny keeps its index (moov) at the end, so a cut file cannot even be opened.
    _assert_clip_error(cut, "cannot decode")


def _faststart(data: bytes) -> bytes:
    """Move the trailing moov atom to the front (ftyp, moov, rest), fixing chunk offsets."""
    atoms, pos = {}, 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        atoms[kind] = (pos, size)
        pos += size
    ftyp_end = sum(atoms[b"ftyp"])
    moov_at, moov_size = atoms[b"moov"]
    moov = bytearray(data[moov_at : moov_at + moov_size])
    stco = moov.find(b"stco")
    (entries,) = struct.unpack(">I", moov[stco + 8 : stco + 12])
    for k in range(entries):
        at = stco + 12 + 4 * k
        struct.pack_into(">I", moov, at, struct.unpack(">I", moov[at : at + 4])[0] + moov_size)
    return data[:ftyp_end] + bytes(moov) + data[ftyp_end:moov_at]


def test_truncated_mp4_with_index_up_front(tmp_path: Path) -> None:
    whole = _faststart(TINY.read_bytes())
    (tmp_path / "whole.mp4").write_bytes(whole)
    assert len(read_frames(tmp_path / "whole.mp4", range(15))) == 15
    cut = tmp_path / "cut_fs.mp4"
    cut.write_bytes(whole[: len(whole) * 30 // 100])
    info = probe(cut)  # the index survived: the container still claims 15 frames
    assert info.frame_count == 15
    with pytest.raises(ClipError, match="truncated"):
        read_frames(cut, range(15))
    # Skipping duplicates walks only what decodes, so it degrades instead of failing.
    indices, frames = read_sampled(cut, 3, skip_near_duplicates=True)
    assert 1 <= len(frames) <= 3 and indices[0] == 0


def test_index_past_end(tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="ended after 15 frames"):
        read_frames(TINY, [3, 15])
    with pytest.raises(ClipError, match="has 15 frames"):
        read_frames(CITY_PNG, [15])


def test_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "notes.txt").write_text("no frames here")
    _assert_clip_error(folder, "holds no .png frames")


def test_folder_with_mismatched_sizes(tmp_path: Path) -> None:
    small = np.zeros((32, 48, 3), np.uint8)
    big = np.zeros((40, 48, 3), np.uint8)
    folder = _write_folder(tmp_path / "mixed", [small, small, big])
    message = _assert_clip_error(folder, "same size")
    assert "48x40" in message


def test_folder_with_fake_png(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "fake", [np.zeros((8, 8, 3), np.uint8)])
    (folder / "00000001.png").write_text("not a png")
    _assert_clip_error(folder, "not a valid PNG")
