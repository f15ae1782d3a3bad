"""#13 item 5: audit and dead-letter retention (cloud/retention.py). Nothing within retention is ever deleted; the
journal chain stays verifiable across a purge (anchored prefix), and a forged purge record or a row removed after
the purge is still detected; dead-letter payloads over the quota are dropped, the rows kept; every run journaled."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cloud import retention
from cloud.core.config import Settings
from cloud.core.db import session_scope, utcnow
from cloud.ingest.models import DeadLetter
from cloud.journal import JournalEvent, JournalPurge, append
from cloud.security import audit
from cloud.security.config import SecuritySettings

# GB/T 22239-2019 8.1.4.3 c): audit records kept at least six months -- written here, not read from the settings
SIX_MONTHS_DAYS = 183


def _events(engine: Engine, ages_days: list[float]) -> None:
    now = utcnow()
    with session_scope(engine, write=True) as session:
        for i, age in enumerate(ages_days):
            append(
                session,
                actor="clerk",
                action="clue.transition",
                target_type="clue",
                target_id=i,
                payload={"age_days": age},
                ts=now - timedelta(days=age),
            )


def _kept_ids(engine: Engine, cutoff_days: float) -> set[int]:
    cutoff = utcnow() - timedelta(days=cutoff_days)
    with Session(engine) as session:
        return {e.id for e in session.exec(select(JournalEvent).where(col(JournalEvent.ts) >= cutoff)) if e.id}


def _verdict(engine: Engine, anchor: tuple[int, str] | None = None) -> audit.Verdict:
    with Session(engine) as session:
        return audit.verify(session, anchor=anchor)


def test_settings_refuse_less_than_six_months() -> None:
    with pytest.raises(ValueError):
        SecuritySettings(audit_retention_days=SIX_MONTHS_DAYS - 1)
    assert SecuritySettings().audit_retention_days >= SIX_MONTHS_DAYS


def test_journal_prefix_purge_keeps_retention_and_the_chain(cloud_engine: Engine) -> None:
    # 10 old events, one within retention, then 3 old-stamped events after it (a late import): the purge removes a
    # prefix only, so those 3 stay too
    _events(cloud_engine, [400.0] * 10 + [100.0] + [400.0] * 3 + [1.0] * 5)
    within = _kept_ids(cloud_engine, SIX_MONTHS_DAYS)
    with Session(cloud_engine) as session:
        early_anchor = (5, session.get(JournalEvent, 5).hash)  # type: ignore[union-attr]
    removed, through = retention.purge_journal(cloud_engine, retention_days=SIX_MONTHS_DAYS, chunk=4)
    assert (removed, through) == (10, 10)
    with Session(cloud_engine) as session:
        left = list(session.exec(select(JournalEvent).order_by(col(JournalEvent.id))))
        purges = list(session.exec(select(JournalPurge)))
    assert within <= {e.id for e in left}  # nothing within retention deleted
    assert [e.id for e in left][:4] == [11, 12, 13, 14]  # the late old-stamped events after a kept one stay
    assert len(purges) == 3 and max(p.through_id for p in purges) == 10  # chunks of 4: three purges
    recorded = [e for e in left if e.action == "audit.purged"]
    assert [e.payload["count"] for e in recorded] == [4, 4, 2]
    verdict = _verdict(cloud_engine)
    assert verdict.ok, verdict.message
    assert _verdict(cloud_engine, anchor=early_anchor).ok  # an anchor noted before the purge still verifies
    assert retention.purge_journal(cloud_engine, retention_days=SIX_MONTHS_DAYS) == (0, None)  # idempotent


def test_tampering_after_a_purge_is_still_detected(cloud_settings: Settings, cloud_engine: Engine) -> None:
    _events(cloud_engine, [400.0] * 6 + [1.0] * 6)
    retention.purge_journal(cloud_engine, retention_days=SIX_MONTHS_DAYS)
    assert _verdict(cloud_engine).ok
    db = sqlite3.connect(cloud_settings.data_dir / "sentinel.db")
    db.execute("DELETE FROM journal_event WHERE id = 7")  # the first kept event
    db.commit()
    bad = _verdict(cloud_engine)
    assert not bad.ok and bad.bad_row is not None
    # hiding it behind a forged purge record does not work either: the chain has no audit.purged event for it
    db.execute(
        "INSERT INTO journal_purge (purged_at, by, through_id, anchor_hash, count, cutoff) "
        "SELECT purged_at, 'mallory', 7, (SELECT hash FROM journal_event WHERE id = 8), 1, cutoff FROM journal_purge"
    )
    db.execute(
        "UPDATE journal_purge SET anchor_hash = (SELECT prev_hash FROM journal_event WHERE id = 8) WHERE by = 'mallory'"
    )
    db.commit()
    db.close()
    forged = _verdict(cloud_engine)
    assert not forged.ok and "伪造" in forged.message and "forged" in forged.message, forged.message


def test_dead_letters_retention_and_quota(cloud_engine: Engine) -> None:
    now = utcnow()
    mib = 1024 * 1024
    with session_scope(cloud_engine, write=True) as session:
        session.add(
            DeadLetter(topic="t/old", reason="malformed_json", payload=b"x" * 10, received_at=now - timedelta(days=91))
        )
        for i in range(4):
            session.add(
                DeadLetter(
                    topic=f"t/{i}",
                    reason="invalid_payload",
                    detail="bad field",
                    payload=bytes([i]) * (mib // 2),
                    received_at=now - timedelta(days=30 - i),
                )
            )
    report = retention.run_once(
        cloud_engine, SecuritySettings(dead_letter_retention_days=90, dead_letter_quota_bytes=mib), now=now
    )
    assert report.dead_letters_deleted == 1
    assert report.payloads_dropped == 2 and report.payload_bytes_dropped == mib
    with Session(cloud_engine) as session:
        rows = list(session.exec(select(DeadLetter).order_by(col(DeadLetter.id))))
        events = list(session.exec(select(JournalEvent).where(JournalEvent.action == "ingest.dead_letters_purged")))
    assert [r.topic for r in rows] == ["t/0", "t/1", "t/2", "t/3"]  # within retention: every row kept
    assert [len(r.payload) for r in rows] == [0, 0, mib // 2, mib // 2]  # the oldest payloads went first
    assert "sha256=" in rows[0].detail and str(mib // 2) in rows[0].detail and rows[0].detail.startswith("bad field")
    assert events and events[0].payload["deleted"] == 1 and events[0].payload["payloads_dropped"] == 2
    assert _verdict(cloud_engine).ok
