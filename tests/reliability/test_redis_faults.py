"""Redis faults in scaled mode, on a Redis of the test's own (studio_harness.redis_server: a
free port, no persistence), with the web server and a Celery worker on it and PostgreSQL:

1. Redis down while a search is started: the request answers 503 with the message within
   seconds and leaves no search queued; once Redis is back the same request starts a search
   that runs to its end.
2. Redis restarted mid-search (killed, so every key is lost, and started again): the search
   finishes with exactly its trials, and the open page (Chromium) said "reconnecting", came
   back by itself and shows every trial as the database has it.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from studio_harness.http_session import HttpSession
from studio_harness.processes import run_driver, run_manage, wait_for
from studio_harness.redis_server import OwnRedis
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import TINY_CLIP
from tests.reliability.conftest import POSTGRES, Stack, scaled_environment
from webapp.studio.dispatch import QUEUE_DOWN

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=[])]

# Single fidelity, 150 steps a trial: each lasts ~0.5-3 s here, the search ~20 s.
CONFIG = {"task": "sr_x2", "n_trials": 5, "resolution": [320, 180], "rungs": None,
          "budget": {"steps": 150, "batch_size": 4, "patch_size": 16}}
OUTAGE_S = 3.0
ENDED = ("finished", "failed", "cancelled", "interrupted")
# Records every state of the page's status line from the first paint on.
WATCH_LIVE = """
document.addEventListener("DOMContentLoaded", () => {
  const line = document.getElementById("sp-live");
  if (!line) return;
  window.liveStates = [line.dataset.state];
  new MutationObserver(() => window.liveStates.push(line.dataset.state + ":" + line.textContent))
    .observe(line, { attributes: true, childList: true, subtree: true, characterData: true });
});
"""


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_stack(redis: OwnRedis, postgres_database: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = scaled_environment(tmp_path_factory.mktemp("redis-faults"), redis.url,
                             f"{POSTGRES}/{postgres_database}")
    run_manage(env, "migrate", "--noinput", "-v", "0")
    stack = Stack(env, tmp_path_factory.mktemp("logs"))
    try:
        yield stack
    finally:
        stack.stop()


def queued_searches(database: str) -> int:
    done = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tA",
                           "-c", "SELECT count(*) FROM studio_search WHERE status = 'queued'"],
                          check=True, capture_output=True, text=True, timeout=60)
    return int(done.stdout.strip())


def new_search_form(clip: int) -> dict[str, str]:
    return {"name": "redis fault", "clip": str(clip), "task": "sr_x2", "quality": "psnr",
            "cost": "macs", "width": "320", "height": "180", "strategy": "random",
            "n_trials": "2", "fidelity": "single", "steps": "20", "workers": "1",
            "seed": "0", "noise_sigma": "25", "jpeg_quality": "20"}


def wait_ended(stack: Stack, http: HttpSession, search_id: int, timeout: float) -> dict:
    def ended() -> dict | None:
        search = http.get_json(f"/api/searches/{search_id}")["search"]
        return search if search["status"] in ENDED else None

    return wait_for(ended, timeout, f"search {search_id} to end", interval=1,
                    alive=stack.check_alive)


def test_redis_down_a_start_answers_503_and_leaves_nothing_queued(
        redis: OwnRedis, redis_stack: Stack, postgres_database: str) -> None:
    created = run_driver(redis_stack.env, "create", json.dumps({
        "username": f"user-{uuid.uuid4().hex[:8]}", "password": "correct horse 42",
        "clip": str(TINY_CLIP), "config": CONFIG, "status": "cancelled"}))
    http = HttpSession(redis_stack.port, created["sessionid"])
    redis.kill()
    try:
        started = time.monotonic()
        status, body = http.post("/searches/new/", new_search_form(created["clip"]))
        seconds = time.monotonic() - started
        assert status == 503 and json.loads(body) == {"error": QUEUE_DOWN}, body[:500]
        assert seconds < 10, f"the request waited {seconds:.1f} s for a dead Redis"
        assert queued_searches(postgres_database) == 0
    finally:
        redis.start()
    print(f"\n[redis down] a new search was refused (503) in {seconds:.2f} s")

    # Redis is back: the same request starts a search, which runs to its end.
    status, headers, _ = http.request("POST", "/searches/new/", new_search_form(created["clip"]),
                                      accept_json=False)
    assert status == 302, status
    location = {k.lower(): v for k, v in headers.items()}["location"]
    search_id = int(location.rstrip("/").rsplit("/", 1)[-1])
    search = wait_ended(redis_stack, http, search_id, 240)
    assert (search["status"], search["finished_trials"]) == ("finished", 2), search


def test_redis_restarted_mid_search_the_page_catches_up(redis: OwnRedis,
                                                        redis_stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    created = run_driver(redis_stack.env, "create", json.dumps({
        "username": f"user-{uuid.uuid4().hex[:8]}", "password": "correct horse 42",
        "clip": str(TINY_CLIP), "config": CONFIG}))
    search_id, n_trials = created["search"], CONFIG["n_trials"]
    http = HttpSession(redis_stack.port, created["sessionid"])
    base = f"http://127.0.0.1:{redis_stack.port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": created["sessionid"],
                                  "url": base}])
            page = context.new_page()
            page.add_init_script(WATCH_LIVE)
            page.goto(f"{base}/searches/{search_id}/")
            live = page.locator("#sp-live")
            expect(live).to_have_attribute("data-state", "live", timeout=15_000)

            run_driver(redis_stack.env, "launch", str(search_id))
            # Mid-search: one trial done, more to come.
            wait_for(lambda: http.get_json(f"/api/searches/{search_id}")["search"]
                     ["finished_trials"] >= 1, 240, "a first trial", interval=0.5,
                     alive=redis_stack.check_alive)
            redis.kill()
            killed_at = time.monotonic()
            at_kill = http.get_json(f"/api/searches/{search_id}")["search"]
            expect(live).to_have_attribute("data-state", "reconnecting", timeout=15_000)
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - killed_at)))
            redis.start()
            expect(live).to_have_attribute("data-state", "live", timeout=30_000)
            back_in = time.monotonic() - killed_at

            search = wait_ended(redis_stack, http, search_id, 240)
            expect(page.locator("#sp-status")).to_have_text("finished", timeout=30_000)
            rows = http.get_json(f"/api/searches/{search_id}")["trials"]
            expect(page.locator("#sp-rows tr")).to_have_count(len(rows), timeout=30_000)
            shown = page.evaluate("[...document.querySelectorAll('#sp-rows tr[data-trial]')]"
                                  ".map(tr => [Number(tr.dataset.trial), tr.dataset.state])")
            states = page.evaluate("window.liveStates")
        finally:
            browser.close()

    print(f"\n[redis restart] killed with {at_kill['finished_trials']}/{n_trials} trials done; "
          f"the page was live again {back_in:.1f} s after the kill; its states: {states}")
    assert at_kill["status"] == "running" and at_kill["finished_trials"] < n_trials, at_kill
    assert (search["status"], search["finished_trials"]) == ("finished", n_trials), search
    state = run_driver(redis_stack.env, "dump", str(search_id))
    assert state["optuna"]["counted"] == n_trials
    assert any(s.startswith("reconnecting:reconnecting") for s in states), states
    # The page shows every trial as the database has it, none still running.
    assert sorted(shown) == sorted([t["number"], t["state"]] for t in rows)
    assert not [t for t in rows if t["state"] == "running"]
    assert "Exception inside application" not in redis_stack.web.text(), redis_stack.web.tail()

