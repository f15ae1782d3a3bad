"""Security events into THE journal (:mod:`cloud.journal`), the one hash-chained audit log.

Action names (``<target_type>.<verb>``): ``auth.login``, ``auth.login_failed``, ``auth.locked``, ``auth.refresh``,
``auth.logout``, ``auth.session_expired``, ``auth.totp_enabled`` …, ``user.created``, ``user.updated``,
``user.role_changed``, ``user.unlocked``, ``pii.revealed``, ``audit.exported``, ``audit.verified``,
``device.provisioned``, ``device.revoked``, ``pki.issued``, ``backup.created``, ``backup.restored``.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from cloud.core.db import writer
from cloud.journal import append

log = logging.getLogger(__name__)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    outcome: str = "ok",
    payload: dict[str, Any] | None = None,
) -> None:
    """Append in the caller's (writer) transaction."""
    append(
        session,
        actor=actor[:64] or "anonymous",
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:64],
        outcome=outcome,
        payload=payload or {},
    )


def record_now(
    engine: Engine,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    outcome: str = "ok",
    payload: dict[str, Any] | None = None,
) -> None:
    """Append in a transaction of its own (committed even if the caller's request fails afterwards)."""
    with Session(writer(engine)) as session:
        record(
            session,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            outcome=outcome,
            payload=payload,
        )
        session.commit()
