"""Real processes for a live studio stack: the web server and Celery workers started with the exact
commands docker-compose and the Makefile use, `manage.py` and the Django-side driver run as
subprocesses, and a Redis check that needs no client library.

Every process is killed by the kernel when the process that started it dies (a test or a
benchmark killed by a timeout leaves no worker behind)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]  # every process runs from the repository root
VENV_BIN = Path(sys.executable).parent


def server_command(port: int) -> list[str]:
    """The Makefile's and docker-compose's web command."""
    return [sys.executable, "-m", "webapp.serve", "--host", "127.0.0.1", "--port", str(port)]


def worker_command(queues: str = "celery,interactive") -> list[str]:
    """docker-compose's worker command (its `worker` service takes `-Q celery`, its
    `interactive` service `-Q interactive`); the tests' one worker takes both queues."""
    return [str(VENV_BIN / "celery"), "-A", "webapp", "worker", "--pool=solo",
            "--without-mingle", "--without-gossip", "--concurrency", "1", "-Q", queues,
            "-n", f"{queues.replace(',', '-')}-{os.getpid()}@%h", "-l", "info"]


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


def start_server(env: dict[str, str], log_dir: Path, name: str = "web",
                 command: Callable[[int], list[str]] = server_command) -> tuple[Process, int]:
    """`command(port)` (the studio's server by default) on a free port, once it listens."""
    port = free_port()
    process = Process(name, command(port), env, log_dir)

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
    done = subprocess.run([sys.executable, "-m", "studio_harness.driver", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"driver {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"manage.py {args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout
