"""Section "jobs": how fast a job stops when cancelled, how soon a preview starts while another
user's full training runs, and how long a SIGKILLed worker's search takes to train again.

The scaled stack docker-compose runs, on real processes: the web server (`python -m
webapp.serve`) and TWO `celery worker` processes, one per queue as docker-compose's `worker`
(`-Q celery`: searches, full trainings) and `interactive` (`-Q interactive`: previews)
services run them, on Redis db 13 (flushed before and after) and SQLite in a temporary
STUDIO_DATA_DIR. Every figure is what a user sees: the page's own endpoints over HTTP (session
cookie + CSRF, studio_harness.http_session) and the time an event reaches a real WebSocket
client (studio_harness.ws_listener). Small real work on city_tiny.mp4 (single fidelity, a few
hundred to a few thousand steps per trial so a trial lasts seconds).

    python -m bench --only jobs       # issue 10's targets: cancel <= 5 s, preview <= 5 s,
                                      # SIGKILL -> training again <= 60 s
    python -m bench.job_latency       # the same figures, printed only

Quick mode: the same sizes without the SIGKILL stage (it waits about a minute for the
watchdog at its default settings).
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, SectionResult, Table, Target, fmt

REDIS_DB = 13  # as the live section; the tests use 14 (reliability) and 15 (browser)
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
# The live section's lock: one stack on Redis db 13 at a time (each flushes it).
STACK_LOCK = Path(tempfile.gettempdir()) / "pixel-automl-bench-live.lock"
CLIP = REPO_ROOT.parent / "shared" / "data" / "video" / "city_tiny.mp4"
PASSWORD = "bench-job-latency-42"
GOAL_S = 5.0  # cancel to "cancelled", and a preview's start: issue 10
REVIVE_GOAL_S = 60.0  # a worker SIGKILL to training again
ENDS = ("search_done", "search_failed", "search_cancelled", "search_interrupted")
FULL_TRAIN_ENDS = ("full_training_done", "full_training_failed", "full_training_cancelled")
PREVIEW_ENDS = ("preview_ready", "preview_failed", "preview_cancelled")
# A queued search's cancel is waited for this long while the job ahead of it still runs,
# then that job is cancelled (the full-training stage) and the wait goes on.
QUEUED_WAIT_S = 15.0
STAGE_WAIT_S = 180.0  # a cancel not seen by then is recorded as this lower bound
LOWER_BOUND = " (the figure is a lower bound)"
FULL_TRAIN_STEPS = 200_000  # the most the endpoint accepts: it runs until cancelled

_BASE = {"task": "sr_x2", "resolution": [320, 180], "rungs": None, "n_frames": 6,
         "prototype_reference": False}
# Finished first: their trials are what the full training and the preview start from.
FINISHED = {**_BASE, "n_trials": 2, "learned_baselines": False,
            "budget": {"steps": 40, "batch_size": 4, "patch_size": 16}}
# Cancelled mid-work: long enough that the cancel lands inside a baseline or a trial.
LONG = {**_BASE, "n_trials": 20, "learned_baselines": False,
        "budget": {"steps": 3000, "batch_size": 4, "patch_size": 16}}
# Learned baselines start once half the candidates have started (engine next_job): with 2
# candidates, right after the first trial.
BASELINES = {**LONG, "n_trials": 2, "learned_baselines": True}
# The default search's shape: learned baselines on, still pending during the first trials.
TRIALS = {**LONG, "learned_baselines": True}
# Killed mid-trial: a few trials of a few seconds each, so it finishes after the revival.
KILLED = {**_BASE, "n_trials": 3, "learned_baselines": False,
          "budget": {"steps": 600, "batch_size": 4, "patch_size": 16}}

BADGE = re.compile(r'class="badge badge-([a-z]+)"')
PREVIEW_PATH = re.compile(r"/previews/(\d+)/")


class JobBenchError(RuntimeError):
    """The stack misbehaved (a refused request, an unexpected end): the message says how."""


# --- pure helpers (tests/bench/test_bench_parts.py) -------------------------------------------

def preview_status(html: str) -> str | None:
    """The status badge of a preview page (queued, running, ready, failed), as a user reads
    it; None when the page shows none."""
    found = BADGE.search(html)
    return found.group(1) if found else None


def preview_id(location: str) -> int:
    """The preview's id from the redirect its creation answers (`/previews/<id>/`)."""
    found = PREVIEW_PATH.search(location)
    if not found:
        raise JobBenchError(f"a preview request redirected to {location!r}, not a preview page")
    return int(found.group(1))


