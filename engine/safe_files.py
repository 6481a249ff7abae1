"""Files written so that a failure leaves nothing behind, and a full disk says so plainly.

Every file goes to a hidden temporary name beside its target and is renamed into place, so a
reader never sees half a file; a failed write removes its temporary file, and a folder made
for a write that failed goes too. A write that fails because the disk (or the user's quota)
is full raises DiskFull: its message is for users, names no server path and no command line,
and says what to do. Messages of other errors shown to users go through public_message(),
which drops command lines and shortens absolute paths to their file names.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

DISK_FULL_MESSAGE = ("the server is out of disk space: free space or ask the administrator; "
                     "nothing was kept")
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How a full disk reads in a child process's output (ffmpeg's stderr, torch's writer).
FULL_TEXTS = ("no space left on device", "disk quota exceeded")
# Where a tool's message starts quoting its command line (imageio-ffmpeg's errors do).
COMMAND_MARKERS = ("FFMPEG COMMAND", "COMMAND:", "Command '")
# An absolute path: a slash not preceded by a word character, then path characters.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s'\"`,;:()<>\[\]]+)+")


class DiskFull(OSError):
    """A write failed for lack of space; str() is DISK_FULL_MESSAGE, `detail` the original
    error for the server's log. An OSError, so callers catching those still do."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(errno.ENOSPC, DISK_FULL_MESSAGE)
        self.detail = detail

    def __str__(self) -> str:
        return DISK_FULL_MESSAGE


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a full disk or an exceeded quota."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in FULL_ERRNOS:
            return True
        text = str(link).lower()
        if any(marker in text for marker in FULL_TEXTS):
            return True
    return False


def public_message(error: BaseException | str) -> str:
    """A message fit to show users: the disk-full message for a full disk; otherwise the
    first line, before any quoted command line, with absolute paths cut to file names."""
    if isinstance(error, BaseException) and is_disk_full(error):
        return DISK_FULL_MESSAGE
    text = str(error)
    for marker in COMMAND_MARKERS:
        text = text.split(marker, 1)[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__ if isinstance(error, BaseException) \
        else "unknown error"
    return ABSOLUTE_PATH.sub(lambda m: Path(m.group(0)).name or "/", first)


def first_line(error: object, default: str = "") -> str:
    """The first non-blank line of an error's text (a log line stays one line), else
    `default`."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else default


def log_disk_full(what: str, error: BaseException) -> None:
    """One line in the server's log: what failed and the original error (paths included)."""
    detail = error.detail if isinstance(error, DiskFull) and error.detail else error
    log.warning("%s: out of disk space (%s)", what,
                first_line(detail, type(detail).__name__))


@contextmanager
def disk_full_as_error() -> Iterator[None]:
    """Turns a full-disk failure inside the block into DiskFull (other errors pass)."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as error:
        if is_disk_full(error):
            raise DiskFull(f"{type(error).__name__}: {error}") from error
        raise


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write `path` through a temporary file beside it (`write` fills it), renamed into place
    once complete; a failure removes the temporary file. A full disk raises DiskFull."""
    path = Path(path)
    with disk_full_as_error(), new_folder(path.parent):
        # mkstemp: a unique name, so two threads of one process never share a temp file.
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())  # a full disk may only say so here (delayed allocation)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    return path


def write_bytes_atomic(path: Path, data: bytes | bytearray | memoryview) -> Path:
    return write_atomic(path, lambda out: out.write(data))


@contextmanager
def new_folder(folder: Path) -> Iterator[Path]:
    """Makes `folder` (and missing parents); when the block fails, removes the folders this
    call made that are empty by then, so a failed write leaves no empty folder behind (and
    never takes what another writer put there meanwhile)."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
    except BaseException:
        for made in missing:  # deepest first
            try:
                made.rmdir()
            except FileNotFoundError:
                continue
            except OSError:  # not empty: keep it and what is above it
                break
        raise
