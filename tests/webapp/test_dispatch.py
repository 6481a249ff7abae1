"""With the broker down (pointed at a port where nothing listens), every request that starts
a job answers 503 with a clear message within seconds and leaves nothing queued that nobody
will run: a new search is rolled back, a resumed search, a preview and a full training read
failed with the message (webapp.studio.dispatch)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from engine.train.checkpoint import checkpoint_path
from studio_harness.processes import free_port
from tests.webapp.test_search_form import NEW, form_data
from webapp.celery import app as celery_app
from webapp.studio.dispatch import QUEUE_DOWN
from webapp.studio.models import Clip, Preview, Search
from webapp.studio.tasks import engine_config

# on_commit callbacks run at the real commit: the send happens inside the request.
pytestmark = pytest.mark.django_db(transaction=True)
FAST_S = 8  # one quick retry on a refused connection: well under a second here


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    monkeypatch.setitem(celery_app.conf, "broker_url", url)
    yield url


@pytest.fixture
def clip(user: User, make_clip: Callable[..., Clip]) -> Clip:
    return make_clip(user)


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def assert_queue_down(response: object, seconds: float) -> None:
    assert response.status_code == 503, response.content[:500]
    assert response["Retry-After"] == "60"
    assert seconds < FAST_S, f"the request waited {seconds:.1f} s for a dead broker"


def test_a_new_search_is_refused_and_rolled_back(client_in: Client, clip: Clip,
                                                 broker_down: str) -> None:
    response, seconds = timed(lambda: client_in.post(NEW, form_data(clip)))
    assert_queue_down(response, seconds)
    assert QUEUE_DOWN in response.content.decode()
    assert not Search.objects.exists()  # nothing queued that no worker will run


def test_a_resume_is_refused_and_the_search_reads_failed(
        client_in: Client, clip: Clip, make_search: Callable[..., Search],
        broker_down: str) -> None:
    search = make_search(clip)
    Search.objects.filter(pk=search.pk).update(status=Search.Status.CANCELLED)
    response, seconds = timed(lambda: client_in.post(
        f"/searches/{search.pk}/resume", HTTP_ACCEPT="application/json"))
    assert_queue_down(response, seconds)
    assert json.loads(response.content) == {"error": QUEUE_DOWN}
    search.refresh_from_db()
    assert (search.status, search.error) == ("failed", QUEUE_DOWN)
    # The page that saw "resumed" is told it failed, in the same event sequence.
    assert list(search.events.values_list("kind", flat=True)) == ["search_resumed",
                                                                   "search_failed"]


def trained(search: Search, candidate: str = "trial-0") -> str:
    """A checkpoint file where the views look for one (its content is not read here)."""
    path = checkpoint_path(engine_config(search).out_dir, candidate)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return candidate


def test_a_preview_is_refused_and_reads_failed(client_in: Client, clip: Clip,
                                               make_search: Callable[..., Search],
                                               broker_down: str) -> None:
    search = make_search(clip)
    candidate = trained(search)
    response, seconds = timed(lambda: client_in.post(
        f"/searches/{search.pk}/previews", {"candidate": candidate, "mode": "measured"}))
    assert_queue_down(response, seconds)
    assert QUEUE_DOWN in response.content.decode()
    [preview] = Preview.objects.all()
    assert (preview.status, preview.error) == ("failed", QUEUE_DOWN)


def test_a_full_training_is_refused_and_announced_failed(
        client_in: Client, clip: Clip, make_search: Callable[..., Search],
        broker_down: str) -> None:
    search = make_search(clip)
    candidate = trained(search)
    response, seconds = timed(lambda: client_in.post(
        f"/searches/{search.pk}/full-train", {"candidate": candidate, "steps": 500}))
    assert_queue_down(response, seconds)
    last = search.events.order_by("-seq").first()
    assert last is not None and last.kind == "full_training_failed"
    assert last.payload == {"candidate": f"full-{candidate}", "error": QUEUE_DOWN}


def test_with_the_broker_up_the_job_is_queued(client_in: Client, clip: Clip,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded mode's in-memory broker: the same path queues the launch."""
    sent: list[tuple] = []
    monkeypatch.setattr("webapp.studio.tasks.launch_search.apply_async",
                        lambda args, *_, **options: sent.append((args, options)))
    response = client_in.post(NEW, form_data(clip))
    assert response.status_code == 302
    search = Search.objects.get()
    assert search.status == "queued"
    [(args, options)] = sent
    assert args == (search.pk,) and options["retry_policy"]["max_retries"] == 1
