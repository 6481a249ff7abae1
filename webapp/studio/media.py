"""Serving owned media files with HTTP Range support.

Chromium cannot seek in a <video> whose server ignores `Range` (a plain FileResponse always
answers 200 with the whole file), so media answers `bytes=a-b` with 206 Partial Content.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.IGNORECASE)  # RFC 9110: the unit's case
_CHUNK = 256 * 1024
UNSATISFIABLE = "unsatisfiable"


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) byte of a single-range header; UNSATISFIABLE when it starts past the
    end (416); None when the header is to be ignored (RFC 9110 14.2: a server may ignore a
    Range it does not support, such as several ranges, and must ignore a malformed one):
    then the whole file goes out with 200."""
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    if match.group(1):
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else size - 1
        if match.group(2) and last < first:
            return None  # "bytes=9-3" is invalid syntax, not an unsatisfiable range
    else:  # suffix range: the last N bytes
        if int(match.group(2)) == 0:
            return UNSATISFIABLE
        first, last = max(0, size - int(match.group(2))), size - 1
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def ranged_file_response(request: HttpRequest, path: Path,
                         content_type: str | None = None) -> HttpResponse:
    if not path.is_file():
        raise Http404("the file is missing from storage")
    content_type = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    size = path.stat().st_size
    header = request.headers.get("Range")
    span = _parse_range(header, size) if header else None
    if span is None:
        response: HttpResponse = FileResponse(path.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    if span == UNSATISFIABLE:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    assert isinstance(span, tuple)
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
