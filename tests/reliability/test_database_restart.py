"""PostgreSQL restarted under a running search (issue 10, part 8): the search finishes with
exactly the requested trials, nothing failed, no action by anyone.

The cluster is the test's own (tests/reliability/own_postgres.py, initdb into a temporary
folder on another port), never the machine's shared server. A fast restart terminates every
open connection, as `pg_ctl restart` or a crashed server does; the studio's rows
(webapp.studio.transient) and the engine's Optuna storage (pool_pre_ping, and the worker run
again after a transient error) wait it out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio_harness.processes import run_driver, run_manage
from tests.reliability.conftest import (
    FAST_WATCHDOG,
    REDIS_URL,
    Stack,
    _flush_redis,
    scaled_environment,
)
from tests.reliability.own_postgres import OwnPostgres
from tests.reliability.test_worker_integration import (
    ENDS,
    KILL_STEPS,
    TINY,
    counted_finishes,
    create_search,
    listen,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=[])]


@pytest.fixture(scope="module")
def postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pg_stack(postgres: OwnPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = scaled_environment(tmp_path_factory.mktemp("pg-restart"), REDIS_URL,
                             postgres.url) | FAST_WATCHDOG
    _flush_redis()
    run_manage(env, "migrate", "--noinput", "-v", "0")
    stack = Stack(env, tmp_path_factory.mktemp("pg-restart-logs"))
    try:
        yield stack
    finally:
        stack.stop()
        _flush_redis()


@pytest.mark.parametrize("stage", ["mid-baseline", "mid-trial"])
def test_a_database_restart_never_fails_a_search(pg_stack: Stack, postgres: OwnPostgres,
                                                  stage: str, tmp_path: Path) -> None:
    n_trials = 3
    config = {**TINY, "n_trials": n_trials, "budget": {**TINY["budget"], "steps": KILL_STEPS},
              "learned_baselines": stage == "mid-baseline", "prototype_reference": False}
    created, http = create_search(pg_stack, config)
    search_id = created["search"]
    listener = listen(pg_stack, search_id, http)
    try:
        run_driver(pg_stack.env, "launch", str(search_id))
        if stage == "mid-baseline":
            listener.wait_event(lambda e: e["kind"] == "baseline_progress", 150,
                                alive=pg_stack.check_alive)
        else:
            first = listener.wait_event(lambda e: e["kind"] == "trial_finished"
                                        and e["counted"], 150, alive=pg_stack.check_alive)
            listener.wait_event(lambda e: e["kind"] == "training_progress"
                                and e["number"] > first["trial"]["number"], 60,
                                alive=pg_stack.check_alive)
        restarted_at = time.monotonic()
        postgres.restart()
        down_s = time.monotonic() - restarted_at
        end = listener.wait_event(lambda e: e["kind"] in ENDS, 300, alive=pg_stack.check_alive)
        done_in = time.monotonic() - restarted_at
    finally:
        listener.close()
    worker_log = pg_stack.worker.text()
    waited = [line for line in worker_log.splitlines()
              if "retrying in" in line or "worker runs again" in line]
    print(f"\n[postgres restart, {stage}] restart took {down_s:.1f} s; the search ended "
          f"{done_in:.1f} s later ({end['kind']}); transient errors waited out:")
    print("\n".join(waited[:5]))
    # The restart was felt (the worker's connection was terminated) and waited out.
    assert waited, worker_log[-3000:]
    assert end["kind"] == "search_done", (end, pg_stack.logs())
    state = run_driver(pg_stack.env, "dump", str(search_id))
    assert state["search"]["status"] == "finished" and not state["search"]["error"]
    assert state["search"]["finished_trials"] == n_trials
    assert state["optuna"]["counted"] == n_trials
    rows = [t["number"] for t in state["trials"]]
    assert len(rows) == len(set(rows))  # one row per candidate: none duplicated
    assert not [t for t in state["trials"] if t["state"] == "running"]
    # Web rows and the study agree on every counted trial.
    counted = {t["number"] for t in state["optuna"]["trials"] if t["counted"]}
    assert counted <= {t["number"] for t in state["trials"] if t["state"] == "complete"}
    assert sorted(e["trial"]["number"] for e in counted_finishes(listener.events())) \
        == sorted(counted)
