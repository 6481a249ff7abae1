"""Real processes for the reliability scenarios: daphne and Celery workers started with the
exact commands docker-compose and the Makefile use, a small HTTP session (cookies + CSRF) and
a real WebSocket client that timestamps every message."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import queue
import secrets
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.conftest import REPO

VENV_BIN = Path(sys.executable).parent


def daphne_command(port: int) -> list[str]:
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port),
            "webapp.asgi:application"]


def worker_command() -> list[str]:
    """docker-compose's worker command."""
    return [str(VENV_BIN / "celery"), "-A", "webapp", "worker", "--pool=solo",
            "--without-mingle", "--without-gossip", "--concurrency", "1", "-l", "info"]


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether a Redis server answers PING (a raw socket: no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.2, alive: Callable[[], None] | None = None) -> Any:
    """Poll until `predicate()` is truthy (returned); `alive()` may raise to fail early."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux kills it when the process that started it dies,
    so a test or benchmark killed by a timeout leaves no worker behind to steal the next
    run's tasks from the same Redis database."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class Process:
    """A subprocess with its own log file and process group, always stopped in `stop()`,
    and killed by the kernel if the process that started it dies first."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.command = name, command
        self.log = log_dir / f"{name}.log"
        self._log_file = self.log.open("w")
        self.popen = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log_file,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      preexec_fn=_die_with_parent)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} log ({self.log}) ---\n{self.text()[-chars:]}"

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}\n"
                                 + self.tail())

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean-up code of the process runs."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log_file.close()


def start_daphne(env: dict[str, str], log_dir: Path, name: str = "daphne") -> tuple[Process, int]:
    port = free_port()
    process = Process(name, daphne_command(port), env, log_dir)

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_for(answers, 60, f"{name} to listen on {port}", alive=process.check_alive)
    except BaseException:
        process.stop()
        raise
    return process, port


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> Process:
    process = Process(name, worker_command(), env, log_dir)
    try:
        wait_for(lambda: "ready." in process.text(), 60, f"{name} to be ready",
                 alive=process.check_alive)
    except BaseException:
        process.stop()
        raise
    return process


