"""Full training: resumable after an interruption, landing on exactly the weights of an
uninterrupted run, and saved as a checkpoint that previews and exports use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import TrainBudget
from engine.data.dataset import make_pairs
from engine.data.enhancement import make_task
from engine.data.frame_cache import FrameCache
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.train.checkpoint import load_checkpoint, save_checkpoint
from engine.train.full_train import full_train

BUDGET = TrainBudget(steps=5, batch_size=4, patch_size=16, threads=1)


class Interrupted(RuntimeError):
    pass


@pytest.fixture
def setup(tiny_clip: Path, cache_root: Path, tmp_path: Path):
    task = make_task("sr_x2")
    frames = FrameCache(cache_root).load(tiny_clip, 16).frames
    pairs = make_pairs(task, frames, seed=0)
    proxy = save_checkpoint(tmp_path / "trial-0.pt", build_network(Genome.uniform(8, 2), 2), 2,
                            {"trial": 0, "steps": 5})
    return task, pairs[:12], pairs[12:], proxy


def test_interrupted_full_training_resumes_to_the_same_weights(setup, tmp_path: Path) -> None:
    task, train_pairs, eval_pairs, proxy = setup
    straight = full_train(proxy, tmp_path / "straight.pt", task, train_pairs, eval_pairs,
                          BUDGET, steps=40, seed=0, save_every=10)

    def stop_at_25(step: int, loss: float) -> None:
        if step == 25:
            raise Interrupted("worker stopped")

    out = tmp_path / "full-trial-0.pt"
    with pytest.raises(Interrupted):
        full_train(proxy, out, task, train_pairs, eval_pairs, BUDGET, steps=40, seed=0,
                   progress=stop_at_25, save_every=10)
    state = out.with_name("full-trial-0.state.pt")
    assert state.is_file() and not out.exists()
    assert torch.load(state, weights_only=True)["step"] == 20
    seen: list[int] = []
    resumed = full_train(proxy, out, task, train_pairs, eval_pairs, BUDGET, steps=40, seed=0,
                         progress=lambda step, loss: seen.append(step), save_every=10)
    assert seen[0] == 21 and seen[-1] == 40  # continued, not restarted
    assert not state.exists()
    a, _ = load_checkpoint(tmp_path / "straight.pt")
    b, payload = load_checkpoint(out)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert resumed["psnr"] == pytest.approx(straight["psnr"])
    assert payload["meta"]["full_steps"] == 40 and payload["meta"]["proxy_steps"] == 5
    assert payload["genome"]["key"] == Genome.uniform(8, 2).key()
