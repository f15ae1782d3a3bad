"""PostgreSQL telemetry store: readings in the business DB (psycopg 3), written with ``COPY``.

Transactional: the ingest passes its business-DB ``connection`` so readings and dedup rows commit together.
``reading.ts`` is ``timestamptz``; a ``reading_latest`` table keeps the newest reading per (site, sensor);
downsampling uses ``date_bin`` (PostgreSQL ≥ 14).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Engine

from cloud.telemetry.store import Bucket, ReadingRow, TelemetryStore

if TYPE_CHECKING:
    from cloud.core.config import Settings
    from cloud.ingest.fastpath import FastBatch

#: timestamp string → (aware datetime, epoch ms), see cloud.ingest.fastpath.FastDecoder.instant
Instant = Callable[[str], "tuple[datetime, int] | None"]

_DDL = (
    """CREATE TABLE IF NOT EXISTS reading (
        site_id text NOT NULL, sensor_id text NOT NULL, ts timestamptz NOT NULL,
        value double precision, unit text NOT NULL, quality text NOT NULL, agent_id text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_reading_sensor_ts ON reading (site_id, sensor_id, ts)",
    """CREATE TABLE IF NOT EXISTS reading_latest (
        site_id text NOT NULL, sensor_id text NOT NULL, ts timestamptz NOT NULL,
        value double precision, unit text NOT NULL, quality text NOT NULL, agent_id text NOT NULL,
        PRIMARY KEY (site_id, sensor_id))""",
)
_COPY = "COPY reading (site_id, sensor_id, ts, value, unit, quality, agent_id) FROM STDIN"
_UPSERT_LATEST = (
    "INSERT INTO reading_latest (site_id, sensor_id, ts, value, unit, quality, agent_id) "
    "VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (site_id, sensor_id) DO UPDATE SET ts=excluded.ts, "
    "value=excluded.value, unit=excluded.unit, quality=excluded.quality, agent_id=excluded.agent_id "
    "WHERE excluded.ts >= reading_latest.ts"
)
_COLUMNS = "agent_id, site_id, sensor_id, ts, value, unit, quality"


def _row(r: Sequence[Any]) -> ReadingRow:
    a, s, n, t, v, u, q = r
    return ReadingRow(a, s, n, t.astimezone(UTC), v, u, q)


class PostgresStore(TelemetryStore):
    name: ClassVar[str] = "postgres"
    transactional: ClassVar[bool] = True

    def __init__(self, settings: Settings | None, engine: Engine) -> None:
        if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
            raise ValueError(
                "the postgres telemetry backend needs a PostgreSQL business DB through psycopg 3 "
                "(SENTINEL_DATABASE_URL=postgresql+psycopg://…)"
            )
        self.engine = engine

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            for ddl in _DDL:
                conn.exec_driver_sql(ddl)

    def write_readings(self, rows: Sequence[ReadingRow], *, connection: Connection | None = None) -> None:
        if not rows:
            return
        if connection is None:
            with self.engine.begin() as conn:
                self._write(conn, rows)
        else:
            self._write(connection, rows)

    def write_decoded(
        self, batches: Sequence[FastBatch], instant: Instant, *, connection: Connection | None = None
    ) -> int:
        """The ingest's fastest path: batches decoded by ``cloud.ingest.fastpath`` (timestamps as strings),
        streamed into ``COPY`` without intermediate row objects."""
        if connection is None:
            with self.engine.begin() as conn:
                return self._write_decoded(conn, batches, instant)
        return self._write_decoded(connection, batches, instant)

    @staticmethod
    def _write_decoded(conn: Connection, batches: Sequence[FastBatch], instant: Instant) -> int:
        newest: dict[tuple[str, str], tuple[Any, ...]] = {}
        raw = conn.connection.driver_connection
        assert raw is not None
        n = 0
        with raw.cursor() as cur:
            with cur.copy(_COPY) as copy:
                write_row = copy.write_row
                for batch in batches:
                    site, agent = batch.site_id, batch.agent_id
                    last_ts = ""
                    ts: datetime | None = None
                    for r in batch.readings:
                        if r.ts != last_ts:
                            last_ts = r.ts
                            hit = instant(last_ts)
                            assert hit is not None  # validated by the decoder
                            ts = hit[0]
                        t = (site, r.sensor_id, ts, r.value, r.unit, r.quality, agent)
                        write_row(t)
                        key = (site, r.sensor_id)
                        old = newest.get(key)
                        if old is None or ts >= old[2]:
                            newest[key] = t
                    n += len(batch.readings)
            if newest:
                # sorted: concurrent ingest workers lock reading_latest rows in the same order (no deadlock)
                cur.executemany(_UPSERT_LATEST, [t for _, t in sorted(newest.items())])
        return n

    @staticmethod
    def _write(conn: Connection, rows: Sequence[ReadingRow]) -> None:
        newest: dict[tuple[str, str], ReadingRow] = {}
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            with cur.copy(_COPY) as copy:
                for r in rows:
                    copy.write_row((r.site_id, r.sensor_id, r.ts, r.value, r.unit, r.quality, r.agent_id))
                    key = (r.site_id, r.sensor_id)
                    old = newest.get(key)
                    if old is None or r.ts >= old.ts:
                        newest[key] = r
            # sorted: concurrent ingest workers lock reading_latest rows in the same order (no deadlock)
            cur.executemany(
                _UPSERT_LATEST,
                [
                    (r.site_id, r.sensor_id, r.ts, r.value, r.unit, r.quality, r.agent_id)
                    for _, r in sorted(newest.items())
                ],
            )

    def query_readings(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, limit: int = 10_000
    ) -> list[ReadingRow]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_COLUMNS} FROM reading WHERE site_id=%s AND sensor_id=%s AND ts>=%s AND ts<%s "
                "ORDER BY ts LIMIT %s",
                (site_id, sensor_id, start, end, limit),
            ).all()
        return [_row(r) for r in rows]

    def downsample(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Bucket]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT date_bin(%s, ts, %s) AS b, count(value), min(value), avg(value), max(value), max(unit) "
                "FROM reading WHERE site_id=%s AND sensor_id=%s AND ts>=%s AND ts<%s AND value IS NOT NULL "
                "GROUP BY b ORDER BY b",
                (step, start, site_id, sensor_id, start, end),
            ).all()
        return [Bucket(b.astimezone(UTC), c, lo, avg, hi, u) for b, c, lo, avg, hi, u in rows]

    def latest(self, *, site_id: str) -> list[ReadingRow]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_COLUMNS} FROM reading_latest WHERE site_id=%s ORDER BY sensor_id", (site_id,)
            ).all()
        return [_row(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM reading").scalar_one())
