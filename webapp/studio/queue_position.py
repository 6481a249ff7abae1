"""Where a waiting job stands: "2 jobs ahead of yours (1 yours, 1 another user's)".

Jobs wait on one of two Celery queues (settings.CELERY_TASK_ROUTES): the long one (searches
and full trainings) and the interactive one (previews). Ahead of a waiting job are the jobs
of its queue that run now, and those waiting that were started before it. The count comes
from the studio's own rows (a search's status, a preview's status, a full training's
events), not from the broker: reading Redis's queue would not say whose a message is, and
the rows already hold everything the page needs. Other users are never named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webapp.studio.limits import active_full_training_jobs
from webapp.studio.models import Preview, Search


@dataclass(frozen=True)
class Place:
    running_yours: int
    running_others: int
    waiting_yours: int
    waiting_others: int

    @property
    def ahead(self) -> int:
        return self.running_yours + self.running_others + self.waiting_yours + self.waiting_others

    def to_dict(self) -> dict[str, Any]:
        return {"ahead": self.ahead, "running_yours": self.running_yours,
                "running_others": self.running_others, "waiting_yours": self.waiting_yours,
                "waiting_others": self.waiting_others, "text": self.text()}

    def text(self) -> str:
        if self.ahead == 0:
            return "next in line: it starts as soon as a worker takes it"
        yours = self.running_yours + self.waiting_yours
        others = self.running_others + self.waiting_others
        whose = [f"{yours} yours"] if yours else []
        whose += [f"{others} another user's" if others == 1 else f"{others} other users'"] \
            if others else []
        jobs = "job" if self.ahead == 1 else "jobs"
        return f"{self.ahead} {jobs} ahead of yours ({', '.join(whose)})"


def _count(rows: list[tuple[int, str, datetime]], owner_id: int, before: datetime
           ) -> Place:
    """rows: (owner id, 'running'|'queued', started at) of the other jobs of the queue."""
    counts = {"running_yours": 0, "running_others": 0, "waiting_yours": 0, "waiting_others": 0}
    for owner, state, at in rows:
        if state == "queued" and at >= before:
            continue  # started after this one: behind it
        kind = "running" if state == "running" else "waiting"
        counts[f"{kind}_{'yours' if owner == owner_id else 'others'}"] += 1
    return Place(**counts)


def _long_queue_jobs(exclude_search: int | None = None) -> list[tuple[int, str, datetime]]:
    """Searches and full trainings queued or running: (owner id, state, since)."""
    rows = [(owner, status, created) for pk, owner, status, created in Search.objects.filter(
        status__in=(Search.Status.QUEUED, Search.Status.RUNNING)).values_list(
        "pk", "owner_id", "status", "created_at") if pk != exclude_search]
    rows += [(job.owner_id, job.state, job.since)
             for job in active_full_training_jobs().values()]
    return rows


def search_place(search: Search) -> dict[str, Any] | None:
    """For a queued search: where it stands on the long queue; None otherwise."""
    if search.status != Search.Status.QUEUED:
        return None
    return _count(_long_queue_jobs(exclude_search=search.pk), search.owner_id,
                  search.created_at).to_dict()


def preview_place(preview: Preview) -> dict[str, Any] | None:
    """For a queued preview: where it stands on the interactive queue; None otherwise."""
    if preview.status != Preview.Status.QUEUED:
        return None
    rows = [(owner, "running" if status == Preview.Status.RUNNING else "queued", created)
            for owner, status, created in Preview.objects.filter(
                status__in=(Preview.Status.QUEUED, Preview.Status.RUNNING)).exclude(
                pk=preview.pk).values_list("search__owner_id", "status", "created_at")]
    return _count(rows, preview.search.owner_id, preview.created_at).to_dict()
