from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud.core.config import Settings
from tests.utils.registry_db import fresh_postgres, let_postgres_user_in, make_test_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def business_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Settings, Engine]]:
    """The business DB on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        settings, engine = make_test_engine(tmp_path)
        yield settings, engine
        engine.dispose()
        return
    let_postgres_user_in(request.getfixturevalue("tmp_path_factory").getbasetemp())
    server = request.getfixturevalue("postgres_server")
    with fresh_postgres(server.extra["dsn"]) as url:
        settings, engine = make_test_engine(tmp_path, url)
        yield settings, engine
        engine.dispose()
