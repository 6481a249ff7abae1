"""docker-compose.yml is valid (checked offline by Debian's docker-compose 1.29) and the
commands its web and worker services run start here, against the real Redis and PostgreSQL."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_file_validates() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian package) is missing: .ci/run installs it"
    done = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_compose_services() -> None:
    assert {"web", "worker", "redis", "postgres"} <= set(services())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _host_command(command: str, port: int) -> str:
    """The compose command on a free local port (executables come from the venv via PATH)."""
    return command.replace("--host 0.0.0.0 --port 8000", f"--host 127.0.0.1 --port {port}")


def _host_env(tmp_path: Path, database: str) -> dict[str, str]:
    compose_env = next(iter(services().values()))["environment"]
    env = {**os.environ, **{k: str(v) for k, v in compose_env.items()}}
    env.update({
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "STUDIO_DATA_DIR": str(tmp_path), "MEDIA_ROOT": str(tmp_path / "media"),
        "PIXEL_CACHE_DIR": str(tmp_path / "frame-cache"), "DJANGO_SECRET_KEY": "compose-test",
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",  # python, celery
    })
    return env


@pytest.fixture
def postgres_database() -> str:
    name = f"studio_compose_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    yield name
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c",
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


@pytest.mark.slow
def test_web_and_worker_commands_start(tmp_path: Path, postgres_database: str) -> None:
    env = _host_env(tmp_path, postgres_database)
    port = _free_port()
    web_cmd = _host_command(services()["web"]["command"], port)
    worker_cmd = _host_command(services()["worker"]["command"], port)
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    with web_log.open("w") as wl, worker_log.open("w") as kl:
        web = subprocess.Popen(shlex.split(web_cmd), cwd=REPO, env=env, stdout=wl,
                               stderr=subprocess.STDOUT)
        worker = subprocess.Popen(shlex.split(worker_cmd), cwd=REPO, env=env, stdout=kl,
                                  stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 90
            status = None
            while time.time() < deadline and status is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/",
                                                timeout=5) as response:
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                except OSError:
                    assert web.poll() is None, web_log.read_text()[-2000:]
                    time.sleep(0.5)
            assert status == 200, web_log.read_text()[-2000:]
            while time.time() < deadline and "ready." not in worker_log.read_text():
                assert worker.poll() is None, worker_log.read_text()[-2000:]
                time.sleep(0.5)
            assert "ready." in worker_log.read_text(), worker_log.read_text()[-2000:]
            assert "@127.0.0.1:6379/13" in worker_log.read_text()  # the broker it was given
        finally:
            for process in (web, worker):
                process.terminate()
            for process in (web, worker):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
