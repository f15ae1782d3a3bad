from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.workflow_factories import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w
    w.engine.dispose()


@pytest.fixture(scope="module")
def module_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world per test module (cheaper than one per test) for tests that do not disturb each other."""
    w = make_world(Path(tmp_path_factory.mktemp("world")))
    with w.client:
        yield w
    w.engine.dispose()
