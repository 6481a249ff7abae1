"""Small access helpers: every object is looked up through its owner, so another user's
primary key answers 404, exactly like a key that does not exist."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.shortcuts import get_object_or_404

from webapp.studio.models import Clip, Search


def owned_clip(user: AbstractBaseUser, clip_id: int) -> Clip:
    return get_object_or_404(Clip, pk=clip_id, owner=user)


def owned_search(user: AbstractBaseUser, search_id: int) -> Search:
    return get_object_or_404(Search.objects.select_related("clip"), pk=search_id, owner=user)
