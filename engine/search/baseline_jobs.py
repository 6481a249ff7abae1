"""The learned baselines of a search as jobs any worker can take, like trials.

ESPCN and FSRCNN are trained to the top rung (the budget verdicts are read at). A worker
claims one in the study's user attributes and refreshes the claim while it trains; a claim
not refreshed for GRACE_SECONDS belonged to a dead worker and is taken over. Results are kept
in the study (`baseline:<name>`) and cached on disk per clip content, task, budget and seed,
so another search on the same clip does not train them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from engine.events import BaselineFinished, BaselineProgress, ProgressSink
from engine.search.evaluation import SearchCancelled
from engine.search.study import GRACE_SECONDS
from engine.train.baselines import LEARNED_BASELINES, baseline_cache_key, learned_baseline
from engine.train.checkpoint import checkpoint_path
from engine.train.prototype import NAME as PROTOTYPE
from engine.train.prototype import PrototypeCancelled, prototype_reference

if TYPE_CHECKING:
    from engine.search.search import SearchData

BEAT_SECONDS = 5.0


def _claim_key(name: str) -> str:
    return f"claim:baseline:{name}"


def _jobs(config) -> list[str]:
    names = list(LEARNED_BASELINES) if config.learned_baselines else []
    if config.prototype_reference and config.task.startswith("sr_"):
        names.append(PROTOTYPE)
    return names


def _result_key(name: str) -> str:
    return "prototype" if name == PROTOTYPE else f"baseline:{name}"


def missing_baselines(study: optuna.Study, config) -> list[str]:
    """Jobs with no result yet, claimed or not: the search is not done while one is."""
    attrs = study.user_attrs
    return [name for name in _jobs(config) if _result_key(name) not in attrs]


def pending_baselines(study: optuna.Study, config, token: str) -> list[str]:
    """Learned baselines (and the prototype's reference row) with no result and no live
    claim by another worker."""
    attrs = study.user_attrs
    pending = []
    for name in _jobs(config):
        if _result_key(name) in attrs:
            continue
        claim = attrs.get(_claim_key(name))
        if claim and claim["owner"] != token and time.time() - claim["beat"] < GRACE_SECONDS:
            continue
        pending.append(name)
    return pending


def baselines_of(study: optuna.Study, data: SearchData) -> list[dict]:
    """The no-learning reference first, then the learned baselines trained so far, then the
    pretrained prototype's reference row when there is one."""
    attrs = study.user_attrs
    rows = list(attrs.get("baselines", []))
    rows += [attrs[f"baseline:{n}"] for n in LEARNED_BASELINES if f"baseline:{n}" in attrs]
    if attrs.get("prototype") and "psnr" in attrs["prototype"]:
        rows.append(attrs["prototype"])
    return rows


def run_baseline_job(study: optuna.Study, data: SearchData, name: str, sink: ProgressSink,
                     token: str, cache_root: Path,
                     should_stop: Callable[[], bool] | None = None) -> dict | None:
    """Claim `name`, train it (or reuse the cached result), store and announce it. Returns
    None when another worker holds the claim."""
    config = data.config
    study.set_user_attr(_claim_key(name), {"owner": token, "beat": time.time()})
    if study.user_attrs.get(_claim_key(name), {}).get("owner") != token:
        return None  # another worker claimed it at the same moment and won
    if name == PROTOTYPE:
        return _run_prototype(study, data, sink, cache_root, should_stop)
    steps = config.top_steps
    last_beat = [time.time()]

    def progress(step: int, loss: float) -> None:
        if should_stop is not None and should_stop():
            raise SearchCancelled(f"cancelled while training {name}")
        if time.time() - last_beat[0] > BEAT_SECONDS:
            study.set_user_attr(_claim_key(name), {"owner": token, "beat": time.time()})
            last_beat[0] = time.time()
        sink.emit(BaselineProgress(name=name, step=step, steps=steps))

    key = baseline_cache_key(name, data.frames.key, data.task, config.budget, steps,
                             config.seed, (data.train_frames, data.eval_frames),
                             config.resolution)
    save_to = checkpoint_path(config.out_dir, f"baseline-{name}") if config.out_dir else None
    row = learned_baseline(name, data.task, data.train_pairs, data.eval_pairs, config.budget,
                           config.resolution, config.seed, progress=progress, save_to=save_to,
                           steps=steps, cache=cache_root / "baselines" / key)
    study.set_user_attr(f"baseline:{name}", row)
    sink.emit(BaselineFinished(baseline=row))
    return row


def _run_prototype(study: optuna.Study, data: SearchData, sink: ProgressSink, cache_root: Path,
                   should_stop: Callable[[], bool] | None) -> dict:
    """IMDN's reference row on the held-out frames: outputs computed once per frame (in
    tiles, so a cancel stops between tiles) and cached per clip content and task."""
    config = data.config
    keys = [f"{data.frames.key[:24]}-{config.task}-frame{i}" for i in data.eval_frames]
    try:
        row = prototype_reference(data.task, data.eval_pairs, config.resolution,
                                  cache_root / "prototype", keys, should_stop=should_stop,
                                  device=data.device, threads=config.budget.threads,
                                  latency_repeats=1)
    except PrototypeCancelled as error:
        raise SearchCancelled(str(error)) from None
    except FileNotFoundError as error:  # a deployment without ../shared/data/models
        row = {"name": PROTOTYPE, "unavailable": str(error)}
    study.set_user_attr("prototype", row)
    if row and "psnr" in row:
        sink.emit(BaselineFinished(baseline=row))
    return row
