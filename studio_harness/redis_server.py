"""A Redis server of a test's own, on a free port, that the test may stop, kill and start
again: the machine's shared Redis (127.0.0.1:6379) is never restarted by a test.

No persistence (`--save '' --appendonly no`): a restart loses every key, as a Redis without a
volume does, so what a restart costs (queued messages, group memberships) is part of the
scenario."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from studio_harness.processes import _die_with_parent, free_port, redis_answers, wait_for

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class OwnRedis:
    """`redis-server` in the foreground, as a subprocess; its log beside the stack's."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = log_dir / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it on its port (again) and wait until it answers PING."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        wait_for(lambda: redis_answers(port=self.port), 20, f"redis-server on {self.port}",
                 alive=self._check_alive)

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: a crash, nothing written, every connection cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        wait_for(lambda: not redis_answers(port=self.port), 10, "redis-server to be gone")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
