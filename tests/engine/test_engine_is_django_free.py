"""engine/ must stay usable without Django: importing every module imports no Django."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

_PROBE = """
import importlib, json, pkgutil, sys
import engine
names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")
         if m.name != "engine.__main__"]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names,
                  "django": sorted(m for m in sys.modules if m.split(".")[0] == "django")}))
"""


def test_importing_every_engine_module_imports_no_django() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) >= 20, result["modules"]  # really walked the package
    assert "engine.search.search" in result["modules"]
    assert result["django"] == []
