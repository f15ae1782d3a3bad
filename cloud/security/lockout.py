"""Login with lockout after repeated failures and the optional TOTP factor; every outcome journaled.

Failures are counted and locks set per (user, client address) (:class:`LoginThrottle`): five bad passwords from
one address lock that user *from that address*; the same user from another address still logs in, so a fuzzer or
an attacker cannot turn the lockout into a denial of service against the real admin. Locks are visible to the
security admin (:func:`active_locks`, ``GET /users/login-locks``) and cleared by them (:func:`unlock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from cloud.core.db import utcnow
from cloud.core.security import verify_password
from cloud.core.users import User, get_user_by_username
from cloud.security import totp
from cloud.security.config import SecuritySettings
from cloud.security.events import record
from cloud.security.models import AccountSecurity, LoginThrottle

UNKNOWN_CLIENT = "unknown"


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


def throttle_for(session: Session, user: User, client: str | None) -> LoginThrottle:
    assert user.id is not None
    address = (client or UNKNOWN_CLIENT)[:64]
    row = session.exec(
        select(LoginThrottle).where(LoginThrottle.user_id == user.id, LoginThrottle.client == address)
    ).first()
    if row is None:
        row = LoginThrottle(user_id=user.id, client=address)
        session.add(row)
    return row


def active_locks(session: Session, *, user_id: int | None = None, now: datetime | None = None) -> list[LoginThrottle]:
    query = select(LoginThrottle).where(col(LoginThrottle.locked_until) > (now or utcnow()))
    if user_id is not None:
        query = query.where(LoginThrottle.user_id == user_id)
    return list(session.exec(query.order_by(col(LoginThrottle.locked_until))))


def _fail(session: Session, user: User, throttle: LoginThrottle, sec: SecuritySettings, reason: str) -> LoginRefused:
    now = utcnow()
    throttle.failed_count += 1
    throttle.last_failed_at = now
    _login_failed(session, user, reason, outcome="failed", failed_count=throttle.failed_count, client=throttle.client)
    if throttle.failed_count >= sec.lockout_threshold:
        throttle.locked_until = now + timedelta(minutes=sec.lockout_minutes)
        throttle.failed_count = 0
        record(
            session,
            actor="system",
            action="auth.locked",
            target_type="user",
            target_id=user.id or 0,
            payload={
                "username": user.username,
                "client": throttle.client,
                "until": throttle.locked_until.isoformat(),
                "after": reason,
            },
        )
    session.add(throttle)
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
    throttle = throttle_for(session, user, client)
    now = utcnow()
    # a lock set before locks were per address (account-wide) is still honoured until it expires
    until = max((t for t in (state.locked_until, throttle.locked_until) if t is not None and t > now), default=None)
    if until is not None:
        minutes = max(1, int((until - now).total_seconds() // 60) + 1)
        _login_failed(session, user, "locked", outcome="denied", client=client)
        raise LoginRefused(423, "locked", f"账号已锁定，请 {minutes} 分钟后再试或联系安全管理员 (account locked)")
    if not user.is_active:
        verify_password(password, None)
        _login_failed(session, user, "inactive", outcome="denied", client=client)
        raise LoginRefused(401, "bad_credentials", "用户名或密码错误 (incorrect username or password)")
    if not verify_password(password, user.password_hash):
        raise _fail(session, user, throttle, sec, "bad_password")
    second = False
    if state.totp_enabled and state.totp_secret:
        if not code:
            _login_failed(session, user, "totp_missing", outcome="failed", client=client)
            raise LoginRefused(401, "totp_required", "请输入动态口令 (TOTP code required)")
        step = totp.accepted_step(state.totp_secret, code, last_step=state.totp_last_step)
        if step is None:
            raise _fail(session, user, throttle, sec, "bad_totp")
        state.totp_last_step = step
        second = True
    elif user.role in sec.totp_required_roles and user.role != "device":
        _login_failed(session, user, "totp_not_enrolled", outcome="denied", client=client)
        raise LoginRefused(403, "totp_enrolment_required", "该角色须先绑定动态口令 (TOTP enrolment required)")
    throttle.failed_count = 0
    throttle.locked_until = None
    session.add(throttle)
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


def unlock(session: Session, user: User, *, actor: str, client: str | None = None) -> int:
    """Clear the user's login locks (all addresses, or only ``client``); returns how many were active."""
    state = security_state(session, user)
    cleared = len([t for t in active_locks(session, user_id=user.id) if client is None or t.client == client])
    if client is None:
        state.failed_count = 0
        state.locked_until = None
        session.add(state)
    stmt = delete(LoginThrottle).where(col(LoginThrottle.user_id) == user.id)
    if client is not None:
        stmt = stmt.where(col(LoginThrottle.client) == client)
    session.exec(stmt)
    record(
        session,
        actor=actor,
        action="user.unlocked",
        target_type="user",
        target_id=user.id or 0,
        payload={"username": user.username, "client": client, "locks_cleared": cleared},
    )
    return cleared
