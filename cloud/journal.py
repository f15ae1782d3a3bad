"""The journal: one append-only, hash-chained table of domain events.

Every state change of a clue, task or case, every approval, signature, notification, acknowledgement, export
and security event is appended here. It is at once the audit log (GB/T 22239), the timeline shown on a clue,
the source the assessment indicators are computed from, and the feed notifications follow.

* :func:`append` adds an event inside the caller's transaction (it flushes, never commits). Appends are
  serialised by the database write lock (SQLite ``BEGIN IMMEDIATE`` via :func:`cloud.core.db.writer`;
  PostgreSQL: a transaction-scoped advisory lock), so the chain has no forks.
* Each event's ``hash`` = SHA-256 over the previous hash and a canonical JSON of the event, so any change or
  deletion of a row is detected by :func:`verify`, which names the first bad row.
* Followers (notifications, assessment) read with :func:`read_since` and keep their own cursor.
* Retention (:mod:`cloud.retention`) removes only a *prefix* of the chain older than the retention period and
  records a :class:`JournalPurge` with the hash of the last removed row (the *anchor*) plus an ``audit.purged``
  event in the chain; :func:`verify` then starts from the latest anchor, so the chain stays verifiable.

Action names are ``<target_type>.<verb>``: ``clue.created``, ``clue.transition``, ``task.assigned``,
``case.approved``, ``document.signed``, ``notification.sent``, ``auth.login_failed`` …
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, Text, text
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.core.db import UTCDateTime, utcnow

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x5E17_1E1


class JournalEvent(SQLModel, table=True):
    __tablename__ = "journal_event"

    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=64, index=True, description="username, 'system' or 'agent:<id>'")
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(max_length=32, index=True)
    target_id: str = Field(max_length=64, index=True)
    outcome: str = Field(default="ok", max_length=16, description="ok | denied | failed")
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, sa_type=Text)


def _canonical(event: JournalEvent) -> bytes:
    body = {
        "ts": event.ts.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "outcome": event.outcome,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_hash(event: JournalEvent) -> str:
    return hashlib.sha256(event.prev_hash.encode() + _canonical(event)).hexdigest()


class JournalPurge(SQLModel, table=True):
    """A retention purge: events ``id <= through_id`` were removed; ``anchor_hash`` is the hash of event
    ``through_id``, which the first kept event's ``prev_hash`` must equal."""

    __tablename__ = "journal_purge"

    id: int | None = Field(default=None, primary_key=True)
    purged_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    by: str = Field(max_length=64)
    through_id: int = Field(index=True)
    anchor_hash: str = Field(max_length=64)
    count: int
    cutoff: datetime = Field(sa_type=UTCDateTime, description="events before this were past retention")


def lock_chain(session: Session) -> None:
    """Serialise writers of the chain (PostgreSQL advisory lock; SQLite: the caller's writer transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def latest_purge(session: Session) -> JournalPurge | None:
    return session.exec(select(JournalPurge).order_by(col(JournalPurge.through_id).desc()).limit(1)).first()


def wire_value(value: Any) -> str:
    """How a payload value JSON cannot hold is written: times as ISO 8601 (with the zone they carry; the wire rule),
    anything else (Decimal, Enum, Path…) as its ``str``."""
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    return str(value)


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    payload: dict[str, Any] | None = None,
    outcome: str = "ok",
    ts: datetime | None = None,
) -> JournalEvent:
    """Append one event in the caller's transaction (use a writer session)."""
    lock_chain(session)
    last = session.exec(select(JournalEvent.hash).order_by(col(JournalEvent.id).desc()).limit(1)).first()
    event = JournalEvent(
        ts=ts or utcnow(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        outcome=outcome,
        payload=json.loads(json.dumps(payload or {}, ensure_ascii=False, default=wire_value)),
        prev_hash=last or GENESIS,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


def read_since(
    session: Session, after_id: int, *, limit: int = 500, actions: list[str] | None = None
) -> list[JournalEvent]:
    query = select(JournalEvent).where(col(JournalEvent.id) > after_id)
    if actions:
        query = query.where(col(JournalEvent.action).in_(actions))
    return list(session.exec(query.order_by(col(JournalEvent.id)).limit(limit)))


def timeline(session: Session, target_type: str, target_id: str | int) -> list[JournalEvent]:
    query = select(JournalEvent).where(
        JournalEvent.target_type == target_type, JournalEvent.target_id == str(target_id)
    )
    return list(session.exec(query.order_by(col(JournalEvent.id))))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Walk the chain from genesis, or from the latest purge's anchor; report the first row that does not match.

    After a purge the chain must also still hold the ``audit.purged`` event that recorded that anchor (a purge
    record added by hand to hide deleted rows has none)."""
    purge = latest_purge(session)
    prev = purge.anchor_hash if purge else GENESIS
    last_id = purge.through_id if purge else 0
    checked = 0
    witnessed = purge is None
    while True:
        rows = read_since(session, last_id, limit=batch)
        if not rows:
            if not witnessed:
                assert purge is not None
                reason = f"purge through row {purge.through_id} has no audit.purged event in the chain"
                return VerifyResult(False, checked, purge.through_id, reason)
            return VerifyResult(True, checked)
        for row in rows:
            assert row.id is not None
            if row.prev_hash != prev:  # a row before it was deleted or altered
                return VerifyResult(False, checked, row.id, f"row {row.id} does not link to its predecessor")
            if event_hash(row) != row.hash:
                return VerifyResult(False, checked, row.id, f"row {row.id} content does not match its hash")
            if (
                not witnessed
                and purge is not None
                and row.action == "audit.purged"
                and row.payload.get("through_id") == purge.through_id
                and row.payload.get("anchor_hash") == purge.anchor_hash
            ):
                witnessed = True
            prev = row.hash
            checked += 1
            last_id = row.id