def worst_stage(stages: dict[str, float | None]) -> tuple[str, float] | None:
    """The slowest measured stage (None: none was measured)."""
    measured = {name: s for name, s in stages.items() if s is not None}
    if not measured:
        return None
    name = max(measured, key=measured.__getitem__)
    return name, measured[name]


def stage_met(seconds: float | None, ended: str | None) -> bool | None:
    """A cancel stage meets the goal when the job ended 'cancelled' within GOAL_S."""
    if seconds is None:
        return None
    return seconds <= GOAL_S and ended == "cancelled"


def stage_verdict(seconds: float | None, ended: str | None) -> str:
    return {True: "yes", False: "no", None: "-"}[stage_met(seconds, ended)]


def duplicates(numbers: list[int]) -> int:
    """How many entries repeat an earlier one."""
    return len(numbers) - len(set(numbers))


# --- the stack ------------------------------------------------------------------------------

@dataclass
class Stack:
    env: dict[str, str]
    root: Path
    port: int = 0
    web: Any = None
    long: Any = None  # the `-Q celery` worker (searches, full trainings)
    interactive: Any = None  # the `-Q interactive` worker (previews)
    retired: list[Any] = field(default_factory=list)  # killed workers, stopped at the end

    def check_alive(self) -> None:
        for process in (self.web, self.long, self.interactive):
            if process is not None:
                process.check_alive()

    def logs(self, chars: int = 2500) -> str:
        return "\n".join(p.tail(chars) for p in (self.web, self.long, self.interactive)
                         if p is not None)


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


@contextmanager
def _exclusive(log: Callable[[str], None]) -> Iterator[None]:
    with STACK_LOCK.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  jobs: another benchmark run holds {STACK_LOCK}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def start_workers(stack: Stack, queues: list[str]) -> list[Any]:
    """docker-compose's worker command, one process per queue, started together and waited
    for ('ready.' in its log)."""
    from studio_harness.processes import Process, wait_for, worker_command

    started = []
    for queue_name in queues:
        n = sum(1 for p in stack.retired if queue_name in p.name) + 1
        started.append(Process(f"worker-{queue_name}-{n}", worker_command(queue_name),
                                stack.env, stack.root))
    try:
        for process in started:
            wait_for(lambda p=process: "ready." in p.text(), 120,
                     f"{process.name} to be ready", alive=process.check_alive)
    except BaseException:
        for process in started:
            process.stop()
        raise
    return started


@contextmanager
def scaled_stack(log: Callable[[str], None]) -> Iterator[Stack]:
    from studio_harness.processes import redis_answers, run_manage, start_server

    if not redis_answers():
        raise JobBenchError("no Redis answers at 127.0.0.1:6379; start one with "
                            "`redis-server --daemonize yes --port 6379 --save '' "
                            "--appendonly no`")
    root = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "PIXEL_CACHE_DIR",
                        "STUDIO_OPTUNA_STORAGE", "STUDIO_INPROCESS_WORKER",
                        "STUDIO_HEARTBEAT_S", "STUDIO_STALE_AFTER_S", "STUDIO_WATCH_EVERY_S")}
    env.update({"DJANGO_SETTINGS_MODULE": "webapp.settings", "STUDIO_DATA_DIR": str(root),
                "DJANGO_SECRET_KEY": "bench-job-latency", "DJANGO_DEBUG": "0",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
                "REDIS_URL": REDIS_URL, "DATABASE_URL": f"sqlite:///{root / 'studio.sqlite3'}",
                "MEDIA_ROOT": str(root / "media"),
                "PIXEL_CACHE_DIR": str(root / "frame-cache")})
    stack = Stack(env, root)
    with _exclusive(log):
        try:
            _flush_redis()
            run_manage(env, "migrate", "--noinput", "-v", "0", timeout=300)
            stack.web, stack.port = start_server(env, root)
            stack.long, stack.interactive = start_workers(stack, ["celery", "interactive"])
            yield stack
        finally:
            for process in (stack.interactive, stack.long, stack.web, *stack.retired):
                if process is not None:
                    process.stop()
            try:
                _flush_redis()
            finally:
                shutil.rmtree(root, ignore_errors=True)


# --- a user: a search, its session, its WebSocket --------------------------------------------

@dataclass
class User:
    search: int
    http: Any  # studio_harness.http_session.HttpSession
    ws: Any  # studio_harness.ws_listener.WsListener (open, snapshot read)


