"""Tables of the ingest: dedup ledger, dead letters, announcements waiting for the registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime, utcnow


class IngestSeq(SQLModel, table=True):
    """One committed (site, agent, seq): the dedup ledger, written in the same transaction as the data.

    An agent is identified by its site *and* its id (the topic carries both): two sites may each have an
    ``edge-1`` without their sequence numbers colliding.
    """

    __tablename__ = "ingest_seq"
    __table_args__ = {"sqlite_with_rowid": False}

    site_id: str = Field(primary_key=True, max_length=64)
    agent_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    kind: str = Field(max_length=16, description="telemetry | alert")
    committed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeadLetterBase(SQLModel):
    topic: str = Field(max_length=512)
    reason: str = Field(max_length=64, index=True, description="machine code: malformed_json, invalid_payload…")
    detail: str = Field(default="", max_length=2000)
    agent_id: str | None = Field(default=None, max_length=64)
    seq: int | None = None
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
