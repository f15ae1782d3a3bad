"""The journal chain: appends link, verification names the first tampered or orphaned row."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine, writer
from cloud.journal import append, timeline, verify


def _engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(Settings(data_dir=tmp_path))
    init_db(engine)
    return engine


def test_chain_verifies_and_detects_edit_and_delete(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with Session(writer(engine)) as session:
        for i in range(5):
            append(
                session,
                actor="alice",
                action="clue.transition",
                target_type="clue",
                target_id=7,
                payload={"to": f"s{i}"},
            )
        append(session, actor="bob", action="task.assigned", target_type="task", target_id=1)
        session.commit()
    with Session(engine) as session:
        assert verify(session).ok
        assert [e.payload.get("to") for e in timeline(session, "clue", 7)] == ["s0", "s1", "s2", "s3", "s4"]
    with Session(writer(engine)) as session:
        session.execute(text("UPDATE journal_event SET actor='mallory' WHERE id=3"))
        session.commit()
    with Session(engine) as session:
        result = verify(session)
        assert not result.ok and result.first_bad_id == 3 and "3" in result.reason
    with Session(writer(engine)) as session:
        session.execute(text("UPDATE journal_event SET actor='alice' WHERE id=3"))
        session.execute(text("DELETE FROM journal_event WHERE id=4"))
        session.commit()
    with Session(engine) as session:
        result = verify(session)
        assert not result.ok and result.first_bad_id == 5


def test_append_is_part_of_the_callers_transaction(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with Session(writer(engine)) as session:
        append(session, actor="a", action="clue.created", target_type="clue", target_id=1)
        session.rollback()
    with Session(writer(engine)) as session:
        append(session, actor="a", action="clue.created", target_type="clue", target_id=2)
        session.commit()
    with Session(engine) as session:
        assert [e.target_id for e in timeline(session, "clue", 2)] == ["2"]
        assert timeline(session, "clue", 1) == []
        assert verify(session).ok


def test_times_in_a_payload_are_iso_8601_with_the_zone(tmp_path: Path) -> None:
    """The journal feeds the live SSE stream and the audit export: a time in an event's payload goes on the wire
    as ISO 8601 with its zone (``2026-12-01T14:09:42.759223+00:00``), not Python's ``str()`` with a blank."""
    from datetime import UTC, date, datetime
    from decimal import Decimal

    engine = _engine(tmp_path)
    started = datetime(2026, 12, 1, 14, 9, 42, 759223, tzinfo=UTC)
    with Session(writer(engine)) as session:
        append(
            session,
            actor="agent:edge-1",
            action="alert.raised",
            target_type="alert",
            target_id=1,
            payload={
                "started_at": started,
                "due": date(2026, 12, 8),
                "nested": [{"at": started}],
                "amount": Decimal("2.5"),
            },
        )
        session.commit()
    with Session(engine) as session:
        (event,) = timeline(session, "alert", 1)
        assert event.payload["started_at"] == "2026-12-01T14:09:42.759223+00:00"
        assert datetime.fromisoformat(event.payload["started_at"]) == started
        assert event.payload["due"] == "2026-12-08"
        assert event.payload["nested"] == [{"at": "2026-12-01T14:09:42.759223+00:00"}]
        assert event.payload["amount"] == "2.5"
        assert verify(session).ok