def new_user(stack: Stack, config: dict[str, Any], name: str) -> User:
    """A user with a clip and a search (queued, not launched), its session and an open
    WebSocket on the search's page channel."""
    from studio_harness.http_session import HttpSession
    from studio_harness.processes import run_driver
    from studio_harness.ws_listener import WsListener

    created = run_driver(stack.env, "create", json.dumps({
        "username": f"{name}-{uuid.uuid4().hex[:6]}", "password": PASSWORD,
        "clip": str(CLIP), "name": f"bench jobs: {name}", "config": config}))
    http = HttpSession(stack.port, created["sessionid"])
    ws = WsListener(stack.port, f"/ws/searches/{created['search']}/", http.cookie_header)
    ws.__enter__()
    try:
        if not ws.wait_open():
            raise JobBenchError(f"the WebSocket was refused ({ws.close_code})")
        _, snapshot = ws.next(timeout=30)
        if snapshot.get("type") != "snapshot":
            raise JobBenchError(f"expected the snapshot first, got {snapshot}")
    except BaseException:
        ws.close()
        raise
    return User(created["search"], http, ws)


def launch(stack: Stack, user: User) -> None:
    from studio_harness.processes import run_driver

    run_driver(stack.env, "launch", str(user.search))


def wait_event(user: User, predicate: Callable[[dict[str, Any]], bool], timeout: float,
               alive: Callable[[], None]) -> tuple[dict[str, Any], float] | None:
    """The next event matching `predicate` and its arrival time at the client (time.time());
    None when none came within `timeout` s. Everything read stays in `user.ws.received`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            arrived, message = user.ws.next(timeout=0.25)
        except queue.Empty:
            alive()
            if user.ws.closed.is_set() and user.ws.messages.empty():
                raise JobBenchError(f"the server closed the WebSocket ({user.ws.close_code})"
                                    ) from None
            continue
        if message.get("type") == "event" and predicate(message["event"]):
            return message["event"], arrived
    return None


def need(found: tuple[dict[str, Any], float] | None, what: str,
         stack: Stack) -> tuple[dict[str, Any], float]:
    if found is None:
        raise JobBenchError(f"timed out waiting for {what}\n{stack.logs()}")
    return found


def post(user: User, path: str, form: dict[str, str] | None = None,
         ok: tuple[int, ...] = (200, 302)) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = user.http.request("POST", path, form)
    if status not in ok:
        raise JobBenchError(f"POST {path} answered {status}: {body[:300]!r}")
    return status, headers, body


def complete_trial(user: User) -> str:
    """A complete trial of a finished search (its checkpoint is what jobs start from)."""
    trials = user.http.get_json(f"/api/searches/{user.search}")["trials"]
    done = [t["number"] for t in trials if t["state"] == "complete"]
    if not done:
        raise JobBenchError(f"search {user.search} has no complete trial: {trials}")
    return f"trial-{done[0]}"


def cancel_search(stack: Stack, user: User, timeout: float
                  ) -> tuple[float, float | None, dict[str, Any] | None]:
    """POST the page's cancel; (when it was sent, seconds to the end event or None, end)."""
    sent = time.time()
    post(user, f"/searches/{user.search}/cancel")
    found = wait_event(user, lambda e: e["kind"] in ENDS, timeout, stack.check_alive)
    if found is None:
        return sent, None, None
    end, arrived = found
    return sent, arrived - sent, end


def bounded(seconds: float | None, stage: str, notes: dict[str, str]) -> float:
    """A stage's seconds; when no end came within STAGE_WAIT_S, that wait (a lower bound,
    said in its note: the stage missed the goal by at least that much)."""
    if seconds is None:
        notes[stage] = f"; NOT cancelled within {STAGE_WAIT_S:.0f} s{LOWER_BOUND}"
        return STAGE_WAIT_S
    return round(seconds, 2)


def cancelled(end: dict[str, Any] | None, what: str) -> None:
    if end is not None and end["kind"] != "search_cancelled":
        raise JobBenchError(f"{what}: the search ended with {end}, not search_cancelled")


# --- the stages -----------------------------------------------------------------------------

def preview_cancel_route() -> bool:
    """Whether the studio has a preview cancel endpoint (a named route) at this commit."""
    urls = (REPO_ROOT / "webapp" / "studio" / "urls.py").read_text()
    return bool(re.search(r"preview\w*cancel|cancel\w*preview", urls))


