"""A data dir from before money became integer fen (float yuan columns) is upgraded in place when opened.

The old layout is made here by turning the current fen columns back into FLOAT yuan columns on a real SQLite
database (the same thing an earlier version created); opening it again (``init_db``) must read 123.45 yuan back
as ``Decimal("123.45")`` — not 1.23 — and a second opening changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Float, inspect, text
from sqlmodel import Session, select

from cloud.core.db import init_db, make_engine
from cloud.workflow.models import FLOAT_YUAN_COLUMNS, CasePayment, EnforcementCase
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
    r = world.client.post(
        f"{API}/cases/on-the-spot",
        json={
            "subject_id": world.subject_id,
            "party_type": "organisation",
            "facts": "未按规定公示药品价格",
            "legal_basis": ["《价格违法行为行政处罚规定》[r]"],
            "decision": "罚款 123.45 元",
            "amount": "123.45",
            "officers": [world.user_ids["insp2"]],
        },
        headers=world.h("insp1"),
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    paid = world.client.post(
        f"{API}/cases/{case_id}/payments",
        json={"amount": "123.45", "paid_on": r.json()["served_on"], "receipt_no": "FS-1"},
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
