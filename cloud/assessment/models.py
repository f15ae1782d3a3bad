"""Tables of supervision: running clocks, spot checks (assessment itself is computed, not stored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime, utcnow


class SupervisionClockBase(SQLModel):
    clock_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=200)
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=64, index=True)
    started_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    warn_at: datetime = Field(sa_type=UTCDateTime)
    warned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    clue_id: int | None = None
    department_id: int | None = None
    people: list[str] = Field(default_factory=list, sa_type=JSON)
    supervision_clue_id: int | None = None


class SupervisionClock(SupervisionClockBase, table=True):
    __tablename__ = "supervision_clock"
    id: int | None = Field(default=None, primary_key=True)


class SupervisionClockPublic(SupervisionClockBase):
    id: int


class SpotCheckBase(SQLModel):
    batch: str = Field(max_length=40, index=True, description="抽查批次")
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=64)
    responsible: list[str] = Field(default_factory=list, sa_type=JSON)
    drawn_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seed: str = Field(max_length=64)
    verdict: str | None = Field(default=None, max_length=16, description="ok | problem")
    note: str | None = Field(default=None, max_length=2000)
    reviewed_by: str | None = Field(default=None, max_length=64)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    extra: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class SpotCheck(SpotCheckBase, table=True):
    __tablename__ = "supervision_spot_check"
    id: int | None = Field(default=None, primary_key=True)


class SpotCheckPublic(SpotCheckBase):
    id: int
