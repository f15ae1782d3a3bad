"""Retention: the audit journal and dead letters are kept as long as the settings say, and no longer.

A scheduled job (:func:`run_periodically`, started by the API's lifespan) applies, in short write transactions:

* **Journal** (``audit_retention_days``, at least 183 days): only a *prefix* of the chain whose events are all
  older than the cut-off is removed -- the prefix ends before the first event inside retention, so nothing within
  retention is ever deleted. Each removal records a :class:`cloud.journal.JournalPurge` anchor (the hash of the
  last removed event) and appends an ``audit.purged`` event; :func:`cloud.journal.verify` starts from the anchor.
* **Dead letters** (``dead_letter_retention_days``): rows received before the cut-off are deleted. Within
  retention the row is always kept; when the payloads together exceed ``dead_letter_quota_bytes`` the *payloads*
  of the oldest rows are dropped (reason, topic, size and SHA-256 stay in the row's detail and in the journal).

Every run that changes something is journaled (``audit.purged``, ``ingest.dead_letters_purged``) and logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from cloud import journal
from cloud.core.db import session_scope, utcnow
from cloud.core.retry import retry_locked
from cloud.ingest.models import DeadLetter
from cloud.security.config import SecuritySettings

log = logging.getLogger(__name__)

ACTOR = "system:retention"


@dataclass
class RetentionReport:
    journal_purged: int = 0
    journal_through_id: int | None = None
    dead_letters_deleted: int = 0
    payloads_dropped: int = 0
    payload_bytes_dropped: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.journal_purged or self.dead_letters_deleted or self.payloads_dropped)


# ---------------------------------------------------------------- journal
def _purge_journal_chunk(session: Session, cutoff: datetime, retention_days: int, chunk: int) -> tuple[int, int]:
    journal.lock_chain(session)
    previous = journal.latest_purge(session)
    after = previous.through_id if previous else 0
    first_kept = session.exec(
        select(func.min(journal.JournalEvent.id)).where(col(journal.JournalEvent.ts) >= cutoff)
    ).one()
    query = select(journal.JournalEvent.id, journal.JournalEvent.hash).where(col(journal.JournalEvent.id) > after)
    if first_kept is not None:
        query = query.where(col(journal.JournalEvent.id) < first_kept)
    rows = session.exec(query.order_by(col(journal.JournalEvent.id)).limit(chunk)).all()
    if not rows:
        return 0, after
    through_id, anchor_hash = rows[-1][0], rows[-1][1]
    assert through_id is not None
    session.execute(
        delete(journal.JournalEvent).where(
            col(journal.JournalEvent.id) > after, col(journal.JournalEvent.id) <= through_id
        )
    )
    session.add(
        journal.JournalPurge(by=ACTOR, through_id=through_id, anchor_hash=anchor_hash, count=len(rows), cutoff=cutoff)
    )
    journal.append(
        session,
        actor=ACTOR,
        action="audit.purged",
        target_type="journal",
        target_id=through_id,
        payload={
            "through_id": through_id,
            "anchor_hash": anchor_hash,
            "count": len(rows),
            "cutoff": cutoff.isoformat(),
            "retention_days": retention_days,
        },
    )
    return len(rows), through_id


def purge_journal(
    engine: Engine, *, retention_days: int, now: datetime | None = None, chunk: int = 2000
) -> tuple[int, int | None]:
    """Remove the journal prefix older than ``retention_days``; returns (events removed, last removed id)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    total, through = 0, None
    while True:

        def one() -> tuple[int, int]:
            with session_scope(engine, write=True) as session:
                return _purge_journal_chunk(session, cutoff, retention_days, chunk)

        count, last = retry_locked(one, what="journal purge")
        if not count:
            break
        total, through = total + count, last
    if total:
        log.warning("audit retention: %d journal events before %s removed (through id %s)", total, cutoff, through)
    return total, through


