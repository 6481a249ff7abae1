"""The Django side of a live-stack scenario (the reliability tests, the live-path benchmark),
run in a subprocess with the stack's environment: settings read REDIS_URL / DATABASE_URL /
STUDIO_DATA_DIR at import, so a test process configured by pytest-django, or the benchmark
process, cannot play this part itself.

    python -m studio_harness.driver create '{"username", "password", "clip", "config"}'
    python -m studio_harness.driver launch SEARCH_ID
    python -m studio_harness.driver dump SEARCH_ID

Each command prints one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


def user_and_clip(username: str, password: str, clip_path: str) -> tuple[Any, Any]:
    """A user and a clip row whose file is a copy of `clip_path` in MEDIA_ROOT."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from engine.data.frame_cache import content_hash
    from engine.data.video_io import probe
    from webapp.studio.models import Clip

    source = Path(clip_path)
    user = get_user_model().objects.create_user(username, password=password)
    relative = f"clips/{user.pk}/{uuid.uuid4().hex}{source.suffix}"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    info = probe(target)
    clip = Clip.objects.create(
        owner=user, file=relative, original_name=source.name,
        size_bytes=target.stat().st_size, content_hash=content_hash(target), codec=info.codec,
        width=info.width, height=info.height, fps=info.fps, frame_count=info.frame_count,
        duration_s=info.duration_s)
    return user, clip


def sessionid(user: Any) -> str:
    """The session cookie of a logged-in session of `user`."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def create(spec: dict[str, Any]) -> dict[str, Any]:
    """A user (with a logged-in session), a clip copied into MEDIA_ROOT from `spec["clip"]`
    (a path: the caller names its own data), and a search."""
    from engine.config import SearchConfig
    from webapp.studio.models import Search

    user, clip = user_and_clip(spec["username"], spec["password"], spec["clip"])
    config = SearchConfig.from_dict({"clip": "x", **spec["config"]})  # clip: filled by tasks
    search = Search.objects.create(owner=user, clip=clip, name=spec.get("name", ""),
                                   config=config.to_dict(), workers=spec.get("workers", 1),
                                   status=spec.get("status", Search.Status.QUEUED))
    return {"user": user.pk, "clip": clip.pk, "search": search.pk,
            "sessionid": sessionid(user)}


def launch(search_id: int) -> dict[str, Any]:
    from webapp.studio.tasks import launch_search

    result = launch_search.delay(search_id)
    return {"task": result.id}


def dump(search_id: int) -> dict[str, Any]:
    """The rows as stored, and what the Optuna study says (the engine's own counting)."""
    import optuna

    from engine.search.search import counted_trials
    from engine.search.study import make_storage
    from webapp.studio.models import Search
    from webapp.studio.tasks import engine_config

    search = Search.objects.get(pk=search_id)
    config = engine_config(search)
    study = optuna.load_study(study_name=config.study_name, storage=make_storage(config.storage))
    return {
        "search": search.to_dict(),
        "trials": [t.to_dict() for t in search.trials.all()],
        "events": [e.to_dict() for e in search.events.all()],
        "front": [t["number"] for t in (search.report or {}).get("pareto_front", [])],
        "optuna": {
            "counted": counted_trials(study),
            "trials": [{"number": t.number, "state": t.state.name,
                        "counted": bool(t.user_attrs.get("counted")),
                        "outcome": t.user_attrs.get("outcome"),
                        "candidate": t.user_attrs.get("candidate", t.number),
                        "rung": t.user_attrs.get("rung", 0),
                        "values": t.values} for t in study.get_trials(deepcopy=False)],
        },
    }


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command, argument = argv[0], argv[1]
    if command == "create":
        result = create(json.loads(argument))
    elif command == "launch":
        result = launch(int(argument))
    elif command == "dump":
        result = dump(int(argument))
    else:
        raise SystemExit(f"unknown command {command!r}: create, launch or dump")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
