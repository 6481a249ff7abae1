"""Frame loader: decode throughput against a bare cv2 loop, and what a cached load costs.

(a) engine.data.video_io.read_frames(clip, all indices) -- the call a search's FrameCache miss
makes when the clip is no longer than the sampled frame count -- against a bare
cv2.VideoCapture read() loop with the same BGR->RGB conversion. (b) FrameCache.load hit vs
miss, each set against the time of one search evaluation at the default first rung (the
shortest training a search runs, so the largest share).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench.common import BenchContext, SectionResult, Table, Target, fmt, ratio
from engine.config import SearchConfig, TrainBudget
from engine.data.dataset import PatchSampler, make_pairs
from engine.data.enhancement import make_task
from engine.data.frame_cache import FrameCache
from engine.data.video_io import probe, read_frames
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.train.trainer import train

TRIAL_GENOME = Genome.uniform(16, 3, "conv", 3, "prelu")  # mid-size point of the search space


def _bare_decode(path: Path) -> list[np.ndarray]:
    """What a hand-written loader does: read() until the stream ends, convert to RGB."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)  # same backend as the loader
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return frames


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _decode_throughput(path: Path, reps: int, passes: int) -> dict[str, float]:
    """Median frames/s of each decoder; repetitions interleave them so load drifts hit both.
    One repetition decodes the whole clip `passes` times (the clips are short)."""
    info = probe(path)
    indices = list(range(info.frame_count))
    n_loader = len(read_frames(path, indices))  # warm-up, and proof both see the same frames
    n_bare = len(_bare_decode(path))
    if n_loader != n_bare:
        raise RuntimeError(f"{path.name}: loader read {n_loader} frames, cv2 loop {n_bare}")
    loader_s, bare_s = [], []
    for rep in range(reps):
        # Alternate which goes first too: the second of a pair runs with a warmer page cache.
        for which in ((0, 1) if rep % 2 == 0 else (1, 0)):
            if which == 0:
                loader_s.append(_timed(lambda: [read_frames(path, indices)
                                                for _ in range(passes)]))
            else:
                bare_s.append(_timed(lambda: [_bare_decode(path) for _ in range(passes)]))
    frames = n_loader * passes
    loader_fps = frames / statistics.median(loader_s)
    bare_fps = frames / statistics.median(bare_s)
    return {"frames": n_loader, "loader_fps": loader_fps, "bare_fps": bare_fps,
            "ratio": ratio(loader_fps, bare_fps)}


def _cache_loads(path: Path, n_frames: int, reps: int) -> dict[str, float]:
    """Median seconds of a FrameCache miss (fresh root each time) and of a hit."""
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        for rep in range(reps):
            root = Path(tmp) / f"r{rep}"
            cache = FrameCache(root)
            t0 = time.perf_counter()
            cache.load(path, n_frames)
            t1 = time.perf_counter()
            loaded = cache.load(path, n_frames)
            cold.append(t1 - t0)
            warm.append(time.perf_counter() - t1)
            if not loaded.hit:
                raise RuntimeError(f"{path.name}: the second FrameCache.load was not a hit")
    return {"cold_s": statistics.median(cold), "warm_s": statistics.median(warm)}


def _trial_seconds(ctx: BenchContext, clip: Path, budget: TrainBudget) -> tuple[float, str]:
    """One first-rung evaluation's training time (`budget.steps` is the first rung's steps):
    handed over by an earlier section, else estimated from a short run."""
    handed = ctx.shared.get("trial_seconds")
    if handed and ctx.shared.get("trial_steps") == budget.steps:
        return float(handed), "the median first-rung training time of section 1's searches"
    steps = 25 if ctx.quick else 100
    task = make_task("sr_x2")
    with tempfile.TemporaryDirectory(prefix="bench-trial-") as tmp:
        frames = FrameCache(tmp).load(clip, 16).frames
    sampler = PatchSampler(task, make_pairs(task, frames, 0), budget.patch_size,
                           budget.batch_size, 0)
    net = build_network(TRIAL_GENOME, task.scale)
    short = TrainBudget(steps, budget.batch_size, budget.patch_size, budget.learning_rate,
                        budget.threads)
    stats = train(net, sampler, short, seed=0)
    how = (f"estimated: training {TRIAL_GENOME.key()} (x2) for {steps} steps of the default "
           f"budget (batch {budget.batch_size}, patch {budget.patch_size}, "
           f"{budget.threads} thread) took {stats.train_seconds:.2f} s, scaled by "
           f"{budget.steps}/{steps}; evaluation and latency measurement are left out")
    return stats.train_seconds * budget.steps / steps, how


