"""The ingest ledger keys on (site, agent, incarnation, seq) and tells a resend from a seq conflict (issue 15).

Writer-level (real SQLite, no broker): a resend (same bytes) is a duplicate and acked; a wiped box's new
incarnation starting again at seq 1 is stored; another payload under a committed key is a loud seq conflict
(dead letter with reason and raw bytes, counter, cloud alert for the admins, rejected in the ack), never a
silent duplicate. An old ledger (key without incarnation) is upgraded in place with its rows kept.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, select

from cloud.alerts import Alert, AlertStatus
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine
from cloud.ingest.writer import SEQ_CONFLICT, IngestWriter, RawMessage
from cloud.telemetry.store import TelemetryStore
from protocols import Channel, encode, topic_for
from protocols.messages import TelemetryBatch, stamp_incarnation
from tests.cloud.test_ingest import batch, registered_world, scalar  # noqa: F401 - the registered sites (autouse)

TOPIC = topic_for("s1", "a1", Channel.TELEMETRY)


def stamped(seq: int, incarnation: str | None, n: int = 2, shift: int = 0) -> bytes:
    b = batch("s1", "a1", seq + shift, n)
    payload = encode(TelemetryBatch(**{**b.model_dump(), "seq": seq}))
    return payload if incarnation is None else stamp_incarnation(payload, incarnation)


def test_resend_is_a_duplicate_and_a_new_incarnation_is_stored(
    cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    writer = IngestWriter(cloud_engine, cloud_store)
    first = [RawMessage(TOPIC, stamped(s, "20261201t000000z-aaaaaaaa")) for s in (1, 2, 3)]
    result = writer.commit(first)
    assert result.new == 3 and result.acks[("s1", "a1", "20261201t000000z-aaaaaaaa")].committed == [1, 2, 3]
    again = writer.commit(first[:2])  # the edge re-sends exactly the same bytes
    assert again.duplicates == 2 and again.conflicts == 0
    assert again.acks[("s1", "a1", "20261201t000000z-aaaaaaaa")].committed == [1, 2]

    # the box is wiped: a new incarnation whose seqs start at 1 again, other readings
    wiped = [RawMessage(TOPIC, stamped(s, "20261202t000000z-bbbbbbbb", shift=100)) for s in (1, 2)]
    result = writer.commit(wiped)
    assert result.new == 2 and result.duplicates == 0
    assert cloud_store.count() == 5 * 2
    assert scalar(cloud_engine, "SELECT count(*) FROM dead_letter") == 0


def test_another_payload_under_a_committed_seq_is_a_loud_conflict(
    cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    writer = IngestWriter(cloud_engine, cloud_store)
    writer.commit([RawMessage(TOPIC, stamped(s, None)) for s in (1, 2)])
    # a legacy agent (no incarnation) whose data dir was wiped: seq 1 again, with other readings
    replaced = stamped(1, None, shift=500)
    result = writer.commit([RawMessage(TOPIC, replaced)])
    assert result.new == 0 and result.duplicates == 0 and result.conflicts == 1
    ack = result.acks[("s1", "a1", "")]
    assert ack.committed == [] and ack.rejected == [(1, SEQ_CONFLICT)]
    assert writer.stats.seq_conflicts == 1 and writer.stats.dead_letters[SEQ_CONFLICT] == 1
    assert writer.stats.snapshot()["seq_conflicts"] == 1
    with cloud_engine.connect() as conn:
        reason, detail, payload, seq = conn.execute(text("SELECT reason, detail, payload, seq FROM dead_letter")).one()
    assert reason == SEQ_CONFLICT and seq == 1 and bytes(payload) == replaced, "raw bytes kept for a replay"
    assert "another payload" in detail
    assert cloud_store.count() == 2 * 2, "the conflicting readings are not stored over the committed ones"
    with Session(cloud_engine) as session:
        alert = session.exec(select(Alert).where(Alert.rule_id == SEQ_CONFLICT)).one()
    assert alert.status == AlertStatus.OPEN and alert.device_id == "a1" and "序号" in alert.message


def test_an_old_ledger_is_upgraded_with_its_rows_kept(tmp_path: Path, cloud_settings: Settings) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE ingest_seq (site_id VARCHAR(64) NOT NULL, agent_id VARCHAR(64) NOT NULL, seq INTEGER NOT "
            "NULL, kind VARCHAR(16) NOT NULL, committed_at DATETIME NOT NULL, PRIMARY KEY (site_id, agent_id, seq))"
            " WITHOUT ROWID"
        )
        conn.exec_driver_sql(
            "CREATE TABLE dead_letter (id INTEGER PRIMARY KEY, topic VARCHAR(512) NOT NULL, reason VARCHAR(64) NOT "
            "NULL, detail VARCHAR(2000) NOT NULL, agent_id VARCHAR(64), seq INTEGER, received_at DATETIME NOT NULL,"
            " payload BLOB NOT NULL)"
        )
        conn.exec_driver_sql("INSERT INTO ingest_seq VALUES ('s1', 'a1', 7, 'telemetry', '2026-11-30 00:00:00')")
    old.dispose()
    engine = make_engine(cloud_settings, url=url)
    try:
        init_db(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT site_id, agent_id, incarnation, seq, digest FROM ingest_seq")).all()
            columns = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(dead_letter)")}
        assert [tuple(r) for r in rows] == [("s1", "a1", "", 7, None)]
        assert "incarnation" in columns
    finally:
        engine.dispose()
