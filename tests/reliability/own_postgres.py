"""A PostgreSQL cluster of the test's own (initdb into a temporary folder, another port), so
a fault test can restart it without touching the machine's shared server at 5432."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from studio_harness.processes import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if found is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server package")
    return found


def _as_postgres(args: list[str], timeout: float = 60) -> None:
    """initdb and pg_ctl refuse to run as root (CI runs as root): run them as `postgres`."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run(prefix + args, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


class OwnPostgres:
    def __init__(self) -> None:
        # Directly under /tmp: the server's user must reach it, and pytest's own temporary
        # folders are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        _as_postgres([_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8"])
        self.start()
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c",
                        "CREATE DATABASE studio"], check=True, capture_output=True, timeout=60)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/studio"

    def _ctl(self, *args: str) -> None:
        _as_postgres([_bin("pg_ctl"), "-D", str(self.data), "-w", "-l",
                      str(self.root / "postgres.log"), *args])

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off", "start")

    def restart(self) -> None:
        """A fast restart: every open connection is terminated ("terminating connection due
        to administrator command"), then the server answers again."""
        self._ctl("-m", "fast", "-o", f"-p {self.port} -k {self.root} "
                  "-c listen_addresses=127.0.0.1 -c fsync=off", "restart")

    def stop(self) -> None:
        try:
            self._ctl("-m", "immediate", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
