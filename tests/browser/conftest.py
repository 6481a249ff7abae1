"""Browser tests: a real server (python -m webapp.serve) in the scaled channel mode, driven
like a worker would.

The server runs in a subprocess with its own data folder (SQLite, media) and channels-redis
on a real Redis; no worker runs (STUDIO_INPROCESS_WORKER=0): `studio_driver` plays the worker
and sends events over the production path (persist, then broadcast through Redis). Chromium
(Debian's, at /usr/bin/chromium) is driven by Playwright; every request that is not for
127.0.0.1 is aborted, and any console error or page error fails the test.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from studio_harness.processes import server_command
from tests.conftest import REPO
from tests.reliability.harness import redis_answers

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REDIS_URL = "redis://127.0.0.1:6379/15"
SHOTS = Path("/tmp/studio-shots")
USERNAME, PASSWORD = "ada", "pixels-and-patches-42"
PYTHON = sys.executable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(server: subprocess.Popen, port: int, log: Path,
                    timeout: float = 120) -> None:
    """Until the server accepts connections on `port`; its log in the error if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + log.read_text()) from None
            time.sleep(0.3)


class Driver:
    """The `studio_driver` subprocess: one JSON command a line, one JSON answer a line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "tests.browser.studio_driver"], cwd=REPO, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self._read(timeout=120)  # {"ready": true}

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and self.lines.empty():
                raise RuntimeError("the studio driver did not answer")
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue  # stray output from a library: not an answer

    def __call__(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._read(timeout=120)
        if not answer.get("ok"):
            raise RuntimeError(f"studio driver {op} failed: {answer.get('error')}")
        return answer["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Studio:
    def __init__(self, url: str, driver: Driver, clip: int, env: dict[str, str]) -> None:
        self.url, self.driver, self.clip = url, driver, clip
        self.env = env  # the server's environment: its data folder, Redis db...

    def new_search(self, name: str, n_trials: int = 12) -> int:
        return self.driver("new_search", clip=self.clip, name=name, n_trials=n_trials)["id"]


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    if not Path(CHROMIUM).exists():
        raise pytest.UsageError(f"{CHROMIUM} missing: apt-get install chromium")
    if not redis_answers():
        raise pytest.UsageError("no Redis at 127.0.0.1:6379 (the scaled channel layer needs it)")
    data = tmp_path_factory.mktemp("studio-data")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "MEDIA_ROOT", "STUDIO_OPTUNA_STORAGE",
                        "DJANGO_ALLOWED_HOSTS")}
    env.update(STUDIO_DATA_DIR=str(data), STUDIO_INPROCESS_WORKER="0", REDIS_URL=REDIS_URL,
               DJANGO_SETTINGS_MODULE="webapp.settings", PYTHONPATH=str(REPO),
               PYTHONUNBUFFERED="1")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO,
                   env=env, check=True, timeout=300)
    port = _free_port()
    log = (data / "server.log").open("w")
    server = subprocess.Popen(server_command(port), cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    driver = None
    try:
        driver = Driver(env)
        ids = driver("setup", username=USERNAME, password=PASSWORD)
        wait_for_server(server, port, data / "server.log")
        yield Studio(f"http://127.0.0.1:{port}", driver, ids["clip"], env)
    finally:
        if driver is not None:
            driver.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def browser(studio: Studio) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def storage_state(browser: Any, studio: Studio, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Sign in once through the login form; each test's context reuses the cookies."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(studio.url + "/accounts/login/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "/accounts/login/" not in page.url, "login failed"
    path = tmp_path_factory.mktemp("browser") / "state.json"
    context.storage_state(path=str(path))
    context.close()
    return str(path)


@contextmanager
def guarded_page(context: Any) -> Iterator[Any]:
    """A page of `context` that only reaches 127.0.0.1; any request elsewhere, console error
    or page error fails the test when the block ends."""
    problems: list[str] = []
    blocked: list[str] = []

    def only_local(route: Any) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    yield page
    context.close()
    assert not blocked, f"requests to other hosts: {blocked}"
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(browser: Any, storage_state: str) -> Iterator[Any]:
    """A signed-in, guarded page. The test's own `wait_for_function` strings are compiled
    with eval, which the studio's Content-Security-Policy forbids, so these contexts bypass
    it; test_content_security_policy.py tours the pages with the policy on."""
    context = browser.new_context(storage_state=storage_state, bypass_csp=True,
                                  viewport={"width": 1360, "height": 1000})
    with guarded_page(context) as page:
        yield page


@pytest.fixture(scope="session")
def shots() -> Path:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return SHOTS
