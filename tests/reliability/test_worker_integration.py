"""The scaled mode end to end with real parts: the web server and `celery worker` subprocesses on
Redis (db 14) and PostgreSQL, a real WebSocket client, and the engine's tiny searches.

1. a multi-fidelity search runs to completion (candidates promoted through tiny rungs, one
   row per candidate) and the socket receives every persisted event, in order;
2. cancelling a running search stops it within one trial;
3. SIGKILL of the worker mid-trial and a new worker, with no action by anyone (its watchdog
   queues the silent search again): exactly n counted trials, none lost, none duplicated,
   no row left 'running';
4. two workers share one multi-fidelity search; the last one to end finishes it.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from studio_harness.http_session import HttpSession
from studio_harness.processes import run_driver
from studio_harness.ws_listener import WsListener, print_latency
from tests.conftest import DATA, TINY_CLIP
from tests.reliability.conftest import Stack

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=[])]

# Single fidelity (rungs None) where a scenario counts trials; tiny rungs where it promotes.
TINY = {"task": "sr_x2", "n_trials": 3, "resolution": [320, 180], "rungs": None,
        "budget": {"steps": 10, "batch_size": 4, "patch_size": 16}}
TINY_RUNGS = {"min_steps": 10, "max_steps": 40, "eta": 2}  # 10 -> 20 -> 40 steps
KILL_STEPS = 150  # a trial lasts ~0.5-3 s here: long enough to be killed mid-training
ENDS = ("search_done", "search_failed", "search_cancelled")
LATENCY_GUARD_MS = 1000  # a loaded 2-core machine; the numbers printed are the measurement


def create_search(stack: Stack, config: dict[str, Any], clip: Path = TINY_CLIP,
                  ) -> tuple[dict[str, Any], HttpSession]:
    created = run_driver(stack.env, "create", json.dumps({
        "username": f"user-{uuid.uuid4().hex[:8]}", "password": "correct horse 42",
        "clip": str(clip), "config": config}))
    return created, HttpSession(stack.port, created["sessionid"])


def listen(stack: Stack, search_id: int, http: HttpSession) -> WsListener:
    listener = WsListener(stack.port, f"/ws/searches/{search_id}/", http.cookie_header)
    listener.__enter__()
    try:
        assert listener.wait_open(), f"socket refused: {listener.close_code}\n{stack.logs()}"
        _, snapshot = listener.next(timeout=15)
        assert snapshot["type"] == "snapshot" and snapshot["search"]["id"] == search_id
    except BaseException:
        listener.close()
        raise
    return listener


def kill_every_worker(stack: Stack) -> None:
    """SIGKILL every live worker of the stack (an earlier test may have left a second one,
    which would finish the job and hide the fault)."""
    for process in stack.processes:
        if process.name.startswith("worker") and process.popen.poll() is None:
            process.kill()


def counted_finishes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == "trial_finished" and e["counted"]]


def test_search_runs_to_completion_and_streams_every_event(stack: Stack) -> None:
    created, http = create_search(stack, {**TINY, "rungs": TINY_RUNGS})
    search_id = created["search"]
    listener = listen(stack, search_id, http)
    try:
        # Idle longer than channels-redis's 5 s BZPOPMIN: with redis-py 8's default 5 s
        # socket timeout the consumer's receive used to raise TimeoutError and drop the socket.
        time.sleep(6)
        run_driver(stack.env, "launch", str(search_id))
        end = listener.wait_event(lambda e: e["kind"] in ENDS, 120, alive=stack.check_alive)
        assert end["kind"] == "search_done", end
        received = [e for e in listener.events() if e["seq"] is not None]
    finally:
        listener.close()

    persisted = http.all_events(search_id)
    assert [e["seq"] for e in persisted] == list(range(1, len(persisted) + 1))
    # Every persisted event reached the socket, once, in sequence order, with the same body.
    assert [e["seq"] for e in received] == [e["seq"] for e in persisted]
    assert received == persisted
    finishes = counted_finishes(received)
    assert [e["finished"] for e in finishes] == [1, 2, 3]
    assert len({e["trial"]["number"] for e in finishes}) == 3

    state = run_driver(stack.env, "dump", str(search_id))
    assert state["search"]["status"] == "finished", state["search"]
    assert state["search"]["finished_trials"] == 3
    assert state["optuna"]["counted"] == 3
    rows = {t["number"]: t for t in state["trials"]}
    assert len(rows) == len(state["trials"])
    assert sorted(n for n, t in rows.items() if t["state"] == "complete") == sorted(
        e["trial"]["number"] for e in finishes)
    assert not [t for t in state["trials"] if t["state"] == "running"]
    # Promotions: further Optuna trials, each finishing in its candidate's row (3 -> 3 -> 3:
    # the two baseline seeds are anchors that reach the top rung, and ceil(1/2) of the other).
    promotions = [e for e in received if e["kind"] == "trial_finished" and e["rung"] > 0]
    assert sorted(e["rung"] for e in promotions) == [1, 1, 1, 2, 2, 2]
    assert {e["trial"]["number"] for e in promotions} <= set(rows)
    assert sorted(t["rung"] for t in rows.values() if t["state"] == "complete") == [2, 2, 2]
    assert state["search"]["evaluations_done"] == state["search"]["evaluations_planned"] == 9
    assert {n for n, t in rows.items() if t["on_front"]} == set(state["front"])
    assert received[-1]["kind"] == "search_done"
    assert "Exception inside application" not in stack.web.text(), stack.web.tail()
    print()
    summary = print_latency("scaled (Redis channel layer)", listener)
    assert summary["n"] >= 3
    assert summary["p95_ms"] < LATENCY_GUARD_MS  # the target is 200 ms; this guards regressions


def test_cancel_stops_a_running_search_within_one_trial(stack: Stack) -> None:
    config = {**TINY, "n_trials": 40, "budget": {**TINY["budget"], "steps": 150}}
    created, http = create_search(stack, config)
    search_id = created["search"]
    listener = listen(stack, search_id, http)
    try:
        run_driver(stack.env, "launch", str(search_id))
        listener.wait_event(lambda e: e["kind"] == "trial_finished" and e["counted"], 120,
                            alive=stack.check_alive)
        # The control endpoints are POST + CSRF: without the token nothing happens.
        status, _, _ = http.request("POST", f"/searches/{search_id}/cancel", csrf=False)
        assert status == 403
        assert not http.get_json(f"/api/searches/{search_id}")["search"]["cancel_requested"]
        status, body = http.post(f"/searches/{search_id}/cancel")
        assert status == 200, body
        assert json.loads(body)["search"]["cancel_requested"] is True
        end = listener.wait_event(lambda e: e["kind"] in ENDS, 60, alive=stack.check_alive)
    finally:
        listener.close()

    print()
    print_latency("scaled, cancel scenario", listener)
    assert end["kind"] == "search_cancelled" and end["status"] == "cancelled", end
    events = http.all_events(search_id)
    asked = next(e["seq"] for e in events if e["kind"] == "cancel_requested")
    started_after = [e for e in events if e["kind"] == "trial_started" and e["seq"] > asked]
    assert len(started_after) <= 1, started_after  # the trial running then, at most one more
    data = http.get_json(f"/api/searches/{search_id}")
    assert data["search"]["status"] == "cancelled"
    assert data["search"]["finished_trials"] == end["finished"] < config["n_trials"]
    assert not [t for t in data["trials"] if t["state"] == "running"]


def test_a_killed_worker_heals_by_itself_and_counts_every_trial_exactly_once(
        stack: Stack) -> None:
    n_trials = 4
    config = {**TINY, "n_trials": n_trials, "budget": {**TINY["budget"], "steps": KILL_STEPS}}
    created, http = create_search(stack, config)
    search_id = created["search"]
    listener = listen(stack, search_id, http)
    try:
        run_driver(stack.env, "launch", str(search_id))
        first = listener.wait_event(lambda e: e["kind"] == "trial_finished" and e["counted"],
                                    150, alive=stack.check_alive)
        # Mid-training of a later trial: its first progress event, long before its end.
        victim = listener.wait_event(
            lambda e: e["kind"] == "training_progress" and e["number"] > first["trial"]["number"],
            60, alive=stack.check_alive)["number"]
        stack.worker.kill()
        killed_at = time.monotonic()
        before = {t["number"]: t for t in http.get_json(f"/api/searches/{search_id}")["trials"]
                  if t["state"] != "running"}
        assert victim not in before and before, before

        # A supervisor (docker-compose's restart policy) starts a worker again; nobody
        # presses anything: its watchdog finds the silent search and queues it again.
        stack.start_worker()
        revived = listener.wait_event(lambda e: e["kind"] == "search_revived", 90,
                                      alive=stack.check_alive)
        revived_in = time.monotonic() - killed_at
        training = listener.wait_event(lambda e: e["kind"] == "training_progress", 120,
                                       alive=stack.check_alive)
        training_in = time.monotonic() - killed_at
        end = listener.wait_event(lambda e: e["kind"] in ENDS, 240, alive=stack.check_alive)
        done_in = time.monotonic() - killed_at
    finally:
        listener.close()

    print(f"\n[kill/heal] revived {revived_in:.1f} s after the kill (silent "
          f"{revived['silent_seconds']:.1f} s), training again after {training_in:.1f} s; "
          f"training {training['number']}")
    print()
    print_latency("scaled, kill/resume scenario", listener)
    assert end["kind"] == "search_done", end
    state = run_driver(stack.env, "dump", str(search_id))
    optuna_says = [(t["number"], t["state"], t["counted"]) for t in state["optuna"]["trials"]]
    print(f"\n[kill/resume] killed trial {victim}; the resumed search ended {done_in:.1f} s "
          f"after the kill; Optuna (number, state, counted): {optuna_says}")
    rows = {t["number"]: t for t in state["trials"]}
    assert len(rows) == len(state["trials"])  # one row per trial number
    assert state["search"]["status"] == "finished"
    assert state["search"]["finished_trials"] == n_trials
    assert state["optuna"]["counted"] == n_trials
    counted_numbers = {t["number"] for t in state["optuna"]["trials"] if t["counted"]}
    assert len(counted_numbers) == n_trials
    assert {n for n, t in rows.items() if t["state"] in ("complete", "failed")} - {victim} \
        == counted_numbers
    # None lost: what had finished before the kill is still there, unchanged.
    for number, row in before.items():  # (the front moves as later trials arrive)
        moved = {"on_front": None, "seq": None}  # a row whose flag changes takes a new seq
        assert {**rows[number], **moved} == {**row, **moved}, number
    # The killed trial is not counted and its row does not stay 'running'.
    assert victim not in counted_numbers
    assert rows[victim]["state"] == "failed" and "stopped mid-trial" in rows[victim]["reason"]
    assert not [t for t in state["trials"] if t["state"] == "running"]
    # None duplicated on the socket either: each counted trial finished exactly once.
    finishes = counted_finishes(listener.events())
    assert sorted(e["trial"]["number"] for e in finishes) == sorted(counted_numbers)
    assert max(e["finished"] for e in finishes) == n_trials


def test_two_workers_share_one_search(stack: Stack) -> None:
    """Optuna's distributed pattern: both worker processes run ask/evaluate/tell on the same
    study; together they end with exactly the requested number of counted trials."""
    first = stack.worker
    second = stack.start_worker()
    config = {**TINY, "n_trials": 6, "rungs": TINY_RUNGS}
    created = run_driver(stack.env, "create", json.dumps({
        "username": f"user-{uuid.uuid4().hex[:8]}", "password": "correct horse 42",
        "clip": str(TINY_CLIP), "config": config, "workers": 2}))
    search_id = created["search"]
    http = HttpSession(stack.port, created["sessionid"])
    listener = listen(stack, search_id, http)
    try:
        run_driver(stack.env, "launch", str(search_id))
        end = listener.wait_event(lambda e: e["kind"] == "search_done", 180,
                                  alive=second.check_alive)
        assert end["kind"] == "search_done"
    finally:
        listener.close()
    state = run_driver(stack.env, "dump", str(search_id))
    # Each worker stops starting candidates once 6 are done or under way; two that asked for
    # the 6th at the same moment settle it by trial number (engine.search.scheduler.
    # is_surplus): exactly 6.
    counted = state["optuna"]["counted"]
    assert state["search"]["status"] == "finished" and counted == 6
    trained = [t for t in state["optuna"]["trials"] if t["outcome"] == "trained"]
    per_rung = [sum(t["rung"] == k for t in trained) for k in range(3)]
    assert per_rung == [6, 4, 3]  # 2 anchors (the baseline seeds) + ceil(4/2), + ceil(2/2)
    assert state["search"]["evaluations_done"] == len(trained)
    numbers = [t["number"] for t in state["trials"]]
    assert len(numbers) == len(set(numbers))
    assert not [t for t in state["trials"] if t["state"] == "running"]
    for worker in (first, second):  # each process ran a share of the search
        assert "search_worker" in worker.text() and "succeeded" in worker.text(), worker.tail()


def test_a_worker_killed_mid_baseline_heals_by_itself(stack: Stack) -> None:
    """SIGKILL while a learned baseline trains: the watchdog queues the search again, the
    dead worker's claim on the baseline lapses, another worker trains it, and the search
    finishes with its trials and both baselines, with no action by anyone."""
    n_trials = 2
    # A seed of its own: baselines are cached per clip, task, budget and seed, and an earlier
    # test of this module trained them at this budget (a cache hit never trains, nothing
    # to kill).
    config = {**TINY, "n_trials": n_trials, "learned_baselines": True, "seed": 4242,
              "budget": {**TINY["budget"], "steps": KILL_STEPS}}
    created, http = create_search(stack, config)
    search_id = created["search"]
    listener = listen(stack, search_id, http)
    try:
        run_driver(stack.env, "launch", str(search_id))
        listener.wait_event(lambda e: e["kind"] == "baseline_progress", 150,
                            alive=stack.check_alive)
        kill_every_worker(stack)
        killed_at = time.monotonic()
        stack.start_worker()
        end = listener.wait_event(lambda e: e["kind"] in ENDS, 300, alive=stack.check_alive)
    finally:
        listener.close()
    print(f"\n[kill mid-baseline] the search ended {time.monotonic() - killed_at:.1f} s "
          "after the kill")
    assert end["kind"] == "search_done", end
    state = run_driver(stack.env, "dump", str(search_id))
    assert state["search"]["finished_trials"] == n_trials == state["optuna"]["counted"]
    learned = {b["name"] for b in state["search"]["baselines"] if b.get("learned")}
    assert learned == {"espcn", "fsrcnn"}
    assert not [t for t in state["trials"] if t["state"] == "running"]


def test_a_worker_killed_mid_preview_renders_it_again_by_itself(stack: Stack) -> None:
    """SIGKILL while a preview renders: the watchdog sees it silent and queues it again;
    the next worker renders it to the end, with no action by anyone."""
    config = {**TINY, "n_trials": 2, "learned_baselines": False, "prototype_reference": False,
              "budget": {**TINY["budget"], "steps": 20}}
    clip = DATA / "video" / "city.mp4"  # 704x576 frames: a render long enough to be killed in
    created, http = create_search(stack, config, clip)
    search_id = created["search"]
    listener = listen(stack, search_id, http)
    try:
        run_driver(stack.env, "launch", str(search_id))
        end = listener.wait_event(lambda e: e["kind"] in ENDS, 180, alive=stack.check_alive)
        assert end["kind"] == "search_done", end
        status, body = http.post(f"/searches/{search_id}/previews",
                                 {"candidate": "trial-0", "mode": "measured"})
        assert status in (200, 302), body[:300]
        listener.wait_event(lambda e: e["kind"] == "preview_progress", 120,
                            alive=stack.check_alive)
        kill_every_worker(stack)
        killed_at = time.monotonic()
        stack.start_worker()
        revived = listener.wait_event(lambda e: e["kind"] == "preview_revived", 90,
                                      alive=stack.check_alive)
        ready = listener.wait_event(lambda e: e["kind"] in ("preview_ready", "preview_failed"),
                                    180, alive=stack.check_alive)
    finally:
        listener.close()
    print(f"\n[kill mid-preview] preview {revived['preview']} queued again and "
          f"{ready['kind']} {time.monotonic() - killed_at:.1f} s after the kill")
    assert ready["kind"] == "preview_ready", ready
    preview = http.get_json(f"/previews/{revived['preview']}/")["preview"]
    assert preview["status"] == "ready"
    assert preview["result"]["frames"] == preview["frames_total"] == preview["frames_done"] > 1
