"""Login with lockout after repeated failures and the optional TOTP factor; every outcome journaled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from cloud.core.db import utcnow
from cloud.core.security import verify_password
from cloud.core.users import User, get_user_by_username
from cloud.security import totp
from cloud.security.config import SecuritySettings
from cloud.security.events import record
from cloud.security.models import AccountSecurity


class LoginRefused(Exception):
    """A refused login; ``status`` is the HTTP status, ``code`` a stable machine name."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class LoginOk:
    user: User
    second_factor: bool


def security_state(session: Session, user: User) -> AccountSecurity:
    assert user.id is not None
    state = session.get(AccountSecurity, user.id)
    if state is None:
        state = AccountSecurity(user_id=user.id)
        session.add(state)
    return state


def _login_failed(
    session: Session, user: User | None, reason: str, *, outcome: str = "denied", **facts: object
) -> None:
    """Journal one refused login (``auth.login_failed``) with its reason; ``user`` None = unknown username."""
    username = str(facts.pop("username", "")) if user is None else user.username
    record(
        session,
        actor=username[:64] or "anonymous",
        action="auth.login_failed",
        target_type="user",
        target_id=(user.id or 0) if user is not None else (username[:64] or "-"),
        outcome=outcome,
        payload={"reason": reason, **facts},
    )


def _fail(session: Session, user: User, state: AccountSecurity, sec: SecuritySettings, reason: str) -> LoginRefused:
    now = utcnow()
    state.failed_count += 1
    state.last_failed_at = now
    _login_failed(session, user, reason, outcome="failed", failed_count=state.failed_count)
    if state.failed_count >= sec.lockout_threshold:
        state.locked_until = now + timedelta(minutes=sec.lockout_minutes)
        state.failed_count = 0
        record(
            session,
            actor="system",
            action="auth.locked",
            target_type="user",
            target_id=user.id or 0,
            payload={"username": user.username, "until": state.locked_until.isoformat(), "after": reason},
        )
    session.add(state)
    return LoginRefused(401, "bad_credentials", "用户名或密码错误 (incorrect username or password)")


def attempt_login(
    session: Session, *, username: str, password: str, code: str | None, sec: SecuritySettings, client: str | None
) -> LoginOk:
    """Check the credentials in the caller's writer transaction. The caller commits in every case."""
    user = get_user_by_username(session, username=username)
    if user is None:
        verify_password(password, None)  # same cost as a real check
        _login_failed(session, None, "unknown_user", outcome="failed", username=username, client=client)
        raise LoginRefused(401, "bad_credentials", "用户名或密码错误 (incorrect username or password)")
    state = security_state(session, user)
    now = utcnow()
    if state.locked_until is not None and state.locked_until > now:
        minutes = max(1, int((state.locked_until - now).total_seconds() // 60) + 1)
        _login_failed(session, user, "locked", outcome="denied", client=client)
        raise LoginRefused(423, "locked", f"账号已锁定，请 {minutes} 分钟后再试或联系安全管理员 (account locked)")
    if not user.is_active:
        verify_password(password, None)
        _login_failed(session, user, "inactive", outcome="denied", client=client)
        raise LoginRefused(401, "bad_credentials", "用户名或密码错误 (incorrect username or password)")
    if not verify_password(password, user.password_hash):
        raise _fail(session, user, state, sec, "bad_password")
    second = False
    if state.totp_enabled and state.totp_secret:
        if not code:
            _login_failed(session, user, "totp_missing", outcome="failed", client=client)
            raise LoginRefused(401, "totp_required", "请输入动态口令 (TOTP code required)")
        step = totp.accepted_step(state.totp_secret, code, last_step=state.totp_last_step)
        if step is None:
            raise _fail(session, user, state, sec, "bad_totp")
        state.totp_last_step = step
        second = True
    elif user.role in sec.totp_required_roles and user.role != "device":
        _login_failed(session, user, "totp_not_enrolled", outcome="denied", client=client)
        raise LoginRefused(403, "totp_enrolment_required", "该角色须先绑定动态口令 (TOTP enrolment required)")
    state.failed_count = 0
    state.locked_until = None
    session.add(state)
    from cloud.core.security import hash_password, needs_rehash

    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    session.add(user)
    record(
        session,
        actor=user.username,
        action="auth.login",
        target_type="user",
        target_id=user.id or 0,
        payload={"client": client, "second_factor": second},
    )
    return LoginOk(user, second)


def unlock(session: Session, user: User, *, actor: str) -> None:
    state = security_state(session, user)
    state.failed_count = 0
    state.locked_until = None
    session.add(state)
    record(
        session,
        actor=actor,
        action="user.unlocked",
        target_type="user",
        target_id=user.id or 0,
        payload={"username": user.username},
    )
