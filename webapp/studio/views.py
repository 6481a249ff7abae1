"""Page views (placeholders; the UI work fills these in)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


def _todo(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("not built yet", status=501)


home = login_required(_todo)
signup = _todo
clip_upload = clip_sample = clip_detail = clip_file = clip_thumbnail = login_required(_todo)
search_new = search_detail = login_required(_todo)
