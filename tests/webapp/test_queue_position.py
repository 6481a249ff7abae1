"""Where a waiting job stands (issue 10, part 3): "2 jobs ahead of yours", and whose, never
naming another user."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.studio.models import Clip, Preview, Search
from webapp.studio.queue_position import Place

pytestmark = pytest.mark.django_db


def test_the_sentence() -> None:
    assert Place(0, 0, 0, 0).text().startswith("next in line")
    assert Place(1, 1, 0, 0).text() == "2 jobs ahead of yours (1 yours, 1 another user's)"
    assert Place(0, 2, 0, 1).text() == "3 jobs ahead of yours (3 other users')"
    assert Place(0, 0, 1, 0).text() == "1 job ahead of yours (1 yours)"


def test_a_queued_search_counts_the_running_and_the_earlier_waiting(
        user: User, other_user: User, make_clip: Callable[..., Clip],
        make_search: Callable[..., Search], client_in: Client) -> None:
    mine, theirs = make_clip(user), make_clip(other_user)
    running_theirs = make_search(theirs)
    Search.objects.filter(pk=running_theirs.pk).update(status=Search.Status.RUNNING)
    waiting_mine = make_search(mine)  # queued before the one we look at
    looked_at = make_search(mine)
    make_search(theirs)  # queued after it: behind, not counted
    done = make_search(theirs)
    Search.objects.filter(pk=done.pk).update(status=Search.Status.FINISHED)

    place = client_in.get(f"/api/searches/{looked_at.pk}").json()["search"]["queue"]
    assert place["ahead"] == 2 and place["running_others"] == 1 and place["waiting_yours"] == 1
    assert place["text"] == "2 jobs ahead of yours (1 yours, 1 another user's)"
    assert "mallory" not in str(place)  # the other user is never named
    assert waiting_mine.to_dict()["queue"]["ahead"] == 1  # only the running one
    Search.objects.filter(pk=looked_at.pk).update(status=Search.Status.RUNNING)
    looked_at.refresh_from_db()
    assert looked_at.to_dict()["queue"] is None  # it runs: no place to show


def test_full_trainings_wait_on_the_long_queue_too(
        user: User, other_user: User, make_clip: Callable[..., Clip],
        make_search: Callable[..., Search]) -> None:
    from webapp.studio.progress import announce

    theirs = make_search(make_clip(other_user))
    announce(theirs.pk, "full_training_queued", {"candidate": "full-trial-1"})
    announce(theirs.pk, "full_training_started", {"candidate": "full-trial-1"})
    ended = make_search(make_clip(other_user))
    announce(ended.pk, "full_training_queued", {"candidate": "full-trial-2"})
    announce(ended.pk, "full_training_done", {"candidate": "full-trial-2"})
    Search.objects.filter(pk__in=[theirs.pk, ended.pk]).update(status=Search.Status.FINISHED)
    mine = make_search(make_clip(user))
    assert mine.to_dict()["queue"]["running_others"] == 1
    assert mine.to_dict()["queue"]["ahead"] == 1


def test_a_queued_preview_page_says_where_it_stands(
        user: User, other_user: User, make_clip: Callable[..., Clip],
        make_search: Callable[..., Search], client_in: Client) -> None:
    theirs = make_search(make_clip(other_user))
    Preview.objects.create(search=theirs, candidate="trial-0", status=Preview.Status.RUNNING)
    search = make_search(make_clip(user))
    preview = Preview.objects.create(search=search, candidate="trial-1")
    page = client_in.get(f"/previews/{preview.pk}/").content.decode()
    assert "Waiting for a worker: 1 job ahead of yours (1 another user&#x27;s)" in page
