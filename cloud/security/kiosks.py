"""Registered self-service terminals (自助终端) and the rate-limit class of a kiosk request.

A terminal is registered by the security administrator (``POST /admin/kiosks`` or ``sentinel kiosk add``): name,
location and a credential shown once (``<id>.<secret>``; only the secret's SHA-256 is kept). The kiosk page is
provisioned with it once (``/kiosk/#terminal=<credential>``: a URL fragment, never sent to a server or written
to an access log; the page keeps it and sends it as ``X-Kiosk-Token``). The public kiosk routes then limit a
registered terminal per terminal; a request with no credential, an unknown, wrong or revoked one is limited per
client address with the stricter anonymous limit. The client-chosen ``X-Kiosk-Id`` header no longer matters.
Every registration and revocation is journaled (``kiosk.registered``, ``kiosk.revoked``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from cloud.core.db import utcnow
from cloud.security.events import record
from cloud.security.models import KioskTerminal

HEADER = "x-kiosk-token"


class KioskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=64, description="终端名称，如 政务大厅 1 号机")
    location: str = Field(min_length=2, max_length=200, description="安放位置")


class KioskPublic(BaseModel):
    id: int
    name: str
    location: str
    created_at: str
    created_by: str
    revoked: bool


class KioskIssued(KioskPublic):
    credential: str = Field(description="终端凭据，只显示这一次")
    provision_path: str = Field(description="在终端浏览器中打开一次此地址即完成配置（凭据在 # 之后，不发给服务器）")


class KioskError(ValueError):
    pass


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def public(row: KioskTerminal) -> KioskPublic:
    return KioskPublic(
        id=row.id or 0,
        name=row.name,
        location=row.location,
        created_at=row.created_at.isoformat(),
        created_by=row.created_by,
        revoked=row.revoked_at is not None,
    )


def register(session: Session, data: KioskCreate, *, actor: str) -> KioskIssued:
    if session.exec(select(KioskTerminal).where(KioskTerminal.name == data.name)).first() is not None:
        raise KioskError(f"终端名称「{data.name}」已存在 (a terminal with this name exists)")
    secret = secrets.token_urlsafe(32)
    row = KioskTerminal(name=data.name, location=data.location, secret_sha256=_digest(secret), created_by=actor)
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="kiosk.registered",
        target_type="kiosk_terminal",
        target_id=row.id or 0,
        payload={"name": row.name, "location": row.location},
    )
    credential = f"{row.id}.{secret}"
    return KioskIssued(
        **public(row).model_dump(), credential=credential, provision_path=f"/kiosk/#terminal={credential}"
    )


def revoke(session: Session, kiosk_id: int, *, actor: str) -> KioskTerminal:
    row = session.get(KioskTerminal, kiosk_id)
    if row is None:
        raise KioskError(f"终端 {kiosk_id} 不存在 (no such terminal)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        record(
            session,
            actor=actor,
            action="kiosk.revoked",
            target_type="kiosk_terminal",
            target_id=kiosk_id,
            payload={"name": row.name},
        )
    return row


def listing(session: Session) -> list[KioskTerminal]:
    return list(session.exec(select(KioskTerminal).order_by(col(KioskTerminal.id))))


def identify(session: Session, credential: str | None) -> KioskTerminal | None:
    """The active terminal whose credential this is, else None (absent, malformed, unknown, wrong or revoked)."""
    if not credential:
        return None
    kiosk_id, _, secret = credential.strip().partition(".")
    if not kiosk_id.isdigit() or len(kiosk_id) > 12 or not secret:
        return None
    row = session.get(KioskTerminal, int(kiosk_id))
    if row is None or row.revoked_at is not None:
        return None
    return row if hmac.compare_digest(row.secret_sha256, _digest(secret)) else None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a kiosk request counts against: a registered terminal, or (anonymous) the client address."""

    key: str
    terminal: KioskTerminal | None

    @property
    def registered(self) -> bool:
        return self.terminal is not None


def caller(session: Session, credential: str | None, client_address: str | None) -> Caller:
    terminal = identify(session, credential)
    if terminal is not None:
        return Caller(f"terminal:{terminal.id}", terminal)
    return Caller(f"address:{(client_address or 'unknown')[:64]}", None)
