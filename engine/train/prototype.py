"""The pretrained prototype (IMDN) on a clip's frames: outputs computed once, cached on disk.

IMDN is a few hundred times heavier than the networks a search finds (158.8 G MACs per
1280x720 output frame at x2; seconds per frame on one CPU thread), so its outputs and its
latency are computed once and kept on disk, shared by every trial, report and process.

Outputs are cached as uint8 (published metrics are measured on uint8 outputs, and it is a
quarter of float32 on disk) and returned as float32 in [0, 1]: exactly the stored values / 255,
so `to_uint8` gives the stored pixels back and `trainer.score` sees the same numbers.

Cancelling: the network runs tile by tile (`IMDN.forward_tiled`) and `should_stop` is asked
before every tile. Tiling is exact, not approximate: the contrast-aware channel attention
takes its per-channel mean/std over the whole frame between each module's two tiled passes.
Measured on three city_full frames (704x576) at x2/x3/x4 with 40, 64 and 192 px tiles: the float
outputs differ from the whole-frame `forward` by at most 1.1e-6 (float rounding), a few dozen
of ~3M uint8 values by one level, the PSNR by under 1e-5 dB.
"""

from __future__ import annotations

import fcntl
import io
import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from engine.data.dataset import FramePair
from engine.data.enhancement import EnhancementTask
from engine.data.frame_cache import atomic_write
from engine.nets.imdn import IMDN, SCALES, load_imdn
from engine.train.cost import count_macs, count_params, input_size, torch_threads
from engine.train.metrics import to_uint8
from engine.train.trainer import score

NAME = "imdn"
LABEL = "IMDN (pretrained, not trained here)"
DEFAULT_TILE = 192  # input pixels a side: ~8 cancel points per stage of a 640x360 input
_FORMAT = "v1"  # bump when the stored layout changes, so old entries are ignored
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LOCK_POLL_S = 0.1

StopCheck = Callable[[], bool]


class PrototypeCancelled(Exception):
    """`should_stop()` returned True: the computation stopped between two tiles."""


