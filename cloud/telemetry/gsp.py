"""GSP compliance records: derived from stored readings, append-only, hash-chained.

Per measuring point (registry ``measuring_point``: a temperature sensor, optionally a humidity sensor, its
location and storage area or vehicle type) records are derived at the profile's interval (``gsp_profiles.toml``:
30 min storage, 5 min transport, 2 min while out of range) with the content GSP names: temperature,
humidity, date, time, measuring-point location, storage area or vehicle type.

A record is written at a reading instant when (a) the point has no record yet, (b) the status changed
(normal ↔ out of range: the excursion's start and end are always recorded), or (c) the interval for the
current status has elapsed since the last record (minus ``slack_s``).

Integrity: every record carries ``prev_hash`` (the previous record's ``hash``; the first one the genesis
value or the anchor of the last retention purge) and ``hash = SHA-256(canonical JSON of the record)``. One
chain spans all points; ``seq`` is the position in it. :func:`verify_chain` names the first bad row. There is
no update or delete function; database triggers refuse UPDATE and DELETE (a DELETE is allowed only for rows
a recorded retention purge covers, see :func:`purge_expired`).

Derivation is incremental: a cursor per point remembers up to which reading instant it has derived. It never
advances past the newest temperature reading the store has, so readings an edge replays after an outage
(older than "now" but newer than the cursor) are still derived.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import DDL, Engine, event, func
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.core.db import UTCDateTime
from cloud.registry.models import MeasuringPoint
from cloud.telemetry.gsp_profiles import Defaults, Profile, ProfileFile, load_file

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64


class RecordStatus(StrEnum):
    NORMAL = "normal"  # 正常
    EXCURSION = "excursion"  # 超限


STATUS_LABELS = {RecordStatus.NORMAL: "正常", RecordStatus.EXCURSION: "超限"}
#: reading quality of a record: ``uncertain`` when a reading it is made of was stored uncertain (the agent's clock
#: was off beyond SENTINEL_CLOCK_SKEW_MAX_S, cloud/ingest/clocks.py: its time is not to be trusted)
QUALITY_LABELS = {"good": "正常", "uncertain": "存疑（时钟偏差）"}


class GspRecord(SQLModel, table=True):
    """One compliance record. Never updated, never deleted (except by a recorded retention purge)."""

    __tablename__ = "gsp_record"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    point_id: int = Field(index=True)
    site_id: str = Field(max_length=64, index=True)
    recorded_at: datetime = Field(index=True, sa_type=UTCDateTime, description="record instant")
    temperature: float | None = None
    humidity: float | None = None
    location: str = Field(max_length=200, description="测点位置")
    area: str = Field(max_length=100, description="库区或车型")
    kind: str = Field(max_length=16, description="storage | transport")
    status: RecordStatus
    profile: str = Field(max_length=64)
    quality: str | None = Field(
        default=None, max_length=16, description="good | uncertain (a reading's time untrusted); None: before #15"
    )
    created_at: datetime = Field(sa_type=UTCDateTime)
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)


class GspCursor(SQLModel, table=True):
    """How far derivation of one point has got (not part of the record chain)."""

    __tablename__ = "gsp_cursor"

    point_id: int = Field(primary_key=True)
    derived_until: datetime = Field(sa_type=UTCDateTime)
    last_record_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status: RecordStatus | None = None


class GspPurge(SQLModel, table=True):
    """A retention purge: records ``seq ≤ through_seq`` were removed; ``anchor_hash`` continues the chain."""

    __tablename__ = "gsp_purge"

    id: int | None = Field(default=None, primary_key=True)
    through_seq: int
    anchor_hash: str = Field(max_length=64)
    count: int
    oldest_kept_before: datetime = Field(sa_type=UTCDateTime, description="retention cut-off")
    purged_at: datetime = Field(sa_type=UTCDateTime)
    purged_by: str = Field(max_length=64)


# ---------------------------------------------------------------- database guards (append-only)
_SQLITE_RECORD_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS gsp_record_no_update BEFORE UPDATE ON gsp_record "
    "BEGIN SELECT RAISE(ABORT, 'gsp_record is append-only: UPDATE refused'); END",
    "CREATE TRIGGER IF NOT EXISTS gsp_record_no_delete BEFORE DELETE ON gsp_record "
    "WHEN OLD.seq > (SELECT COALESCE(MAX(through_seq), 0) FROM gsp_purge) "
    "BEGIN SELECT RAISE(ABORT, 'gsp_record is append-only: DELETE refused'); END",
)
_SQLITE_PURGE_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS gsp_purge_no_update BEFORE UPDATE ON gsp_purge "
    "BEGIN SELECT RAISE(ABORT, 'gsp_purge is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS gsp_purge_no_delete BEFORE DELETE ON gsp_purge "
    "BEGIN SELECT RAISE(ABORT, 'gsp_purge is append-only'); END",
)
_PG_FUNCTION = """CREATE OR REPLACE FUNCTION gsp_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'gsp_record'
         AND OLD.seq <= (SELECT COALESCE(MAX(through_seq), 0) FROM gsp_purge) THEN
        RETURN OLD;
      END IF;
      RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
    END $$"""
_PG_RECORD_GUARDS = (
    _PG_FUNCTION,
    "CREATE OR REPLACE TRIGGER gsp_record_guard BEFORE UPDATE OR DELETE ON gsp_record "
    "FOR EACH ROW EXECUTE FUNCTION gsp_record_guard()",
    "CREATE OR REPLACE TRIGGER gsp_record_no_truncate BEFORE TRUNCATE ON gsp_record "
    "FOR EACH STATEMENT EXECUTE FUNCTION gsp_record_guard()",
)
_PG_PURGE_GUARDS = (
    _PG_FUNCTION,
    "CREATE OR REPLACE TRIGGER gsp_purge_guard BEFORE UPDATE OR DELETE ON gsp_purge "
    "FOR EACH ROW EXECUTE FUNCTION gsp_record_guard()",
)


def _ddl_obj(statement: str) -> DDL:
    return DDL(statement.replace("%", "%%"))  # type: ignore[no-untyped-call]


for _table, _sqlite, _pg in (
    (GspRecord.__table__, _SQLITE_RECORD_GUARDS, _PG_RECORD_GUARDS),  # type: ignore[attr-defined]
    (GspPurge.__table__, _SQLITE_PURGE_GUARDS, _PG_PURGE_GUARDS),  # type: ignore[attr-defined]
):
    for _ddl in _sqlite:
        event.listen(_table, "after_create", _ddl_obj(_ddl).execute_if(dialect="sqlite"))
    for _ddl in _pg:
        event.listen(_table, "after_create", _ddl_obj(_ddl).execute_if(dialect="postgresql"))


def install_guards(engine: Engine) -> None:
    """(Re)create the append-only triggers; ``create_all`` does it for a new table already."""
    if engine.dialect.name == "postgresql":
        guards = (*_PG_RECORD_GUARDS, *_PG_PURGE_GUARDS[1:])
    else:
        guards = (*_SQLITE_RECORD_GUARDS, *_SQLITE_PURGE_GUARDS)
    with engine.begin() as conn:
        for ddl in guards:
            conn.execute(_ddl_obj(ddl))


# ---------------------------------------------------------------- canonical form and hashing
def as_utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC (we only ever store UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _ts(ts: datetime) -> str:
    return as_utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def canonical(record: GspRecord) -> bytes:
    """The bytes the hash covers: every content field, sorted keys, fixed number and time formats."""
    body: dict[str, Any] = {
        "seq": record.seq,
        "point_id": record.point_id,
        "site_id": record.site_id,
        "recorded_at": _ts(record.recorded_at),
        "temperature": _num(record.temperature),
        "humidity": _num(record.humidity),
        "location": record.location,
        "area": record.area,
        "kind": record.kind,
        "status": str(record.status),
        "profile": record.profile,
        "created_at": _ts(record.created_at),
        "prev_hash": record.prev_hash,
    }
    if record.quality is not None:  # records made before the column existed keep their hash
        body["quality"] = record.quality
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def record_hash(record: GspRecord) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


# ---------------------------------------------------------------- reading source
class ReadingSource(Protocol):
    """What derivation needs from the telemetry store (``TelemetryStore`` satisfies it)."""

    def query_readings(
        self, *, site_id: str, sensor_id: str, start: datetime, end: datetime, limit: int = 10_000
    ) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Limits:
    temp_min: float | None
    temp_max: float | None
    humidity_min: float | None
    humidity_max: float | None
    record_interval_s: float
    excursion_interval_s: float

    def status(self, temperature: float | None, humidity: float | None) -> RecordStatus:
        def outside(v: float | None, lo: float | None, hi: float | None) -> bool:
            return v is not None and ((lo is not None and v < lo) or (hi is not None and v > hi))

        if outside(temperature, self.temp_min, self.temp_max) or outside(
            humidity, self.humidity_min, self.humidity_max
        ):
            return RecordStatus.EXCURSION
        return RecordStatus.NORMAL

    def interval(self, status: RecordStatus) -> float:
        return self.excursion_interval_s if status is RecordStatus.EXCURSION else self.record_interval_s


def limits_for(point: MeasuringPoint, profile: Profile) -> Limits:
    def pick(override: float | None, default: float | None) -> float | None:
        return override if override is not None else default

    return Limits(
        temp_min=pick(point.temp_min, profile.temp_min),
        temp_max=pick(point.temp_max, profile.temp_max),
        humidity_min=pick(point.humidity_min, profile.humidity_min),
        humidity_max=pick(point.humidity_max, profile.humidity_max),
        record_interval_s=float(point.record_interval_s or profile.record_interval_s),
        excursion_interval_s=float(point.excursion_interval_s or profile.excursion_interval_s),
    )


def _good(rows: Sequence[Any]) -> list[tuple[datetime, float, bool]]:
    """(time, value, uncertain) of the usable readings (bad ones are no record)."""
    return [
        (as_utc(r.ts), float(r.value), r.quality == "uncertain")
        for r in rows
        if r.value is not None and r.quality != "bad" and math.isfinite(r.value)
    ]


def _read_all(
    source: ReadingSource, site_id: str, sensor_id: str, start: datetime, end: datetime, page: int = 10_000
) -> Iterator[tuple[datetime, float, bool]]:
    """Readings in ``(start, end]`` oldest first, paged: (time, value, uncertain)."""
    cursor = start
    while True:
        rows = source.query_readings(
            site_id=site_id,
            sensor_id=sensor_id,
            start=cursor + timedelta(microseconds=1),
            end=end + timedelta(microseconds=1),
            limit=page,
        )
        yield from _good(rows)
        if len(rows) < page:
            return
        cursor = as_utc(rows[-1].ts)


# ---------------------------------------------------------------- chain append
def _chain_tail(session: Session) -> tuple[int, str]:
    last = session.exec(select(GspRecord).order_by(col(GspRecord.seq).desc()).limit(1)).first()
    if last is not None:
        return last.seq, last.hash
    purge = session.exec(select(GspPurge).order_by(col(GspPurge.id).desc()).limit(1)).first()
    if purge is not None:
        return purge.through_seq, purge.anchor_hash
    return 0, GENESIS_HASH


def _lock_chain(session: Session) -> None:
    """Serialise appenders: PostgreSQL advisory lock (SQLite writers already hold the write lock)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.exec(select(func.pg_advisory_xact_lock(0x6A5F_0001)))


