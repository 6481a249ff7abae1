"""A small, nearly full disk for tests of what a full disk does: a tmpfs mounted on a folder
(CI runs as root), with a filler file that leaves only `free` bytes, unmounted afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER = ".filler"


@contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    """`folder` as a tmpfs of `size`; skipped (with the reason) when not root."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated by mounting a tmpfs, which needs root "
                    "(CI runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:  # root but no mount: a broken CI, not a reason to skip
        pytest.fail(f"mount -t tmpfs failed: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False, capture_output=True)


def fill(disk: Path, free: int = 0) -> None:
    """Leave about `free` bytes on `disk` (a tmpfs counts whole 4 KB pages)."""
    filler = disk / FILLER
    filler.unlink(missing_ok=True)
    room = max(0, shutil.disk_usage(disk).free - free)
    with open(filler, "wb") as out:
        try:
            out.write(b"\0" * room)
        except OSError:  # ENOSPC on the last page: full is what was asked for
            pass


def free_space(disk: Path) -> None:
    (disk / FILLER).unlink(missing_ok=True)


def leftovers(disk: Path) -> list[str]:
    """Everything on the disk but the filler, as paths relative to it."""
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.name != FILLER)
