"""Fixtures of the reliability scenarios: a PostgreSQL database and Redis db 14 of their own,
the scaled environment (the same variables docker-compose sets), and the web and worker
processes started with the commands docker-compose and the Makefile run.

These tests never touch the test process's Django database: every Django-side step runs in a
subprocess (studio_harness/driver.py, manage.py, the web server, celery) with the scenario's env.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio_harness.processes import Process, run_manage, start_server, start_worker

REDIS_URL = "redis://127.0.0.1:6379/14"
POSTGRES = "postgres://postgres@127.0.0.1:5432"


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                    "-c", sql], check=True, capture_output=True, timeout=60)


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def base_env(data_dir: Path) -> dict[str, str]:
    """The parent's environment without anything that would switch the mode by accident."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "PIXEL_CACHE_DIR",
                        "STUDIO_OPTUNA_STORAGE", "STUDIO_INPROCESS_WORKER")}
    env.update({"DJANGO_SETTINGS_MODULE": "webapp.settings", "STUDIO_DATA_DIR": str(data_dir),
                "DJANGO_SECRET_KEY": "reliability-tests", "PYTHONUNBUFFERED": "1"})
    return env


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    name = f"studio_rel_{uuid.uuid4().hex[:10]}"
    _psql(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c",
                        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


# The watchdog on a test's time scale: a silent search is revived in seconds.
FAST_WATCHDOG = {"STUDIO_HEARTBEAT_S": "1", "STUDIO_STALE_AFTER_S": "6",
                 "STUDIO_WATCH_EVERY_S": "2"}


def scaled_environment(root: Path, redis_url: str, database_url: str) -> dict[str, str]:
    """The scaled mode's variables as docker-compose sets them, with media and the frame
    cache under `root` (not migrated)."""
    env = base_env(root)
    env.update({"REDIS_URL": redis_url, "DATABASE_URL": database_url,
                "MEDIA_ROOT": str(root / "media"), "PIXEL_CACHE_DIR": str(root / "frame-cache")})
    return env


@pytest.fixture(scope="module")
def scaled_env(tmp_path_factory: pytest.TempPathFactory,
               postgres_database: str) -> Iterator[dict[str, str]]:
    """Redis (db 14) + PostgreSQL (a fresh database, migrated), as docker-compose sets it."""
    env = scaled_environment(tmp_path_factory.mktemp("scaled"), REDIS_URL,
                             f"{POSTGRES}/{postgres_database}") | FAST_WATCHDOG
    _flush_redis()
    run_manage(env, "migrate", "--noinput", "-v", "0")
    try:
        yield env
    finally:
        _flush_redis()


class Stack:
    """The web server + one Celery worker on the scaled env; the worker can be killed and
    replaced."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.processes: list[Process] = []
        self.web, self.port = start_server(env, log_dir)
        self.processes.append(self.web)
        try:
            self.worker = self.start_worker()
        except BaseException:
            self.stop()
            raise

    def start_worker(self) -> Process:
        name = f"worker{sum(p.name.startswith('worker') for p in self.processes) + 1}"
        worker = start_worker(self.env, self.log_dir, name)
        self.processes.append(worker)
        self.worker = worker
        return worker

    def check_alive(self) -> None:
        self.web.check_alive()
        self.worker.check_alive()

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture(scope="module")
def stack(scaled_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(scaled_env, tmp_path_factory.mktemp("logs"))
    try:
        yield stack
    finally:
        stack.stop()
