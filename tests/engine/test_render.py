"""Preview renders: H.264 files that decode to the right size and count, metrics that match
an independent computation, frame-exact (all-intra) measured renders."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from engine.data.enhancement import make_task
from engine.data.video_io import read_frames
from engine.deploy.render import render_crop, render_preview, write_video
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.train.cost import deployed
from engine.train.metrics import ssim_y, to_uint8
from engine.train.trainer import enhance
from tests.conftest import TINY_CLIP

CLIP_W, CLIP_H, CLIP_FRAMES = 192, 128, 15


def tiny_net(scale: int):
    import torch

    torch.manual_seed(0)
    return build_network(Genome.uniform(8, 1), scale)


def decode(path: Path) -> tuple[int, int, int, str]:
    """(frames, width, height, fourcc) by decoding every frame with OpenCV."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert cap.isOpened(), path
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    n, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        size = frame.shape[:2]
    cap.release()
    assert size is not None
    return n, size[1], size[0], fourcc


def keyframes(path: Path) -> int:
    """Number of keyframes, counted by ffmpeg decoding only keyframes."""
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-skip_frame", "nokey", "-i", str(path),
         "-f", "null", "-"], capture_output=True, text=True, check=True,
    )
    return int(re.findall(r"frame=\s*(\d+)", proc.stderr)[-1])


def y_psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    """Independent numpy PSNR on BT.601 studio-range Y (MATLAB rgb2ycbcr), border shaved."""
    def y(img: np.ndarray) -> np.ndarray:
        rgb = img.astype(np.float64) / 255.0
        lum = 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]
        return lum[border:-border, border:-border] if border else lum

    mse = float(np.mean((y(a) - y(b)) ** 2))
    return 100.0 if mse == 0 else min(100.0, 10 * math.log10(255.0**2 / mse))


def test_write_video_keeps_360p_is_h264_and_faststart(tmp_path: Path) -> None:
    frames = [np.full((360, 640, 3), i * 20, np.uint8) for i in range(6)]
    path = write_video(iter(frames), tmp_path / "a.mp4", 25.0)
    assert decode(path) == (6, 640, 360, "h264")
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no temp file left


def test_write_video_intra_makes_every_frame_a_keyframe(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(8)]
    assert keyframes(write_video(frames, tmp_path / "intra.mp4", 25.0, intra=True)) == 8
    assert keyframes(write_video(frames, tmp_path / "gop.mp4", 25.0)) < 8


def test_write_video_pads_odd_sizes(tmp_path: Path) -> None:
    frames = [np.zeros((51, 101, 3), np.uint8)] * 3
    assert decode(write_video(frames, tmp_path / "odd.mp4", 10.0))[:3] == (3, 102, 52)


def test_write_video_without_frames_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_video([], tmp_path / "none.mp4", 25.0)
    with pytest.raises(ValueError):
        write_video([np.zeros((8, 8), np.uint8)], tmp_path / "bad.mp4", 25.0)
    assert list(tmp_path.iterdir()) == []


