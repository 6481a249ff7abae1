"""Media answers HTTP Range requests (206 Partial Content): the browser's player seeks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import TINY_CLIP
from webapp.studio.media import UNSATISFIABLE, _parse_range
from webapp.studio.models import Clip


@pytest.fixture
def clip(settings) -> Clip:
    owner = User.objects.create_user("owner", password="pw-for-tests-1")
    target = Path(settings.MEDIA_ROOT) / "clips" / "1" / "tiny.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TINY_CLIP, target)
    return Clip.objects.create(owner=owner, file="clips/1/tiny.mp4", original_name="tiny.mp4",
                               size_bytes=target.stat().st_size, content_hash="x",
                               codec="h264", width=192, height=128, fps=25.0, frame_count=15,
                               duration_s=0.6)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_range_request_gets_206_with_exact_bytes(clip: Clip) -> None:
    data = TINY_CLIP.read_bytes()
    client = _client(clip.owner)
    response = client.get(f"/clips/{clip.pk}/file", HTTP_RANGE="bytes=100-1099")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert b"".join(response.streaming_content) == data[100:1100]
    tail = client.get(f"/clips/{clip.pk}/file", HTTP_RANGE="bytes=-500")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-500:]
    whole = client.get(f"/clips/{clip.pk}/file")
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data
    bad = client.get(f"/clips/{clip.pk}/file", HTTP_RANGE=f"bytes={len(data) + 10}-")
    assert bad.status_code == 416


@pytest.mark.django_db
def test_another_user_gets_404_even_with_a_range(clip: Clip) -> None:
    other = User.objects.create_user("other", password="pw-for-tests-2")
    response = _client(other).get(f"/clips/{clip.pk}/file", HTTP_RANGE="bytes=0-10")
    assert response.status_code == 404


def test_parse_range() -> None:
    assert _parse_range("bytes=0-9", 100) == (0, 9)
    assert _parse_range("bytes=90-", 100) == (90, 99)
    assert _parse_range("bytes=-10", 100) == (90, 99)
    assert _parse_range("bytes=50-500", 100) == (50, 99)
    assert _parse_range("BYTES=0-9", 100) == (0, 9)  # the unit is case-insensitive
    assert _parse_range("bytes=100-", 100) == UNSATISFIABLE
    assert _parse_range("bytes=-0", 100) == UNSATISFIABLE
    # Ignored (the whole file, 200): another unit, several ranges, malformed ones.
    for header in ("items=0-1", "bytes=0-1,5-10", "bytes=9-3", "bytes=a-b", "bytes=-", ""):
        assert _parse_range(header, 100) is None, header


@pytest.mark.django_db
def test_ignored_ranges_get_the_whole_file(clip: Clip) -> None:
    data = TINY_CLIP.read_bytes()
    client = _client(clip.owner)
    for header in ("bytes=0-1,5-10", "bytes=5-2", "pages=1-2"):
        response = client.get(f"/clips/{clip.pk}/file", HTTP_RANGE=header)
        assert response.status_code == 200, header
        assert b"".join(response.streaming_content) == data
    upper = client.get(f"/clips/{clip.pk}/file", HTTP_RANGE="BYTES=0-5")
    assert upper.status_code == 206 and b"".join(upper.streaming_content) == data[:6]
