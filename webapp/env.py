"""Strict environment helpers: a bad value fails loudly at start-up, naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    return default if value is None else [v.strip() for v in value.split(",") if v.strip()]


def private_data_dir(path: Path) -> Path:
    """The studio's own folder (databases with password hashes and sessions, clips, models):
    0700, its files 0600. The process's umask keeps what it writes later private too (the
    web process and its workers run as one user), and files an earlier version left
    world-readable are closed now."""
    os.umask(0o077)
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)
        for child in path.iterdir():
            if child.is_file() and not child.is_symlink() and child.stat().st_mode & 0o077:
                child.chmod(0o600)
    return path


def secret_key(path: Path) -> str:
    """DJANGO_SECRET_KEY, else a development key generated once and kept in `path`."""
    value = env_str("DJANGO_SECRET_KEY")
    if value:
        return value
    if not path.exists():
        from django.core.management.utils import get_random_secret_key

        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()
