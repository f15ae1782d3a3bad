from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.workflow_factories import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    w.add_user("monitor", "supervisor", duties=["intake_clerk", "analyst"], full_name="监测员小林")
    with w.client:
        yield w
    w.engine.dispose()
