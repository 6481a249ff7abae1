"""bench/ must not depend on tests/: what both need lives in studio_harness/, which must not
depend on tests/ either (bench/ imports it). Read from the source, without importing it:
importing bench would pull in torch and Django for nothing."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

SCANNED = ("bench", "studio_harness")


def _is_tests(module: str) -> bool:
    return module == "tests" or module.startswith("tests.")


def references_to_tests(source: str) -> list[str]:
    """Every import of tests/ in a module's source (top-level or inside a function), and
    every string naming a tests module as `python -m` would run it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_tests(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            # Relative imports (level > 0) stay inside their own package.
            if node.level == 0 and node.module and _is_tests(node.module):
                found.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _is_tests(node.value) and " " not in node.value:  # a module name, not prose
                found.append(repr(node.value))
    return found


@pytest.mark.parametrize("package", SCANNED)
def test_package_never_imports_tests(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert len(files) >= 4, files  # really scanned the package
    found = [f"{path.relative_to(REPO)}: {name}" for path in files
             for name in references_to_tests(path.read_text())]
    assert found == []


def test_the_scan_sees_every_kind_of_reference() -> None:
    source = ("import tests.conftest\n"
              "from tests.reliability import harness\n"
              "def f():\n"
              "    from tests import conftest\n"
              "    return ['-m', 'tests.reliability.driver']\n"
              "from . import tests\n"
              "import testsuite\n"
              "NOTE = 'tests. are run by make test'\n")
    assert sorted(references_to_tests(source)) == sorted([
        "tests.conftest", "tests.reliability", "tests", "'tests.reliability.driver'"])
