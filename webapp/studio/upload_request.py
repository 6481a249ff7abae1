"""Reading a clip upload's request body, with a clear answer for every body Django refuses.

Django's multipart parser drops a file named '.', '..' (or nothing printable) without a
word, so the form said "This field is required."; a part whose headers pass 1 KB (a file
name of about 900 characters or more) stops the whole parse, which Django answers with a
bare "Bad Request (400)"; a full disk while the body is spooled was a "Server Error (500)".
read_upload_body() parses the body before anything else reads it and says what went wrong
and what to do instead.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from engine.safe_files import DISK_FULL_MESSAGE, is_disk_full, log_disk_full

UNNAMED = "unnamed upload"  # stands in for a name Django would drop, so the file stays seen


class UploadRefused(Exception):
    """The body cannot be read as a clip upload; the message is for the user."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _ClipUploadParser(MultiPartParser):
    """Django's parser, but a file whose name Django would drop is kept and flagged."""

    nameless = False

    def sanitize_file_name(self, file_name: str) -> str | None:
        cleaned = super().sanitize_file_name(file_name)
        if cleaned is None:
            self.nameless = True
            return UNNAMED
        return cleaned


def read_upload_body(request: HttpRequest) -> None:
    """Parse request.POST and request.FILES now (the upload handlers already in place);
    raises UploadRefused with what to do for a body Django would refuse or misread."""
    parsers: list[_ClipUploadParser] = []

    def parse_file_upload(META: dict, post_data: object) -> tuple:  # noqa: N803  # Django's
        parser = _ClipUploadParser(META, post_data, request.upload_handlers, request.encoding)
        parsers.append(parser)
        return parser.parse()

    request.parse_file_upload = parse_file_upload  # type: ignore[method-assign]
    try:
        request.POST  # noqa: B018  # parses the body, once
    except MultiPartParserError as error:
        if "header size" in str(error):
            raise UploadRefused(
                "the file name is too long (the upload's headers may take at most 1 KB): "
                "rename the file to a shorter name and upload it again") from error
        raise UploadRefused(f"the upload could not be read ({error}); upload the file "
                            "through the studio's upload form") from error
    except OSError as error:  # the body is spooled to a temp folder, which may be full
        if not is_disk_full(error):
            raise
        log_disk_full("reading an upload's body", error)
        raise UploadRefused(DISK_FULL_MESSAGE, status=507) from error
    if any(parser.nameless for parser in parsers):
        raise UploadRefused(
            "the file has no usable name ('.', '..' or no printable character): rename it, "
            "for example to clip.mp4, and upload it again")
