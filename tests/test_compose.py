"""docker-compose.yml is valid (checked offline by docker-compose 1.29) and the commands it
runs work here, against the real PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import DATA, REPO

COMPOSE = REPO / "docker-compose.yml"


def test_compose_file_validates() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian package) is missing: .ci/run installs it"
    done = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_compose_services() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"search", "redis", "postgres"} <= set(services)


def _host_command(command: str) -> list[str]:
    """The compose command with container paths and hosts mapped onto this machine."""
    command = command.replace("/shared/data", str(DATA)).replace("@postgres/", "@127.0.0.1/")
    return shlex.split(command)


@pytest.mark.slow
def test_search_service_command_runs_here(tmp_path: Path) -> None:
    command = _host_command(yaml.safe_load(COMPOSE.read_text())["services"]["search"]["command"])
    assert command[:3] == ["python", "-m", "engine"]
    study = f"compose-test-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    # Same command, smaller budget (argparse: the last occurrence of an option wins).
    args = [sys.executable, *command[1:], "--trials", "2", "--steps", "5",
            "--resolution", "320x180", "--study-name", study, "--out", str(out)]
    env = {**os.environ, "PIXEL_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["study"]["storage"].startswith("postgresql")
    assert len([t for t in report["trials"] if t["state"] == "complete"]) == 2
