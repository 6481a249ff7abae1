"""Data per clip at equal CPU-seconds: more training frames, larger patches or a larger batch?

One network (w16, four 3x3 convs, PReLU) trained on sr_x2 frames of one clip, evaluated on the
clip's last 5 frames (a gap of one frame before them), under four data settings whose step
counts are scaled so each costs about the same CPU time as `base_steps` steps of batch 16 x
32px patches. Prints one JSON line per setting (with its measured CPU-seconds).

    python -m bench.data_budget ../shared/data/video/city_full.mp4 2400
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from engine.config import TrainBudget
from engine.data.dataset import PatchSampler, make_pairs
from engine.data.enhancement import make_task
from engine.data.frame_cache import FrameCache, default_cache_root
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.train.trainer import evaluate, train

# (name, training frames, patch side, batch, cost of a step relative to 32px x 16)
SETTINGS = (("frames13 p32 b16", 13, 32, 16, 1.0), ("frames26 p32 b16", 26, 32, 16, 1.0),
            ("frames13 p48 b16", 13, 48, 16, 2.25), ("frames13 p32 b32", 13, 32, 32, 2.0))


def main(clip: str, base_steps: int) -> None:
    task = make_task("sr_x2")
    frames = FrameCache(default_cache_root()).load(clip, 1000)
    pairs = make_pairs(task, frames.frames, 0)
    held_out, pool = pairs[-5:], list(range(len(pairs) - 6))
    genome = Genome.uniform(16, 4, activation="prelu")
    for name, n_frames, patch, batch, cost in SETTINGS:
        chosen = [pool[int(round(i))]
                  for i in np.linspace(0, len(pool) - 1, min(n_frames, len(pool)))]
        steps = int(round(base_steps / cost))
        torch.manual_seed(0)
        net = build_network(genome, 2)
        budget = TrainBudget(steps=steps, batch_size=batch, patch_size=patch, threads=1)
        sampler = PatchSampler(task, [pairs[i] for i in chosen], patch, batch, 0)
        started = time.process_time()
        train(net, sampler, budget, 0)
        cpu = time.process_time() - started
        print(json.dumps({"setting": name, "frames": len(chosen), "steps": steps,
                          "cpu_s": round(cpu, 1),
                          "psnr": round(evaluate(net, held_out, task).psnr, 3)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2400)