def run_driver(env: dict[str, str], *args: str, timeout: float = 120) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.reliability.driver", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"driver {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"manage.py {args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class HttpSession:
    """Cookies and Django's CSRF double-submit (a cookie and the same token in a header)."""

    def __init__(self, port: int, sessionid: str | None = None) -> None:
        self.port = port
        self.cookies: dict[str, str] = {
            "csrftoken": "".join(secrets.choice(string.ascii_letters + string.digits)
                                 for _ in range(32)),
        }
        if sessionid:
            self.cookies["sessionid"] = sessionid

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                accept_json: bool = True, csrf: bool = True,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        headers = {"Cookie": self.cookie_header, "Host": f"127.0.0.1:{self.port}"}
        if accept_json:
            headers["Accept"] = "application/json"
        body = None
        if method == "POST":
            body = urlencode(form or {}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if csrf:
                headers["X-CSRFToken"] = self.cookies["csrftoken"]
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            for header in response.headers.get_all("Set-Cookie") or []:
                for key, morsel in SimpleCookie(header).items():
                    self.cookies[key] = morsel.value
            return response.status, dict(response.headers), data
        finally:
            connection.close()

    def get_json(self, path: str) -> dict[str, Any]:
        status, _, data = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {data[:500]!r}"
        return json.loads(data)

    def post(self, path: str, form: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, _, data = self.request("POST", path, form)
        return status, data

    def login(self, username: str, password: str) -> None:
        """The real login form POST (its template is not needed for a successful login)."""
        status, headers, data = self.request(
            "POST", "/accounts/login/", {"username": username, "password": password,
                                         "csrfmiddlewaretoken": self.cookies["csrftoken"]},
            accept_json=False, csrf=False)
        assert status == 302 and "sessionid" in self.cookies, (status, data[:300])

    def all_events(self, search_id: int) -> list[dict[str, Any]]:
        """Every persisted event, paged with `?after=N` as a reconnecting client would."""
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.get_json(f"/api/searches/{search_id}?after={after}")
            events += page["events"]
            after = page["next_after"]
            if not page["more"]:
                return events


class WsListener:
    """A minimal real WebSocket client (RFC 6455 over a TCP socket, asyncio) in its own
    thread; every message is kept with its arrival time (`time.time()`, the clock the engine
    stamps events with). Autobahn cannot serve here: daphne already pins txaio to Twisted."""

    def __init__(self, port: int, path: str, cookie: str | None) -> None:
        self.url = f"ws://127.0.0.1:{port}{path}"
        self.origin = f"http://127.0.0.1:{port}"
        self.port, self.cookie = port, cookie
        self.messages: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.close_code: int | None = None
        self.path = path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ws-listener", daemon=True)

    def __enter__(self) -> WsListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._session())
        except BaseException as error:  # reported by the waiting side
            self._error = error
        finally:
            self.closed.set()
            loop.close()

    async def _session(self) -> None:
        """RFC 6455 client: the upgrade handshake, then text frames until a close frame."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer = writer
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", f"Origin: {self.origin}"]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if status != 101:
            self.close_code = status  # refused during the handshake (daphne answers 403)
            writer.close()
            return
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        fields = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
        headers = {name.strip().lower(): value.strip() for name, value in fields.items()}
        if headers.get("sec-websocket-accept") != accept:
            raise ConnectionError(f"bad handshake answer: {head!r}")
        self.opened.set()
        fragments = b""
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(length)  # server frames are never masked
            opcode = first & 0x0F
            if opcode == 0x8:  # close
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                if not self._closing:
                    self._send_frame(0x8, payload[:2])
                writer.close()
                return
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1):
                fragments += payload
                if first & 0x80:  # FIN
                    self.messages.put((time.time(), json.loads(fragments.decode())))
                    fragments = b""

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        """A masked frame (clients must mask), payloads under 126 bytes only."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def wait_open(self, timeout: float = 15) -> bool:
        """True once the server accepted the socket; False if it refused or closed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.opened.is_set():
                return True
            if self.closed.is_set():
                if self._error is not None:
                    raise AssertionError(f"WebSocket failed: {self._error!r}")
                return False
            time.sleep(0.02)
        raise AssertionError(f"WebSocket {self.url} neither opened nor closed in {timeout} s")

    def next(self, timeout: float = 30) -> tuple[float, dict[str, Any]]:
        item = self.messages.get(timeout=timeout)
        self.received.append(item)
        return item

    def drain(self) -> list[tuple[float, dict[str, Any]]]:
        while True:
            try:
                self.next(timeout=0)
            except queue.Empty:
                return self.received

    def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                   alive: Callable[[], None] | None = None) -> dict[str, Any]:
        """Read messages until an event matches (all messages stay in `received`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, message = self.next(timeout=0.5)
            except queue.Empty:
                if alive is not None:
                    alive()
                if self.closed.is_set() and self.messages.empty():
                    raise AssertionError(f"the server closed the socket ({self.close_code}, "
                                         f"{self._error!r}) while waiting for an event") from None
                if time.monotonic() > deadline:
                    kinds = [m.get("event", {}).get("kind") for _, m in self.received]
                    raise AssertionError(
                        f"no matching event within {timeout} s; got {kinds}") from None
                continue
            if message.get("type") == "event" and predicate(message["event"]):
                return message["event"]

    def events(self) -> list[dict[str, Any]]:
        return [m["event"] for _, m in self.received if m.get("type") == "event"]

    def close(self) -> None:
        """Send a close frame (1000) and wait for the server's; the thread always ends."""
        loop = self._loop
        if loop is not None and self.opened.is_set() and not self.closed.is_set():
            self._closing = True
            try:
                loop.call_soon_threadsafe(self._send_frame, 0x8, (1000).to_bytes(2, "big"))
            except RuntimeError:  # the loop already finished
                pass
            self.closed.wait(5)
        if loop is not None and not self.closed.is_set():
            def cancel_all() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            try:
                loop.call_soon_threadsafe(cancel_all)
            except RuntimeError:
                pass
        self._thread.join(5)


def latency_summary(listener: WsListener, kind: str | None = "trial_finished") -> dict:
    """Seconds from an event's creation in the worker (its `at`, time.time() there) to its
    arrival at this client, for one kind of event (None: every event that has `at`)."""
    delays = sorted(arrived - m["event"]["at"] for arrived, m in listener.received
                    if m.get("type") == "event" and "at" in m["event"]
                    and kind in (None, m["event"]["kind"]))
    if not delays:
        return {"n": 0}

    def pct(p: float) -> float:
        return delays[min(len(delays) - 1, round(p * (len(delays) - 1)))]

    return {"n": len(delays), "p50_ms": 1000 * pct(0.5), "p95_ms": 1000 * pct(0.95),
            "max_ms": 1000 * delays[-1]}


def print_latency(label: str, listener: WsListener) -> dict:
    """Print (pytest -s) the trial_finished latency, and that of every timed event."""
    summary = latency_summary(listener)
    every = latency_summary(listener, None)
    for name, values in (("trial_finished", summary), ("all timed events", every)):
        print(f"[latency] {label}, {name}: worker -> WebSocket client: "
              + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in values.items()))
    return summary