@dataclass
class DeriveReport:
    points: int = 0
    records: int = 0
    skipped: list[str] | None = None


def derive_point(
    session: Session,
    source: ReadingSource,
    point: MeasuringPoint,
    *,
    now: datetime,
    profiles: ProfileFile | None = None,
) -> int:
    """Append the records due for one point up to ``now - settle``; returns how many were written."""
    pf = profiles or load_file()
    profile = pf.profiles.get(point.profile)
    if profile is None or point.temperature_sensor_id is None or point.id is None:
        return 0
    defaults: Defaults = pf.defaults
    limits = limits_for(point, profile)
    until = as_utc(now) - timedelta(seconds=defaults.settle_s)
    cursor = session.get(GspCursor, point.id)
    start = as_utc(cursor.derived_until) if cursor else until - timedelta(seconds=defaults.initial_backfill_s)
    if start >= until:
        return 0
    temps = list(_read_all(source, point.site_id, point.temperature_sensor_id, start, until))
    if not temps:
        return 0
    hums: list[tuple[datetime, float, bool]] = []
    if point.humidity_sensor_id:
        lookback = timedelta(seconds=defaults.humidity_lookback_s)
        hums = list(_read_all(source, point.site_id, point.humidity_sensor_id, start - lookback, until))
    _lock_chain(session)
    seq, prev_hash = _chain_tail(session)
    last_at = as_utc(cursor.last_record_at) if cursor and cursor.last_record_at else None
    last_status = cursor.last_status if cursor else None
    area = (point.vehicle_type if point.kind == "transport" else point.storage_area) or point.storage_area or ""
    written = 0
    hi = 0
    humidity: float | None = None
    humidity_at: datetime | None = None
    humidity_uncertain = False
    slack = defaults.slack_s
    created = datetime.now(UTC)
    for ts, temperature, uncertain in temps:
        while hi < len(hums) and hums[hi][0] <= ts:
            humidity_at, humidity, humidity_uncertain = hums[hi]
            hi += 1
        hum = humidity if humidity_at and (ts - humidity_at).total_seconds() <= defaults.humidity_lookback_s else None
        uncertain = uncertain or (hum is not None and humidity_uncertain)
        status = limits.status(temperature, hum)
        due = (
            last_at is None
            or status != last_status
            or (ts - last_at).total_seconds() >= limits.interval(status) - slack
        )
        if not due:
            continue
        seq += 1
        record = GspRecord(
            seq=seq,
            point_id=point.id,
            site_id=point.site_id,
            recorded_at=ts,
            temperature=round(temperature, 2),
            humidity=None if hum is None else round(hum, 2),
            location=point.location,
            area=area,
            kind=str(point.kind),
            status=status,
            profile=profile.name,
            quality="uncertain" if uncertain else "good",
            created_at=created,
            prev_hash=prev_hash,
            hash="",
        )
        record.hash = record_hash(record)
        prev_hash = record.hash
        session.add(record)
        last_at, last_status = ts, status
        written += 1
    if cursor is None:
        cursor = GspCursor(point_id=point.id, derived_until=temps[-1][0])
    cursor.derived_until = temps[-1][0]
    cursor.last_record_at, cursor.last_status = last_at, last_status
    session.add(cursor)
    session.flush()
    return written


