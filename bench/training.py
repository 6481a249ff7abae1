"""Train one network on a clip's training frames for a step budget, cached by configuration.

Every network the benchmarks train outside a search (the learned baselines at the top rung,
the rank-fidelity candidates) goes through `train_cached`, so all see the same frames, patch
stream, initialisation and warmup-stable-decay schedule as a search's evaluations, and a
second run reuses the checkpoint. A spec with `rungs` trains through a search's rungs as its
promotions do: each rung continues the constant-rate state the rung below left (the result
equals one run to the top budget) and the held-out PSNR is recorded at every rung. An
interrupted one-go training resumes from its last saved step (the engine's resumable trainer).
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.cache import Cache, source_fingerprint
from engine.config import SearchConfig, TrainBudget
from engine.data.dataset import PatchSampler
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.nets.handcrafted import HANDCRAFTED
from engine.search.search import SearchData, prepare
from engine.train.checkpoint import save_checkpoint
from engine.train.cost import count_macs, count_params, deployed
from engine.train.trainer import evaluate, train

# What a trained model depends on besides its own configuration.
TRAINING_SOURCES = ("engine/data", "engine/nets", "engine/train")
# Bump when this module changes what a cached record means (2: seeded initialisation as the
# search's evaluator, rung chains, CPU seconds, MACs at the spec's resolution).
TRAINING_VERSION = 2


@dataclass(frozen=True)
class TrainingSpec:
    clip: str
    task: str
    net: str  # a handcrafted name ("espcn", "edsr_8x32"), or "genome" with `genome_json`
    steps: int
    genome_json: str | None = None  # Genome.to_dict() as JSON (hashable, picklable)
    patch_size: int = 32
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    n_frames: int = 16
    # Steps of each rung, lowest first, ending at `steps`: train through them as promotions
    # do (None: one run to `steps`).
    rungs: tuple[int, ...] | None = None
    resolution: tuple[int, int] = (1280, 720)  # output frame the MACs are counted for

    def __post_init__(self) -> None:
        if self.rungs is not None and (not self.rungs or self.rungs[-1] != self.steps):
            raise ValueError(f"rungs {self.rungs} must end at steps ({self.steps})")

    @classmethod
    def for_genome(cls, genome: dict[str, Any], **kwargs: Any) -> TrainingSpec:
        return cls(net="genome", genome_json=json.dumps(genome, sort_keys=True), **kwargs)

    @property
    def genome(self) -> Genome | None:
        return Genome.from_dict(json.loads(self.genome_json)) if self.genome_json else None

    @property
    def label(self) -> str:
        return self.genome.key() if self.genome else self.net


def _spec_key(spec: TrainingSpec, clip_key: str) -> dict[str, Any]:
    # The clip by content, not by path: a checkout elsewhere reuses the same entries.
    return {**asdict(spec), "clip": None, "clip_key": clip_key,
            "code": source_fingerprint(*TRAINING_SOURCES), "version": TRAINING_VERSION}


@lru_cache(maxsize=8)
def clip_data(clip: str, task: str, seed: int, n_frames: int) -> SearchData:
    """The search's own split of the clip: training frames and the held-out tail."""
    return prepare(SearchConfig(clip=clip, task=task, seed=seed, n_frames=n_frames))


def build(spec: TrainingSpec, scale: int) -> nn.Module:
    """The untrained network, initialised as a search's evaluation initialises it."""
    torch.manual_seed(spec.seed)
    genome = spec.genome
    return build_network(genome, scale) if genome else HANDCRAFTED.get(spec.net)(scale)


