"""Multi-fidelity search: MO-ASHA promotion order, continuation equal to one-go training, the
whole search end to end on city_tiny.mp4 with tiny rungs (20 -> 40 -> 80 steps), verdicts at
the top rung, baselines trained to it and cached, and exact counts across kill and resume."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.config import Rungs, SearchConfig, TrainBudget
from engine.events import ListSink
from engine.search.pareto import dominates
from engine.search.promotion import (
    RungEntry,
    crowding_distances,
    nondominated_ranks,
    promotable,
    promotion_order,
)
from engine.search.search import run_search

SMALL = TrainBudget(batch_size=4, patch_size=16, threads=1)
TINY_RUNGS = Rungs(min_steps=20, max_steps=80, eta=2)
RESOLUTION = (320, 180)


def rung_config(clip: Path, out: Path | None, **changes) -> SearchConfig:
    base = SearchConfig(clip=str(clip), task="sr_x2", n_trials=6, budget=SMALL,
                        rungs=TINY_RUNGS, resolution=RESOLUTION, n_frames=4,
                        out_dir=str(out) if out else None)
    return replace(base, **changes)


# --- promotion order (pure) ---------------------------------------------------------------

def test_nondominated_sorting_and_crowding() -> None:
    points = [(30.0, 1e9), (31.0, 4e9), (29.0, 2e9), (32.0, 9e9), (30.5, 5e9)]
    assert nondominated_ranks(points) == [0, 0, 1, 0, 1]
    distances = crowding_distances([points[i] for i in (0, 1, 3)])
    assert distances[0] == math.inf and distances[2] == math.inf and 0 < distances[1] < math.inf


def test_promotion_is_multi_objective_not_by_quality_alone() -> None:
    # The cheapest net is the worst by PSNR but alone on the front's cheap end: it moves up.
    entries = [RungEntry(0, 27.0, 1e8), RungEntry(1, 30.0, 5e9), RungEntry(2, 29.9, 6e9),
               RungEntry(3, 29.8, 7e9), RungEntry(4, 31.0, 3e10), RungEntry(5, 29.0, 8e9)]
    order = [e.candidate for e in promotion_order(entries)]
    assert order[:3] == [0, 4, 1]  # the front, extremes first (crowding), then the middle
    by_psnr = sorted(entries, key=lambda e: -e.quality)
    assert [e.candidate for e in by_psnr[:2]] != order[:2]


def test_asynchronous_quota_floor_while_open_ceil_when_closed() -> None:
    entries = [RungEntry(i, 30.0 + i, 1e9 * (i + 1)) for i in range(3)]
    assert promotable(entries, set(), eta=4, closed=False) == []  # 3 // 4: wait for more
    assert len(promotable(entries, set(), eta=4, closed=True)) == 1  # ceil: the top rung fills
    five = entries + [RungEntry(3, 29.0, 5e9), RungEntry(4, 28.0, 6e9)]
    first = promotable(five, set(), eta=4, closed=False)
    assert len(first) == 1
    assert promotable(five, set(first), eta=4, closed=False) == []  # never past the quota


def test_anchors_move_up_outside_the_quota() -> None:
    # Candidate 0 (an anchor) is the worst of its rung: it moves up anyway, first, and takes
    # no slot of the quota, which counts the other candidates only.
    entries = [RungEntry(0, 20.0, 9e9)] + [RungEntry(i, 30.0 + i, 1e9 * i) for i in (1, 2, 3)]
    anchors = frozenset({0})
    assert promotable(entries, set(), eta=2, closed=False, anchors=anchors)[:1] == [0]
    ready = promotable(entries, set(), eta=2, closed=True, anchors=anchors)
    assert ready[0] == 0 and len(ready) == 1 + 2  # the anchor, then ceil(3 / 2)
    assert promotable(entries, {0}, eta=2, closed=True, anchors=anchors) == ready[1:]
    assert promotable(entries, set(ready), eta=2, closed=True, anchors=anchors) == []
    assert Rungs(20, 80, 2).planned(6, anchors=2) == [6, 4, 3]
    assert Rungs(20, 80, 2).planned(1, anchors=2) == [1, 1, 1]  # only one seed fits


# --- continuation ---------------------------------------------------------------------------

def test_promotion_continues_to_exactly_the_one_go_result(tiny_clip: Path, tmp_path: Path,
                                                          cache_root: Path) -> None:
    from engine.data.dataset import PatchSampler, make_pairs, split_frames
    from engine.data.enhancement import make_task
    from engine.data.frame_cache import FrameCache
    from engine.nets.builder import build_network
    from engine.nets.genome import Genome
    from engine.train.trainer import evaluate, train

    task = make_task("sr_x2")
    frames = FrameCache(cache_root).load(str(tiny_clip), 4)
    pairs = make_pairs(task, frames.frames, 0)
    train_pos, eval_pos = split_frames(frames.indices, 0.2)
    train_pairs, eval_pairs = [pairs[i] for i in train_pos], [pairs[i] for i in eval_pos]
    genome = Genome.uniform(8, 2)

    def run(steps: int, start: Path | None = None, out: Path | None = None) -> float:
        torch.manual_seed(0)
        net = build_network(genome, 2)
        sampler = PatchSampler(task, train_pairs, 16, 4, 0)
        train(net, sampler, SMALL, 0, steps=steps, start_from=start, stable_state=out)
        return evaluate(net, eval_pairs, task).psnr

    run(20, None, tmp_path / "r0.pt")
    run(40, tmp_path / "r0.pt", tmp_path / "r1.pt")
    promoted = run(80, tmp_path / "r1.pt")
    assert promoted == pytest.approx(run(80), abs=1e-9)
    with pytest.raises(ValueError, match="past the constant-rate phase"):
        run(20, tmp_path / "r1.pt")  # a longer run's state cannot shrink back


# --- the whole search -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, ListSink]:
    from tests.conftest import TINY_CLIP

    root = tmp_path_factory.mktemp("rungs")
    sink = ListSink()
    report = run_search(rung_config(TINY_CLIP, root / "out"), sink, cache_root=root / "cache")
    return report, root, sink


def test_rungs_end_to_end(searched: tuple[dict, Path, ListSink]) -> None:
    report, root, _ = searched
    assert report["rung_steps"] == [20, 40, 80] and report["top_rung"] == 2
    assert report["complete"] is True
    # Two anchors (the baseline seeds) move up every rung; of the other four, ceil(4/2) = 2
    # reach rung 1 and ceil(2/2) = 1 the top.
    assert report["timing"]["evaluations_per_rung"] == [6, 4, 3]
    on_disk = json.loads((root / "out" / "report.json").read_text())
    assert on_disk["trials"] == report["trials"]
    for trial in report["trials"]:
        assert trial["state"] == "complete"
        steps = [r["steps"] for r in trial["rungs"]]
        assert steps == [20, 40, 80][: trial["rung"] + 1]
        assert trial["psnr"] == trial["rungs"][-1]["psnr"] and trial["steps"] == steps[-1]
        assert trial["top_rung"] == (trial["rung"] == 2)
        assert trial["below_reference"] == (trial["psnr"] <= report["baselines"][0]["psnr"])
        if trial["top_rung"]:
            assert trial["latency_ms"] > 0  # measured once a candidate reaches the top
        else:
            assert trial["latency_ms"] is None


def test_verdicts_read_at_the_top_rung_only(searched: tuple[dict, Path, ListSink]) -> None:
    report, _, _ = searched
    reference = report["baselines"][0]["psnr"]
    top = {t["number"] for t in report["trials"] if t["top_rung"] and t["psnr"] > reference}
    front = report["pareto_front"]
    assert front and {t["number"] for t in front} <= top
    points = [(t["psnr"], t["macs"]) for t in front]
    assert not any(dominates(a, b) for a in points for b in points)
    assert report["knee"] in {t["number"] for t in front}
    learned = [b for b in report["baselines"] if b["learned"]]
    assert [b["name"] for b in learned] == ["espcn", "fsrcnn"]
    assert all(b["steps"] == 80 for b in learned)  # trained to the top rung
    for row in report["baseline_dominance"]:
        if row["dominated"]:
            assert row["dominated_by"] in top


def test_events_carry_rungs_and_progress(searched: tuple[dict, Path, ListSink]) -> None:
    _, _, sink = searched
    started = sink.of_kind("search_started")[0]
    assert started.rung_steps == [20, 40, 80] and started.evaluations_planned == 13
    finished = sink.of_kind("trial_finished")
    assert sorted(e.rung for e in finished) == [0] * 6 + [1] * 4 + [2] * 3
    assert finished[-1].evaluations_done == 13
    assert [e.finished for e in finished if e.counted] == [1, 2, 3, 4, 5, 6]
    promotions = [e for e in sink.of_kind("trial_started") if e.rung > 0]
    assert len(promotions) == 7 and all(e.steps in (40, 80) for e in promotions)
    assert sink.of_kind("baseline_progress")[-1].steps == 80
    assert json.dumps([e.to_dict() for e in sink.events])


def test_seeds_and_checkpoints(searched: tuple[dict, Path, ListSink]) -> None:
    from engine.nets.search_space import baseline_seed_genomes
    from engine.train.checkpoint import checkpoint_path, load_checkpoint

    report, root, _ = searched
    seeds = {g.key() for g in baseline_seed_genomes(2)}
    assert seeds <= {t["arch"] for t in report["trials"]}  # the first generation holds them
    anchors = {t["arch"]: t for t in report["trials"] if t["anchor"]}
    assert set(anchors) == seeds and {t["anchor"] for t in anchors.values()} == {
        "espcn", "fsrcnn"}
    assert all(t["top_rung"] for t in anchors.values())  # whatever their first-rung rank
    for trial in report["trials"]:
        _, payload = load_checkpoint(checkpoint_path(root / "out", f"trial-{trial['number']}"))
        assert payload["meta"]["steps"] == trial["steps"]  # the longest-trained weights


def test_baselines_are_cached_per_clip(searched: tuple[dict, Path, ListSink],
                                       tiny_clip: Path) -> None:
    _, root, _ = searched
    sink = ListSink()
    config = rung_config(tiny_clip, root / "again", n_trials=2, seed=0)
    report = run_search(config, sink, cache_root=root / "cache")
    assert sink.of_kind("baseline_progress") == []  # nothing trained again
    assert all(b.get("cached") for b in report["baselines"] if b["learned"])


def test_killed_worker_then_resume_counts_every_rung_once(tiny_clip: Path, tmp_path: Path,
                                                          cache_root: Path) -> None:
    """A worker stopped mid-promotion (its trial left RUNNING, as a SIGKILL leaves it), then
    a resume: the stale evaluation is failed, redone, and every rung result counted once."""
    import optuna

    from engine.search import evaluation

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config = rung_config(tiny_clip, tmp_path / "out", storage=storage, study_name="k",
                         learned_baselines=False)
    calls = {"n": 0}
    real_train = evaluation.train

    class Killed(BaseException):  # not an Exception: nothing in the engine may catch it
        pass

    def dies_on_first_promotion(*args, **kwargs):
        if kwargs.get("start_from") is not None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise Killed()
        return real_train(*args, **kwargs)

    evaluation.train = dies_on_first_promotion
    try:
        with pytest.raises(Killed):
            run_search(config, cache_root=cache_root)
    finally:
        evaluation.train = real_train
    study = optuna.load_study(study_name="k", storage=storage)
    running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 1 and running[0].user_attrs["rung"] == 1
    # The heartbeat of the killed worker stops; past the grace period Optuna fails it.
    study._storage.set_trial_state_values(running[0]._trial_id,
                                          optuna.trial.TrialState.FAIL)
    report = run_search(replace(config, resume=True), cache_root=cache_root)
    assert report["complete"] and report["timing"]["evaluations_per_rung"] == [6, 4, 3]
    per_rung: dict[tuple[int, int], int] = {}
    for t in optuna.load_study(study_name="k", storage=storage).trials:
        if t.user_attrs.get("outcome") == "trained":
            key = (t.user_attrs["candidate"], t.user_attrs["rung"])
            per_rung[key] = per_rung.get(key, 0) + 1
    assert len(per_rung) == 13 and set(per_rung.values()) == {1}


# --- the pretrained prototype: reference row and teacher -------------------------------------

def test_prototype_reference_row(searched: tuple[dict, Path, ListSink]) -> None:
    report, _, _ = searched
    names = [b["name"] for b in report["baselines"]]
    assert names == ["bicubic", "espcn", "fsrcnn", "imdn"]
    imdn = report["baselines"][-1]
    assert imdn["label"] == "IMDN (pretrained, not trained here)" and imdn["pretrained"]
    assert not imdn["learned"] and imdn["psnr"] > report["baselines"][0]["psnr"]
    assert imdn["macs"] > report["space_macs_range"][0] and imdn["latency_ms"] > 0
    assert all(row["baseline"] != "imdn" for row in report["baseline_dominance"])


def test_teacher_outputs_computed_once_per_frame(tiny_clip: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.search.search import prepare
    from engine.train import prototype

    config = rung_config(tiny_clip, None, teacher="imdn")
    first = prepare(config, tmp_path)
    assert first.teacher is not None and len(first.teacher) == len(first.train_pairs)
    assert first.teacher[0].shape == first.train_pairs[0].target.shape

    def no_network(*args, **kwargs):
        raise AssertionError("the teacher ran again: its outputs must come from the cache")

    monkeypatch.setattr(prototype, "load_imdn", no_network)
    again = prepare(config, tmp_path)
    for a, b in zip(first.teacher, again.teacher, strict=True):
        assert (a == b).all()
    report = run_search(replace(config, n_trials=2, learned_baselines=False,
                                prototype_reference=False), cache_root=tmp_path)
    assert report["config"]["teacher"] == "imdn" and report["trials"]


def test_two_workers_share_the_rungs_without_waiting(tiny_clip: Path, tmp_path: Path) -> None:
    """Two processes on one stored study (the CLI's --resume --worker): both evaluate, every
    rung result is counted once, and the facade reports the search settled."""
    import subprocess
    import sys

    import optuna

    from engine.search import lifecycle
    from tests.conftest import REPO

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config = rung_config(tiny_clip, tmp_path / "out", n_trials=8, storage=storage,
                         study_name="shared", learned_baselines=False,
                         prototype_reference=False)
    cache = tmp_path / "cache"
    assert lifecycle.prepare(config, cache_root=cache) == "shared"
    command = [sys.executable, "-m", "engine", "search", str(tiny_clip), "--task", "sr_x2",
               "--trials", "8", "--min-steps", "20", "--max-steps", "80", "--eta", "2",
               "--batch-size", "4", "--patch-size", "16", "--threads", "1", "--frames", "4",
               "--resolution", "320x180", "--storage", storage, "--study-name", "shared",
               "--resume", "--out", str(tmp_path / "out")]
    env = {"PATH": "/usr/bin:/bin", "PIXEL_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([*command, "--worker", str(i)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trained = [t for t in optuna.load_study(study_name="shared", storage=storage).trials
               if t.user_attrs.get("outcome") == "trained"]
    keys = [(t.user_attrs["candidate"], t.user_attrs["rung"]) for t in trained]
    per_rung = [sorted(c for c, r in keys if r == k) for k in range(3)]
    anchors = sorted(t.number for t in trained if "anchor" in t.user_attrs)
    assert len(keys) == len(set(keys)) == 8 + 5 + 4, (per_rung, anchors)  # 2 anchors + 3, + 2
    assert {t.user_attrs["worker"] for t in trained} == {0, 1}
    status = lifecycle.status(config)
    assert status.settled and status.running == 0 and status.counted == 8
    assert status.evaluations_done == status.evaluations_planned == 17
    assert len(lifecycle.settle(config)) >= 8


def test_a_surplus_first_rung_trial_gives_its_slot_up() -> None:
    """Two workers that both read `started < n_trials` and asked: the lower trial number
    keeps the last slot, whatever order they check in; killed or rejected trials hold none."""
    import optuna

    state = optuna.trial.TrialState

    def trial(number: int, status, **attrs) -> optuna.trial.FrozenTrial:
        made = optuna.trial.create_trial(state=status, values=None, user_attrs=attrs) \
            if status != state.COMPLETE else optuna.trial.create_trial(
                values=[30.0, 1e9], user_attrs=attrs)
        made.number = number
        return made

    from engine.search.scheduler import is_surplus

    done = [trial(0, state.COMPLETE, outcome="trained", counted=True, rung=0, candidate=0),
            trial(1, state.COMPLETE, outcome="rejected", rung=0, candidate=1),
            trial(2, state.FAIL, outcome="cancelled", rung=0, candidate=2),  # not counted
            trial(3, state.COMPLETE, outcome="trained", counted=True, rung=1, candidate=0)]
    racing = [trial(4, state.RUNNING), trial(5, state.RUNNING)]
    trials = done + racing
    assert not is_surplus(trials, 4, n_trials=2)  # one slot left: the lower number keeps it
    assert is_surplus(trials, 5, n_trials=2)
    assert not is_surplus(trials, 5, n_trials=3)
