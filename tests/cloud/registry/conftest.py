from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.utils.registry_db import fresh_postgres, let_postgres_user_in, make_test_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The business DB on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        _, eng = make_test_engine(tmp_path)
        yield eng
        eng.dispose()
        return
    let_postgres_user_in(request.getfixturevalue("tmp_path_factory").getbasetemp())
    server = request.getfixturevalue("postgres_server")
    with fresh_postgres(server.extra["dsn"]) as url:
        _, eng = make_test_engine(tmp_path, url)
        yield eng
        eng.dispose()