def search_stage(stack: Stack, config: dict[str, Any], name: str, progress_kind: str,
                 stages: dict[str, float | None], notes: dict[str, str],
                 ends: dict[str, str], users: list[User]) -> None:
    """A new user's search launched, cancelled at its first `progress_kind` event."""
    user = new_user(stack, config, name.split(",")[0].replace(" ", "-"))
    users.append(user)
    launch(stack, user)
    event, _ = need(wait_event(user, lambda e: e["kind"] == progress_kind, 600,
                               stack.check_alive), f"a {progress_kind} event", stack)
    _, seconds, end = cancel_search(stack, user, STAGE_WAIT_S)
    stages[name] = bounded(seconds, name, notes)
    ends[name] = end_state(end)
    what = (f"{event['name']}" if progress_kind == "baseline_progress"
            else f"trial {event['number']}")
    notes[name] = f"{what} at step {event['step']} of {event['steps']}" + notes.get(name, "")


def end_state(end: dict[str, Any] | None) -> str:
    """What the page says once the job ended: 'cancelled', or the other end it reached."""
    if end is None:
        return "still running"
    if end["kind"] in ("search_cancelled", "full_training_cancelled", "preview_cancelled"):
        return "cancelled"
    reason = end.get("reason") or end.get("error") or ""
    return f"{end.get('status') or end['kind']} ({end['kind']}{': ' + reason if reason else ''})"


