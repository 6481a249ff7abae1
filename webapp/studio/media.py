"""Serving owned media files with HTTP Range support.

Chromium cannot seek in a <video> whose server ignores `Range` (a plain FileResponse always
answers 200 with the whole file), so media answers `bytes=a-b` with 206 Partial Content.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 256 * 1024


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single-range header, or None when it cannot be satisfied."""
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    if match.group(1):
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else size - 1
    else:  # suffix range: the last N bytes
        first, last = max(0, size - int(match.group(2))), size - 1
    last = min(last, size - 1)
    return (first, last) if first <= last else None


def ranged_file_response(request: HttpRequest, path: Path,
                         content_type: str | None = None) -> HttpResponse:
    if not path.is_file():
        raise Http404("the file is missing from storage")
    content_type = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    size = path.stat().st_size
    header = request.headers.get("Range")
    if not header:
        response: HttpResponse = FileResponse(path.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    span = _parse_range(header, size)
    if span is None:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    first, last = span

    def chunks():
        with path.open("rb") as handle:
            handle.seek(first)
            left = last - first + 1
            while left > 0:
                data = handle.read(min(_CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data

    response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    return response
