"""Every benchmark starts from a fresh ``make install``: no import of a package the project does not declare.

The first check reads each script's imports (nested ones too: a function-level ``import orjson`` once broke
``ingest_throughput.py`` on a fresh machine) and resolves every top-level module in this environment, which is
exactly what ``make install`` gives. The second starts each script with ``--help`` in a fresh interpreter, so
module-level code (path set-up, imports of our own packages) runs too.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - {"__future__"}


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_import_resolves(script: Path) -> None:
    missing = sorted(name for name in imported_modules(script) if importlib.util.find_spec(name) is None)
    assert not missing, f"{script.name} imports {missing}: not installed by `make install` (declare them)"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_starts_and_shows_help(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{script.name} --help failed:\n{done.stderr[-2000:]}"
    assert "usage" in done.stdout.lower(), done.stdout[:500]
