"""Rate limits hold across instances: two engines (two processes' views) on one database share the buckets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud.core.buckets import take
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine
from sentinel_cli.servers import Server
from tests.utils.registry_db import fresh_postgres, let_postgres_user_in


@pytest.fixture(params=["sqlite", "postgres"])
def two_engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'b.db'}"
        settings = Settings(data_dir=tmp_path, database_url=url)
        a, b = make_engine(settings), make_engine(settings)
        init_db(a)
        yield a, b
        a.dispose()
        b.dispose()
        return
    let_postgres_user_in(tmp_path)
    server: Server = request.getfixturevalue("postgres_server")
    with fresh_postgres(server.extra["dsn"]) as url:
        settings = Settings(data_dir=tmp_path, database_url=url)
        a, b = make_engine(settings), make_engine(settings)
        init_db(a)
        yield a, b
        a.dispose()
        b.dispose()


def test_bucket_is_shared_and_refills(two_engines: tuple[Engine, Engine]) -> None:
    a, b = two_engines
    now = 1_000_000.0
    # 6 per minute, burst 6: three on each instance use the burst up
    assert [take(e, "http:10.0.0.1:/api/v1/auth", per_minute=6, now=now) for e in (a, b, a, b, a, b)] == [0.0] * 6
    wait = take(b, "http:10.0.0.1:/api/v1/auth", per_minute=6, now=now)
    assert wait == pytest.approx(10.0), "one token per 10 s"
    assert take(a, "http:10.0.0.2:/api/v1/auth", per_minute=6, now=now) == 0.0, "another client has its own bucket"
    assert take(a, "http:10.0.0.1:/api/v1/auth", per_minute=6, now=now + 10.0) == 0.0, "refilled after 10 s"
    assert take(b, "http:10.0.0.1:/api/v1/auth", per_minute=6, now=now + 10.0) > 0
