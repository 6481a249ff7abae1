"""The harness never leaves a server behind: a test or benchmark killed by a timeout must not
leave a Celery worker that takes the next run's tasks from the same Redis database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

STARTER = """
import sys, time
from pathlib import Path
from studio_harness.processes import Process
child = Process("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], {},
                Path(sys.argv[1]))
print(child.popen.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def test_a_started_process_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    try:
        child = int(starter.stdout.readline())
        assert _alive(child)
        starter.send_signal(signal.SIGKILL)  # what subprocess.run(timeout=) does
        starter.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the started process outlived its starter"
    finally:
        starter.kill()
