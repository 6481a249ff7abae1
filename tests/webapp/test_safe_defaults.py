"""Safe defaults (issue 10, part 6): DEBUG off unless DJANGO_DEBUG=1, a plain 404 page, and
the studio's data folder private (0700, files 0600)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import REPO


def _settings_in_a_fresh_process(data_dir: Path, **env: str) -> str:
    """Import the settings as `make run` does (no DJANGO_DEBUG unless given) and print
    DEBUG; the data folder is a temporary one."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_DEBUG")}
    environment.update(STUDIO_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="webapp.settings",
                       **env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import "
         "settings; print(settings.DEBUG)"],
        cwd=REPO, env=environment, capture_output=True, text=True, check=True).stdout.strip()


def test_debug_is_off_unless_asked_for(tmp_path: Path) -> None:
    assert _settings_in_a_fresh_process(tmp_path / "a") == "False"
    assert _settings_in_a_fresh_process(tmp_path / "b", DJANGO_DEBUG="1") == "True"


def test_the_data_folder_and_its_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    leaked = data / "studio.sqlite3"
    leaked.write_bytes(b"")
    leaked.chmod(0o644)  # as an earlier version left it
    _settings_in_a_fresh_process(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(leaked.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / ".secret_key").stat().st_mode) == 0o600


@pytest.mark.django_db
def test_a_404_is_a_plain_page(client: Client) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body and "URLconf" not in body and "urlpatterns" not in body


def test_check_deploy_is_clean_in_scaled_mode_behind_https(tmp_path: Path) -> None:
    """`manage.py check --deploy` with production settings (scaled mode, HTTPS terminated by
    a proxy), failing on any warning; nothing is silenced (SILENCED_SYSTEM_CHECKS unset)."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("DJANGO_", "STUDIO_", "DATABASE_URL"))}
    environment.update(STUDIO_DATA_DIR=str(tmp_path / "var"), REDIS_URL="redis://127.0.0.1:6379/9",
                       STUDIO_HTTPS="1", DJANGO_ALLOWED_HOSTS="studio.example.com",
                       DJANGO_SETTINGS_MODULE="webapp.settings")
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                           "WARNING"], cwd=REPO, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues (0 silenced)" in done.stdout
    # Without HTTPS (make run on loopback) the same check names what is missing: it can fail.
    environment.pop("STUDIO_HTTPS")
    plain = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                            "WARNING"], cwd=REPO, env=environment, capture_output=True, text=True)
    assert plain.returncode != 0 and "SESSION_COOKIE_SECURE" in plain.stderr + plain.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/no/such/page/",
                                  "/static/studio/studio.css"])
def test_every_response_carries_a_csp_without_unsafe_inline(client: Client, path: str) -> None:
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