def run(ctx: BenchContext) -> SectionResult:
    start = time.perf_counter()
    names = ["city_tiny.mp4"] if ctx.quick else ["city.mp4", "calendar.mp4"]
    clips = [ctx.data("video", name) for name in names]
    reps = 3 if ctx.quick else 5
    passes = 5 if ctx.quick else 4
    search = SearchConfig(clip=str(clips[0]))
    n_frames = search.n_frames
    budget = replace(search.budget, steps=search.rung_steps[0])  # the default first rung

    decode_rows, cache_rows, figures = [], [], {}
    for clip in clips:
        info = probe(clip)
        d = _decode_throughput(clip, reps, passes)
        ctx.log(f"  {clip.name}: loader {d['loader_fps']:.0f} fps, bare cv2 "
                f"{d['bare_fps']:.0f} fps, ratio {d['ratio']:.2f}x")
        decode_rows.append([clip.name, f"{info.width}x{info.height}", int(d["frames"]),
                            round(d["loader_fps"], 1), round(d["bare_fps"], 1),
                            round(d["ratio"], 3)])
        c = _cache_loads(clip, n_frames, reps)
        ctx.log(f"  {clip.name}: FrameCache miss {c['cold_s'] * 1e3:.1f} ms, "
                f"hit {c['warm_s'] * 1e3:.1f} ms")
        figures[clip.name] = {**d, **c}

    trial_s, trial_how = _trial_seconds(ctx, clips[0], budget)
    ctx.log(f"  one trial: {trial_s:.1f} s ({trial_how})")
    for clip in clips:
        c = figures[clip.name]
        c["trial_share"] = c["warm_s"] / trial_s
        cache_rows.append([clip.name, round(c["cold_s"] * 1e3, 1), round(c["warm_s"] * 1e3, 1),
                           round(ratio(c["cold_s"], c["warm_s"]), 1),
                           f"{100 * c['cold_s'] / trial_s:.2f}%",
                           f"{100 * c['warm_s'] / trial_s:.3f}%"])

    worst_ratio = min(figures[c.name]["ratio"] for c in clips)
    worst_clip = max(names, key=lambda name: figures[name]["trial_share"])
    worst_share = figures[worst_clip]["trial_share"]
    figures.update(trial_seconds=trial_s, trial_seconds_source=trial_how,
                   worst_loader_ratio=worst_ratio, worst_cached_share=worst_share)
    targets = [
        Target("loader vs bare cv2 decode loop", ">= 0.9x",
               f"{worst_ratio:.2f}x (lowest over {', '.join(names)})", worst_ratio >= 0.9),
        Target("cached load / one trial", "< 2%",
               f"{100 * worst_share:.3f}% ({worst_clip}: {figures[worst_clip]['warm_s'] * 1e3:.1f}"
               f" ms vs {trial_s:.1f} s)", worst_share < 0.02),
    ]
    text = [
        f"**Decode throughput.** Each clip ({', '.join(names)}; all 15 frames) is decoded by "
        "the project's loader, `engine.data.video_io.read_frames(clip, all indices)` (FFmpeg "
        "backend, `grab()`/`retrieve()`, BGR->RGB with `cv2.cvtColor`), and by a bare "
        "`cv2.VideoCapture(clip, CAP_FFMPEG)` `read()` loop with the same `cvtColor`. Both "
        "open the file on every pass, so open/close overhead is included; the one-off "
        "`probe()` is not. A repetition decodes the whole clip "
        f"{passes} times; {reps} repetitions alternate loader and bare loop (and which goes "
        "first), and the table gives the median frames/s of each.",
        f"**Cached load.** `FrameCache.load(clip, n_frames={n_frames})` (the search's default "
        "frame count) into a temporary cache root: a miss (empty root: content hash, probe, "
        "decode, `np.save` with fsync) against a hit (content hash, `np.load` of the .npy). "
        f"Median of {reps} pairs, each miss in a fresh root. The share is set against one "
        f"search evaluation at the default first rung ({budget.steps} steps, batch "
        f"{budget.batch_size}, patch {budget.patch_size}; the shortest a search runs): "
        f"{trial_s:.1f} s, {trial_how}.",
        "Absolute rates move with the machine's load; the interleaving keeps the ratios "
        "fair.",
    ]
    tables = [
        Table("Decode throughput", ["clip", "size", "frames", "loader fps", "bare cv2 fps",
                                    "loader/bare"], decode_rows,
              f"frames/s, median of {reps} interleaved repetitions of {passes} full decodes; "
              "both include BGR->RGB"),
        Table("Cached vs fresh load", ["clip", "miss ms", "hit ms", "miss/hit",
                                       "miss / trial", "hit / trial"], cache_rows,
              f"FrameCache.load of {n_frames} sampled frames, median of {reps}; "
              f"trial = {fmt(trial_s, 1)} s"),
    ]
    return SectionResult("loader", "Frame loader", text, tables, [], targets, figures,
                         seconds=time.perf_counter() - start)
