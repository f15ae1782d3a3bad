"""Login sessions: short-lived access tokens, rotating refresh tokens, idle timeout.

* A login opens an :class:`AuthSession`. Access tokens (``typ=access``) carry its id ``sid`` and live at most
  ``access_token_minutes_max`` minutes; the refresh token (``typ=refresh``, ``sid`` + ``jti``) lives
  ``refresh_token_hours`` and is single-use: each refresh rotates ``jti``; presenting an old one revokes the
  session (a stolen refresh token is detected when either party uses it next).
* Every authenticated request checks the session: revoked → 401; idle longer than ``idle_timeout_minutes``
  → revoked (``auth.session_expired`` journaled) → 401. ``last_seen_at`` is written at most every
  ``session_touch_s`` seconds. A refresh is not activity: an idle console cannot keep itself alive.
* Device accounts get one long-lived access token without a session (edge agents, integrations).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session

from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.core.security import TokenError, create_token, decode_token
from cloud.core.users import Role, User
from cloud.security.config import SecuritySettings
from cloud.security.events import record, record_now
from cloud.security.models import AuthSession


class SessionInvalid(Exception):
    """The token's session is unknown, revoked or idle too long."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str | None
    refresh_expires_in: int | None
    session_id: str | None


def access_lifetime(settings: Settings, sec: SecuritySettings, user: User) -> timedelta:
    if user.role == Role.DEVICE:
        return timedelta(days=settings.device_token_days)
    return timedelta(minutes=min(settings.access_token_minutes, sec.access_token_minutes_max))


def _token(settings: Settings, user: User, lifetime: timedelta, **claims: Any) -> str:
    return create_token(
        subject=user.username,
        role=str(user.role),
        key=settings.jwt_key(),
        lifetime=lifetime,
        algorithm=settings.jwt_algorithm,
        extra=claims,
    )


def open_session(
    session: Session, user: User, settings: Settings, sec: SecuritySettings, *, client: str | None
) -> TokenPair:
    """Tokens for a successful login (in the caller's writer transaction)."""
    lifetime = access_lifetime(settings, sec, user)
    if user.role == Role.DEVICE:
        return TokenPair(_token(settings, user, lifetime), int(lifetime.total_seconds()), None, None, None)
    assert user.id is not None
    now = utcnow()
    refresh_life = timedelta(hours=sec.refresh_token_hours)
    row = AuthSession(
        id=secrets.token_urlsafe(24),
        user_id=user.id,
        username=user.username,
        created_at=now,
        last_seen_at=now,
        expires_at=now + refresh_life,
        refresh_jti=secrets.token_urlsafe(24),
        client=(client or "")[:64] or None,
    )
    session.add(row)
    session.flush()
    return _pair(settings, user, row, lifetime, refresh_life)


def _pair(settings: Settings, user: User, row: AuthSession, lifetime: timedelta, refresh_life: timedelta) -> TokenPair:
    access = _token(settings, user, lifetime, sid=row.id)
    refresh = _token(settings, user, refresh_life, typ="refresh", sid=row.id, jti=row.refresh_jti)
    return TokenPair(access, int(lifetime.total_seconds()), refresh, int(refresh_life.total_seconds()), row.id)


def check_access(engine: Engine, claims: dict[str, Any], sec: SecuritySettings) -> None:
    """Raise :class:`SessionInvalid` unless the access token's session is live; touch it (throttled)."""
    if claims.get("typ", "access") != "access":
        raise SessionInvalid("not an access token")
    sid = claims.get("sid")
    if sid is None:
        # device tokens, and tokens minted with the signing key by tooling and tests, carry no session: they
        # expire by themselves. Every token the login endpoint issues to a person carries one.
        return
    with Session(engine) as session:
        row = session.get(AuthSession, str(sid))
    if row is None or row.revoked_at is not None:
        raise SessionInvalid("session revoked")
    now = utcnow()
    idle = now - row.last_seen_at
    if idle > timedelta(minutes=sec.idle_timeout_minutes):
        revoke(engine, row.id, reason="idle", actor="system")
        raise SessionInvalid("idle timeout")
    if idle.total_seconds() >= sec.session_touch_s:
        with Session(writer(engine)) as session:
            session.execute(update(AuthSession).where(AuthSession.id == row.id).values(last_seen_at=now))  # type: ignore[arg-type]
            session.commit()