def derive_all(engine: Engine, source: ReadingSource, *, now: datetime | None = None) -> DeriveReport:
    """Derive records for every active point, one transaction per point (what the lifespan task calls)."""
    from cloud.core.db import session_scope

    now = now or datetime.now(UTC)
    report = DeriveReport(skipped=[])
    with Session(engine) as session:
        points = session.exec(select(MeasuringPoint).where(col(MeasuringPoint.active).is_(True))).all()
    pf = load_file()
    for point in points:
        report.points += 1
        try:
            with session_scope(engine, write=True) as session:
                report.records += derive_point(session, source, point, now=now, profiles=pf)
        except Exception as exc:  # one bad point must not stop the others
            log.exception("GSP derivation failed for point %s", point.id)
            assert report.skipped is not None
            report.skipped.append(f"{point.id}: {exc}")
    return report


async def run_periodically(engine: Engine, source: ReadingSource, *, interval_s: float = 60.0) -> None:
    """Derive records every ``interval_s`` until cancelled (a lifespan task); work runs in a thread."""
    import asyncio

    while True:
        try:
            report = await asyncio.to_thread(derive_all, engine, source)
            if report.records:
                log.info("GSP derivation: %d records for %d points", report.records, report.points)
        except Exception:  # logged; the next round retries
            log.exception("GSP derivation round failed")
        await asyncio.sleep(interval_s)