def _raise_if_stopped(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise PrototypeCancelled("the prototype's computation was cancelled")


@contextmanager
def _frame_lock(lock_path: Path, should_stop: StopCheck | None) -> Iterator[None]:
    """An exclusive flock: a second process waits (cancellably) instead of computing the
    same frame again, then finds it cached."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                _raise_if_stopped(should_stop)
                time.sleep(_LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _entry_name(scale: int, key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"cache key {key!r} must be letters, digits, '.', '_' or '-'")
    return f"{NAME}-x{scale}-{_FORMAT}-{key}"


def _read_output(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached output as float32 in [0, 1], or None when absent or not what we expect."""
    if not path.is_file():
        return None
    try:
        stored = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if stored.dtype != np.uint8 or stored.shape != shape:
        return None
    return stored.astype(np.float32) / 255.0


def _as_float(frame: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected HxWx3 RGB frames, got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return frame.astype(np.float32, copy=False)


@torch.no_grad()
def _run(net: IMDN, frame: np.ndarray, tile: int, device: str,
         should_stop: StopCheck | None) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(_as_float(frame).transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        out = net.forward_tiled(x.to(device), tile, lambda: _raise_if_stopped(should_stop))
    return to_uint8(out[0].float().cpu().permute(1, 2, 0).numpy())


def prototype_outputs(
    scale: int, degraded_frames: list[np.ndarray], cache_dir: Path, keys: list[str],
    should_stop: StopCheck | None = None, tile: int = DEFAULT_TILE, device: str = "cpu",
    threads: int = 1, models_dir: Path | None = None,
) -> list[np.ndarray]:
    """IMDN's output for every degraded frame (HxWx3, uint8 or float in [0, 1]), as
    (H*s)x(W*s)x3 float32 in [0, 1] quantised to 1/255 steps.

    `keys[i]` names frame i's cache entry (e.g. f"{clip_hash}-{task}-frame{index}"): a frame
    whose entry exists is read, never recomputed, by this or any other process. Raises
    PrototypeCancelled when `should_stop()` turns True (checked before every tile); frames
    finished before that stay cached."""
    if len(keys) != len(degraded_frames):
        raise ValueError(f"{len(degraded_frames)} frames but {len(keys)} keys")
    if len(set(keys)) != len(keys):
        raise ValueError("cache keys must be unique, one per frame")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    net: IMDN | None = None  # loaded only when some frame is missing
    outputs: list[np.ndarray] = []
    for frame, key in zip(degraded_frames, keys, strict=True):
        name = _entry_name(scale, key)
        path = cache_dir / f"{name}.npy"
        shape = (frame.shape[0] * scale, frame.shape[1] * scale, 3)
        output = _read_output(path, shape)
        if output is None:
            _raise_if_stopped(should_stop)
            with _frame_lock(cache_dir / "locks" / f"{name}.lock", should_stop):
                output = _read_output(path, shape)  # another process may have just made it
                if output is None:
                    if net is None:
                        net = load_imdn(scale, models_dir).to(device)
                    with torch_threads(threads):
                        stored = _run(net, frame, tile, device, should_stop)
                    atomic_write(path, lambda f, data=_npy_bytes(stored): f.write(data))
                    output = stored.astype(np.float32) / 255.0
        outputs.append(output)
    return outputs


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@torch.no_grad()
def _timed_latency(
    net: IMDN, resolution: tuple[int, int], scale: int, repeats: int, threads: int,
    should_stop: StopCheck | None,
) -> dict[str, float | int]:
    """One warm-up then `repeats` timed whole-frame passes on the CPU: IMDN takes seconds a
    frame, so the usual 5+ runs of `measure_latency` would cost minutes."""
    in_w, in_h = input_size(resolution, scale)
    frame = torch.rand(1, 3, in_h, in_w)
    timings: list[float] = []
    with torch_threads(threads), torch.inference_mode():
        for run in range(repeats + 1):
            _raise_if_stopped(should_stop)
            start = time.perf_counter()
            net(frame)
            if run:  # the first pass is the warm-up
                timings.append((time.perf_counter() - start) * 1000.0)
    return {"latency_ms": statistics.median(timings), "latency_min_ms": min(timings),
            "latency_repeats": repeats, "latency_threads": threads}


def prototype_latency(
    scale: int, resolution: tuple[int, int], cache_dir: Path, threads: int = 1,
    repeats: int = 3, should_stop: StopCheck | None = None, models_dir: Path | None = None,
) -> dict[str, float | int]:
    """IMDN's CPU latency for one `resolution` (width, height) output frame, measured once per
    (scale, resolution, threads) and kept in `cache_dir`."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    width, height = resolution
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{NAME}-x{scale}-{_FORMAT}-latency-{width}x{height}-t{threads}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass  # absent or unreadable: measure (again)
    net = load_imdn(scale, models_dir)
    latency = _timed_latency(net, resolution, scale, repeats, threads, should_stop)
    atomic_write(path, lambda f: f.write(json.dumps(latency).encode()))
    return latency


def prototype_reference(
    task: EnhancementTask, eval_pairs: list[FramePair], resolution: tuple[int, int],
    cache_dir: Path, keys: list[str], should_stop: StopCheck | None = None,
    device: str = "cpu", threads: int = 1, latency_repeats: int = 3, latency_threads: int = 1,
    models_dir: Path | None = None,
) -> dict | None:
    """The IMDN row of an SR report (quality on `eval_pairs`, cost at `resolution`), or None
    for tasks IMDN was not trained for (denoise, deblock: scale 1). `threads` computes the
    outputs; latency is timed with `latency_threads` (1, like the trials' `measure_latency`)
    so the rows compare."""
    if task.scale not in SCALES:
        return None
    outputs = prototype_outputs(
        task.scale, [p.degraded for p in eval_pairs], cache_dir, keys, should_stop,
        device=device, threads=threads, models_dir=models_dir,
    )
    quality = score(outputs, eval_pairs, task.border)
    net = load_imdn(task.scale, models_dir)
    latency = prototype_latency(task.scale, resolution, cache_dir, latency_threads,
                                latency_repeats, should_stop, models_dir)
    return {
        "name": NAME, "label": LABEL, "learned": False, "pretrained": True,
        "psnr": quality.psnr, "ssim": quality.ssim, "per_frame_psnr": quality.per_frame_psnr,
        "macs": count_macs(net, resolution, task.scale), "params": count_params(net),
        **latency, "steps": 0, "train_seconds": 0.0,
    }
