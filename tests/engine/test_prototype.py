"""The prototype's outputs: computed once (any process), exactly tiled, cancellable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data.dataset import make_pairs
from engine.data.enhancement import make_task
from engine.data.video_io import read_frames
from engine.nets.imdn import IMDN, load_imdn
from engine.train import prototype
from engine.train.metrics import psnr_y, to_uint8
from engine.train.prototype import PrototypeCancelled, prototype_outputs, prototype_reference
from tests.conftest import TINY_CLIP


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_frames(TINY_CLIP, [0, 7])  # 192x128 RGB uint8 (conftest fails if missing)


@pytest.fixture
def forward_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts IMDN tiled passes (one per computed frame)."""
    calls: list[int] = []
    original = IMDN.forward_tiled

    def counting(self: IMDN, *args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(IMDN, "forward_tiled", counting)
    return calls


def _lr(frames: list[np.ndarray], scale: int) -> list[np.ndarray]:
    task = make_task(f"sr_x{scale}")
    return [p.degraded for p in make_pairs(task, np.stack(frames), seed=0)]


def test_outputs_are_computed_once(frames: list[np.ndarray], tmp_path: Path,
                                   forward_calls: list[int],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lr = _lr(frames, 2)
    keys = ["clip-sr_x2-frame0", "clip-sr_x2-frame7"]
    first = prototype_outputs(2, lr, tmp_path, keys)
    assert len(forward_calls) == 2
    assert first[0].shape == (128, 192, 3) and first[0].dtype == np.float32
    assert np.array_equal(to_uint8(first[0]).astype(np.float32) / 255.0, first[0])
    # A fresh call (as from another process) neither runs nor even loads the network.
    monkeypatch.setattr(prototype, "load_imdn", lambda *a, **k: pytest.fail("loaded again"))
    again = prototype_outputs(2, lr, tmp_path, keys)
    assert len(forward_calls) == 2
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_only_missing_frames_are_computed(frames: list[np.ndarray], tmp_path: Path,
                                          forward_calls: list[int]) -> None:
    lr = _lr(frames, 4)
    prototype_outputs(4, lr[:1], tmp_path, ["c-frame0"])
    prototype_outputs(4, lr, tmp_path, ["c-frame0", "c-frame7"])
    assert len(forward_calls) == 2


def test_tiled_equals_whole_frame(frames: list[np.ndarray], tmp_path: Path) -> None:
    lr = _lr(frames[:1], 3)[0]  # 64x42: uneven tiles, frame edges on every side
    tiled = prototype_outputs(3, [lr], tmp_path, ["f0"], tile=16)[0]
    net = load_imdn(3)
    x = torch.from_numpy(lr.transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        whole = net(x)
        tiled_float = net.forward_tiled(x, tile=16)
    assert float((whole - tiled_float).abs().max()) < 1e-4
    whole_u8 = to_uint8(whole[0].permute(1, 2, 0).numpy())
    # Float rounding may flip a rare pixel by one level, never more.
    assert int(np.abs(to_uint8(tiled).astype(int) - whole_u8).max()) <= 1
    assert psnr_y(to_uint8(tiled), whole_u8) > 60.0


def test_should_stop_cancels_between_tiles(frames: list[np.ndarray], tmp_path: Path) -> None:
    lr = _lr(frames[:1], 2)
    asked: list[int] = []

    def stop_after_first_tile() -> bool:
        asked.append(1)
        return len(asked) > 2  # asked before the frame, then before tile 1, then tile 2

    tiles_run: list[int] = []
    original = torch.nn.Conv2d.forward

    def counting_conv(self: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        tiles_run.append(1)
        return original(self, x)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.Conv2d, "forward", counting_conv)
        with pytest.raises(PrototypeCancelled):
            prototype_outputs(2, lr, tmp_path, ["f0"], should_stop=stop_after_first_tile,
                              tile=32)
    assert len(tiles_run) == 1  # fea_conv on the first tile, nothing after
    assert not list(tmp_path.glob("*.npy"))  # nothing half-computed is cached
    with pytest.raises(PrototypeCancelled):  # a stop already requested: not even one tile
        prototype_outputs(2, lr, tmp_path, ["f0"], should_stop=lambda: True)


def test_bad_keys_are_refused(frames: list[np.ndarray], tmp_path: Path) -> None:
    lr = _lr(frames[:1], 2)
    with pytest.raises(ValueError, match="keys"):
        prototype_outputs(2, lr, tmp_path, [])
    with pytest.raises(ValueError, match="cache key"):
        prototype_outputs(2, lr, tmp_path, ["../escape"])


def test_reference_row(frames: list[np.ndarray], tmp_path: Path) -> None:
    task = make_task("sr_x4")
    pairs = make_pairs(task, np.stack(frames), seed=0)
    keys = [f"clip-{task.name}-frame{i}" for i in (0, 7)]
    row = prototype_reference(task, pairs, (96, 64), tmp_path, keys, threads=2,
                              latency_repeats=1)
    assert row is not None
    assert row["name"] == "imdn" and row["label"] == "IMDN (pretrained, not trained here)"
    assert row["learned"] is False and row["pretrained"] is True
    assert row["steps"] == 0 and row["train_seconds"] == 0.0
    assert len(row["per_frame_psnr"]) == 2 and 15.0 < row["psnr"] < 60.0
    assert 0.0 < row["ssim"] <= 1.0
    assert row["params"] == 715_176  # x4: only the upsampler differs from x2's 694,404
    # 709,824 MACs per input pixel at x4, over 24x16 input pixels.
    assert abs(row["macs"] - 709_824 * 24 * 16) / row["macs"] < 1e-3
    assert row["latency_ms"] > 0 and row["latency_repeats"] == 1
    assert row["latency_threads"] == 1  # as the trials' latency, whatever computed the outputs
    cached = list(tmp_path.glob("imdn-x4-*-latency-96x64-t1.json"))
    assert len(cached) == 1
    again = prototype_reference(task, pairs, (96, 64), tmp_path, keys)
    assert again is not None
    # Same outputs and cached latency; SSIM only to float noise (cv2's filter2D threads).
    assert again["ssim"] == pytest.approx(row["ssim"], abs=1e-9)
    assert {**again, "ssim": 0} == {**row, "ssim": 0}


@pytest.mark.parametrize("name", ["denoise", "deblock"])
def test_restoration_tasks_have_no_reference(name: str, tmp_path: Path) -> None:
    assert prototype_reference(make_task(name), [], (1280, 720), tmp_path, []) is None
