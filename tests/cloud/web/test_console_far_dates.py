"""#13: a due date the calendar cannot walk (the fuzzer's 1970-01-01) is refused at the API, and a row that has one
anyway (older data, a direct import) no longer takes /console/overview and /console/deadlines down."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from cloud.workflow.models import InspectionTask
from tests.utils.workflow_factories import World

API = "/api/v1"


def test_due_dates_outside_the_window_are_refused(world: World) -> None:
    c = world.client
    clue_id = world.alert()
    for due in ("1970-01-01", "9999-12-31", (dt.date.today() - dt.timedelta(days=2)).isoformat()):
        resp = c.post(f"{API}/clues/{clue_id}/dispatch", json={"due_date": due}, headers=world.h("clerk"))
        assert resp.status_code == 422, (due, resp.text)
    plan = {"name": "抽查计划", "due_date": "1970-01-01"}
    assert c.post(f"{API}/random-plans", json=plan, headers=world.h("head")).status_code == 422


def test_readers_survive_a_stored_far_date(world: World) -> None:
    c = world.client
    clue_id = world.alert()
    assert c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk")).status_code == 200
    with Session(world.engine) as session:
        task = session.exec(select(InspectionTask)).one()
        task.due_date = dt.date(1970, 1, 1)
        session.add(task)
        session.commit()
    rows = c.get(f"{API}/console/deadlines", headers=world.h("head"))
    assert rows.status_code == 200, rows.text
    row = rows.json()[0]
    assert row["due"] == "1970-01-01" and row["status"] == "overdue" and row["remaining_working_days"] is None
    assert c.get(f"{API}/console/overview", headers=world.h("head")).status_code == 200
