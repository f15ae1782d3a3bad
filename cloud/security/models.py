"""Tables of the security mechanisms: account security state, login sessions, device MQTT credentials.

Kept apart from ``app_user`` so the user table stays the plain account record and these can evolve on their
own (created by :func:`cloud.core.db.init_db`; registered by importing this module from ``cloud.core.users``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime, utcnow


class AccountSecurity(SQLModel, table=True):
    """Per-user lockout counter and TOTP enrolment."""

    __tablename__ = "account_security"

    user_id: int = Field(primary_key=True, foreign_key="app_user.id")
    failed_count: int = Field(default=0, description="consecutive failed logins")
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    totp_secret: str | None = Field(default=None, max_length=64, description="base32; set at enrolment")
    totp_enabled: bool = False
    totp_last_step: int | None = Field(default=None, description="last accepted time step (no replay)")
    password_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failed logins and the lock for one (user, client address): a lock never spreads to other addresses, so
    failures from a fuzzer or an attacker cannot lock the real user out of their own workstation."""

    __tablename__ = "login_throttle"
    __table_args__ = (UniqueConstraint("user_id", "client", name="uq_login_throttle"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    client: str = Field(max_length=64, description="client address as the API sees it")
    failed_count: int = Field(default=0, description="consecutive failed logins from this address")
    last_failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class AuthSession(SQLModel, table=True):
    """One login: access tokens carry its id (``sid``); the refresh token is bound to ``refresh_jti``."""

    __tablename__ = "auth_session"

    id: str = Field(primary_key=True, max_length=43)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    username: str = Field(max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, description="refresh token expiry (absolute session end)")
    refresh_jti: str = Field(max_length=43)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=32)
    client: str | None = Field(default=None, max_length=64, description="client address at login")


class DeviceCredential(SQLModel, table=True):
    """MQTT credentials of one edge agent (or the cloud's own ingest user); only the hash is kept."""

    __tablename__ = "device_credential"

    username: str = Field(primary_key=True, max_length=160)
    kind: str = Field(default="agent", max_length=16, description="agent | cloud")
    site_id: str | None = Field(default=None, max_length=64, index=True)
    agent_id: str | None = Field(default=None, max_length=64)
    password_hash: str = Field(max_length=200, description="mosquitto $7$ PBKDF2-SHA512")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="system", max_length=64)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class KioskTerminal(SQLModel, table=True):
    """A registered self-service terminal (自助终端): its credential is issued once; only its SHA-256 is kept (a
    32-byte random secret needs no slow hash)."""

    __tablename__ = "kiosk_terminal"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    location: str = Field(max_length=200)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="system", max_length=64)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