def train_cached(cache: Cache, spec: TrainingSpec, threads: int = 1,
                 log: Any = print) -> dict[str, Any]:
    """Train (or reuse) the network of `spec`; returns its record with the checkpoint path,
    held-out PSNR/SSIM on the clip (`rung_psnr`: at every rung of a chain), MACs (at the
    spec's resolution), params, training seconds and the CPU seconds it cost."""
    data = clip_data(spec.clip, spec.task, spec.seed, spec.n_frames)
    key = _spec_key(spec, data.frames.key)
    checkpoint = cache.path("model", key, ".pt")

    def budget_of() -> TrainBudget:
        return TrainBudget(steps=spec.steps, batch_size=spec.batch_size,
                           patch_size=spec.patch_size, learning_rate=spec.learning_rate,
                           threads=threads)

    def sampler_of() -> PatchSampler:
        return PatchSampler(data.task, data.train_pairs, spec.patch_size, spec.batch_size,
                            spec.seed)

    def compute() -> dict[str, Any]:
        cpu = time.process_time()
        started = time.perf_counter()

        def progress(step: int, loss: float) -> None:
            rate = step / max(1e-9, time.perf_counter() - started)
            log(f"    {spec.label}: step {step}/{spec.steps}, loss {loss:.4f}, "
                f"{rate:.1f} steps/s")

        budget, rung_psnr, seconds = budget_of(), [], 0.0
        if spec.rungs is None:
            net = build(spec, data.task.scale)
            stats = train(net, sampler_of(), budget, spec.seed, progress,
                          progress_every=max(1, spec.steps // 5),
                          state_file=checkpoint.with_suffix(".state.pt"), save_every=500)
            seconds, final_loss = stats.train_seconds, stats.final_loss
        else:
            with tempfile.TemporaryDirectory(prefix="bench-rungs-") as tmp:
                previous = None
                for rung, steps in enumerate(spec.rungs):
                    net = build(spec, data.task.scale)  # replaced by the state it continues
                    stable = Path(tmp) / f"rung{rung}.pt"
                    stats = train(net, sampler_of(), budget, spec.seed, progress,
                                  progress_every=max(1, steps // 5), steps=steps,
                                  start_from=previous, stable_state=stable)
                    seconds, final_loss = seconds + stats.train_seconds, stats.final_loss
                    if rung < len(spec.rungs) - 1:
                        rung_psnr.append(evaluate(net, data.eval_pairs, data.task,
                                                  threads).psnr)
                    previous = stable
        quality = evaluate(net, data.eval_pairs, data.task, threads)
        inference = deployed(net)
        save_checkpoint(checkpoint, net, data.task.scale,
                        {"handcrafted": None if spec.genome else spec.net,
                         "steps": spec.steps, "bench": key})
        return {"psnr_clip": quality.psnr, "ssim_clip": quality.ssim,
                "rung_psnr": [*rung_psnr, quality.psnr] if spec.rungs else None,
                "macs": count_macs(inference, tuple(spec.resolution), data.task.scale),
                "params": count_params(inference), "train_seconds": seconds,
                "cpu_seconds": time.process_time() - cpu, "final_loss": final_loss}

    if not checkpoint.is_file():
        cache.forget("model", key)  # a record without its checkpoint is trained again
    record, seconds, cached = cache.cached("model", key, compute)
    return {**record, "label": spec.label, "checkpoint": str(checkpoint), "cached": cached,
            "seconds": seconds, "scale": data.task.scale}


def _train_job(args: tuple[str, TrainingSpec, int]) -> dict[str, Any]:
    root, spec, threads = args
    return train_cached(Cache(Path(root)), spec, threads)


def train_many(cache: Cache, specs: list[TrainingSpec], workers: int = 2,
               log: Any = print) -> list[dict[str, Any]]:
    """Train several specs in `workers` processes of one thread each (the 2-core layout
    that gives the most steps per second); cached ones return at once."""
    results: list[dict[str, Any] | None] = [None] * len(specs)
    todo = []
    for i, spec in enumerate(specs):
        key = _spec_key(spec, clip_data(spec.clip, spec.task, spec.seed, spec.n_frames).frames.key)
        if cache.get("model", key) is not None and cache.path("model", key, ".pt").is_file():
            results[i] = train_cached(cache, spec, 1, log)
        else:
            todo.append(i)
    if todo:
        log(f"  training {len(todo)} network(s) in {workers} process(es)")
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            jobs = [(str(cache.root), specs[i], 1) for i in todo]
            for i, record in zip(todo, pool.map(_train_job, jobs), strict=True):
                log(f"  trained {record['label']}: {record['psnr_clip']:.2f} dB on the clip, "
                    f"{record['seconds']:.0f} s")
                results[i] = record
    return [r for r in results if r is not None]
