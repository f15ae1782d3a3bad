"""Signed one-time acknowledgement links for channels without a login (e-mail, group robots).

Token = ``base64url(json{jti, inc, sub, exp}) + "." + base64url(HMAC-SHA256)``. The signature proves we issued
it; the :class:`~cloud.notify.models.AckLink` row (keyed by the random ``jti``) makes it single-use and
expiring. ``GET /notifications/ack?token=`` shows a confirmation page (mail scanners that prefetch links do not
acknowledge anything); ``POST`` acknowledges.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from cloud.notify.models import AckLink


class LinkError(ValueError):
    """An ack token that is malformed, forged, expired or already used."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class LinkClaims:
    jti: str
    incident_id: int
    recipient: str
    expires_at: dt.datetime


def issue(
    session: Session,
    *,
    incident_id: int,
    recipient: str,
    channel: str,
    ttl_s: int,
    now: dt.datetime,
    proof_required: bool = False,
) -> AckLink:
    """Create the one-time link record (its token is derived with :func:`token_for` when sending).

    ``proof_required``: the link travels where others read it (a group robot), so holding it proves nothing;
    only the recipient's own password or personal ack code acknowledges (:mod:`cloud.notify.ack_proof`)."""
    link = AckLink(
        jti=secrets.token_hex(12),
        incident_id=incident_id,
        recipient=recipient,
        channel=channel,
        expires_at=now + dt.timedelta(seconds=ttl_s),
        proof_required=proof_required,
        failed_proofs=0,
    )
    session.add(link)
    return link


def token_for(secret: bytes, link: AckLink) -> str:
    body: dict[str, Any] = {
        "jti": link.jti,
        "inc": link.incident_id,
        "sub": link.recipient,
        "exp": int(link.expires_at.timestamp()),
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    sig = hmac.new(secret, raw, hashlib.sha256).digest()
    return f"{_b64(raw)}.{_b64(sig)}"


def verify(secret: bytes, token: str, now: dt.datetime) -> LinkClaims:
    """Check signature and expiry (not single use: see :func:`consume`)."""
    try:
        raw_b64, sig_b64 = token.split(".", 1)
        raw = _unb64(raw_b64)
        sig = _unb64(sig_b64)
    except (ValueError, TypeError):
        raise LinkError("链接格式错误 (malformed token)") from None
    if not hmac.compare_digest(hmac.new(secret, raw, hashlib.sha256).digest(), sig):
        raise LinkError("链接签名无效 (bad signature)")
    body = json.loads(raw)
    exp = dt.datetime.fromtimestamp(int(body["exp"]), dt.UTC)
    if now > exp:
        raise LinkError("链接已过期 (link expired)")
    return LinkClaims(str(body["jti"]), int(body["inc"]), str(body["sub"]), exp)


def open_link(session: Session, secret: bytes, token: str, now: dt.datetime) -> tuple[LinkClaims, AckLink]:
    """Verify the token and find its unused link row (raises LinkError)."""
    claims = verify(secret, token, now)
    link = session.get(AckLink, claims.jti)
    if link is None or link.incident_id != claims.incident_id or link.recipient != claims.recipient:
        raise LinkError("链接不存在 (unknown link)")
    if link.used_at is not None:
        raise LinkError("链接已使用 (link already used)")
    return claims, link


def consume(session: Session, secret: bytes, token: str, now: dt.datetime) -> LinkClaims:
    """Verify and mark the link used (in the caller's write transaction); a second use raises LinkError."""
    claims, link = open_link(session, secret, token, now)
    link.used_at = now
    session.add(link)
    return claims
