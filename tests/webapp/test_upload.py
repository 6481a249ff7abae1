"""Uploads: every refused file says why, answers 400 and leaves nothing behind; a good clip
is probed, hashed and thumbnailed; the sample clip goes through the same path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from engine.data.frame_cache import content_hash
from tests.conftest import TINY_CLIP
from tests.webapp.conftest import media_files
from webapp.studio.models import Clip
from webapp.studio.sample_clip import sample_clip_path
from webapp.studio.uploads import MULTIPART_SLACK, SizeLimitHandler, safe_original_name

UPLOAD = reverse("studio:clip_upload")


def upload(client: Client, name: str, data: bytes, content_type: str = "video/mp4"):
    return client.post(UPLOAD, {"file": SimpleUploadedFile(name, data, content_type)})


def assert_refused(response, media_root: Path, *reasons: str) -> None:
    assert response.status_code == 400
    page = response.content.decode()
    assert "Upload refused" in page
    for reason in reasons:
        assert reason in page, f"{reason!r} not on the page"
    assert media_files(media_root) == []
    assert Clip.objects.count() == 0


def small_webm(tmp_path: Path, width: int, height: int, frames: int = 6) -> bytes:
    path = tmp_path / "small.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 12, (width, height))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    writer.release()
    return path.read_bytes()


def test_valid_upload_creates_clip_with_probe_hash_and_thumbnail(
    client_in: Client, user: User, studio_dirs: Path
) -> None:
    response = upload(client_in, "city_tiny.mp4", TINY_CLIP.read_bytes())
    clip = Clip.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("studio:clip_detail", args=[clip.pk])
    assert clip.owner == user
    assert (clip.codec, clip.width, clip.height, clip.frame_count) == ("h264", 192, 128, 15)
    assert clip.duration_s == pytest.approx(0.6)
    assert clip.fps == pytest.approx(25.0)
    assert clip.size_bytes == TINY_CLIP.stat().st_size
    assert clip.content_hash == content_hash(TINY_CLIP)
    assert clip.original_name == "city_tiny.mp4"
    assert Path(clip.file.path).read_bytes() == TINY_CLIP.read_bytes()
    thumb = cv2.imread(clip.thumbnail.path)
    assert thumb.shape == (213, 320, 3)  # 192x128 scaled to 320 wide
    # Only the clip and its thumbnail remain: the temp file is gone.
    assert sorted(p.name for p in media_files(studio_dirs)) == sorted(
        [Path(clip.file.name).name, Path(clip.thumbnail.name).name])


def test_not_a_video_is_refused(client_in: Client, studio_dirs: Path) -> None:
    response = upload(client_in, "notes.mp4", b"just some text, not a video\n" * 50)
    assert_refused(response, studio_dirs, "cannot decode", "notes.mp4",
                   "export it as an MP4 (H.264) or WebM video")
    assert "PNG" not in response.content.decode()  # a browser cannot send a folder


def test_truncated_mp4_is_refused(client_in: Client, studio_dirs: Path) -> None:
    data = TINY_CLIP.read_bytes()
    response = upload(client_in, "cut.mp4", data[: int(len(data) * 0.3)])
    assert_refused(response, studio_dirs, "cannot decode", "cut.mp4")
    assert str(studio_dirs) not in response.content.decode()  # no server paths leak


def test_zero_bytes_is_refused(client_in: Client, studio_dirs: Path) -> None:
    response = upload(client_in, "empty.mp4", b"")
    assert_refused(response, studio_dirs, "empty")


def test_too_large_is_refused(client_in: Client, settings: Settings, studio_dirs: Path) -> None:
    settings.STUDIO_MAX_UPLOAD_BYTES = 2_000  # Content-Length alone gives it away
    response = upload(client_in, "city_tiny.mp4", TINY_CLIP.read_bytes())
    assert_refused(response, studio_dirs, "too large", "at most 2.0 KB")


def test_size_limit_handler_drops_data_beyond_the_limit() -> None:
    early = SizeLimitHandler(None, limit=1000)
    early.handle_raw_input(None, {}, 1000 + MULTIPART_SLACK + 1, b"x")
    assert early.too_large and early.receive_data_chunk(b"a" * 10, 0) is None
    late = SizeLimitHandler(None, limit=1000)
    late.handle_raw_input(None, {}, 1200, b"x")
    assert not late.too_large
    assert late.receive_data_chunk(b"a" * 600, 0) == b"a" * 600
    assert late.receive_data_chunk(b"a" * 600, 600) is None and late.too_large


def test_too_large_by_a_little_is_refused_while_streaming(
    client_in: Client, settings: Settings, studio_dirs: Path
) -> None:
    # Within the multipart slack of the Content-Length check: caught while receiving.
    settings.STUDIO_MAX_UPLOAD_BYTES = TINY_CLIP.stat().st_size - 1
    response = upload(client_in, "city_tiny.mp4", TINY_CLIP.read_bytes())
    assert_refused(response, studio_dirs, "too large")


def test_too_long_is_refused(client_in: Client, settings: Settings, studio_dirs: Path) -> None:
    settings.STUDIO_MAX_CLIP_SECONDS = 0  # city_tiny lasts 0.6 s
    response = upload(client_in, "city_tiny.mp4", TINY_CLIP.read_bytes())
    assert_refused(response, studio_dirs, "too long", "0.6 s", "limit is 0 s")


def test_too_many_pixels_is_refused(
    client_in: Client, settings: Settings, studio_dirs: Path
) -> None:
    settings.STUDIO_MAX_CLIP_PIXELS = 160 * 120
    response = upload(client_in, "city_tiny.mp4", TINY_CLIP.read_bytes())
    assert_refused(response, studio_dirs, "192x128 is too large")


def test_too_small_resolution_is_refused(
    client_in: Client, studio_dirs: Path, tmp_path: Path
) -> None:
    response = upload(client_in, "tiny.webm", small_webm(tmp_path, 48, 32), "video/webm")
    assert_refused(response, studio_dirs, "48x32 is too small", "at least 64 pixels")


def test_single_frame_is_refused(client_in: Client, studio_dirs: Path, tmp_path: Path) -> None:
    response = upload(client_in, "one.webm", small_webm(tmp_path, 96, 96, frames=1))
    assert_refused(response, studio_dirs, "only 1 frame", "at least 2")


def test_path_parts_in_the_name_are_dropped(client_in: Client, user: User) -> None:
    response = upload(client_in, "../../etc/passwd.mp4", TINY_CLIP.read_bytes())
    assert response.status_code == 302
    clip = Clip.objects.get()
    assert "/" not in clip.original_name and "\\" not in clip.original_name
    assert clip.original_name == "passwd.mp4"
    stored = Path(clip.file.name)
    assert stored.parent.as_posix() == f"clips/{user.pk}"
    assert stored.stem != "passwd" and len(stored.stem) == 32  # a random hex name


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd.mp4", "passwd.mp4"),
    ("C:\\Users\\me\\clip.mov", "clip.mov"),
    ("bad\x00na\x1bme\n.mp4", "badname.mp4"),
    ("..", "clip"),
    ("", "clip"),
    ("a" * 300 + ".mp4", "a" * 251 + ".mp4"),
])
def test_safe_original_name(name: str, expected: str) -> None:
    assert safe_original_name(name) == expected


def test_content_type_and_extension_are_not_trusted(client_in: Client) -> None:
    # A real video named .txt with a text content type is still a video ...
    response = upload(client_in, "holiday.txt", TINY_CLIP.read_bytes(), "text/plain")
    assert response.status_code == 302
    clip = Clip.objects.get()
    assert clip.codec == "h264"
    # ... stored under a neutral suffix, not the uploaded one.
    assert clip.file.name.endswith(".video")


def test_get_upload_goes_to_the_form_on_home(client_in: Client) -> None:
    response = client_in.get(UPLOAD)
    assert response.status_code == 302 and response["Location"] == reverse("studio:home")
    page = client_in.get(reverse("studio:home")).content.decode()
    assert 'enctype="multipart/form-data"' in page and 'name="file"' in page


def test_upload_without_csrf_token_is_forbidden(user: User, studio_dirs: Path) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = upload(client, "city_tiny.mp4", TINY_CLIP.read_bytes())
    assert response.status_code == 403
    assert Clip.objects.count() == 0 and media_files(studio_dirs) == []


def test_sample_clip(client_in: Client, settings: Settings, user: User,
                     tmp_path_factory: pytest.TempPathFactory) -> None:
    settings.DATA_DIR = tmp_path_factory.getbasetemp() / "studio-data"
    response = client_in.post(reverse("studio:clip_sample"))
    clip = Clip.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("studio:clip_detail", args=[clip.pk])
    assert clip.owner == user
    assert (clip.codec, clip.width, clip.height, clip.frame_count) == ("vp80", 384, 256, 48)
    assert clip.file.name.endswith(".webm") and clip.thumbnail
    cached = sample_clip_path()
    assert cached.parent == settings.DATA_DIR / "sample"
    assert clip.content_hash == content_hash(cached)
    # Made once: a second request reuses the cached file and the user's existing clip.
    mtime = cached.stat().st_mtime_ns
    again = client_in.post(reverse("studio:clip_sample"))
    assert again["Location"] == response["Location"]
    assert Clip.objects.count() == 1 and cached.stat().st_mtime_ns == mtime
    home = client_in.get(reverse("studio:home")).content.decode()
    assert "Try the sample clip" in home and clip.original_name in home


def raw_upload(client: Client, filename: str):
    """A multipart body written by hand: the test client refuses such names itself."""
    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
            + filename.encode() + b"\"\r\nContent-Type: video/mp4\r\n\r\n"
            + TINY_CLIP.read_bytes() + b"\r\n--b0undary--\r\n")
    return client.post(UPLOAD, body, content_type="multipart/form-data; boundary=b0undary")


def test_a_very_long_file_name_gets_a_clear_message(client_in: Client,
                                                    studio_dirs: Path) -> None:
    response = raw_upload(client_in, "a" * 1000 + ".mp4")  # Django: a bare 400 before
    assert_refused(response, studio_dirs, "file name is too long", "shorter name")


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_get_a_clear_message(client_in: Client, studio_dirs: Path,
                                       name: str) -> None:
    response = raw_upload(client_in, name)  # Django: "This field is required." before
    assert_refused(response, studio_dirs, "no usable name", "rename it")


def test_a_long_name_that_parses_is_shortened(client_in: Client) -> None:
    assert raw_upload(client_in, "b" * 600 + ".mp4").status_code == 302
    assert Clip.objects.get().original_name == "b" * 251 + ".mp4"
