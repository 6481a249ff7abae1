"""Clips, their files and searches are private: another user's primary key answers 404."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.conftest import TINY_CLIP
from webapp.studio.models import Clip, Search

ClipMaker = Callable[..., Clip]
SearchMaker = Callable[..., Search]


@pytest.mark.parametrize("name", ["clip_detail", "clip_file", "clip_thumbnail"])
def test_another_users_clip_is_404(client_in: Client, other_user: User, make_clip: ClipMaker,
                                   name: str) -> None:
    theirs = make_clip(other_user)
    assert client_in.get(reverse(f"studio:{name}", args=[theirs.pk])).status_code == 404
    assert client_in.get(reverse(f"studio:{name}", args=[theirs.pk + 1000])).status_code == 404


def test_another_users_search_is_404(client_in: Client, other_user: User, make_clip: ClipMaker,
                                     make_search: SearchMaker) -> None:
    theirs = make_search(make_clip(other_user))
    assert client_in.get(reverse("studio:search_detail", args=[theirs.pk])).status_code == 404


def test_another_users_clip_cannot_be_searched(client_in: Client, other_user: User,
                                               make_clip: ClipMaker) -> None:
    theirs = make_clip(other_user)
    page = client_in.get(reverse("studio:search_new") + f"?clip={theirs.pk}")
    assert page.status_code == 200 and "city_tiny.mp4" not in page.content.decode()
    response = client_in.post(reverse("studio:search_new"), {
        "clip": theirs.pk, "task": "sr_x2", "quality": "psnr", "cost": "macs", "width": 1280,
        "height": 720, "strategy": "nsga2", "n_trials": 4, "fidelity": "single", "steps": 100,
        "workers": 1, "seed": 0})
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["clip"]
    assert Search.objects.count() == 0


def test_home_lists_only_my_clips_and_searches(client_in: Client, user: User, other_user: User,
                                               make_clip: ClipMaker,
                                               make_search: SearchMaker) -> None:
    mine = make_clip(user, "mine.mp4")
    make_search(make_clip(other_user, "theirs.mp4"))
    my_search = make_search(mine, task="denoise")
    page = client_in.get(reverse("studio:home")).content.decode()
    assert "mine.mp4" in page and "theirs.mp4" not in page
    assert reverse("studio:search_detail", args=[my_search.pk]) in page
    assert "Denoise" in page and "0/3 trials" in page and "Queued" in page
    assert reverse("studio:clip_thumbnail", args=[mine.pk]) in page


def test_clip_file_and_thumbnail_are_served_to_the_owner(client_in: Client, user: User,
                                                         make_clip: ClipMaker) -> None:
    clip = make_clip(user)
    response = client_in.get(reverse("studio:clip_file", args=[clip.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == TINY_CLIP.read_bytes()
    thumb = client_in.get(reverse("studio:clip_thumbnail", args=[clip.pk]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(b"".join(thumb.streaming_content), np.uint8),
                         cv2.IMREAD_COLOR)
    assert image.shape[1] == 320


def test_clip_detail_shows_the_probe(client_in: Client, user: User, make_clip: ClipMaker) -> None:
    clip = make_clip(user)
    page = client_in.get(reverse("studio:clip_detail", args=[clip.pk])).content.decode()
    for text in ("h264", "192 x 128", "25 fps", "0.60 s", clip.content_hash,
                 f"{reverse('studio:search_new')}?clip={clip.pk}",
                 reverse("studio:clip_file", args=[clip.pk])):
        assert text in page, text


def test_missing_file_is_404_not_500(client_in: Client, user: User,
                                     make_clip: ClipMaker) -> None:
    clip = make_clip(user)
    clip.thumbnail.storage.delete(clip.thumbnail.name)
    assert client_in.get(reverse("studio:clip_thumbnail", args=[clip.pk])).status_code == 404


def test_own_search_page_gets_the_search_and_its_clip(client_in: Client, user: User,
                                                      make_clip: ClipMaker,
                                                      make_search: SearchMaker) -> None:
    search = make_search(make_clip(user))
    response = client_in.get(reverse("studio:search_detail", args=[search.pk]))
    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "studio/search_detail.html"
    assert response.context["search"] == search and response.context["clip"] == search.clip


@pytest.mark.django_db
def test_an_id_past_the_databases_range_is_a_plain_404(client: Client) -> None:
    client.force_login(User.objects.create_user("long-ids", password="pw-for-tests-9"))
    for path in (f"/searches/{'9' * 120}/", f"/clips/{'9' * 40}/file",
                 f"/api/searches/{'9' * 30}/trials/{'9' * 30}"):
        assert client.get(path).status_code == 404, path
