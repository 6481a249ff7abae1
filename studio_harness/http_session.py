"""A small HTTP client session for a live studio: cookies, Django's CSRF double-submit, the
real login form, and the paged event history a reconnecting client reads."""

from __future__ import annotations

import http.client
import json
import secrets
import string
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode


class HttpSession:
    """Cookies and Django's CSRF double-submit (a cookie and the same token in a header)."""

    def __init__(self, port: int, sessionid: str | None = None) -> None:
        self.port = port
        self.cookies: dict[str, str] = {
            "csrftoken": "".join(secrets.choice(string.ascii_letters + string.digits)
                                 for _ in range(32)),
        }
        if sessionid:
            self.cookies["sessionid"] = sessionid

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                accept_json: bool = True, csrf: bool = True,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        headers = {"Cookie": self.cookie_header, "Host": f"127.0.0.1:{self.port}"}
        if accept_json:
            headers["Accept"] = "application/json"
        body = None
        if method == "POST":
            body = urlencode(form or {}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if csrf:
                headers["X-CSRFToken"] = self.cookies["csrftoken"]
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            for header in response.headers.get_all("Set-Cookie") or []:
                for key, morsel in SimpleCookie(header).items():
                    self.cookies[key] = morsel.value
            return response.status, dict(response.headers), data
        finally:
            connection.close()

    def get_json(self, path: str) -> dict[str, Any]:
        status, _, data = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {data[:500]!r}"
        return json.loads(data)

    def post(self, path: str, form: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, _, data = self.request("POST", path, form)
        return status, data

    def login(self, username: str, password: str) -> None:
        """The real login form POST (its template is not needed for a successful login)."""
        status, headers, data = self.request(
            "POST", "/accounts/login/", {"username": username, "password": password,
                                         "csrfmiddlewaretoken": self.cookies["csrftoken"]},
            accept_json=False, csrf=False)
        assert status == 302 and "sessionid" in self.cookies, (status, data[:300])

    def all_events(self, search_id: int) -> list[dict[str, Any]]:
        """Every persisted event, paged with `?after=N` as a reconnecting client would."""
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.get_json(f"/api/searches/{search_id}?after={after}")
            events += page["events"]
            after = page["next_after"]
            if not page["more"]:
                return events
