"""The all-or-nothing import engine on SQLite and on a real PostgreSQL: one savepoint per file and one per row, so a
refused row leaves nothing behind (not even the good rows before it), a dry run writes nothing, and re-importing the
same file changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.registry.models import Department, Device, MarketSubject, MeasuringPoint, Sensor, Site
from cloud.registry.site_import import import_sites

SAMPLES = Path(__file__).parents[3] / "firmware-config" / "samples"


def _count(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {m.__name__: len(session.exec(select(m)).all()) for m in (Site, Device, Sensor, MeasuringPoint)}


def test_a_refused_row_rolls_back_the_whole_file_and_a_reimport_changes_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Department(code="gusu-pingjiang", name="平江市场监督管理所"))
        session.add(Department(code="gusu-canglang", name="沧浪市场监督管理所"))
        session.add(MarketSubject(name="苏州仁和大药房有限公司", uscc="91320508MA1XR6H1P7"))
        session.commit()
    good = (SAMPLES / "sites_devices.csv").read_text(encoding="utf-8")
    bad = good + "late-1,坏的一行,,化工,,,,,,,,,,,,,,,,\n"
    with Session(engine) as session:
        outcome = import_sites(session, bad, dry_run=False)
        session.commit()
    assert not outcome.imported and [(e.line, e.column) for e in outcome.errors] == [(6, "监管领域")]
    assert _count(engine) == {"Site": 0, "Device": 0, "Sensor": 0, "MeasuringPoint": 0}
    with Session(engine) as session:
        outcome = import_sites(session, good, dry_run=True)
        session.commit()
    assert outcome.counts["sensor"]["created"] == 4 and not outcome.imported
    assert _count(engine)["Site"] == 0
    with Session(engine) as session:
        assert import_sites(session, good, dry_run=False).imported
        session.commit()
    written = _count(engine)
    assert written == {"Site": 2, "Device": 3, "Sensor": 4, "MeasuringPoint": 2}
    with Session(engine) as session:
        again = import_sites(session, good, dry_run=False)
        session.commit()
    assert all(per["created"] == per["updated"] == 0 for per in again.counts.values()), again.counts
    assert _count(engine) == written
