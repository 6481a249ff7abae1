"""Turning an uploaded file into a Clip: size limit, decode check, probe limits, thumbnail.

Nothing about an upload is trusted: not its name, not its extension, not its content type.
The bytes go to a temp file under MEDIA_ROOT/tmp, the engine probes them and decodes the first
frames, the limits are checked, and only then are the clip file and its thumbnail stored.
A rejected upload leaves nothing behind: no temp file, no clip file, no thumbnail, no row.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

from engine.data.frame_cache import content_hash
from engine.data.video_io import ClipError, ClipInfo, probe, read_frames
from engine.safe_files import DISK_FULL_MESSAGE, is_disk_full, log_disk_full
from webapp.studio.models import Clip

THUMB_WIDTH = 320
# The engine's hint suits its command line ("... or a folder of PNG frames"); a browser sends
# one file, so the studio says what a browser user can do instead.
ENGINE_HINT = re.compile(r"upload an? [^;]*? or a folder of PNG frames")
BROWSER_HINT = ("export it as an MP4 (H.264) or WebM video, as most editors, phones and "
                "screen recorders can, and upload that file")
MULTIPART_SLACK = 64 * 1024  # form fields and multipart boundaries around the file itself
# Kept as the stored file's suffix when the upload has it; anything else is stored as .video.
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts",
                  ".m2ts", ".ogv", ".wmv", ".flv", ".3gp", ".y4m"}


class UploadRejected(Exception):
    """An upload that cannot become a clip; the message is one line for the user, `status`
    the HTTP answer (400, or 507 when the server's disk is full)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def format_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def too_large_message(limit: int) -> str:
    return (f"the file is too large: clips may be at most {format_bytes(limit)} "
            "(STUDIO_MAX_UPLOAD_BYTES); upload a shorter clip")


class SizeLimitHandler(FileUploadHandler):
    """First in the upload handler chain: passes file data on until the limit, then drops it.

    A request whose Content-Length already exceeds the limit has all its file data dropped, so
    nothing of it is written anywhere; the other form fields (the CSRF token) still parse.
    """

    def __init__(self, request: HttpRequest | None, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.too_large = False

    def handle_raw_input(self, input_data: object, META: dict, content_length: int,
                         boundary: bytes, encoding: str | None = None) -> None:
        if content_length and content_length > self.limit + MULTIPART_SLACK:
            self.too_large = True
        return None  # let the parser run: the other fields are still needed

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.too_large:
            return None  # None: the later handlers never see (nor store) this chunk
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            return None
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the UploadedFile


def safe_original_name(name: str) -> str:
    """The basename only, without control characters, at most 255 characters."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    cleaned = "".join(c for c in base if not unicodedata.category(c).startswith("C")).strip()
    if cleaned in ("", ".", ".."):
        cleaned = "clip"
    if len(cleaned) > 255:
        suffix = PurePosixPath(cleaned).suffix[:16]
        cleaned = cleaned[: 255 - len(suffix)] + suffix
    return cleaned


def storage_suffix(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in VIDEO_SUFFIXES else ".video"


def thumbnail_png(frame_rgb: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    """The frame scaled to `width` pixels wide (aspect kept), as PNG bytes."""
    height, src_width = frame_rgb.shape[:2]
    new_height = max(1, round(height * width / src_width))
    interpolation = cv2.INTER_AREA if src_width > width else cv2.INTER_CUBIC
    small = cv2.resize(frame_rgb, (width, new_height), interpolation=interpolation)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UploadRejected("could not make a thumbnail of the first frame")
    return encoded.tobytes()


def check_limits(info: ClipInfo) -> None:
    """Refuse a clip outside the studio's limits (settings.STUDIO_*), saying which one."""
    max_seconds = settings.STUDIO_MAX_CLIP_SECONDS
    max_pixels = settings.STUDIO_MAX_CLIP_PIXELS
    min_side = settings.STUDIO_MIN_CLIP_SIDE
    if info.frame_count < 2:
        raise UploadRejected(
            f"the clip has only {info.frame_count} frame; at least 2 are needed "
            "(one to train on, one to evaluate)")
    if info.duration_s > max_seconds:
        raise UploadRejected(
            f"the clip is too long: {info.duration_s:.1f} s, the limit is {max_seconds} s "
            "(STUDIO_MAX_CLIP_SECONDS); trim it to a representative sample")
    if info.width * info.height > max_pixels:
        raise UploadRejected(
            f"the resolution {info.width}x{info.height} is too large: at most "
            f"{max_pixels:,} pixels a frame (STUDIO_MAX_CLIP_PIXELS); downscale the clip")
    if min(info.width, info.height) < min_side:
        raise UploadRejected(
            f"the resolution {info.width}x{info.height} is too small: both sides must be at "
            f"least {min_side} pixels (STUDIO_MIN_CLIP_SIDE)")


def _probe_upload(path: Path, original_name: str) -> tuple[ClipInfo, np.ndarray]:
    """probe(), the limits, then a real decode of the first two frames. Engine messages name
    the upload, never the server's temp path."""
    try:
        info = probe(path)
        check_limits(info)
        first, _ = read_frames(path, [0, 1])
    except ClipError as error:
        message = str(error).replace(str(path), original_name)
        raise UploadRejected(ENGINE_HINT.sub(BROWSER_HINT, message)) from error
    return info, first


class _TempFile(File):
    """Lets FileSystemStorage move the temp file into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def create_clip(owner: AbstractBaseUser, chunks: Iterable[bytes], original_name: str,
                max_bytes: int | None = None) -> Clip:
    """Validate the bytes and store them as the owner's clip; raises UploadRejected.

    On any failure nothing is left: the temp files, stored files and the row are removed.
    A full disk is refused with status 507 and the message of engine.safe_files.
    """
    try:
        return _create_clip(owner, chunks, original_name, max_bytes)
    except OSError as error:
        if not is_disk_full(error):
            raise
        log_disk_full(f"upload of a clip by user {owner.pk}", error)
        raise UploadRejected(DISK_FULL_MESSAGE, status=507) from error


def _create_clip(owner: AbstractBaseUser, chunks: Iterable[bytes], original_name: str,
                 max_bytes: int | None) -> Clip:
    limit = settings.STUDIO_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    name = safe_original_name(original_name)
    tmp_dir = Path(settings.MEDIA_ROOT) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-", suffix=storage_suffix(name))
    tmp, thumb = Path(tmp_name), Path(tmp_name).with_suffix(".png")
    clip: Clip | None = None
    stored = False
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadRejected(too_large_message(limit))
                out.write(chunk)
        if size == 0:
            raise UploadRejected("the file is empty (0 bytes); the upload probably failed, "
                                 "retry it")
        info, first = _probe_upload(tmp, name)
        # Both stored files arrive by rename from MEDIA_ROOT/tmp: a full disk fails while
        # writing there (removed below), never half-way into a stored name.
        thumb.write_bytes(thumbnail_png(first))
        clip = Clip(owner=owner, original_name=name, size_bytes=size,
                    content_hash=content_hash(tmp), codec=info.codec[:16], width=info.width,
                    height=info.height, fps=info.fps, frame_count=info.frame_count,
                    duration_s=info.duration_s)
        with open(tmp, "rb") as f:
            clip.file.save(f"clip{storage_suffix(name)}", _TempFile(f, name=str(tmp)),
                           save=False)
        with open(thumb, "rb") as f:
            clip.thumbnail.save(f"{uuid.uuid4().hex}.png", _TempFile(f, name=str(thumb)),
                                save=False)
        clip.save()
        stored = True
        return clip
    finally:
        tmp.unlink(missing_ok=True)
        thumb.unlink(missing_ok=True)
        if clip is not None and not stored:
            if clip.file:
                clip.file.delete(save=False)
            if clip.thumbnail:
                clip.thumbnail.delete(save=False)


def file_chunks(path: Path, size: int = 1 << 20) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk
