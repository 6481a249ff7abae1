"""The JSON endpoint (`?after=N` pages through the event sequence) and the control endpoints
(cancel, resume): owner only (404 otherwise), POST only, CSRF enforced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.urls import reverse

from webapp.studio import api, tasks
from webapp.studio.models import Clip, Search, SearchEvent
from webapp.studio.progress import record_event

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def search(user: User, make_clip: Callable[..., Clip],
           make_search: Callable[..., Search]) -> Search:
    return make_search(make_clip(user))


@pytest.fixture
def csrf_client(user: User) -> tuple[Client, str]:
    """A signed-in client that enforces CSRF like a browser session, and its token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    token = _get_new_csrf_string()
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    return client, token


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """launch_search.apply_async (what delay_on_commit sends through, webapp.studio.dispatch)
    replaced by a recorder (no broker in these tests)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.launch_search, "apply_async",
                        lambda args, *_, **__: calls.append(args[0]))
    return calls


def data_url(search: Search, after: Any = None) -> str:
    url = reverse("studio:search_data", args=[search.pk])
    return url if after is None else f"{url}?after={after}"


def post(client: Client, token: str, name: str, search: Search, **form: str) -> Any:
    return client.post(reverse(f"studio:{name}", args=[search.pk]), form,
                       HTTP_X_CSRFTOKEN=token, **JSON)


def test_search_data_has_the_search_its_trials_and_events(client_in: Client,
                                                          search: Search) -> None:
    record_event(search.pk, "trial_started", {"number": 0, "genome": {"key": "k"},
                                              "macs": 10, "at": 1.0})
    body = client_in.get(data_url(search)).json()
    assert body["search"]["id"] == search.pk and body["search"]["seq"] == 1
    assert [(t["number"], t["state"], t["seq"]) for t in body["trials"]] == [(0, "running", 1)]
    assert body["events"] == [{"seq": 1, "kind": "trial_started", "number": 0,
                               "genome": {"key": "k"}, "macs": 10, "at": 1.0}]
    assert body["next_after"] == 1 and body["more"] is False


def test_after_pages_through_the_event_sequence(client_in: Client, search: Search) -> None:
    total = 2 * api.EVENT_PAGE + 37
    SearchEvent.objects.bulk_create(
        SearchEvent(search=search, seq=seq, kind="trial_finished", payload={"i": seq})
        for seq in range(1, total + 1))
    seen: list[int] = []
    after, pages = 0, 0
    while True:
        body = client_in.get(data_url(search, after)).json()
        pages += 1
        seen += [e["seq"] for e in body["events"]]
        assert all(e["i"] == e["seq"] for e in body["events"])
        assert len(body["events"]) <= api.EVENT_PAGE
        after = body["next_after"]
        if not body["more"]:
            break
    assert seen == list(range(1, total + 1)) and pages == 3
    # A caught-up client gets nothing new and keeps its place; a mid-page cursor resumes.
    body = client_in.get(data_url(search, total)).json()
    assert body["events"] == [] and body["next_after"] == total and body["more"] is False
    body = client_in.get(data_url(search, total - 2)).json()
    assert [e["seq"] for e in body["events"]] == [total - 1, total]


def test_after_must_be_an_integer(client_in: Client, search: Search) -> None:
    response = client_in.get(data_url(search, "abc"))
    assert response.status_code == 400 and "after" in response.json()["error"]


def test_another_users_search_is_404_and_anonymous_goes_to_login(
        client: Client, search: Search, other_user: User) -> None:
    response = client.get(data_url(search))
    assert response.status_code == 302 and "/login" in response["Location"]
    client.force_login(other_user)
    assert client.get(data_url(search)).status_code == 404
    for name in ("search_cancel", "search_resume"):
        response = client.post(reverse(f"studio:{name}", args=[search.pk]), **JSON)
        assert response.status_code == 404
    search.refresh_from_db()
    assert search.status == Search.Status.QUEUED and not search.cancel_requested


def test_cancel_needs_post_and_csrf_then_requests_the_stop(
        csrf_client: tuple[Client, str], search: Search) -> None:
    client, token = csrf_client
    url = reverse("studio:search_cancel", args=[search.pk])
    assert client.get(url).status_code == 405
    assert client.post(url, **JSON).status_code == 403  # no token
    search.refresh_from_db()
    assert not search.cancel_requested and search.event_seq == 0

    Search.objects.filter(pk=search.pk).update(status=Search.Status.RUNNING)
    response = post(client, token, "search_cancel", search)
    assert response.status_code == 200
    assert response.json()["search"]["cancel_requested"] is True
    assert response.json()["search"]["status"] == "running"  # the worker says when it stopped
    assert list(search.events.values_list("kind", flat=True)) == ["cancel_requested"]
    # A form post (no JSON accept) goes back to the search page.
    response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == reverse("studio:search_detail", args=[search.pk])


def test_a_queued_search_cancels_at_once_and_its_task_then_does_nothing(
        csrf_client: tuple[Client, str], search: Search) -> None:
    """Nothing runs yet, so nothing must stop: it ends now, not when a worker frees up."""
    from webapp.studio.tasks import launch_search

    client, token = csrf_client
    response = post(client, token, "search_cancel", search)
    assert response.json()["search"]["status"] == "cancelled"
    assert list(search.events.values_list("kind", flat=True)) == ["cancel_requested",
                                                                  "search_cancelled"]
    launch_search(search.pk)  # its queued task, taken by a worker later
    search.refresh_from_db()
    assert search.status == Search.Status.CANCELLED
    assert search.events.count() == 2  # no second "cancelled"


def test_cancel_of_an_ended_search_changes_nothing(csrf_client: tuple[Client, str],
                                                  search: Search) -> None:
    client, token = csrf_client
    Search.objects.filter(pk=search.pk).update(status=Search.Status.FINISHED)
    assert post(client, token, "search_cancel", search).json()["search"]["cancel_requested"] \
        is False
    assert not search.events.exists()


def test_resume_requeues_a_cancelled_search_once_committed(
        csrf_client: tuple[Client, str], search: Search, launched: list[int],
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    client, token = csrf_client
    Search.objects.filter(pk=search.pk).update(
        status=Search.Status.CANCELLED, cancel_requested=True, error="x")
    url = reverse("studio:search_resume", args=[search.pk])
    assert client.get(url).status_code == 405
    assert client.post(url, **JSON).status_code == 403
    assert launched == []

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, token, "search_resume", search)
    assert response.status_code == 200
    body = response.json()["search"]
    assert (body["status"], body["cancel_requested"], body["error"]) == ("queued", False, "")
    assert len(callbacks) == 1 and launched == [search.pk]
    assert list(search.events.values_list("kind", flat=True)) == ["search_resumed"]


@pytest.mark.parametrize("status", ["failed", "interrupted"])
def test_resume_requeues_failed_and_interrupted_searches(
        csrf_client: tuple[Client, str], search: Search, launched: list[int], status: str,
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    client, token = csrf_client
    Search.objects.filter(pk=search.pk).update(status=status)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, token, "search_resume", search).json()["search"]["status"] == \
            "queued"
    assert launched == [search.pk]


def test_resume_of_a_running_search_needs_force(
        csrf_client: tuple[Client, str], search: Search, launched: list[int],
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    """A worker that died leaves its search 'running': only a forced resume queues it."""
    client, token = csrf_client
    Search.objects.filter(pk=search.pk).update(status=Search.Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, token, "search_resume", search).json()["search"]["status"] == \
            "running"
    assert launched == []
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, token, "search_resume", search, force="1").json()["search"][
            "status"] == "queued"
    assert launched == [search.pk]


def test_resume_of_a_finished_search_changes_nothing(
        csrf_client: tuple[Client, str], search: Search, launched: list[int],
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    client, token = csrf_client
    Search.objects.filter(pk=search.pk).update(status=Search.Status.FINISHED)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, token, "search_resume", search, force="1").json()["search"][
            "status"] == "finished"
    assert launched == [] and not search.events.exists()


def test_the_plot_is_404_until_the_search_wrote_it(client_in: Client, search: Search) -> None:
    assert client_in.get(reverse("studio:search_plot", args=[search.pk])).status_code == 404


def test_trial_data_is_one_trial_in_full_for_its_owner_only(
        client_in: Client, search: Search, other_user: User) -> None:
    """The live page's rows are slim: a trial's genome comes from here when its detail
    opens."""
    record_event(search.pk, "trial_started", {"number": 4, "genome": {"key": "k", "width": 8},
                                              "macs": 10, "at": 1.0})
    url = reverse("studio:trial_data", args=[search.pk, 4])
    body = client_in.get(url).json()
    assert body["trial"]["number"] == 4 and body["trial"]["state"] == "running"
    assert body["trial"]["genome"] == {"key": "k", "width": 8}
    assert client_in.get(reverse("studio:trial_data", args=[search.pk, 5])).status_code == 404
    other = Client()
    other.force_login(other_user)
    assert other.get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page