# ---------------------------------------------------------------- dead letters
def _dropped_note(row: DeadLetter) -> str:
    digest = hashlib.sha256(row.payload).hexdigest()
    note = f"［载荷已按配额清除 payload dropped by quota: {len(row.payload)} bytes sha256={digest}］"
    return (row.detail + " " + note)[-2000:] if row.detail else note


def purge_dead_letters(
    engine: Engine,
    *,
    retention_days: int,
    quota_bytes: int,
    now: datetime | None = None,
    chunk: int = 500,
) -> tuple[int, int, int]:
    """Apply dead-letter retention and quota; returns (rows deleted, payloads dropped, payload bytes dropped)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    deleted = dropped = dropped_bytes = 0
    while True:

        def delete_chunk() -> int:
            with session_scope(engine, write=True) as session:
                ids = session.exec(select(DeadLetter.id).where(col(DeadLetter.received_at) < cutoff).limit(chunk)).all()
                if ids:
                    session.execute(delete(DeadLetter).where(col(DeadLetter.id).in_(ids)))
                return len(ids)

        count = retry_locked(delete_chunk, what="dead-letter purge")
        deleted += count
        if count < chunk:
            break
    while True:

        def drop_chunk() -> tuple[int, int]:
            with session_scope(engine, write=True) as session:
                used = int(session.exec(select(func.coalesce(func.sum(func.length(DeadLetter.payload)), 0))).one())
                if used <= quota_bytes:
                    return 0, 0
                rows = session.exec(
                    select(DeadLetter)
                    .where(func.length(DeadLetter.payload) > 0)
                    .order_by(col(DeadLetter.id))
                    .limit(chunk)
                ).all()
                n = freed = 0
                for row in rows:
                    if used <= quota_bytes:
                        break
                    size = len(row.payload)
                    row.detail = _dropped_note(row)
                    row.payload = b""
                    session.add(row)
                    used, n, freed = used - size, n + 1, freed + size
                return n, freed

        n, freed = retry_locked(drop_chunk, what="dead-letter quota")
        dropped, dropped_bytes = dropped + n, dropped_bytes + freed
        if not n:
            break
    if deleted or dropped:
        with session_scope(engine, write=True) as session:
            journal.append(
                session,
                actor=ACTOR,
                action="ingest.dead_letters_purged",
                target_type="dead_letter",
                target_id="*",
                payload={
                    "deleted": deleted,
                    "cutoff": cutoff.isoformat(),
                    "retention_days": retention_days,
                    "payloads_dropped": dropped,
                    "payload_bytes_dropped": dropped_bytes,
                    "quota_bytes": quota_bytes,
                },
            )
        log.warning(
            "dead-letter retention: %d rows before %s deleted, %d payloads (%d bytes) dropped by quota",
            deleted,
            cutoff,
            dropped,
            dropped_bytes,
        )
    return deleted, dropped, dropped_bytes


# ---------------------------------------------------------------- the job
def run_once(engine: Engine, sec: SecuritySettings, *, now: datetime | None = None) -> RetentionReport:
    report = RetentionReport()
    report.journal_purged, report.journal_through_id = purge_journal(
        engine, retention_days=sec.audit_retention_days, now=now
    )
    report.dead_letters_deleted, report.payloads_dropped, report.payload_bytes_dropped = purge_dead_letters(
        engine, retention_days=sec.dead_letter_retention_days, quota_bytes=sec.dead_letter_quota_bytes, now=now
    )
    return report


async def run_periodically(engine: Engine, sec: SecuritySettings) -> None:
    """Apply retention every ``retention_interval_s`` until cancelled (a lifespan task); work runs in a thread."""
    failing = False
    while True:
        try:
            await asyncio.to_thread(run_once, engine, sec)
            failing = False
        except Exception:  # logged once until it recovers; the next round retries
            if not failing:
                log.exception("retention round failed; retrying every %.0f s", sec.retention_interval_s)
            failing = True
        await asyncio.sleep(sec.retention_interval_s)