def revoke(engine: Engine, sid: str, *, reason: str, actor: str) -> None:
    """Revoke in a transaction of its own (call it outside any open writer transaction)."""
    with Session(writer(engine)) as session:
        revoke_in(session, sid, reason=reason, actor=actor)
        session.commit()


def revoke_in(session: Session, sid: str, *, reason: str, actor: str) -> None:
    """Revoke in the caller's writer transaction."""
    row = session.get(AuthSession, sid)
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    row.revoked_reason = reason
    session.add(row)
    action = "auth.session_expired" if reason == "idle" else "auth.logout"
    record(
        session,
        actor=actor,
        action=action,
        target_type="user",
        target_id=row.user_id,
        payload={"username": row.username, "reason": reason, "session": sid[:8]},
    )


def refresh(session: Session, token: str, settings: Settings, sec: SecuritySettings) -> tuple[User, TokenPair]:
    """Rotate a refresh token (caller's writer transaction). Raises :class:`SessionInvalid`."""
    try:
        claims = decode_token(token, key=settings.jwt_key(), algorithm=settings.jwt_algorithm)
    except TokenError as exc:
        raise SessionInvalid(str(exc)) from None
    if claims.get("typ") != "refresh" or not claims.get("sid") or not claims.get("jti"):
        raise SessionInvalid("not a refresh token")
    row = session.get(AuthSession, str(claims["sid"]))
    if row is None or row.revoked_at is not None:
        raise SessionInvalid("session revoked")
    now = utcnow()
    user = session.get(User, row.user_id)
    if user is None or not user.is_active or user.username != claims.get("sub"):
        raise SessionInvalid("user inactive")
    if row.refresh_jti != claims["jti"]:  # an old refresh token: someone else has the newer one
        row.revoked_at, row.revoked_reason = now, "refresh_reuse"
        session.add(row)
        record(
            session,
            actor=user.username,
            action="auth.refresh_reused",
            target_type="user",
            target_id=user.id or 0,
            outcome="denied",
            payload={"session": row.id[:8]},
        )
        raise SessionInvalid("refresh token reused")
    if now - row.last_seen_at > timedelta(minutes=sec.idle_timeout_minutes) or now >= row.expires_at:
        row.revoked_at, row.revoked_reason = now, "idle"
        session.add(row)
        record(
            session,
            actor="system",
            action="auth.session_expired",
            target_type="user",
            target_id=user.id or 0,
            payload={"username": user.username, "reason": "idle", "session": row.id[:8]},
        )
        raise SessionInvalid("idle timeout")
    row.refresh_jti = secrets.token_urlsafe(24)
    session.add(row)
    record(
        session,
        actor=user.username,
        action="auth.refresh",
        target_type="user",
        target_id=user.id or 0,
        payload={"session": row.id[:8]},
    )
    lifetime = access_lifetime(settings, sec, user)
    return user, _pair(settings, user, row, lifetime, row.expires_at - now)


def revoke_all(session: Session, user_id: int, *, reason: str) -> int:
    """Revoke every live session of a user (role change, password reset, deactivation)."""
    from sqlmodel import col, select

    rows = session.exec(
        select(AuthSession).where(AuthSession.user_id == user_id, col(AuthSession.revoked_at).is_(None))
    ).all()
    now = utcnow()
    for row in rows:
        row.revoked_at, row.revoked_reason = now, reason
        session.add(row)
    return len(rows)


__all__ = ["SessionInvalid", "TokenPair", "check_access", "open_session", "record_now", "refresh", "revoke"]
