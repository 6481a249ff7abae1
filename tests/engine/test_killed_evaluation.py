"""A worker killed mid-evaluation (issue 10, part 8): its candidate is taken up again by
itself and continues from its last partial state, not from zero.

The kill is simulated as a BaseException out of the training loop (nothing in the engine
catches it, as nothing survives a SIGKILL), the dead worker's heartbeat is aged past the
grace period in the study's own table, and Optuna's `fail_stale_trials` then runs the
engine's failed-trial callback, as it does when the next worker opens the study."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from engine.search import evaluation
from engine.search.search import counted_trials, run_search
from engine.search.study import MAX_RETRIES, make_storage, retry_killed_candidate
from tests.engine.test_multi_fidelity import rung_config

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
KILL_AT = 12  # steps into the first rung (20 steps); partial states every 5 steps


class Killed(BaseException):
    pass


def test_a_killed_first_rung_evaluation_resumes_from_its_partial_state(
        tiny_clip: Path, tmp_path: Path, cache_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config = rung_config(tiny_clip, tmp_path / "out", storage=storage, study_name="k",
                         learned_baselines=False, prototype_reference=False)
    monkeypatch.setattr(evaluation, "PARTIAL_EVERY", 5)
    monkeypatch.setattr(evaluation, "CHECK_EVERY", 4)
    real_train = evaluation.train

    first_rung = {"n": 0}

    def train(net, sampler, budget, seed, progress=None, *args, **kwargs):
        """The third first-rung training (after the two anchor seeds) dies at KILL_AT."""
        if kwargs.get("start_from") is None:
            first_rung["n"] += 1
        doomed = first_rung["n"] == 3 and kwargs.get("start_from") is None

        def killing(step: int, loss: float) -> None:
            if doomed and step >= KILL_AT:
                raise Killed()
            if progress is not None:
                progress(step, loss)
        return real_train(net, sampler, budget, seed, killing, *args, **kwargs)

    monkeypatch.setattr(evaluation, "train", train)
    with pytest.raises(Killed):
        run_search(config, cache_root=cache_root)
    monkeypatch.setattr(evaluation, "train", real_train)

    study = optuna.load_study(study_name="k", storage=storage)
    killed = next(t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING)
    victim = killed.number
    assert killed.user_attrs.get("rung", 0) == 0 and "anchor" not in killed.user_attrs
    partials = list((tmp_path / "out" / "states").glob("partial-*-rung0.pt"))
    assert len(partials) == 1  # saved at step 10, before the kill at 12
    # The dead worker's heartbeat ages past the grace period.
    with sqlite3.connect(tmp_path / "study.db") as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")

    report = run_search(replace(config, resume=True), cache_root=cache_root)
    assert report["complete"]
    study = optuna.load_study(study_name="k", storage=storage)
    assert study.trials[victim].state == optuna.trial.TrialState.FAIL
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == victim]
    assert len(retried) == 1 and retried[0].params == killed.params
    result = retried[0].user_attrs["result"]
    assert result["start_step"] == 10 and result["steps"] == 20  # not from zero
    assert counted_trials(study) == config.n_trials  # the killed one never counts
    assert not list((tmp_path / "out" / "states").glob("partial-*"))  # finished: removed


def test_the_retry_rule(tmp_path: Path) -> None:
    storage = make_storage(f"sqlite:///{tmp_path / 'rule.db'}")
    assert storage.get_heartbeat_stale_trial_callback() is retry_killed_candidate
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    dist = optuna.distributions.IntDistribution(8, 64)

    def frozen(**attrs: object) -> optuna.trial.FrozenTrial:
        trial = study.ask({"width": dist})
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return study._storage.get_trial(trial._trial_id)

    def waiting() -> list[optuna.trial.FrozenTrial]:
        return study.get_trials(states=(optuna.trial.TrialState.WAITING,))

    # All asked before any retry is queued (an ask would pop it).
    anchor = frozen(anchor="fsrcnn")
    others = [frozen(candidate=0, rung=1),  # a promotion: the scheduler plans it again
              frozen(counted=True),  # its result stands
              frozen(retries=MAX_RETRIES)]  # given up
    retry_killed_candidate(study, anchor)
    queued = waiting()
    assert len(queued) == 1 and queued[0].system_attrs["fixed_params"] == anchor.params
    assert queued[0].user_attrs == {"retry_of": anchor.number, "retries": 1, "anchor": "fsrcnn"}
    for trial in others:
        retry_killed_candidate(study, trial)
    assert len(waiting()) == 1
