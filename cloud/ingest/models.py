"""Tables of the ingest: dedup ledger, dead letters, announcements waiting for the registry."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Column, Engine, LargeBinary, inspect
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime, utcnow

log = logging.getLogger(__name__)


class IngestSeq(SQLModel, table=True):
    """One committed (site, agent, incarnation, seq): the dedup ledger, written in the same transaction as the data.

    An agent is identified by its site *and* its id (the topic carries both): two sites may each have an
    ``edge-1`` without their sequence numbers colliding. Its *incarnation* (created with its data dir) keeps a
    wiped or replaced box, whose seqs start again at 1, from being taken for a duplicate; ``''`` is the namespace
    of agents older than incarnations. ``digest`` (BLAKE2b-64 of the payload bytes, which a resend repeats
    exactly) tells a resend from a *seq conflict*: another payload under a seq already committed.
    """

    __tablename__ = "ingest_seq"
    __table_args__ = {"sqlite_with_rowid": False}

    site_id: str = Field(primary_key=True, max_length=64)
    agent_id: str = Field(primary_key=True, max_length=64)
    incarnation: str = Field(default="", primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    kind: str = Field(max_length=16, description="telemetry | alert")
    committed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    digest: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


def upgrade_schema(engine: Engine) -> None:
    """A ledger of before incarnations (primary key without ``incarnation``) is rebuilt in place, rows kept
    under the legacy incarnation ``''``. Runs before the tables are created (see :func:`cloud.core.db.init_db`)."""
    columns = {c["name"] for c in inspect(engine).get_columns("ingest_seq")} if _has(engine, "ingest_seq") else None
    if columns is None or "incarnation" in columns:
        return
    log.warning("upgrading the ingest ledger ingest_seq: adding incarnation to its key (rows kept)")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE ingest_seq RENAME TO ingest_seq_v0")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE ingest_seq_v0 RENAME CONSTRAINT ingest_seq_pkey TO ingest_seq_v0_pkey")
        IngestSeq.__table__.create(conn)  # type: ignore[attr-defined]
        conn.exec_driver_sql(
            "INSERT INTO ingest_seq (site_id, agent_id, incarnation, seq, kind, committed_at) "
            "SELECT site_id, agent_id, '', seq, kind, committed_at FROM ingest_seq_v0"
        )
        conn.exec_driver_sql("DROP TABLE ingest_seq_v0")


def _has(engine: Engine, table: str) -> bool:
    return inspect(engine).has_table(table)


class DeadLetterBase(SQLModel):
    topic: str = Field(max_length=512)
    reason: str = Field(max_length=64, index=True, description="machine code: malformed_json, invalid_payload…")
    detail: str = Field(default="", max_length=2000)
    agent_id: str | None = Field(default=None, max_length=64)
    seq: int | None = None
    incarnation: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeadLetter(DeadLetterBase, table=True):
    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class DeadLetterPublic(DeadLetterBase):
    id: int
    size: int
    preview: str


class PendingAnnounce(SQLModel, table=True):
    """An agent's announcement kept until a registry handles it (used when cloud.registry is absent)."""

    __tablename__ = "pending_announce"

    id: int | None = Field(default=None, primary_key=True)
    site_id: str = Field(max_length=64, index=True)
    agent_id: str = Field(max_length=64)
    payload: str
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
