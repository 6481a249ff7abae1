"""docker-compose.yml is valid (checked offline by Debian's docker-compose 1.29) and the
commands its web and worker services (long jobs, interactive jobs) run start here, against
the real Redis and PostgreSQL."""

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
    assert {"web", "worker", "interactive", "redis", "postgres"} <= set(services())


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
    """The web command answers; the long-job and the interactive worker each consume their
    own queue (a preview never waits behind a search)."""
    env = _host_env(tmp_path, postgres_database)
    port = _free_port()
    web_cmd = _host_command(services()["web"]["command"], port)
    web_log = tmp_path / "web.log"
    workers = {name: tmp_path / f"{name}.log" for name in ("worker", "interactive")}
    processes: list[subprocess.Popen] = []
    try:
        with web_log.open("w") as log:
            web = subprocess.Popen(shlex.split(web_cmd), cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        processes.append(web)
        for name, path in workers.items():
            with path.open("w") as log:
                processes.append(subprocess.Popen(
                    shlex.split(services()[name]["command"]), cwd=REPO, env=env, stdout=log,
                    stderr=subprocess.STDOUT))
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
        for (name, path), process in zip(workers.items(), processes[1:], strict=True):
            while time.time() < deadline and "ready." not in path.read_text():
                assert process.poll() is None, path.read_text()[-2000:]
                time.sleep(0.5)
            text = path.read_text()
            assert "ready." in text, text[-2000:]
            assert "@127.0.0.1:6379/13" in text  # the broker it was given
            queue = "celery" if name == "worker" else "interactive"
            assert f".> {queue} " in text, text[-2000:]  # the banner's [queues] section
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