def test_measured_sr_render_files_metrics_and_progress(tmp_path: Path) -> None:
    task = make_task("sr_x2")
    net = tiny_net(2)
    calls: list[tuple[int, int]] = []
    result = render_preview(net, task, TINY_CLIP, tmp_path, mode="measured",
                            progress=lambda done, total: calls.append((done, total)))
    print(f"\nmeasured sr_x2 render: {result['render_fps']:.1f} frames/s "
          f"({result['frames']} frames {CLIP_W}x{CLIP_H})")
    assert calls == [(i, CLIP_FRAMES) for i in range(1, CLIP_FRAMES + 1)]
    assert (result["frames"], result["width"], result["height"]) == (CLIP_FRAMES, 192, 128)
    assert (result["input_width"], result["input_height"]) == (96, 64)
    for name in ("output", "input", "reference"):
        path = tmp_path / result["files"][name]
        assert decode(path) == (CLIP_FRAMES, 192, 128, "h264")
    assert keyframes(tmp_path / "output.mp4") == CLIP_FRAMES  # frame-exact stepping

    # Independent recomputation from the decoded clip frames (nothing from the mp4s).
    model = deployed(net)
    rng = np.random.default_rng(0)
    frames = read_frames(TINY_CLIP, range(CLIP_FRAMES))
    per = result["per_frame"]
    assert [f["index"] for f in per] == list(range(CLIP_FRAMES))
    for frame, got in zip(frames, per, strict=True):
        target = task.target(frame)
        degraded = task.degrade(target, rng)
        out = to_uint8(enhance(model, degraded))
        base = to_uint8(task.baseline(degraded))
        assert got["psnr"] == pytest.approx(y_psnr(out, target, 2), abs=1e-9)
        assert got["baseline_psnr"] == pytest.approx(y_psnr(base, target, 2), abs=1e-9)
        assert got["ssim"] == pytest.approx(ssim_y(out, target, 2), abs=1e-12)
        assert got["baseline_ssim"] == pytest.approx(ssim_y(base, target, 2), abs=1e-12)
    psnrs = [f["psnr"] for f in per]
    assert result["worst_frame"] == int(np.argmin(psnrs))
    assert result["psnr"] == pytest.approx(np.mean(psnrs))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["per_frame"] == per and saved["worst_frame"] == result["worst_frame"]


def test_apply_sr_render_goes_beyond_the_clip_resolution(tmp_path: Path) -> None:
    calls: list[int] = []
    result = render_preview(tiny_net(2), make_task("sr_x2"), TINY_CLIP, tmp_path,
                            mode="apply", max_frames=4, progress=lambda d, t: calls.append(d))
    print(f"\napply sr_x2 render: {result['render_fps']:.1f} frames/s (384x256 output)")
    assert calls == [1, 2, 3, 4]
    assert (result["width"], result["height"]) == (384, 256)
    assert set(result["files"]) == {"output", "input"} and "per_frame" not in result
    assert not (tmp_path / "metrics.json").exists()
    for name in ("output.mp4", "input.mp4"):
        assert decode(tmp_path / name) == (4, 384, 256, "h264")


def test_measured_denoise_render(tmp_path: Path) -> None:
    task = make_task("denoise")
    net = tiny_net(1)
    result = render_preview(net, task, TINY_CLIP, tmp_path, mode="measured", max_frames=5)
    assert (result["frames"], result["width"], result["height"]) == (5, 192, 128)
    assert decode(tmp_path / "input.mp4") == (5, 192, 128, "h264")
    rng = np.random.default_rng(0)  # one generator seeded 0, drawn frame by frame
    model = deployed(net)
    for frame, got in zip(read_frames(TINY_CLIP, range(5)), result["per_frame"], strict=True):
        noisy = task.degrade(task.target(frame), rng)
        assert got["baseline_psnr"] == pytest.approx(y_psnr(to_uint8(noisy), frame, 1), abs=1e-9)
        out = to_uint8(enhance(model, noisy))
        assert got["psnr"] == pytest.approx(y_psnr(out, frame, 1), abs=1e-9)
    assert 20 < result["baseline_psnr"] < 30  # sigma 25 noise, clipped to uint8


def test_render_crop_pngs(tmp_path: Path) -> None:
    frame = read_frames(TINY_CLIP, [0])[0]
    net, task = tiny_net(2), make_task("sr_x2")
    before, after = render_crop(net, task, frame, (10, 20, 41, 40))
    for png in (before, after):
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (40, 40, 3)
    before, after = render_crop(net, task, frame, (180, 120, 50, 50), mode="apply")
    img = cv2.imdecode(np.frombuffer(after, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (16, 24, 3)  # clipped to the frame (12x8), then x2
    with pytest.raises(ValueError):
        render_crop(net, task, frame, (500, 500, 10, 10), mode="apply")


def test_apply_after_measured_removes_stale_metrics(tmp_path: Path) -> None:
    net, task = tiny_net(2), make_task("sr_x2")
    render_preview(net, task, TINY_CLIP, tmp_path, mode="measured", max_frames=2)
    assert (tmp_path / "metrics.json").exists()
    render_preview(net, task, TINY_CLIP, tmp_path, mode="apply", max_frames=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.mp4", "output.mp4"]
