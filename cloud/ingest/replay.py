"""Re-submit kept dead letters through the normal validation path (after fixing a registry, a bug, a limit).

Each dead letter's topic and raw bytes go through :meth:`IngestWriter.commit` exactly like a message from
the broker: validated, deduplicated by (site, agent, seq), stored, committed. The replayed dead-letter rows are
deleted in the same transaction, so a message is never both stored and still dead; one that fails again is
dead-lettered anew with its (possibly new) reason. Replaying twice is harmless (dedup). No acks are sent: the
edge dropped a rejected entry already.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from cloud.ingest.models import DeadLetter
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.telemetry.store import TelemetryStore


@dataclass
class ReplayReport:
    replayed: int = 0
    stored: int = 0  # newly committed telemetry batches / alert events
    duplicates: int = 0  # already committed before (dedup): retired without storing again
    other: int = 0  # status, heartbeats, announcements accepted
    still_dead: Counter[str] = field(default_factory=Counter)  # reason → count, dead-lettered again


def replay_dead_letters(
    engine: Engine, store: TelemetryStore, *, reason: str | None = None, chunk: int = 500
) -> ReplayReport:
    """Replay every dead letter (or those with ``reason``) in id order, ``chunk`` per transaction."""
    table = DeadLetter.__table__  # type: ignore[attr-defined]
    writer = IngestWriter(engine, store)
    report = ReplayReport()
    with engine.connect() as conn:
        query = select(table.c.id).order_by(table.c.id)
        if reason:
            query = query.where(table.c.reason == reason)
        ids = [row[0] for row in conn.execute(query)]
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with engine.connect() as conn:
            rows = conn.execute(
                select(table.c.id, table.c.topic, table.c.payload).where(table.c.id.in_(part)).order_by(table.c.id)
            ).all()
        before = writer.stats.snapshot()
        result = writer.commit([RawMessage(t, bytes(p)) for _, t, p in rows], retire=[i for i, _, _ in rows])
        after = writer.stats.snapshot()
        report.replayed += len(rows)
        report.stored += result.new
        report.duplicates += result.duplicates
        for key, n in after["dead_letters"].items():
            if n - before["dead_letters"].get(key, 0):
                report.still_dead[key] += n - before["dead_letters"].get(key, 0)
        report.other += (
            len(rows) - result.new - result.duplicates - (after["dead_letters_total"] - before["dead_letters_total"])
        )
    return report
