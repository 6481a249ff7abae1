"""The web skeleton is importable and Django's system checks pass (the studio comes next)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_manage_py_check_passes() -> None:
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout
