"""A full disk while the engine writes (issue 10, part 8): a checkpoint, a training state and
a preview render fail with engine.safe_files.DiskFull, whose message names no server path
and no command line, and leave no temporary file, no half file and no folder of their own;
a good file already in place is kept as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import TrainBudget
from engine.data.dataset import PatchSampler, make_pairs
from engine.data.enhancement import make_task
from engine.data.frame_cache import FrameCache
from engine.deploy.render import render_preview
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.safe_files import DISK_FULL_MESSAGE, DiskFull, public_message
from engine.train.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from engine.train.trainer import train
from tests.conftest import TINY_CLIP
from tests.small_disk import fill, free_space, leftovers, small_disk


def net(channels: int = 8):
    torch.manual_seed(0)
    return build_network(Genome.uniform(channels, 2), 2)


def assert_clear(error: BaseException) -> None:
    assert str(error) == DISK_FULL_MESSAGE == public_message(error)
    assert "/" not in str(error) and "ffmpeg" not in str(error).lower()


def test_a_checkpoint_on_a_full_disk_keeps_the_good_one_and_leaves_no_temp(
        tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        good = save_checkpoint(checkpoint_path(disk, "trial-1"), net(8), 2, {"trial": 1})
        before = good.read_bytes()
        fill(disk, free=4096)
        with pytest.raises(DiskFull) as raised:
            save_checkpoint(good, net(32), 2, {"trial": 1})  # bigger than the room left
        assert_clear(raised.value)
        assert leftovers(disk) == ["checkpoints", "checkpoints/trial-1.pt"]  # no trial-1.tmp…
        assert good.read_bytes() == before  # the good one, never half of the new one
        load_checkpoint(good)
        # A first checkpoint on a full disk: not even its folder stays.
        with pytest.raises(DiskFull):
            save_checkpoint(checkpoint_path(disk / "search-2", "trial-1"), net(32), 2, {})
        assert leftovers(disk) == ["checkpoints", "checkpoints/trial-1.pt"]
        free_space(disk)  # space freed: writing works again
        save_checkpoint(good, net(32), 2, {"trial": 1})
        assert load_checkpoint(good)[1]["state_dict"].keys() == net(32).state_dict().keys()


def test_a_training_state_on_a_full_disk_fails_clearly_and_leaves_no_temp(
        tmp_path: Path, cache_root: Path) -> None:
    task = make_task("sr_x2")
    pairs = make_pairs(task, FrameCache(cache_root).load(TINY_CLIP, 4).frames, seed=0)
    with small_disk(tmp_path / "disk") as disk:
        fill(disk, free=0)
        with pytest.raises(DiskFull) as raised:
            train(net(32), PatchSampler(task, pairs, 16, 2, 0), TrainBudget(steps=4), seed=0,
                  state_file=disk / "states" / "partial.pt", save_every=2)
        assert_clear(raised.value)
        assert leftovers(disk) == []


def test_a_preview_render_on_a_full_disk_leaves_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        fill(disk, free=64 * 1024)  # room for a few frames, not for the three videos
        out = disk / "previews" / "7"
        with pytest.raises(DiskFull) as raised:
            render_preview(net(8), make_task("sr_x2"), TINY_CLIP, out, max_frames=15)
        assert_clear(raised.value)
        assert leftovers(disk) == []  # no temp video, no empty preview folder


def test_public_messages_drop_command_lines_and_server_paths() -> None:
    error = OSError("[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\n/opt/ffmpeg -y -i - "
                    "/srv/media/searches/1/previews/3/.output.tmp1.mp4\n")
    assert public_message(error) == "[Errno 32] Broken pipe"
    assert public_message(FileNotFoundError("checkpoint not found: /srv/m/trial-1.pt")) == (
        "checkpoint not found: trial-1.pt")
    assert public_message(RuntimeError("loss 1/2 at step 3")) == "loss 1/2 at step 3"
    assert public_message(OSError(28, "No space left on device")) == DISK_FULL_MESSAGE