def measure(quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    figures: dict[str, Any] = {"layout": "web + worker -Q celery + worker -Q interactive",
                               "database": "SQLite", "redis": REDIS_URL}
    stages: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    ends: dict[str, str] = {}
    reasons: dict[str, str] = {}  # why a figure misses, in a few words
    clock = time.perf_counter()

    def say(line: str) -> None:
        log(f"  jobs [{time.perf_counter() - clock:5.0f} s]: {line}")

    with scaled_stack(log) as stack:
        say(f"web :{stack.port}, workers -Q celery and -Q interactive, Redis db {REDIS_DB}, "
            f"SQLite in {stack.root}")
        alive = stack.check_alive
        users: list[User] = []
        try:
            # 1. Two users' tiny searches to completion (one after the other on `worker`).
            owner, viewer = new_user(stack, FINISHED, "owner"), new_user(stack, FINISHED,
                                                                           "viewer")
            users += [owner, viewer]
            started = time.time()
            launch(stack, owner)
            launch(stack, viewer)
            for user in (owner, viewer):
                end, _ = need(wait_event(user, lambda e: e["kind"] in ENDS, 600, alive),
                              f"search {user.search} to finish", stack)
                if end["kind"] != "search_done":
                    raise JobBenchError(f"a tiny search ended with {end}\n{stack.logs()}")
            figures["tiny_searches_s"] = round(time.time() - started, 1)
            say(f"two tiny searches done in {figures['tiny_searches_s']} s")

            # 2. The owner's full training, run until cancelled.
            candidate = complete_trial(owner)
            ft_started = time.time()
            post(owner, f"/searches/{owner.search}/full-train",
                 {"candidate": candidate, "steps": str(FULL_TRAIN_STEPS)})
            progress, _ = need(wait_event(
                owner, lambda e: e["kind"] == "full_training_progress", 300, alive),
                "the full training's first progress", stack)
            say(f"full training of {candidate} running (step {progress['step']})")

            # 3. The viewer's preview meanwhile, on the interactive worker; then another,
            # cancelled at its first frame.
            figures["preview"] = measure_preview(stack, viewer, owner, alive)
            say(f"preview during the full training: {figures['preview']}")
            if preview_cancel_route():
                stages["preview"], ends["preview"], notes["preview"] = cancel_preview(
                    stack, viewer, alive)
            else:
                stages["preview"] = None
                notes["preview"] = "not measured (no preview cancel yet)"

            # 4. A third user's search, queued behind the full training, cancelled.
            queued = new_user(stack, LONG, "queued")
            users.append(queued)
            launch(stack, queued)
            state = queued.http.get_json(f"/api/searches/{queued.search}")["search"]["status"]
            sent, seconds, end = cancel_search(stack, queued, QUEUED_WAIT_S)

            # 5. The full training cancelled (its page's button: POST .../full-train/cancel).
            ft_sent = time.time()
            post(owner, f"/searches/{owner.search}/full-train/cancel", {"candidate": candidate})
            found = wait_event(owner, lambda e: e["kind"] in FULL_TRAIN_ENDS, STAGE_WAIT_S,
                               alive)
            stages["full training"] = bounded(found and found[1] - ft_sent, "full training",
                                              notes)
            ends["full training"] = end_state(found and found[0])
            notes["full training"] = (f"{candidate} to {FULL_TRAIN_STEPS:,} steps, running "
                                      f"{ft_sent - ft_started:.0f} s (last progress: step "
                                      f"{last_full_step(owner)})"
                                      + notes.get("full training", ""))
            if seconds is None:  # still queued after QUEUED_WAIT_S: the job ahead ran on
                found = wait_event(queued, lambda e: e["kind"] in ENDS, STAGE_WAIT_S, alive)
                end = found and found[0]
                seconds = found and found[1] - sent
                reasons["queued"] = ("cancelled only once the job ahead of it stopped (waited "
                                     f"{QUEUED_WAIT_S:.0f} s, then cancelled that job)")
                notes["queued"] = (f"status {state!r} behind another user's full training; "
                                   f"not cancelled within {QUEUED_WAIT_S:.0f} s: it ended "
                                   + (f"{found[1] - ft_sent:.1f} s after that full training "
                                      "was cancelled (the worker took its launch task then)"
                                      if found else "not even after the full training ended"))
            else:
                notes["queued"] = f"status {state!r} behind another user's full training"
            extra: dict[str, str] = {}
            stages["queued"] = bounded(seconds, "queued", extra)
            notes["queued"] += extra.get("queued", "")
            ends["queued"] = end_state(end)
            say(f"cancel: preview {stages['preview']} s, queued {stages['queued']} s, full "
                f"training {stages['full training']} s")

            # 6. Mid-baseline: learned baselines on, cancelled at its first progress event.
            search_stage(stack, BASELINES, "mid-baseline", "baseline_progress", stages, notes,
                         ends, users)
            # 7. Mid-trial, the default search (learned baselines on, not yet started).
            search_stage(stack, TRIALS, "mid-trial", "training_progress", stages, notes,
                         ends, users)
            # 8. Mid-trial with learned baselines off: the case where the engine's report
            # may read "complete" (nothing pending) although candidates were left.
            search_stage(stack, LONG, "mid-trial, learned baselines off", "training_progress",
                         stages, notes, ends, users)
            say(f"cancel: mid-baseline {stages['mid-baseline']} s, mid-trial "
                f"{stages['mid-trial']} s, mid-trial without baselines "
                f"{stages['mid-trial, learned baselines off']} s ({ends})")

            # 9. A worker SIGKILLed mid-trial, a replacement started at once.
            if not quick:
                killed = new_user(stack, KILLED, "killed")
                users.append(killed)
                figures["kill"] = measure_kill(stack, killed, say)
                say(f"SIGKILL mid-trial: {figures['kill']}")
        finally:
            for user in users:
                user.ws.close()
    for name, seconds in stages.items():
        if notes.get(name, "").endswith(LOWER_BOUND):
            reasons[name] = f"not cancelled within {seconds:.0f} s"
    figures.update(stages={k: stages.get(k) for k in STAGE_WHAT}, ends=ends, notes=notes,
                   reasons=reasons,
                   load=round(os.getloadavg()[0], 1))
    return figures


def cancel_preview(stack: Stack, viewer: User, alive: Callable[[], None]
                   ) -> tuple[float | None, str, str]:
    """Another preview of the viewer's, cancelled (POST /previews/<id>/cancel) at its first
    progress event: (seconds to its end event, how it ended, a note)."""
    candidate = complete_trial(viewer)
    _, headers, _ = post(viewer, f"/searches/{viewer.search}/previews",
                         {"candidate": candidate, "mode": "measured"}, ok=(302,))
    pk = preview_id({k.lower(): v for k, v in headers.items()}.get("location", ""))
    first, _ = need(wait_event(viewer, lambda e: e["kind"] in PREVIEW_ENDS + ("preview_progress",)
                               and e.get("preview") == pk, 120, alive),
                    "the preview's first frame", stack)
    if first["kind"] != "preview_progress":
        return None, end_state(first), f"ended ({first['kind']}) before its first frame"
    sent = time.time()
    post(viewer, f"/previews/{pk}/cancel")
    found = wait_event(viewer, lambda e: e["kind"] in PREVIEW_ENDS and e.get("preview") == pk,
                       STAGE_WAIT_S, alive)
    notes: dict[str, str] = {}
    seconds = bounded(found and found[1] - sent, "preview", notes)
    return (seconds, end_state(found and found[0]),
            f"{candidate}, frame {first['done']} of {first['total']}" + notes.get("preview", ""))


def last_full_step(user: User) -> int | None:
    steps = [m["event"]["step"] for _, m in user.ws.received
             if m.get("type") == "event" and m["event"]["kind"] == "full_training_progress"]
    return steps[-1] if steps else None


def measure_preview(stack: Stack, viewer: User, owner: User,
                    alive: Callable[[], None]) -> dict[str, Any]:
    """The viewer asks for a preview while the owner's full training runs: seconds from the
    request to its page saying 'running' (polled every 0.1 s, as the page's own refresh
    would show it), to its first progress event, and to 'ready'."""
    owner.ws.drain()
    busy = not any(m.get("type") == "event" and m["event"]["kind"] in FULL_TRAIN_ENDS
                   for _, m in owner.ws.received)
    step = last_full_step(owner)
    candidate = complete_trial(viewer)
    sent = time.time()
    _, headers, _ = post(viewer, f"/searches/{viewer.search}/previews",
                         {"candidate": candidate, "mode": "measured"}, ok=(302,))
    pk = preview_id({k.lower(): v for k, v in headers.items()}.get("location", ""))
    running = status = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        code, _, page = viewer.http.request("GET", f"/previews/{pk}/", accept_json=False)
        status = preview_status(page.decode(errors="replace")) if code == 200 else None
        if status in ("running", "ready", "failed"):
            running = time.time() - sent
            break
        alive()
        time.sleep(0.1)
    if status == "failed" or running is None:
        raise JobBenchError(f"preview {pk} read {status!r}\n{stack.logs()}")
    end, ready = need(wait_event(viewer, lambda e: e["kind"] in ("preview_ready",
                                                                 "preview_failed")
                                 and e.get("preview") == pk, 300, alive),
                      "the preview's end", stack)
    if end["kind"] != "preview_ready":
        raise JobBenchError(f"the preview failed: {end}")
    first = [arrived for arrived, m in viewer.ws.received
             if m.get("type") == "event" and m["event"]["kind"] == "preview_progress"
             and m["event"].get("preview") == pk]
    owner.ws.drain()
    still = not any(m.get("type") == "event" and m["event"]["kind"] in FULL_TRAIN_ENDS
                    for _, m in owner.ws.received)
    return {"running_s": round(running, 2),
            "first_progress_s": round(first[0] - sent, 2) if first else None,
            "ready_s": round(ready - sent, 2), "candidate": candidate,
            "full_training_running": busy and still, "full_training_step": step}


def measure_kill(stack: Stack, user: User, log: Callable[[str], None]) -> dict[str, Any]:
    """SIGKILL the `-Q celery` worker during a trial's training and start a new one at once,
    as docker-compose's restart policy does; nobody presses anything. Seconds from the kill
    to the replacement being ready, to the search's `search_revived` event (the watchdog),
    to training again (a training_progress event), and to the search's end; then the
    stored trials: counted, lost, duplicated."""
    from studio_harness.processes import run_driver

    alive = stack.check_alive
    launch(stack, user)
    first, _ = need(wait_event(user, lambda e: e["kind"] == "trial_finished" and e["counted"],
                               300, alive), "the first trial's end", stack)
    victim, _ = need(wait_event(
        user, lambda e: e["kind"] == "training_progress"
        and e["number"] > first["trial"]["number"], 120, alive),
        "a later trial's progress", stack)
    before = user.http.get_json(f"/api/searches/{user.search}")["trials"]
    finished_before = {t["number"] for t in before if t["state"] == "complete"}
    killed_at = time.time()
    stack.long.kill()
    stack.retired.append(stack.long)
    stack.long = None
    (stack.long,) = start_workers(stack, ["celery"])
    ready = time.time() - killed_at
    log(f"killed the long worker during trial {victim['number']} (step "
        f"{victim['step']}); replacement ready after {ready:.1f} s")
    revived, revived_at = need(wait_event(user, lambda e: e["kind"] == "search_revived", 240,
                                          alive), "search_revived", stack)
    _, training_at = need(wait_event(user, lambda e: e["kind"] == "training_progress", 240,
                                     alive), "training again", stack)
    end, end_at = need(wait_event(user, lambda e: e["kind"] in ENDS, 600, alive),
                       "the revived search's end", stack)
    state = run_driver(stack.env, "dump", str(user.search))
    counted = [t["candidate"] for t in state["optuna"]["trials"] if t["counted"]]
    finishes = [e["trial"]["number"] for _, m in user.ws.received
                if m.get("type") == "event" and (e := m["event"])["kind"] == "trial_finished"
                and e["counted"]]
    rows = {t["number"]: t for t in state["trials"]}
    lost = sorted(n for n in finished_before if rows.get(n, {}).get("state") != "complete")
    return {"victim_trial": victim["number"], "victim_step": victim["step"],
            "replacement_ready_s": round(ready, 1),
            "revived_s": round(revived_at - killed_at, 1),
            "silent_s": round(revived.get("silent_seconds", 0.0), 1),
            "training_again_s": round(training_at - killed_at, 1),
            "end_s": round(end_at - killed_at, 1), "end": end["kind"],
            "n_trials": KILLED["n_trials"], "finished_trials": state["search"]["finished_trials"],
            "optuna_counted": state["optuna"]["counted"], "lost": len(lost),
            "duplicated_rows": duplicates([t["number"] for t in state["trials"]]),
            "duplicated_counted": duplicates(counted),
            "duplicated_on_socket": duplicates(finishes),
            "watchdog": "defaults: heartbeat 10 s, stale after 30 s, a look every 10 s"}


# --- the section ----------------------------------------------------------------------------

STAGE_WHAT = {
    "queued": "a search waiting behind another user's full training (launched, not started)",
    "mid-baseline": "a search training a learned baseline (its first baseline_progress)",
    "mid-trial": "a search training its first trial, learned baselines on (the default)",
    "mid-trial, learned baselines off": "the same with learned baselines off",
    "full training": "a full training (long past its first full_training_progress)",
    "preview": "a preview rendering (its first preview_progress)",
}


def run(ctx) -> SectionResult:  # noqa: ANN001  # bench.common.BenchContext
    started = time.perf_counter()
    found = measure(ctx.quick, ctx.log)
    stages, notes, ends, reasons = (found["stages"], found["notes"], found["ends"],
                                    found["reasons"])
    worst = worst_stage(stages)
    rows = [[name, STAGE_WHAT[name], notes.get(name, ""), fmt(seconds, 2),
             ends.get(name, "-"), stage_verdict(seconds, ends.get(name))]
            for name, seconds in stages.items()]
    missed = [name for name, seconds in stages.items()
              if stage_met(seconds, ends.get(name)) is False]
    targets = [Target("cancel to 'cancelled' on the page, every stage", f"<= {GOAL_S:.0f} s",
                      (f"worst {worst[1]:.2f} s ({worst[0]})" if worst else "none measured")
                      + (f"; missed: {', '.join(missed)}" if missed else ""),
                      None if worst is None else not missed)]
    for name, seconds in stages.items():
        measured = (notes.get(name, "not measured") if seconds is None else
                    f"{seconds:.2f} s" + ("" if ends.get(name) == "cancelled"
                                          else f", ended {ends.get(name)}")
                    + (f": {reasons[name]}" if name in reasons else ""))
        targets.append(Target(f"cancel {name}", f"<= {GOAL_S:.0f} s, cancelled", measured,
                              stage_met(seconds, ends.get(name))))
    preview = found["preview"]
    targets.append(Target("preview start while another user's full training runs",
                          f"<= {GOAL_S:.0f} s", f"{preview['running_s']:.2f} s",
                          preview["running_s"] <= GOAL_S))
    tables = [
        Table("Cancel to 'cancelled' seen by a WebSocket client, per stage",
              ["stage", "what was running", "at the cancel", "seconds", "ended",
               f"<= {GOAL_S:.0f} s, cancelled"],
              rows, note="seconds: from the POST of the page's cancel endpoint to the arrival "
                         "of the job's end event (search_cancelled, full_training_cancelled, "
                         "preview_cancelled; or whatever end came instead)"),
        Table("A preview requested while another user's full training runs",
              ["request -> page says running", "-> first progress event", "-> ready",
               "full training still running", "its step at the request"],
              [[fmt(preview["running_s"], 2), fmt(preview["first_progress_s"], 2),
                fmt(preview["ready_s"], 2), "yes" if preview["full_training_running"] else "no",
                preview["full_training_step"]]],
              note="seconds from the viewer's POST /searches/<id>/previews; the page "
                   "polled every 0.1 s, events timed on arrival at the viewer's WebSocket"),
    ]
    kill = found.get("kill")
    if kill:
        met = kill["training_again_s"] <= REVIVE_GOAL_S
        targets.append(Target("worker SIGKILL mid-trial to training again",
                              f"<= {REVIVE_GOAL_S:.0f} s", f"{kill['training_again_s']:.1f} s",
                              met))
        healed = (kill["end"] == "search_done" and kill["lost"] == 0
                  and kill["duplicated_rows"] == 0 and kill["duplicated_counted"] == 0
                  and kill["duplicated_on_socket"] == 0
                  and kill["optuna_counted"] == kill["n_trials"])
        targets.append(Target("after the SIGKILL: lost / duplicated trials, action by anyone",
                              "0 / 0 / none",
                              f"{kill['lost']} / {kill['duplicated_counted']} / none; "
                              f"{kill['optuna_counted']} of {kill['n_trials']} counted, "
                              f"{kill['end']}", healed))
        tables.append(Table(
            "A worker SIGKILLed mid-trial, a replacement started at once",
            ["replacement ready", "search_revived", "training again", "search ended",
             "counted / requested", "lost", "duplicated"],
            [[fmt(kill["replacement_ready_s"], 1), fmt(kill["revived_s"], 1),
              fmt(kill["training_again_s"], 1), fmt(kill["end_s"], 1),
              f"{kill['optuna_counted']} / {kill['n_trials']}", kill["lost"],
              kill["duplicated_counted"] + kill["duplicated_rows"]]],
            note="seconds from the SIGKILL; the watchdog at its defaults (heartbeat 10 s, "
                 "stale after 30 s, a look every 10 s)"))
    else:
        targets.append(Target("worker SIGKILL mid-trial to training again",
                              f"<= {REVIVE_GOAL_S:.0f} s", "not measured in --quick", None))
    sizes = (f"{LONG['budget']['steps']:,} steps per trial and baseline (batch "
             f"{LONG['budget']['batch_size']}, {LONG['budget']['patch_size']}x"
             f"{LONG['budget']['patch_size']} patches, output 320x180)")
    text = [
        "The scaled stack as docker-compose runs it, on real processes: `python -m "
        "webapp.serve` and two `celery -A webapp worker --pool=solo` processes, one per queue "
        "(`-Q celery`: searches and full trainings; `-Q interactive`: previews), on Redis db "
        f"{REDIS_DB} (flushed before and after) and SQLite in a temporary STUDIO_DATA_DIR. "
        "Every step goes through the page's own endpoints over HTTP with a session cookie "
        "and CSRF (POST /searches/<id>/cancel, /full-train, /full-train/cancel, /previews, "
        "/previews/<id>/cancel), "
        "and every figure stops when the event a page waits for reaches a real WebSocket "
        "client. Work is small and real, on city_tiny.mp4: two users' tiny searches run to "
        "completion first (their trials are what the full training and the preview start "
        f"from); the cancelled searches train {sizes}, so the cancel always lands inside the "
        "work.",
        "Order, on one stack: user A full-trains a trial to "
        f"{FULL_TRAIN_STEPS:,} steps on the long-jobs worker; user B asks for a preview "
        "meanwhile (it runs on the interactive worker), then for another one, cancelled at "
        "its first frame; user C's search is launched behind A's full training and "
        f"cancelled while queued (waited for up to {QUEUED_WAIT_S:.0f} s; if still queued, "
        "A's full training is cancelled, which is the full-training stage, and the wait "
        "goes on); then three searches are cancelled at their first progress event: during "
        "a learned baseline (2 candidates: the baselines start after the first), during the "
        "first trial of a default-shaped search (learned baselines on, still pending), and "
        "during the first trial with learned baselines off. A stage meets the goal when the "
        "page reads 'cancelled' within 5 s: a job that stopped in time but reads something "
        "else is a miss. "
        + ("Finally the long-jobs worker is SIGKILLed during a trial of a 3-trial search and "
           "a replacement is started at once (as docker-compose's restart policy would); the "
           "watchdog runs at its defaults (STUDIO_HEARTBEAT_S 10, STUDIO_STALE_AFTER_S 30, "
           "STUDIO_WATCH_EVERY_S 10), and the search is left to finish by itself, then its "
           "stored trials are counted. " if kill else
           "The SIGKILL stage is skipped in --quick (it waits about a minute for the "
           "watchdog). ")
        + f"Load average {found['load']} at the end (2 cores; other work shares the machine, "
        "so these are upper bounds).",
    ]
    figures = {k: v for k, v in found.items() if k != "notes"}
    figures["worst_cancel_s"] = worst[1] if worst else None
    return SectionResult(key="jobs", title="Jobs: cancel, a preview beside a full training, "
                         "a killed worker", text=text, tables=tables, targets=targets,
                         figures=figures, seconds=time.perf_counter() - started)


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    found = measure(quick, print)
    print(json.dumps(found, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
