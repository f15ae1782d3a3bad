"""Business-DB engines for registry / telemetry / GSP tests: SQLite in a temp dir, or a fresh PostgreSQL DB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

from cloud.core.config import Settings
from cloud.core.db import make_engine


def import_tables() -> None:
    import cloud.registry.models
    import cloud.telemetry.gsp  # noqa: F401


def pg_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_postgres(dsn: str) -> Iterator[str]:
    """A new database on the test server, dropped afterwards; yields its SQLAlchemy URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(pg_url(dsn), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_url(dsn).rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_test_engine(tmp_path: Path, url: str | None = None) -> tuple[Settings, Engine]:
    settings = Settings(data_dir=tmp_path / "data", database_url=url or f"sqlite:///{tmp_path / 'sentinel.db'}")
    engine = make_engine(settings)
    import_tables()
    SQLModel.metadata.create_all(engine)
    return settings, engine


def let_postgres_user_in(base: Path) -> None:
    """As root, servers.start_postgres runs postgres as the 'postgres' user, which must traverse the pytest
    temp root (created 0700). Grant traversal (o+x) only: nothing becomes readable."""
    import os
    import stat

    if os.geteuid() != 0:
        return
    for d in (base, *base.parents):
        if d == Path("/"):
            break
        mode = d.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(d, stat.S_IMODE(mode) | stat.S_IXOTH)


def api_client(tmp_path: Path, url: str | None = None):  # type: ignore[no-untyped-def]
    """A TestClient on a fresh app (no background tasks) and a token factory ``token(role)``."""
    from datetime import timedelta

    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from cloud.app import create_app
    from cloud.core.security import create_token
    from cloud.core.users import Role, UserCreate, create_user

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url or f"sqlite:///{tmp_path / 'api.db'}",
        admin_password="Adm1n-pass-for-tests",  # type: ignore[arg-type]
        jwt_secret="test-secret-test-secret-test-secret",  # type: ignore[arg-type]
        ingest_enabled=False,
        presence_enabled=False,
    )
    app = create_app(settings, run_background=False)
    engine = app.state.engine

    def token(role: str) -> dict[str, str]:
        name = f"user-{role}"
        with Session(engine) as session:
            from cloud.core.users import get_user_by_username

            if get_user_by_username(session, username=name) is None:
                create_user(session, user_create=UserCreate(username=name, password="Passw0rd!long", role=Role(role)))
                session.commit()
        jwt = create_token(subject=name, role=role, key=settings.jwt_key(), lifetime=timedelta(minutes=10))
        return {"Authorization": f"Bearer {jwt}"}

    return TestClient(app), token, app
