"""Request bodies cannot stall anyone (issue 10, part 1), on `make run`'s real server
(`python -m webapp.serve`) over raw sockets: a declared oversized body is refused with 413
before any of it is sent, a chunked one as soon as it passes the limit, only a signed-in
upload may be large, and other requests are answered while a large upload streams in."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from studio_harness.processes import Process, run_driver, run_manage, start_server
from tests.conftest import TINY_CLIP
from tests.reliability.conftest import base_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=[])]
CONFIG = {"task": "sr_x2", "n_trials": 1, "rungs": None}
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, int, str]]:
    root = tmp_path_factory.mktemp("limits")
    env = {**base_env(root / "data"), "STUDIO_MAX_UPLOAD_BYTES": str(8 * MB)}
    run_manage(env, "migrate", "--noinput", "-v", "0")
    created = run_driver(env, "create", json.dumps({
        "username": f"user-{uuid.uuid4().hex[:8]}", "password": "correct horse 42",
        "clip": str(TINY_CLIP), "config": CONFIG, "status": "cancelled"}))
    web, port = start_server(env, root)
    try:
        yield web, port, created["sessionid"]
    finally:
        web.stop()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.settimeout(20)
    return sock


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the response on `sock` (the server closes after a 413)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), body


def _headers(method: str, path: str, port: int, extra: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             *(f"{k}: {v}" for k, v in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_declared_oversized_body_is_refused_before_it_is_sent(server) -> None:
    _, port, _ = server
    with _connect(port) as sock:  # anonymous, 300 MB announced, not one byte of it sent
        sock.sendall(_headers("POST", "/accounts/login/", port, {
            "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(300 * MB)}))
        status, body = _response(sock)
    assert status == 413 and "at most 64 KB" in json.loads(body)["error"]


def test_anonymous_uploads_are_small_and_signed_in_ones_have_the_upload_limit(server) -> None:
    _, port, sessionid = server
    for cookie, expected in ((None, "sign in to upload"), (f"sessionid={sessionid}",
                                                           "the file is too large")):
        extra = {"Content-Type": "multipart/form-data; boundary=x",
                 "Content-Length": str(20 * MB)}
        if cookie:
            extra["Cookie"] = cookie
        with _connect(port) as sock:
            sock.sendall(_headers("POST", "/clips/upload/", port, extra))
            status, body = _response(sock)
        assert status == 413 and expected in json.loads(body)["error"]


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(server) -> None:
    _, port, _ = server
    chunk = b"a" * 16384
    sent = 0
    with _connect(port) as sock:
        sock.sendall(_headers("POST", "/accounts/login/", port, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Transfer-Encoding": "chunked"}))
        try:
            for _ in range(64 * 20):  # up to 20 MB, unless the server answers first
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
                sock.settimeout(0.0)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(20)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, body = _response(sock)
    assert status == 413 and "too large" in json.loads(body)["error"]
    assert sent < 4 * MB  # refused long before the client was done


def test_pages_answer_while_a_large_upload_streams_in(server) -> None:
    """A signed-in upload just under the limit, sent slowly; a GET on another connection is
    answered while the upload's body is still arriving."""
    web, port, sessionid = server
    boundary = "pixelboundary"
    size = 7 * MB
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"big.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    suffix = f"\r\n--{boundary}--\r\n".encode()
    upload = _connect(port)
    upload.sendall(_headers("POST", "/clips/upload/", port, {
        "Cookie": f"sessionid={sessionid}; csrftoken=x",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(prefix) + size + len(suffix))}))
    upload.sendall(prefix + b"\0" * (size // 2))
    answered = threading.Event()

    def get_page() -> None:
        with _connect(port) as sock:
            sock.sendall(_headers("GET", "/accounts/login/", port, {"Connection": "close"}))
            status, _ = _response(sock)
            if status == 200:
                answered.set()

    reader = threading.Thread(target=get_page)
    reader.start()
    reader.join(timeout=30)
    try:
        assert answered.is_set(), web.tail()  # the upload's second half is not sent yet
        upload.sendall(b"\0" * (size - size // 2) + suffix)
        status, _ = _response(upload)
        assert status in (302, 400, 403)  # handled by the view (CSRF or the clip check)
    finally:
        upload.close()
    web.check_alive()


def test_a_browser_form_post_gets_a_page_not_json(server) -> None:
    _, port, _ = server
    with _connect(port) as sock:
        sock.sendall(_headers("POST", "/accounts/login/", port, {
            "Accept": "text/html,application/xhtml+xml", "Content-Length": str(5 * MB),
            "Content-Type": "application/x-www-form-urlencoded"}))
        status, body = _response(sock)
    assert status == 413 and b"<h1>Request refused</h1>" in body and b"64 KB" in body


def test_a_chunked_upload_with_a_csrf_token_is_accepted(server) -> None:
    """Transfer-Encoding: chunked, no Content-Length: Django's multipart parser needs a length,
    which webapp.body_limits.LengthKnownRequest gives it once the body is in (it was a CSRF
    403: the form's token was never parsed)."""
    _, port, sessionid = server
    token = "a" * 32  # a CSRF secret: the cookie and the form field carry the same one
    boundary = "chunkedboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\""
            f"\r\n\r\n{token}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"file\"; filename=\"chunked.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
            ).encode() + TINY_CLIP.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    with _connect(port) as sock:
        sock.sendall(_headers("POST", "/clips/upload/", port, {
            "Cookie": f"sessionid={sessionid}; csrftoken={token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Transfer-Encoding": "chunked", "Connection": "close"}))
        for start in range(0, len(body), 16384):
            piece = body[start:start + 16384]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        status, answer = _response(sock)
    assert status == 302, answer[:500]  # stored: on to the clip's page
