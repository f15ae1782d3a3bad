"""The telemetry store interface every backend implements.

Exactly-once across the two kinds of store
-----------------------------------------
The ingest dedups by ``(agent_id, seq)`` in the *business* DB and acknowledges only after that commit.

* **Transactional stores** (``transactional = True``: SQLite, PostgreSQL on the business DB) write readings
  through the ``connection`` the ingest passes in, inside the same transaction as the dedup rows: either
  both are committed or neither is. They must not commit or roll back themselves.
* **External stores** (``transactional = False``: InfluxDB/VictoriaMetrics) are written *first*, then the
  dedup rows are committed. A crash between the two means the batch is written again when the edge
  resends it; that is harmless because points are idempotent by (measurement, tags, timestamp): the
  second write overwrites the first with the same values. ``connection`` is ``None`` for them.

Timestamps handed to and returned by a store are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from sqlalchemy import Connection, Engine

from protocols import Quality, TelemetryBatch

if TYPE_CHECKING:
    from cloud.core.config import Settings


_QUALITY: dict[Quality, str] = {q: q.value for q in Quality}  # enum .value is slow in hot loops


class ReadingRow(NamedTuple):
    """One stored reading (a tuple: cheap to build by the hundred thousand)."""

    agent_id: str
    site_id: str
    sensor_id: str
    ts: datetime
    value: float | None
    unit: str
    quality: str  # protocols.Quality value: good | uncertain | bad


class Bucket(NamedTuple):
    """Downsampled readings of one sensor over ``[start, start + step)``."""

    start: datetime
    count: int  # type: ignore[assignment]
    min: float | None
    avg: float | None
    max: float | None
    unit: str | None


class TelemetryStore(ABC):
    """Batched writes, period queries with downsampling, latest value per sensor of a site."""

    #: name used in ``SENTINEL_TELEMETRY_BACKEND``
    name: ClassVar[str]
    #: True: writes join the caller's business-DB transaction (see the module docstring)
    transactional: ClassVar[bool]

    @abstractmethod
    def create_schema(self) -> None:
        """Create tables/databases if missing (idempotent)."""

    @abstractmethod
    def write_readings(self, rows: Sequence[ReadingRow], *, connection: Connection | None = None) -> None:
        """Store ``rows`` (any number, any sensors). Transactional stores use ``connection`` and never commit."""

    def write_batches(self, batches: Sequence[TelemetryBatch], *, connection: Connection | None = None) -> int:
        """Store every reading of validated wire batches; returns the number of readings.

        The ingest calls this. The default converts to :class:`ReadingRow` and calls :meth:`write_readings`;
        a backend may override it to skip that intermediate step (the SQLite store does).
        """
        rows = [
            ReadingRow(b.agent_id, b.site_id, r.sensor_id, r.ts, r.value, r.unit, _QUALITY[r.quality])
            for b in batches
            for r in b.readings
        ]
        self.write_readings(rows, connection=connection)
        return len(rows)

    @abstractmethod
    def query_readings(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, limit: int = 10_000
    ) -> list[ReadingRow]:
        """Raw readings of one sensor in ``[start, end)``, oldest first, at most ``limit``."""

    @abstractmethod
    def downsample(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Bucket]:
        """min/avg/max/count per ``step`` of one sensor in ``[start, end)``; empty steps are omitted.

        Readings whose value is null (quality bad) are not counted.
        """

    @abstractmethod
    def latest(self, *, site_id: str) -> list[ReadingRow]:
        """The most recent reading of every sensor of a site, ordered by sensor id."""

    def count(self) -> int:
        """Total number of stored readings (tests and benchmarks); backends may override efficiently."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients/connections owned by the store."""


#: backend name → "module:class". Backends are imported only when selected.
BACKENDS: dict[str, str] = {
    "sqlite": "cloud.telemetry.sqlite:SqliteStore",
    "postgres": "cloud.telemetry.postgres:PostgresStore",
    "influx": "cloud.telemetry.influx:InfluxStore",
}


def open_store(settings: Settings, engine: Engine) -> TelemetryStore:
    """The store selected by ``settings.telemetry_backend``; every backend takes ``(settings, engine)``."""
    target = BACKENDS[settings.telemetry_backend]
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    store: TelemetryStore = cls(settings, engine)
    store.create_schema()
    return store
