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
