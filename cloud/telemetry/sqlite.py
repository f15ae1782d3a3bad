"""SQLite telemetry store: readings in the business DB file (WAL), written with ``executemany``.

Timestamps are stored as integer milliseconds since the epoch (UTC); a ``reading_latest`` table keeps
the newest reading per (site, sensor) so "latest per site" never scans history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Engine

from cloud.telemetry.store import _QUALITY, Bucket, ReadingRow, TelemetryStore
from protocols import TelemetryBatch

if TYPE_CHECKING:
    from cloud.core.config import Settings
    from cloud.ingest.fastpath import FastBatch

#: timestamp string → (aware datetime, epoch ms), see cloud.ingest.fastpath.FastDecoder.instant
Instant = Callable[[str], "tuple[datetime, int] | None"]

_DDL = (
    """CREATE TABLE IF NOT EXISTS reading (
        site_id TEXT NOT NULL, sensor_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
        value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL, agent_id TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_reading_sensor_ts ON reading (site_id, sensor_id, ts_ms)",
    """CREATE TABLE IF NOT EXISTS reading_latest (
        site_id TEXT NOT NULL, sensor_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
        value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL, agent_id TEXT NOT NULL,
        PRIMARY KEY (site_id, sensor_id))""",
)
_INSERT = "INSERT INTO reading (site_id, sensor_id, ts_ms, value, unit, quality, agent_id) VALUES (?,?,?,?,?,?,?)"
_UPSERT_LATEST = (
    "INSERT INTO reading_latest (site_id, sensor_id, ts_ms, value, unit, quality, agent_id) VALUES (?,?,?,?,?,?,?) "
    "ON CONFLICT (site_id, sensor_id) DO UPDATE SET ts_ms=excluded.ts_ms, value=excluded.value, "
    "unit=excluded.unit, quality=excluded.quality, agent_id=excluded.agent_id "
    "WHERE excluded.ts_ms >= reading_latest.ts_ms"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INDEX_KEY = itemgetter(0, 1, 2)  # (site_id, sensor_id, ts_ms) of a row tuple


def to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class SqliteStore(TelemetryStore):
    name: ClassVar[str] = "sqlite"
    transactional: ClassVar[bool] = True

    def __init__(self, settings: Settings | None, engine: Engine) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("the sqlite telemetry backend needs a sqlite business DB (SENTINEL_DATABASE_URL)")
        self.engine = engine

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            for ddl in _DDL:
                conn.exec_driver_sql(ddl)

    @staticmethod
    def _tuples(rows: Sequence[ReadingRow]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        out: list[tuple[Any, ...]] = []
        newest: dict[tuple[str, str], tuple[Any, ...]] = {}
        last_ts: datetime | None = None
        ms = 0
        for site, sensor, ts, value, unit, quality, agent in (
            (r.site_id, r.sensor_id, r.ts, r.value, r.unit, r.quality, r.agent_id) for r in rows
        ):
            if ts != last_ts:  # readings of one batch usually share a timestamp: convert once
                last_ts = ts
                ms = int(ts.timestamp() * 1000)
            t = (site, sensor, ms, value, unit, quality, agent)
            out.append(t)
            old = newest.get((site, sensor))
            if old is None or ms >= old[2]:
                newest[(site, sensor)] = t
        return out, list(newest.values())

    def write_batches(self, batches: Sequence[TelemetryBatch], *, connection: Connection | None = None) -> int:
        """Fast path of the ingest: tuples straight from the validated wire batches."""
        values: list[tuple[Any, ...]] = []
        newest: dict[tuple[str, str], tuple[Any, ...]] = {}
        append = values.append
        for batch in batches:
            site, agent = batch.site_id, batch.agent_id
            last_ts: datetime | None = None
            ms = 0
            for r in batch.readings:
                ts = r.ts
                if ts is not last_ts and ts != last_ts:  # one batch usually shares a timestamp
                    last_ts = ts
                    ms = int(ts.timestamp() * 1000)
                t = (site, r.sensor_id, ms, r.value, r.unit, _QUALITY[r.quality], agent)
                append(t)
                old = newest.get((site, t[1]))
                if old is None or ms >= old[2]:
                    newest[(site, t[1])] = t
        if values:
            if connection is None:
                with self.engine.begin() as conn:
                    self._write(conn, values, list(newest.values()))
            else:
                self._write(connection, values, list(newest.values()))
        return len(values)

    def write_decoded(
        self, batches: Sequence[FastBatch], instant: Instant, *, connection: Connection | None = None
    ) -> int:
        """The ingest's fastest path: batches decoded by ``cloud.ingest.fastpath`` (timestamps as strings)."""
        values: list[tuple[Any, ...]] = []
        newest: dict[tuple[str, str], tuple[Any, ...]] = {}
        append = values.append
        for batch in batches:
            site, agent = batch.site_id, batch.agent_id
            last_ts = ""
            ms = 0
            for r in batch.readings:
                if r.ts != last_ts:
                    last_ts = r.ts
                    hit = instant(last_ts)
                    assert hit is not None  # validated by the decoder
                    ms = hit[1]
                t = (site, r.sensor_id, ms, r.value, r.unit, r.quality, agent)
                append(t)
                key = (site, t[1])
                old = newest.get(key)
                if old is None or ms >= old[2]:
                    newest[key] = t
        if values:
            if connection is None:
                with self.engine.begin() as conn:
                    self._write(conn, values, list(newest.values()))
            else:
                self._write(connection, values, list(newest.values()))
        return len(values)

    def write_readings(self, rows: Sequence[ReadingRow], *, connection: Connection | None = None) -> None:
        if not rows:
            return
        values, latest = self._tuples(rows)
        if connection is None:
            with self.engine.begin() as conn:
                self._write(conn, values, latest)
        else:
            self._write(connection, values, latest)

    @staticmethod
    def _write(conn: Connection, values: list[tuple[Any, ...]], latest: list[tuple[Any, ...]]) -> None:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            # in index order: inserts touch neighbouring index pages (measured ~1.4x faster on 25k rows)
            values.sort(key=_INDEX_KEY)
            cursor.executemany(_INSERT, values)
            cursor.executemany(_UPSERT_LATEST, latest)
        finally:
            cursor.close()

    def query_readings(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, limit: int = 10_000
    ) -> list[ReadingRow]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT agent_id, site_id, sensor_id, ts_ms, value, unit, quality FROM reading "
                "WHERE site_id=? AND sensor_id=? AND ts_ms>=? AND ts_ms<? ORDER BY ts_ms LIMIT ?",
                (site_id, sensor_id, to_ms(start), to_ms(end), limit),
            ).all()
        return [ReadingRow(a, s, n, from_ms(t), v, u, q) for a, s, n, t, v, u, q in rows]

    def downsample(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Bucket]:
        step_ms = max(1, int(step.total_seconds() * 1000))
        origin = to_ms(start)
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT (ts_ms - ?) / ? AS b, count(value), min(value), avg(value), max(value), max(unit) "
                "FROM reading WHERE site_id=? AND sensor_id=? AND ts_ms>=? AND ts_ms<? AND value IS NOT NULL "
                "GROUP BY b ORDER BY b",
                (origin, step_ms, site_id, sensor_id, origin, to_ms(end)),
            ).all()
        return [Bucket(from_ms(origin + b * step_ms), c, lo, avg, hi, u) for b, c, lo, avg, hi, u in rows]

    def latest(self, *, site_id: str) -> list[ReadingRow]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT agent_id, site_id, sensor_id, ts_ms, value, unit, quality FROM reading_latest "
                "WHERE site_id=? ORDER BY sensor_id",
                (site_id,),
            ).all()
        return [ReadingRow(a, s, n, from_ms(t), v, u, q) for a, s, n, t, v, u, q in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM reading").scalar_one())