# ---------------------------------------------------------------- verification
@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None

    def message(self) -> str:
        if self.ok:
            return f"记录链完整：共校验 {self.checked} 条，链尾哈希 {self.head_hash}"
        return f"记录链校验失败：第 {self.first_bad_seq} 条（seq={self.first_bad_seq}）{self.reason}"


def verify_chain(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Recompute every hash and link in ``seq`` order; name the first row that does not verify."""
    purge = session.exec(select(GspPurge).order_by(col(GspPurge.id).desc()).limit(1)).first()
    expected_seq, expected_prev = (purge.through_seq, purge.anchor_hash) if purge else (0, GENESIS_HASH)
    checked = 0
    last_seq = expected_seq
    while True:
        rows = session.exec(
            select(GspRecord).where(col(GspRecord.seq) > last_seq).order_by(col(GspRecord.seq)).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            expected_seq += 1
            if row.seq != expected_seq:
                return VerifyResult(False, checked, row.seq, f"序号不连续：缺少 seq={expected_seq}（记录被删除）")
            if row.prev_hash != expected_prev:
                return VerifyResult(False, checked, row.seq, "与前一条记录的链接哈希不符（前一条或本条被改动）")
            if record_hash(row) != row.hash:
                return VerifyResult(False, checked, row.seq, "内容哈希不符（本条记录被改动）")
            expected_prev = row.hash
            checked += 1
            last_seq = row.seq
        session.expunge_all()
    return VerifyResult(True, checked, head_hash=expected_prev)


# ---------------------------------------------------------------- retention purge
def _years_ago(now: datetime, years: int) -> datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


def purge_expired(session: Session, *, now: datetime, by: str, profiles: ProfileFile | None = None) -> GspPurge | None:
    """Remove the oldest records whose retention has passed, as a prefix of the chain, and record it.

    Only a prefix can go (the chain stays verifiable from the purge's anchor); a record still within its
    retention stops the purge, even if newer records of a shorter-lived profile behind it have expired.
    """
    pf = profiles or load_file()
    now = as_utc(now)
    _lock_chain(session)
    through = 0
    anchor = None
    oldest_cutoff = now
    last_seq = 0
    while True:
        rows = session.exec(
            select(GspRecord).where(col(GspRecord.seq) > last_seq).order_by(col(GspRecord.seq)).limit(1000)
        ).all()
        if not rows:
            break
        stop = False
        for row in rows:
            profile = pf.profiles.get(row.profile)
            years = profile.retention_years if profile else max(p.retention_years for p in pf.profiles.values())
            cutoff = _years_ago(now, years)
            if as_utc(row.recorded_at) >= cutoff:
                stop = True
                break
            through, anchor, oldest_cutoff = row.seq, row.hash, min(oldest_cutoff, cutoff)
        if stop:
            break
        last_seq = rows[-1].seq
    if anchor is None:
        return None
    first = session.exec(select(func.min(GspRecord.seq))).one()
    purge = GspPurge(
        through_seq=through,
        anchor_hash=anchor,
        count=through - int(first) + 1,
        oldest_kept_before=oldest_cutoff,
        purged_at=now,
        purged_by=by,
    )
    session.add(purge)
    session.flush()  # the trigger allows the DELETE only once this row exists
    session.execute(
        GspRecord.__table__.delete().where(GspRecord.__table__.c.seq <= through)  # type: ignore[attr-defined]
    )
    session.flush()
    log.warning("GSP retention purge by %s: %d records through seq %d", by, purge.count, through)
    return purge


# ---------------------------------------------------------------- queries
def list_records(
    session: Session,
    *,
    site_id: str | None = None,
    point_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    site_ids: Collection[str] | None = None,
    offset: int = 0,
    limit: int | None = 1000,
) -> Sequence[GspRecord]:
    """Records by point and time; ``site_ids`` limits them to those sites (jurisdiction; None = all)."""
    stmt = select(GspRecord)
    if site_ids is not None:
        stmt = stmt.where(col(GspRecord.site_id).in_(sorted(site_ids)))
    if site_id:
        stmt = stmt.where(GspRecord.site_id == site_id)
    if point_id is not None:
        stmt = stmt.where(GspRecord.point_id == point_id)
    if start is not None:
        stmt = stmt.where(col(GspRecord.recorded_at) >= as_utc(start))
    if end is not None:
        stmt = stmt.where(col(GspRecord.recorded_at) < as_utc(end))
    stmt = stmt.order_by(col(GspRecord.point_id), col(GspRecord.recorded_at), col(GspRecord.seq)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.exec(stmt).all()
