"""Accounts: password policy, lockout, short-lived tokens with rotating refresh, idle timeout, TOTP, and the
separated administrator roles. Every security event lands in the journal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from cloud.core.db import utcnow, writer
from cloud.core.users import Role
from cloud.journal import JournalEvent
from cloud.security import totp
from cloud.security.models import AuthSession
from cloud.security.passwords import check_password
from tests.cloud.security.conftest import ADMIN_PASSWORD, PASSWORD, add_user, bearer, engine_of, login


def actions(client: TestClient) -> list[tuple[str, str, str]]:
    with Session(engine_of(client)) as session:
        rows = session.exec(select(JournalEvent).order_by(JournalEvent.id)).all()  # type: ignore[arg-type]
        return [(r.action, r.actor, r.outcome) for r in rows]


@pytest.mark.parametrize(
    "password, ok",
    [("short1A!", False), ("alllowercaseletters", False), ("Lower-and-digits1", True), ("inspector1-Aa9x", False)],
)
def test_password_policy(password: str, ok: bool) -> None:
    if ok:
        assert check_password(password, username="inspector1") == password
    else:
        with pytest.raises(ValueError):
            check_password(password, username="inspector1")


def test_lockout_after_repeated_failures_and_unlock_by_security_admin(client: TestClient) -> None:
    client.app.state.security_settings.lockout_threshold = 3  # type: ignore[attr-defined]
    uid = add_user(client, "insp1", Role.INSPECTOR)
    add_user(client, "sec1", Role.SECURITY_ADMIN)
    for _ in range(3):
        r = client.post("/api/v1/auth/token", data={"username": "insp1", "password": "Wrong-Passw0rd"})
        assert r.status_code == 401
    locked = client.post("/api/v1/auth/token", data={"username": "insp1", "password": PASSWORD})
    assert locked.status_code == 423, locked.text  # even the right password is refused while locked
    assert "锁定" in locked.text
    log = actions(client)
    assert [a for a in log if a[0] == "auth.login_failed"][:3] == [("auth.login_failed", "insp1", "failed")] * 3
    assert ("auth.locked", "system", "ok") in log
    assert ("auth.login_failed", "insp1", "denied") in log
    # the system admin cannot unlock (separation of duties); the security admin can
    admin = bearer(login(client, "admin", ADMIN_PASSWORD)["access_token"])
    assert client.post(f"/api/v1/users/{uid}/unlock", headers=admin).status_code == 403
    sec = bearer(login(client, "sec1")["access_token"])
    assert client.post(f"/api/v1/users/{uid}/unlock", headers=sec).json()["locked"] is False
    login(client, "insp1")
    assert ("user.unlocked", "sec1", "ok") in actions(client)


def test_unknown_user_failure_is_journaled(client: TestClient) -> None:
    assert client.post("/api/v1/auth/token", data={"username": "ghost", "password": "x"}).status_code == 401
    assert ("auth.login_failed", "ghost", "failed") in actions(client)


def test_short_access_token_and_rotating_refresh(client: TestClient) -> None:
    add_user(client, "sup1", Role.SUPERVISOR)
    tokens = login(client, "sup1")
    assert tokens["expires_in"] <= 15 * 60 and tokens["refresh_token"]
    # the refresh token is not an access token
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["refresh_token"])).status_code == 401
    r = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"])).json()["username"] == "sup1"
    # re-using the spent refresh token revokes the session: the new tokens stop working too
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(rotated["refresh_token"])).status_code == 401
    assert ("auth.refresh_reused", "sup1", "denied") in actions(client)


def test_idle_session_times_out(client: TestClient) -> None:
    add_user(client, "sup2", Role.SUPERVISOR)
    tokens = login(client, "sup2")
    headers = bearer(tokens["access_token"])
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    with Session(writer(engine_of(client))) as session:
        row = session.exec(select(AuthSession).where(AuthSession.username == "sup2")).one()
        row.last_seen_at = utcnow() - timedelta(minutes=31)
        session.add(row)
        session.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401
    assert ("auth.session_expired", "system", "ok") in actions(client)


def test_logout_ends_the_session(client: TestClient) -> None:
    add_user(client, "sup3", Role.SUPERVISOR)
    headers = bearer(login(client, "sup3")["access_token"])
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_totp_second_factor(client: TestClient) -> None:
    add_user(client, "sup4", Role.SUPERVISOR)
    headers = bearer(login(client, "sup4")["access_token"])
    assert client.post("/api/v1/auth/totp/setup", headers=headers, json={"password": "wrong"}).status_code == 403
    setup = client.post("/api/v1/auth/totp/setup", headers=headers, json={"password": PASSWORD}).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/")
    secret = setup["secret"]
    assert client.post("/api/v1/auth/totp/enable", headers=headers, json={"code": "000000"}).status_code in (422, 200)
    # a fresh secret step: enable with the current code (the wrong one above may by chance be right: re-setup)
    code = totp.current_code(secret)
    r = client.post("/api/v1/auth/totp/enable", headers=headers, json={"code": code})
    assert r.status_code in (200, 409, 422)
    # login now needs the code
    missing = client.post("/api/v1/auth/token", data={"username": "sup4", "password": PASSWORD})
    assert missing.status_code == 401 and missing.json()["detail"]["code"] == "totp_required"
    wrong = client.post("/api/v1/auth/token", data={"username": "sup4", "password": PASSWORD, "totp": "123456"})
    assert wrong.status_code == 401
    # the enable step consumed the current step: the next step's code is accepted, a replay is not
    import time

    later = totp.current_code(secret, at=time.time() + 30)
    ok = client.post("/api/v1/auth/token", data={"username": "sup4", "password": PASSWORD, "totp": later})
    assert ok.status_code == 200, ok.text
    replay = client.post("/api/v1/auth/token", data={"username": "sup4", "password": PASSWORD, "totp": later})
    assert replay.status_code == 401
    log = actions(client)
    assert ("auth.totp_enabled", "sup4", "ok") in log
    assert any(a == ("auth.login", "sup4", "ok") for a in log)


def test_separated_admin_roles(client: TestClient) -> None:
    admin = bearer(login(client, "admin", ADMIN_PASSWORD)["access_token"])
    body = {"username": "sec1", "password": PASSWORD, "role": "security_admin"}
    # bootstrap: no security admin yet → the system admin may create the first one
    assert client.post("/api/v1/users", headers=admin, json=body).status_code == 201
    # …but no second one, and no auditor
    again = {**body, "username": "sec2"}
    assert client.post("/api/v1/users", headers=admin, json=again).status_code == 403
    auditor = {"username": "aud1", "password": PASSWORD, "role": "auditor"}
    assert client.post("/api/v1/users", headers=admin, json=auditor).status_code == 403
    sec = bearer(login(client, "sec1")["access_token"])
    assert client.post("/api/v1/users", headers=sec, json=auditor).status_code == 201
    # ordinary accounts: the admin creates them, but cannot promote them
    insp = client.post(
        "/api/v1/users", headers=admin, json={"username": "i1", "password": PASSWORD, "role": "inspector"}
    ).json()
    assert client.patch(f"/api/v1/users/{insp['id']}", headers=admin, json={"role": "admin"}).status_code == 403
    # the security admin changes roles (journaled, sessions ended) but not names/passwords
    i1 = bearer(login(client, "i1")["access_token"])
    r = client.patch(f"/api/v1/users/{insp['id']}", headers=sec, json={"role": "supervisor"})
    assert r.status_code == 200 and r.json()["role"] == "supervisor"
    assert client.get("/api/v1/auth/me", headers=i1).status_code == 401  # role change ended the session
    assert client.patch(f"/api/v1/users/{insp['id']}", headers=sec, json={"full_name": "x"}).status_code == 403
    me = client.get("/api/v1/auth/me", headers=sec).json()
    assert client.patch(f"/api/v1/users/{me['id']}", headers=sec, json={"role": "admin"}).status_code == 403
    # the audit admin reads the journal; the system admin does not
    aud = bearer(login(client, "aud1")["access_token"])
    assert client.get("/api/v1/audit/events", headers=admin).status_code == 403
    events = client.get("/api/v1/audit/events?action=user.*", headers=aud).json()
    changed = [e for e in events if e["action"] == "user.role_changed"]
    assert changed and changed[0]["payload"] == {"username": "i1", "from": "inspector", "to": "supervisor"}
    assert changed[0]["actor"] == "sec1"
