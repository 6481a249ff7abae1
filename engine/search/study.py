"""Opening the Optuna study of a search: in memory, or in an RDB storage that survives a
crash and is shared by several workers (with heartbeats, so a killed worker's trial does not
stay RUNNING forever)."""

from __future__ import annotations

import json

import optuna
from optuna.storages import RDBStorage

from engine.config import SearchConfig
from engine.nets.search_space import SPACE_VERSION
from engine.search.strategies import make_sampler

HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 40

class StudyError(RuntimeError):
    """A study that cannot be opened or resumed; the message says what to do."""


def default_study_name(config: SearchConfig, clip_key: str) -> str:
    return f"{config.task}-{config.strategy}-{clip_key[:12]}-seed{config.seed}"


def fingerprint(config: SearchConfig) -> dict:
    """What is searched (`config.spec`), as it reads back from storage (JSON turns tuples
    into lists): a resumed study must match it."""
    # The space's version too: a study of another space cannot be resumed (its genes differ).
    return json.loads(json.dumps({**config.spec.to_dict(), "space_version": SPACE_VERSION}))


MAX_RETRIES = 2  # a genome whose worker dies again and again is given up after this


def retry_killed_candidate(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's failed_trial_callback, run when a dead worker's evaluation is failed as stale:
    a first-rung candidate is queued again with its genome (and its anchor role), so the
    search takes it up by itself, continuing from its last partial state (evaluation.py);
    a promotion needs nothing, the scheduler plans it again from the rung below."""
    if int(trial.user_attrs.get("rung", 0)) > 0 or trial.user_attrs.get("counted"):
        return
    retries = int(trial.user_attrs.get("retries", 0))
    if retries >= MAX_RETRIES:
        return
    attrs: dict = {"retry_of": trial.number, "retries": retries + 1}
    if "anchor" in trial.user_attrs:
        attrs["anchor"] = trial.user_attrs["anchor"]
    study.enqueue_trial(trial.params, user_attrs=attrs)


def make_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    if url is None:
        return None
    if url.startswith("postgres://"):  # the Heroku/dj-database-url spelling SQLAlchemy refuses
        url = "postgresql://" + url[len("postgres://"):]
    # A server restart (PostgreSQL) leaves the pool's connections dead: test each before use,
    # so the next operation after a restart reconnects instead of failing.
    engine_kwargs = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=retry_killed_candidate,
                          engine_kwargs=engine_kwargs)
    except Exception as error:  # SQLAlchemy raises many types; all mean "cannot open"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StudyError(
            f"cannot open storage {url!r} ({reason}): pass a SQLAlchemy URL such as "
            "sqlite:///runs/study.db or postgresql://user@host/db"
        ) from None


def open_study(config: SearchConfig, clip_key: str, worker: int = 0) -> optuna.Study:
    """Create the study, or with `config.resume` load it and check it is the same search.

    `worker` numbers the processes sharing one study: each seeds its sampler differently,
    or workers with one seed would propose (and train) the same genomes side by side."""
    storage = make_storage(config.storage)
    name = config.study_name or default_study_name(config, clip_key)
    sampler = make_sampler(config.strategy, config.seed + 7919 * worker, config.n_trials)
    directions = ["maximize", "minimize"]
    if storage is not None and not config.resume:
        existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
        if name in existing:
            raise StudyError(
                f"study {name!r} already exists in {config.storage}: pass --resume to continue "
                "it, or --study-name to start a new one"
            )
    study = optuna.create_study(storage=storage, sampler=sampler, study_name=name,
                                directions=directions, load_if_exists=config.resume)
    already = len(study.get_trials(deepcopy=False))
    if already:
        # A resumed (or revived, or followed-up) study: a sampler with the first opening's
        # seed would draw the same genomes again, each then a "duplicate" of a trained one.
        # The seed moves on with the study, so a resume stays reproducible.
        study.sampler = make_sampler(config.strategy,
                                     config.seed + 7919 * worker + 104729 * already,
                                     config.n_trials)
    saved = study.user_attrs.get("fingerprint")
    current = fingerprint(config)
    if saved is None:
        study.set_user_attr("fingerprint", current)
        study.set_user_attr("config", config.to_dict())
    elif saved != current:
        changed = sorted(k for k in current if saved.get(k) != current.get(k))
        raise StudyError(
            f"study {name!r} was run with different settings ({', '.join(changed)}): resume "
            "it with its original settings, or start a new study with --study-name"
        )
    if storage is not None:
        # A worker killed mid-trial leaves it RUNNING; its heartbeat stops, so fail it now.
        optuna.storages.fail_stale_trials(study)
    return study
