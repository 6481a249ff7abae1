"""The embedded mode as `make run` starts it: no REDIS_URL, no DATABASE_URL, its own data
folder (SQLite, media), `manage.py migrate` then the web server (`python -m webapp.serve`).
The search runs in the in-process Celery worker thread, pages keep answering meanwhile, and
a real WebSocket client receives the trial events through the in-memory channel layer
(broadcast.py's hand-off from the worker thread to the server's event loop)."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio_harness.http_session import HttpSession
from studio_harness.processes import Process, run_driver, run_manage, start_server
from studio_harness.ws_listener import WsListener, print_latency
from tests.conftest import TINY_CLIP
from tests.reliability.conftest import base_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=[])]

CONFIG = {"task": "sr_x2", "n_trials": 3, "resolution": [320, 180], "rungs": None,
          "budget": {"steps": 60, "batch_size": 4, "patch_size": 16}}
ENDS = ("search_done", "search_failed", "search_cancelled")


class Embedded:
    """`make run`'s server on its own data folder; it can be killed and started again."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.env = base_env(tmp_path / "data")
        run_manage(self.env, "migrate", "--noinput", "-v", "0")
        self.processes: list[Process] = []
        self.start()

    def start(self) -> None:
        self.web, self.port = start_server(self.env, self.tmp_path,
                                           name=f"web{len(self.processes) + 1}")
        self.processes.append(self.web)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    server = Embedded(tmp_path_factory.mktemp("embedded"))
    try:
        yield server
    finally:
        server.stop()


def create_cancelled_search(server: Embedded, config: dict) -> tuple[int, HttpSession]:
    """Rows made in a shell with the same env, 'cancelled' so the resume endpoint queues it;
    then a real login over HTTP."""
    username, password = f"user-{uuid.uuid4().hex[:8]}", "correct horse 42"
    created = run_driver(server.env, "create", json.dumps({
        "username": username, "password": password, "clip": str(TINY_CLIP), "config": config,
        "status": "cancelled"}))
    http = HttpSession(server.port)
    http.login(username, password)
    return created["search"], http


def test_embedded_server_runs_a_search_in_process_and_streams_it(embedded: Embedded) -> None:
    web, port = embedded.web, embedded.port
    search_id, http = create_cancelled_search(embedded, CONFIG)

    anonymous = WsListener(port, f"/ws/searches/{search_id}/", None)
    with anonymous:
        assert anonymous.wait_open() is False  # refused without a session

    listener = WsListener(port, f"/ws/searches/{search_id}/", http.cookie_header)
    page_seconds: list[float] = []
    with listener:
        assert listener.wait_open(), web.tail()
        _, snapshot = listener.next(timeout=15)
        assert snapshot["type"] == "snapshot" and snapshot["search"]["status"] == "cancelled"
        status, body = http.post(f"/searches/{search_id}/resume")
        assert status == 200 and json.loads(body)["search"]["status"] == "queued", body
        deadline = time.monotonic() + 150
        end = None
        while end is None:
            # A page request while the worker thread trains: it must answer promptly.
            started = time.monotonic()
            data = http.get_json(f"/api/searches/{search_id}")
            page_seconds.append(time.monotonic() - started)
            web.check_alive()
            assert time.monotonic() < deadline, (data["search"], web.tail())
            listener.drain()
            end = next((e for e in listener.events() if e["kind"] in ENDS), None)
            time.sleep(0.25)
        listener.drain()

    assert end["kind"] == "search_done", (end, web.tail())
    running_pages = len(page_seconds)
    print(f"\n[embedded] {running_pages} GET /api/searches/{search_id} during the run: "
          f"median {1000 * statistics.median(page_seconds):.0f} ms, "
          f"max {1000 * max(page_seconds):.0f} ms")
    summary = print_latency("embedded (in-memory channel layer)", listener)
    assert summary["n"] >= 3 and summary["p95_ms"] < 1000  # target 200 ms; a regression guard
    assert running_pages >= 3, page_seconds
    assert statistics.median(page_seconds) < 0.5 and max(page_seconds) < 3.0, page_seconds

    data = http.get_json(f"/api/searches/{search_id}")
    assert data["search"]["status"] == "finished" and data["search"]["finished_trials"] == 3
    finishes = [e for e in listener.events() if e["kind"] == "trial_finished" and e["counted"]]
    assert [e["finished"] for e in finishes] == [1, 2, 3]
    received = [e["seq"] for e in listener.events() if e["seq"] is not None]
    persisted = [e["seq"] for e in http.all_events(search_id)]
    assert received == persisted  # every persisted event reached the socket, in order
    assert "embedded Celery worker started" in web.text()


def test_a_search_cut_short_by_a_server_kill_is_interrupted_then_resumes(
        embedded: Embedded) -> None:
    """SIGKILL of the whole embedded server mid-trial: on restart the search reads
    'interrupted' (not 'running' for ever); resuming it ends with exactly n counted trials."""
    n_trials = 2
    config = {**CONFIG, "n_trials": n_trials, "budget": {**CONFIG["budget"], "steps": 150}}
    search_id, http = create_cancelled_search(embedded, config)
    with WsListener(embedded.port, f"/ws/searches/{search_id}/", http.cookie_header) as ws:
        assert ws.wait_open(), embedded.web.tail()
        status, body = http.post(f"/searches/{search_id}/resume")
        assert status == 200, body
        first = ws.wait_event(lambda e: e["kind"] == "trial_finished" and e["counted"], 120,
                              alive=embedded.web.check_alive)
        victim = ws.wait_event(
            lambda e: e["kind"] == "training_progress" and e["number"] > first["trial"]["number"],
            60, alive=embedded.web.check_alive)["number"]
        embedded.web.kill()

    embedded.start()
    http.port = embedded.port  # the session lives in the database: still signed in
    data = http.get_json(f"/api/searches/{search_id}")
    assert data["search"]["status"] == "interrupted", data["search"]
    assert http.all_events(search_id)[-1]["kind"] == "search_interrupted"

    with WsListener(embedded.port, f"/ws/searches/{search_id}/", http.cookie_header) as ws:
        assert ws.wait_open(), embedded.web.tail()
        status, body = http.post(f"/searches/{search_id}/resume")
        assert status == 200 and json.loads(body)["search"]["status"] == "queued", body
        end = ws.wait_event(lambda e: e["kind"] in ENDS, 150, alive=embedded.web.check_alive)
    assert end["kind"] == "search_done", (end, embedded.web.tail())

    state = run_driver(embedded.env, "dump", str(search_id))
    assert state["search"]["status"] == "finished"
    assert state["search"]["finished_trials"] == state["optuna"]["counted"] == n_trials
    counted = {t["number"] for t in state["optuna"]["trials"] if t["counted"]}
    rows = {t["number"]: t for t in state["trials"]}
    assert victim not in counted and rows[victim]["state"] == "failed"
    assert {n for n, t in rows.items() if t["state"] in ("complete", "failed")} - {victim} \
        == counted
    assert not [t for t in state["trials"] if t["state"] == "running"]
