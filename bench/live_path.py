"""Live path: how fast a trial's end reaches a WebSocket client through the scaled stack, and
how fast the search page of a 1,000-trial search becomes usable in a cold browser.

Both run on real processes: the web server (uvicorn) and a `celery worker` subprocess (the commands
docker-compose runs, from studio_harness/processes.py) on Redis db 13 and PostgreSQL (a
fresh database, dropped afterwards; SQLite when no PostgreSQL answers). The Django-side steps
(users, searches, the 1,000 seeded trials) run in bench/live_driver.py subprocesses.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchContext, SectionResult, Stopwatch, Table, Target, python

REDIS_DB = 13  # the tests use 14 (reliability) and 15 (browser)
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
# One live stack at a time on this machine: it flushes Redis db 13, so a second benchmark run
# (e.g. `make bench` beside the quick test) would lose its queued tasks and hang.
STACK_LOCK = Path(tempfile.gettempdir()) / "pixel-automl-bench-live.lock"
POSTGRES = "postgres://postgres@127.0.0.1:5432"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "bench-live-path-42"
ENDS = ("search_done", "search_failed", "search_cancelled")
PAGE_TRIALS = 1000
# One load swings by +-150 ms with the machine's load; a median of 7 steadies the figure.
PAGE_LOADS = 7
WS_GOAL_MS, PAGE_GOAL_MS = 200.0, 1000.0

# A tiny x2 search on city_tiny.mp4 at a 320x180 output: ~1-2 min of trials in normal mode.
# Single fidelity (rungs None) and no IMDN row: the section times the path, not the search.
SEARCH = {"task": "sr_x2", "n_trials": 24, "resolution": [320, 180], "rungs": None,
          "prototype_reference": False,
          "budget": {"steps": 40, "batch_size": 4, "patch_size": 16}}
QUICK_SEARCH = {"task": "sr_x2", "n_trials": 3, "resolution": [320, 180], "n_frames": 4,
                "learned_baselines": False, "rungs": None, "prototype_reference": False,
                "budget": {"steps": 5, "batch_size": 2, "patch_size": 16}}

# Runs in the page before its own scripts: each animation frame, checks whether the table
# holds every row and the chart every point; `first` is the next frame after that (the one
# that shows them), `settled` the first frame after Chart.js's update animation ended.
MONITOR_JS = """
(() => {
  if (!location.pathname.startsWith("/searches/")) return;
  const want = { rows: %(rows)d, points: %(points)d };
  const b = window.__bench = { open: null, snapshot: null, first: null, settled: null };
  // Our listeners go first: the socket's open, and its first message (the snapshot) before
  // the page parses it.
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener("open", () => { if (b.open === null) b.open = performance.now(); });
    ws.addEventListener("message", () => {
      if (b.snapshot === null) b.snapshot = performance.now();
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  function points() {
    if (typeof Chart === "undefined") return null;
    const chart = Chart.getChart("sp-pareto");
    if (!chart) return null;
    let n = 0;
    chart.data.datasets.forEach((ds, i) => {
      if (ds.label === "on the front" || ds.label === "dominated") {
        n += chart.getDatasetMeta(i).data.length;
      }
    });
    return { n, animating: Chart.animator.running(chart) };
  }
  function tick() {
    const rows = document.querySelectorAll("#sp-rows > tr").length;
    const p = points();
    if (rows === want.rows && p && p.n === want.points) {
      if (b.first === null) requestAnimationFrame(() => { b.first = performance.now(); });
      if (!p.animating) {
        requestAnimationFrame(() => { b.settled = performance.now(); });
        return;
      }
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""

NAV_JS = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  return { ttfb: n.responseStart, html: n.responseEnd, dcl: n.domContentLoadedEventEnd,
           load: n.loadEventEnd, ws_open: window.__bench.open,
           snapshot: window.__bench.snapshot, first: window.__bench.first,
           settled: window.__bench.settled,
           requests: res.length + 1,
           kb: (n.transferSize + res.reduce((s, r) => s + r.transferSize, 0)) / 1024 };
}"""


class LiveError(RuntimeError):
    """A part of the stack is missing or misbehaved; the message says what to do."""


@dataclass
class Stack:
    env: dict[str, str]
    port: int
    root: Path
    database: str  # "PostgreSQL" or "SQLite"
    processes: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_alive(self) -> None:
        for process in self.processes:
            process.check_alive()


def _psql(sql: str) -> bool:
    try:
        done = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v",
                               "ON_ERROR_STOP=1", "-c", sql], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _driver(stack_env: dict[str, str], *args: str, timeout: float = 300) -> dict[str, Any]:
    done = subprocess.run([python(), "-m", "bench.live_driver", *args], cwd=REPO_ROOT,
                          env=stack_env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise LiveError(f"bench.live_driver {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def live_stack(ctx: BenchContext) -> Iterator[Stack]:
    """The web server + one Celery worker in the scaled mode; every process, the database, Redis db
    13 and the temporary folder are cleaned up whatever happens."""
    from studio_harness.processes import redis_answers

    if not redis_answers():
        raise LiveError("no Redis answers at 127.0.0.1:6379; start one with "
                        "`redis-server --daemonize yes --port 6379 --save '' --appendonly no`")
    with _exclusive(STACK_LOCK, ctx), _stack(ctx) as stack:
        yield stack


@contextmanager
def _exclusive(path: Path, ctx: BenchContext) -> Iterator[None]:
    """An flock held for the block; waits (and says so) while another run holds it. The
    kernel releases it when its holder dies, however it dies."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            ctx.log(f"  live: another benchmark run holds {path}; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


@contextmanager
def _stack(ctx: BenchContext) -> Iterator[Stack]:
    from studio_harness.processes import run_manage, start_server, start_worker

    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "PIXEL_CACHE_DIR",
                        "STUDIO_OPTUNA_STORAGE", "STUDIO_INPROCESS_WORKER")}
    # docker-compose's settings: DEBUG off, the same hosts.
    env.update({"DJANGO_SETTINGS_MODULE": "webapp.settings", "STUDIO_DATA_DIR": str(root),
                "DJANGO_SECRET_KEY": "bench-live-path", "DJANGO_DEBUG": "0",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
                "REDIS_URL": REDIS_URL, "MEDIA_ROOT": str(root / "media"),
                "PIXEL_CACHE_DIR": str(root / "frame-cache")})
    pg_name = f"studio_bench_{uuid.uuid4().hex[:10]}"
    postgres = _psql(f"CREATE DATABASE {pg_name}")
    if postgres:
        env["DATABASE_URL"] = f"{POSTGRES}/{pg_name}"
    else:
        ctx.log("  live: no PostgreSQL at 127.0.0.1:5432 (psql), using SQLite instead")
    stack = Stack(env, 0, root, "PostgreSQL" if postgres else "SQLite")
    try:
        _flush_redis()
        run_manage(env, "migrate", "--noinput", "-v", "0", timeout=300)
        web, stack.port = start_server(env, root)
        stack.processes.append(web)
        stack.processes.append(start_worker(env, root))
        yield stack
    finally:
        for process in reversed(stack.processes):
            process.stop()
        try:
            _flush_redis()
        finally:
            if postgres:
                _psql(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")
            shutil.rmtree(root, ignore_errors=True)


def measure_ws(ctx: BenchContext, stack: Stack, clip: Path) -> dict[str, Any]:
    """A real search, watched by a real WebSocket client; latency per kind of event."""
    from studio_harness.ws_listener import WsListener, latency_summary

    config = QUICK_SEARCH if ctx.quick else SEARCH
    created = _driver(stack.env, "create", json.dumps({
        "username": f"ws-{uuid.uuid4().hex[:8]}", "password": PASSWORD, "clip": str(clip),
        "name": "live-path latency", "config": config}))
    search_id = created["search"]
    watch = Stopwatch()
    with WsListener(stack.port, f"/ws/searches/{search_id}/",
                    f"sessionid={created['sessionid']}") as listener:
        if not listener.wait_open():
            raise LiveError(f"the WebSocket was refused ({listener.close_code})")
        _, snapshot = listener.next(timeout=30)
        if snapshot.get("type") != "snapshot":
            raise LiveError(f"expected the snapshot first, got {snapshot}")
        _driver(stack.env, "launch", str(search_id))
        end = listener.wait_event(lambda e: e["kind"] in ENDS, 900, alive=stack.check_alive)
        listener.drain()
    if end["kind"] != "search_done":
        raise LiveError(f"the benchmark search ended with {end}")
    kinds = {"trial_finished": "trial_finished", "trial_started": "trial_started",
             "training_progress (broadcast only)": "training_progress",
             "every timed event": None}
    summaries = {label: latency_summary(listener, kind) for label, kind in kinds.items()}
    trials = sum(1 for e in listener.events() if e["kind"] == "trial_finished")
    return {"summaries": summaries, "trials": trials, "search_seconds": watch.seconds,
            "config": config}


def _login(browser: Any, url: str, username: str) -> dict[str, Any]:
    """The real login form, once, in a throwaway context: its cookies are all the measured
    contexts get (their HTTP cache stays empty)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url + "/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form button[type=submit]")
        if "/accounts/login/" in page.url:
            raise LiveError("logging in to the benchmark studio failed")
        return context.storage_state()
    finally:
        context.close()


def _cold_load(browser: Any, url: str, state: dict[str, Any],
               seeded: dict[str, Any]) -> dict[str, float]:
    # bypass_csp: wait_for_function's string is compiled with eval, which the page's policy
    # forbids; the policy changes nothing the load time depends on.
    context = browser.new_context(storage_state=state, bypass_csp=True,
                                  viewport={"width": 1360, "height": 1000})
    try:
        context.add_init_script(MONITOR_JS % {"rows": seeded["rows"],
                                              "points": seeded["points"]})
        page = context.new_page()
        problems: list[str] = []
        frames: list[int] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda payload: frames.append(len(payload))))
        page.goto(f"{url}/searches/{seeded['search']}/", wait_until="commit")
        try:
            page.wait_for_function("window.__bench && window.__bench.settled !== null",
                                   timeout=90_000, polling=50)
        except Exception as error:
            raise LiveError(f"the search page never showed {seeded['rows']} rows and "
                            f"{seeded['points']} points: {error}; {problems}") from error
        page.wait_for_load_state("load")
        timing = page.evaluate(NAV_JS)
        if problems:
            raise LiveError("the search page reported errors: " + "; ".join(problems))
        timing["snapshot_kb"] = frames[0] / 1024 if frames else None
        return timing
    finally:
        context.close()


def trial_records(ctx: BenchContext) -> tuple[list[dict[str, Any]], float]:
    """The 1,000 seeded trial records (real genomes and costs: ~15 s of building networks),
    kept in the cache by the driver's and the search space's source."""
    from bench.cache import source_fingerprint
    from bench.live_driver import seeded_records

    driver = Path(__file__).with_name("live_driver.py").read_bytes()
    config = {"n": PAGE_TRIALS, "seed": 0, "engine": source_fingerprint("engine/nets"),
              "driver": hashlib.sha256(driver).hexdigest()[:16]}
    value, seconds, _ = ctx.cache.cached(
        "live-trials", config, lambda: {"records": seeded_records(PAGE_TRIALS, 0)})
    return value["records"], seconds


def measure_page(ctx: BenchContext, stack: Stack, clip: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise LiveError(f"{CHROMIUM} is missing: `apt-get install chromium` (Playwright "
                        "cannot download its own browser here)")
    username = f"page-{uuid.uuid4().hex[:8]}"
    records, cold = trial_records(ctx)
    path = stack.root / "records.json"
    path.write_text(json.dumps(records))
    watch = Stopwatch()
    seeded = _driver(stack.env, "seed", json.dumps({
        "username": username, "password": PASSWORD, "clip": str(clip), "records": str(path)}))
    seeded["cold_seconds"] = cold
    ctx.log(f"  live: seeded a finished search of {seeded['rows']} trials "
            f"({seeded['states']}, {seeded['points']} chart points) in {watch.seconds:.1f} s "
            f"(+{cold:.1f} s for the records, cached)")
    loads = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            state = _login(browser, stack.url, username)
            loads_before = os.getloadavg()[0]
            for i in range(1 if ctx.quick else PAGE_LOADS):
                loads.append(_cold_load(browser, stack.url, state, seeded))
                x = loads[-1]
                ctx.log(f"  live: cold load {i + 1}: usable after {x['settled']:.0f} ms "
                        f"(DOMContentLoaded {_ms(x['dcl'])}, socket open {_ms(x['ws_open'])}, "
                        f"first socket message {_ms(x['snapshot'])}, first draw "
                        f"{_ms(x['first'])} ms)")
        finally:
            browser.close()
    return {"seeded": seeded, "loads": loads,
            "load_average": [round(loads_before, 2), round(os.getloadavg()[0], 2)]}


def _median(values: Iterator[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run(ctx: BenchContext) -> SectionResult:
    watch = Stopwatch()
    clip = ctx.data("video", "city_tiny.mp4")
    result = SectionResult(key="live", title="Live path")
    with live_stack(ctx) as stack:
        ctx.log(f"  live: web server on :{stack.port} + celery worker, Redis db {REDIS_DB}, "
                f"{stack.database} (up in {watch.seconds:.0f} s)")
        ws = measure_ws(ctx, stack, clip)
        main = ws["summaries"]["trial_finished"]
        ctx.log(f"  live: {ws['trials']} trial_finished events in {ws['search_seconds']:.0f} s; "
                f"trial end -> WebSocket p50 {main.get('p50_ms', 0):.1f} ms, "
                f"p95 {main.get('p95_ms', 0):.1f} ms")
        page = measure_page(ctx, stack, clip)
        database = stack.database

    loads, seeded = page["loads"], page["seeded"]
    usable = [load["settled"] for load in loads]
    page_ms = statistics.median(usable)
    config = ws["config"]
    result.figures = {
        "ws_n": main["n"], "ws_p50_ms": _ms(main.get("p50_ms")),
        "ws_p95_ms": _ms(main.get("p95_ms")), "ws_max_ms": _ms(main.get("max_ms")),
        "ws_search_seconds": round(ws["search_seconds"], 1),
        "page_1000_ms": _ms(page_ms), "page_1000_each_ms": [_ms(v) for v in usable],
        "page_1000_first_draw_ms": _ms(statistics.median(load["first"] for load in loads)),
        "page_1000_socket_message_ms": _ms(_median(x["snapshot"] for x in loads)),
        "page_1000_dcl_ms": _ms(statistics.median(load["dcl"] for load in loads)),
        "page_1000_load_ms": _ms(statistics.median(load["load"] for load in loads)),
        "database": database,
        "load_average_1min": page["load_average"],  # before and after the cold loads
    }
    result.text = [
        "**Trial end -> WebSocket client.** One web server (`python -m webapp.serve`, "
        "uvicorn) and one `celery -A webapp worker "
        f"--pool=solo` subprocess (docker-compose's commands, `DJANGO_DEBUG=0`) on Redis "
        f"db {REDIS_DB} (channels-redis and the Celery broker) and {database} (a fresh "
        f"database, dropped afterwards) run a real search on `city_tiny.mp4` "
        f"({config['task']}, {config['n_trials']} trials of {config['budget']['steps']} "
        f"steps, {config['resolution'][0]}x{config['resolution'][1]} output). A raw RFC 6455 "
        f"client (studio_harness/ws_listener.py) listens on the search's socket. Latency is the "
        f"client's `time.time()` on arrival minus the event's `at`, which the engine stamps "
        f"(`time.time()` in the worker) when it creates `TrialFinished`, right after Optuna is "
        f"told the trial's result; it covers persisting the event and the trial row "
        f"(webapp/studio/progress.py), the Redis group send, the consumer and the frame. "
        f"Same host, same clock.",
        f"**Search page with {seeded['rows']:,} trials.** bench/live_driver.py writes a "
        f"finished search through the ORM: {seeded['rows']:,} trial rows with real genomes and "
        f"their real MACs and params (PSNR, SSIM, latency and train time follow the README's "
        f"measured x2 trend), {seeded['states']['complete']} complete, "
        f"{seeded['states']['rejected']} rejected, {seeded['states']['duplicate']} duplicate, "
        f"{seeded['states']['failed']} failed, and its event sequence. Debian's Chromium "
        f"({CHROMIUM}, headless, Playwright) logs in through the login form once; each "
        f"measured load is a new browser context with only those cookies (empty HTTP cache), "
        f"1360x1000. *Usable* is `performance.now()` (from navigation start) of the first "
        f"animation frame after the table holds all {seeded['rows']:,} rows and the Pareto "
        f"chart all {seeded['points']} points with Chart.js's update animation finished; "
        f"*first draw* is the frame that first shows them. The rows and points arrive in the "
        f"HTML (a slim snapshot embedded in the page); the socket then sends only what changed "
        f"since that snapshot's last event (`?after=N`). "
        f"{'One load (quick mode).' if ctx.quick else f'Median of {PAGE_LOADS} cold loads.'} "
        f"The machine's 1-minute load average was {page['load_average'][0]:.2f} before the "
        f"loads and {page['load_average'][1]:.2f} after (2 cores; the page's own work "
        f"counts in it).",
    ]
    result.tables = [
        Table("Worker -> WebSocket client latency, by event kind",
              ["event", "n", "p50 ms", "p95 ms", "max ms"],
              [[label, s["n"], _ms(s.get("p50_ms")), _ms(s.get("p95_ms")),
                _ms(s.get("max_ms"))] for label, s in ws["summaries"].items()],
              note="client arrival time minus the event's `at` (stamped in the worker); "
                   "training_progress is broadcast without being persisted"),
        Table(f"Search page with {seeded['rows']:,} trials, cold loads",
              ["load", "TTFB ms", "DOMContentLoaded ms", "load ms", "socket open ms",
               "first socket message ms", "first draw ms", "usable ms", "requests",
               "transfer KB", "socket message KB"],
              [[i + 1, _ms(x["ttfb"]), _ms(x["dcl"]), _ms(x["load"]), _ms(x["ws_open"]),
                _ms(x["snapshot"]), _ms(x["first"]), _ms(x["settled"]), x["requests"],
                _ms(x["kb"]), _ms(x["snapshot_kb"])] for i, x in enumerate(loads)],
              note="ms from navigation start (Navigation Timing and performance.now() in the "
                   "page); first socket message: the changes since the embedded snapshot; "
                   "transfer: HTML (with the snapshot) + static files"),
    ]
    p95 = main.get("p95_ms")
    result.targets = [
        Target("trial end -> WebSocket client p95", f"<= {WS_GOAL_MS:.0f} ms",
               f"{p95:.1f} ms (n={main['n']})" if p95 is not None else "no trial_finished event",
               p95 <= WS_GOAL_MS if p95 is not None else None),
        Target(f"search page with {PAGE_TRIALS:,} trials usable after a cold load", "<= 1 s",
               f"{page_ms:.0f} ms (median of {len(usable)})", page_ms <= PAGE_GOAL_MS),
    ]
    result.seconds = watch.seconds
    result.cold_seconds = seeded["cold_seconds"]
    return result
