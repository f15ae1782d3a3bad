"""Fixtures of the security tests: an app on a temp SQLite DB, users by role, login helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.db import session_scope
from cloud.core.users import Role, UserCreate, create_user
from tests.cloud.conftest import ADMIN_PASSWORD

PASSWORD = "Str0ng-Passw0rd!"

__all__ = ["ADMIN_PASSWORD", "PASSWORD", "add_user", "bearer", "login"]


@pytest.fixture
def client(cloud_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cloud_settings, run_background=False)) as c:
        yield c


def engine_of(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def add_user(client: TestClient, username: str, role: Role, department: str | None = None) -> int:
    with session_scope(engine_of(client), write=True) as session:
        user = create_user(
            session, user_create=UserCreate(username=username, role=role, password=PASSWORD, department=department)
        )
        assert user.id is not None
        return user.id


def login(client: TestClient, username: str, password: str = PASSWORD, **extra: str) -> dict[str, Any]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password, **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
