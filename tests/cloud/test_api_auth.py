"""API security: login, bearer tokens, roles; no anonymous endpoint but health, login and the docs."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.db import session_scope
from cloud.core.users import Role, UserCreate, create_user
from tests.cloud.conftest import ADMIN_PASSWORD

#: Deliberately anonymous operations; adding one here is a reviewed decision.
ANONYMOUS = {
    "/api/v1/health",
    "/api/v1/auth/token",
    "/api/v1/documents/public-key",  # the signing public key: anyone may verify a signed document
    "/api/v1/notifications/ack",  # one-time signed link from a notification (the link is the credential)
    "/api/v1/console/labels",  # Chinese labels and the checklist catalogue: reference data for the kiosk (no login)
    "/api/v1/console/kiosk/complaints",  # self-service terminal: public, rate- and size-limited (tests/cloud/web)
    "/api/v1/console/kiosk/progress",  # receipt number + the verification code printed on it; no personal data
}


@pytest.fixture
def client(cloud_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cloud_settings, run_background=False)) as c:
        yield c


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def add_user(engine: Engine, username: str, role: Role) -> None:
    with session_scope(engine, write=True) as session:
        create_user(session, user_create=UserCreate(username=username, role=role, password="Secret-Pass1"))


def test_health_and_docs_are_anonymous(client: TestClient) -> None:
    assert client.get("/api/v1/health").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    assert "/api/v1/alerts" in client.get("/api/v1/openapi.json").json()["paths"]


def test_every_other_endpoint_needs_a_token(client: TestClient) -> None:
    """Every operation in the OpenAPI document (ours and other modules' routers) answers 401 anonymously."""
    checked = 0
    for path, operations in client.get("/api/v1/openapi.json").json()["paths"].items():
        if path in ANONYMOUS:
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path)  # placeholder values: authentication comes first
        for method in operations:
            r = client.request(method.upper(), concrete)
            assert r.status_code == 401, f"{method.upper()} {path} answered {r.status_code} without a token"
            checked += 1
    assert checked >= 8


def test_login_and_roles(client: TestClient, cloud_settings: Settings) -> None:
    bad = client.post("/api/v1/auth/token", data={"username": "admin", "password": "wrong"})
    assert bad.status_code == 401
    admin = login(client, "admin", ADMIN_PASSWORD)
    assert client.get("/api/v1/auth/me", headers=admin).json()["role"] == "admin"
    engine = client.app.state.engine  # type: ignore[attr-defined]
    add_user(engine, "inspector1", Role.INSPECTOR)
    add_user(engine, "agent-p1", Role.DEVICE)
    inspector = login(client, "inspector1", "Secret-Pass1")
    device = login(client, "agent-p1", "Secret-Pass1")
    assert client.get("/api/v1/alerts", headers=inspector).status_code == 200
    assert client.get("/api/v1/clues", headers=inspector).status_code == 200
    assert client.get("/api/v1/users", headers=inspector).status_code == 403  # admin only
    assert client.get("/api/v1/alerts", headers=device).status_code == 403  # devices read no alerts
    assert client.get("/api/v1/ingest/stats", headers=inspector).status_code == 403
    assert client.get("/api/v1/ingest/stats", headers=admin).status_code == 200
    assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_admin_creates_users_with_password_rules(client: TestClient) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    weak = client.post("/api/v1/users", headers=admin, json={"username": "x1", "password": "alllowercase"})
    assert weak.status_code == 422
    ok = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "sup1", "password": "Strong-Pass9", "role": "supervisor", "full_name": "张三"},
    )
    assert ok.status_code == 201, ok.text
    assert "password" not in ok.json() and "password_hash" not in ok.json()
    assert (
        client.post("/api/v1/users", headers=admin, json={"username": "sup1", "password": "Strong-Pass9"}).status_code
        == 409
    )
    login(client, "sup1", "Strong-Pass9")


def test_bootstrap_password_is_generated_and_printed_once(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    settings = Settings(data_dir=Path(str(tmp_path)) / "d2", ingest_enabled=False, presence_enabled=False)
    create_app(settings, run_background=False)
    first = capsys.readouterr().out
    assert "admin" in first and "只显示这一次" in first
    create_app(settings, run_background=False)
    assert "只显示这一次" not in capsys.readouterr().out
    assert (settings.data_dir / "jwt.secret").stat().st_mode & 0o777 == 0o600
