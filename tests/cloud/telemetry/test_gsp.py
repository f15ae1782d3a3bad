"""GSP records: interval derivation (fridge excursion), hash chain verification, tamper detection, guards."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy.exc
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cloud.core.config import Settings
from cloud.telemetry import gsp
from cloud.telemetry.gsp import GspRecord, RecordStatus
from cloud.telemetry.gsp_profiles import load_profiles
from tests.utils.registry_factories import make_site_with_point, readings, store_for

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
EXCURSION = range(200, 230)  # minutes 200..229 the fridge door is open: 9.5-12 °C


def fridge(i: int) -> float:
    return 9.5 + (i - 200) * 0.1 if i in EXCURSION else 4.0 + (i % 7) * 0.1


def _derive(engine: Engine, now: datetime) -> int:
    store = store_for(engine)
    with Session(engine) as session:
        point = session.exec(select(gsp.MeasuringPoint)).one()
    with Session(engine) as session:
        n = gsp.derive_point(session, store, point, now=now)
        session.commit()
    return n


def _records(engine: Engine) -> list[GspRecord]:
    with Session(engine) as session:
        return list(session.exec(select(GspRecord).order_by(col(GspRecord.seq))).all())


def test_fridge_excursion_records_every_2_min_else_every_30(business_db: tuple[Settings, Engine]) -> None:
    _, engine = business_db
    make_site_with_point(engine)
    store = store_for(engine)
    store.write_readings(list(readings("pharmacy-1", "t1", T0, 360, fridge)))
    store.write_readings(list(readings("pharmacy-1", "h1", T0, 360, lambda i: 55.0, unit="%RH")))
    # derive incrementally in two runs (the periodic task) — the split must not change the outcome
    first = _derive(engine, T0 + timedelta(minutes=215))
    second = _derive(engine, T0 + timedelta(hours=7))
    assert first > 0 and second > 0
    records = _records(engine)
    profile = load_profiles()["drug_refrigerated"]
    gaps = [
        ((b.recorded_at - a.recorded_at).total_seconds(), a.status, b.status) for a, b in itertools.pairwise(records)
    ]
    inside = [g for g, sa, sb in gaps if sa is RecordStatus.EXCURSION and sb is RecordStatus.EXCURSION]
    outside = [g for g, sa, sb in gaps if sa is RecordStatus.NORMAL and sb is RecordStatus.NORMAL]
    assert inside and set(inside) == {float(profile.excursion_interval_s)}
    assert outside and set(outside) == {float(profile.record_interval_s)}
    excursion = [r for r in records if r.status is RecordStatus.EXCURSION]
    assert excursion[0].recorded_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=EXCURSION.start)
    assert len(excursion) == len(EXCURSION) // 2
    # record content GSP names
    r = records[0]
    assert (r.location, r.area, r.kind, r.humidity) == ("冷藏柜 1 号 上层", "冷藏区", "storage", 55.0)
    assert gsp.verify_chain(Session(engine)).ok


def test_tampering_with_one_row_is_detected_and_named(business_db: tuple[Settings, Engine]) -> None:
    _, engine = business_db
    make_site_with_point(engine)
    store = store_for(engine)
    store.write_readings(list(readings("pharmacy-1", "t1", T0, 600, fridge)))
    _derive(engine, T0 + timedelta(hours=11))
    records = _records(engine)
    assert len(records) > 10
    with Session(engine) as session:
        result = gsp.verify_chain(session)
    assert result.ok and result.checked == len(records)
    victim = records[7].seq
    # the guard refuses an ordinary UPDATE …
    with engine.begin() as conn, pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        conn.exec_driver_sql(f"UPDATE gsp_record SET temperature = 5.0 WHERE seq = {victim}")
    # … so the attacker (a DBA) drops it first
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE gsp_record SET temperature = temperature - 3 WHERE seq = {victim}")
    with Session(engine) as session:
        result = gsp.verify_chain(session)
    assert not result.ok and result.first_bad_seq == victim and "改动" in (result.reason or "")
    assert str(victim) in result.message()


def test_deleting_a_row_is_detected(business_db: tuple[Settings, Engine]) -> None:
    _, engine = business_db
    make_site_with_point(engine)
    store_for(engine).write_readings(list(readings("pharmacy-1", "t1", T0, 300, fridge)))
    _derive(engine, T0 + timedelta(hours=6))
    with engine.begin() as conn, pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        conn.exec_driver_sql("DELETE FROM gsp_record WHERE seq = 3")
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM gsp_record WHERE seq = 3")
    result = gsp.verify_chain(Session(engine))
    assert not result.ok and result.first_bad_seq == 4


def test_retention_purge_removes_only_expired_prefix_and_chain_still_verifies(
    business_db: tuple[Settings, Engine],
) -> None:
    _, engine = business_db
    make_site_with_point(engine)
    store_for(engine).write_readings(list(readings("pharmacy-1", "t1", T0, 600, fridge)))
    _derive(engine, T0 + timedelta(hours=11))
    total = len(_records(engine))
    years = load_profiles()["drug_refrigerated"].retention_years
    assert years >= 5
    with Session(engine) as session:  # just inside retention: nothing goes
        assert gsp.purge_expired(session, now=T0.replace(year=T0.year + years), by="admin") is None
    cut = T0.replace(year=T0.year + years) + timedelta(hours=5)
    with Session(engine, expire_on_commit=False) as session:
        purge = gsp.purge_expired(session, now=cut, by="admin")
        session.commit()
    assert purge is not None and 0 < purge.count < total
    remaining = _records(engine)
    assert len(remaining) == total - purge.count
    assert all(r.recorded_at.replace(tzinfo=UTC) >= T0 + timedelta(hours=5) for r in remaining)
    result = gsp.verify_chain(Session(engine))
    assert result.ok and result.checked == len(remaining)
    # new records keep chaining after a purge
    store_for(engine).write_readings(list(readings("pharmacy-1", "t1", T0 + timedelta(hours=10), 120, fridge)))
    assert _derive(engine, T0 + timedelta(hours=13)) > 0
    assert gsp.verify_chain(Session(engine)).ok


def test_no_records_before_readings_settle_and_late_replay_is_derived(
    business_db: tuple[Settings, Engine],
) -> None:
    _, engine = business_db
    make_site_with_point(engine)
    store = store_for(engine)
    store.write_readings(list(readings("pharmacy-1", "t1", T0, 60, fridge)))
    _derive(engine, T0 + timedelta(hours=5))  # edge offline after the first hour
    before = len(_records(engine))
    # the edge comes back and replays hours 1-3 from its outbox
    store.write_readings(list(readings("pharmacy-1", "t1", T0 + timedelta(hours=1), 120, fridge)))
    _derive(engine, T0 + timedelta(hours=5))
    after = _records(engine)
    assert len(after) == before + 4
    assert after[-1].recorded_at.replace(tzinfo=UTC) == T0 + timedelta(hours=2, minutes=30)


def _drop_guards(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER gsp_record_guard ON gsp_record")
        else:
            conn.exec_driver_sql("DROP TRIGGER gsp_record_no_update")
            conn.exec_driver_sql("DROP TRIGGER gsp_record_no_delete")


def test_records_carry_the_reading_quality_into_the_hash_and_the_export(business_db: tuple[Settings, Engine]) -> None:
    """Readings stored ``uncertain`` (their agent's clock was off, issue 15) make records of quality uncertain,
    shown as 存疑（时钟偏差） in the export; the quality is covered by the hash; a record without it (made before the
    column existed) keeps its old hash."""
    from cloud.telemetry.gsp_export import HEADER, to_csv

    _, engine = business_db
    make_site_with_point(engine)
    store = store_for(engine)
    skewed = range(60, 120)  # the second hour: the agent's clock was off
    temps = [
        r._replace(quality="uncertain") if i in skewed else r
        for i, r in enumerate(readings("pharmacy-1", "t1", T0, 180, fridge))
    ]
    store.write_readings(temps)
    _derive(engine, T0 + timedelta(hours=4))
    records = _records(engine)
    by_quality = {
        r.quality
        for r in records
        if T0 + timedelta(minutes=60) <= r.recorded_at.replace(tzinfo=UTC) < T0 + timedelta(minutes=120)
    }
    assert by_quality == {"uncertain"}
    assert {r.quality for r in records if r.recorded_at.replace(tzinfo=UTC) < T0 + timedelta(minutes=60)} == {"good"}
    rows = to_csv(records).decode("utf-8-sig").splitlines()
    column = HEADER.index("读数质量")
    cells = [line.split(",")[column] for line in rows[1:]]
    assert "存疑（时钟偏差）" in cells and "正常" in cells
    record = records[0]
    assert gsp.record_hash(record) == record.hash
    assert gsp.record_hash(record.model_copy(update={"quality": "uncertain"})) != record.hash
    legacy = record.model_copy(update={"quality": None})
    assert b"quality" not in gsp.canonical(legacy)
    assert gsp.verify_chain(Session(engine)).ok
