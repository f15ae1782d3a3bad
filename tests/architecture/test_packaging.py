"""Architecture rules a successor relies on: import contracts, the edge-only install, the CLI shell."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _closure(dist_name: str, extras: set[str]) -> set[str]:
    """Names of every distribution that ``pip install dist_name[extras]`` pulls in (from installed metadata)."""
    seen: set[str] = set()
    todo: list[tuple[str, set[str]]] = [(dist_name, extras)]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for raw in dist.requires or []:
            req = Requirement(raw)
            markers_ok = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (wanted or {""}))
            if not markers_ok:
                continue
            key = re.sub(r"[-_.]+", "-", req.name).lower()
            if key not in seen:
                seen.add(key)
                todo.append((req.name, set(req.extras)))
    return seen


def test_edge_install_pulls_no_web_framework_or_orm() -> None:
    edge = _closure("market-sentinel", {"edge"})
    assert {"pymodbus", "aiomqtt", "pyserial", "opencv-python-headless"} <= edge
    assert not edge & {"fastapi", "sqlmodel", "sqlalchemy", "starlette", "uvicorn"}, edge
    cloud = _closure("market-sentinel", {"cloud"})
    assert {"fastapi", "sqlmodel"} <= cloud


def test_opencv_pinned_below_5() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"opencv-python-headless>=4.12,<5"' in text


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lint-imports"), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for name in ("protocols", "edge", "cloud", "simulators"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_import_contracts_hold(tree_copy: Path) -> None:
    result = _lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("edge", "cloud"), ("protocols", "edge"), ("simulators", "edge"), ("simulators", "cloud")],
)
def test_import_contract_catches_violation(tree_copy: Path, package: str, forbidden: str) -> None:
    init = tree_copy / package / "__init__.py"
    init.write_text(init.read_text() + f"\nimport {forbidden}  # injected violation\n")
    result = _lint_imports(tree_copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout or "broken" in result.stdout.lower()


@pytest.mark.parametrize("group", ["", "demo", "cloud", "edge", "sim", "audit", "device", "pki", "backup", "restore"])
def test_cli_help(group: str) -> None:
    argv = [str(BIN / "sentinel"), *([group] if group else []), "--help"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_metadata_builds_without_deprecation_noise() -> None:
    """Session 4 (stranger walk): `make demo` on a fresh machine printed setuptools' "`project.license` as a TOML
    table is deprecated" box three times before anything else. The licence is an SPDX expression (PEP 639) and the
    build requires a setuptools that reads it."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert isinstance(project["project"]["license"], str)
    requires = [Requirement(r) for r in project["build-system"]["requires"]]
    setuptools = next(r for r in requires if r.name == "setuptools")
    assert not setuptools.specifier.contains("76.9"), "PEP 639 licence expressions need setuptools >= 77"
