"""A data dir from before money became integer fen (float yuan columns) is upgraded in place when opened.

The old layout is made here by turning the current fen columns back into FLOAT yuan columns on a real SQLite
database (the same thing an earlier version created); opening it again (``init_db``) must read 123.45 yuan back
as ``Decimal("123.45")`` — not 1.23 — and a second opening changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Float, inspect, text
from sqlmodel import Session, select

from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine
from cloud.workflow.models import FLOAT_YUAN_COLUMNS, CasePayment, EnforcementCase
from sentinel_cli.servers import Server
from tests.cloud.conftest import ADMIN_PASSWORD
from tests.utils.registry_db import fresh_postgres, let_postgres_user_in
from tests.utils.workflow_factories import World

API = "/api/v1"


def _to_old_float_yuan(world: World) -> None:
    with world.engine.begin() as conn:
        for table, column in FLOAT_YUAN_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {column} TO fen_now")
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} FLOAT")
            conn.exec_driver_sql(f"UPDATE {table} SET {column} = fen_now / 100.0")
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN fen_now")


def test_float_yuan_columns_become_fen_when_the_data_dir_is_opened(world: World) -> None:
    case = world.on_the_spot_case("123.45")
    case_id = case["id"]
    paid = world.client.post(
        f"{API}/cases/{case_id}/payments",
        json={"amount": "123.45", "paid_on": case["served_on"], "receipt_no": "FS-1"},
        headers=world.h("insp1"),
    )
    assert paid.status_code == 201, paid.text
    world.engine.dispose()
    _to_old_float_yuan(world)
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT penalty_amount FROM enforcement_case")).scalar_one() == 123.45

    for _ in range(2):  # the upgrade, then an opening that finds nothing to do (each a new process's engine)
        engine = make_engine(world.settings)
        init_db(engine)
        engine.dispose()
        columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("enforcement_case")}
        assert not isinstance(columns["penalty_amount"], Float)
        with Session(engine) as session:
            case = session.get(EnforcementCase, case_id)
            assert case is not None and case.penalty_amount == Decimal("123.45")
            payment = session.exec(select(CasePayment).where(CasePayment.case_id == case_id)).one()
            assert payment.amount == Decimal("123.45")
            raw = session.execute(text("SELECT penalty_amount FROM enforcement_case")).scalar_one()
            assert raw == 12345


@pytest.fixture
def pg_settings(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, postgres_server: Server
) -> Iterator[Settings]:
    let_postgres_user_in(tmp_path_factory.getbasetemp())
    with fresh_postgres(postgres_server.extra["dsn"]) as url:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=url,
            jwt_secret="test-secret-" + "x" * 32,
            admin_password=ADMIN_PASSWORD,
            ingest_enabled=False,
            presence_enabled=False,
        )
        yield settings


@pytest.mark.postgres
def test_float_yuan_columns_become_fen_on_postgresql(pg_settings: Settings) -> None:
    pg_engine = make_engine(pg_settings)
    init_db(pg_engine)
    with Session(pg_engine) as session:
        case = EnforcementCase(
            case_no="旧-001",
            source="manual",
            received_at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC),
            verify_due=dt.date(2026, 9, 22),
            created_by="head",
            penalty_amount=Decimal("12345.67"),
        )
        session.add(case)
        session.flush()
        session.add(
            CasePayment(
                case_id=case.id or 0,
                amount=Decimal("0.05"),
                paid_on=dt.date(2026, 9, 2),
                receipt_no="1",
                recorded_by="x",
            )
        )
        session.commit()
        case_id = case.id
    with pg_engine.begin() as conn:  # the layout of before: double precision yuan
        for table, column in FLOAT_YUAN_COLUMNS:
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE double precision USING {column} / 100.0"
            )
    pg_engine.dispose()
    pg_engine = make_engine(pg_settings)  # opened again, as by the next start
    init_db(pg_engine)
    assert not isinstance(
        {c["name"]: c["type"] for c in inspect(pg_engine).get_columns("case_payment")}["amount"], Float
    )
    with Session(pg_engine) as session:
        stored = session.get(EnforcementCase, case_id)
        assert stored is not None and stored.penalty_amount == Decimal("12345.67")
        assert session.exec(select(CasePayment)).one().amount == Decimal("0.05")
    pg_engine.dispose()
