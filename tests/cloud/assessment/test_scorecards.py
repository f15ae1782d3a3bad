"""Scorecards for a seeded month match hand-computed values; CSV export; indicators are data."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from cloud import journal
from cloud.assessment.indicators import evaluate
from cloud.core.config import Settings
from cloud.core.db import writer
from cloud.core.users import Role, UserCreate, create_user

TZ = ZoneInfo("Asia/Shanghai")
NOV = (dt.datetime(2026, 11, 1, tzinfo=TZ), dt.datetime(2026, 12, 1, tzinfo=TZ))


def at(day: int, hour: int = 10, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=TZ)


def seed_month(engine: Engine) -> dict[str, int]:
    ids: dict[str, int] = {}
    with Session(writer(engine)) as session:
        for name, dept in (("u1", "SC01"), ("u2", "SC01"), ("u3", "SC02")):
            user = create_user(
                session,
                user_create=UserCreate(username=name, password="Passw0rd-xyz!", role=Role.INSPECTOR, department=dept),
            )
            ids[name] = user.id or 0

        def ev(actor: str, name: str, ts: dt.datetime, target: str = "clue", **payload: Any) -> None:
            journal.append(session, actor=actor, action=name, target_type=target, target_id="1", payload=payload, ts=ts)

        # clue collection: u1 5 in November (one just after midnight Beijing time), 2 outside; u2 12; system 3
        ev("u1", "clue.created", at(1, 0).replace(minute=5), channel="hotline_12345")
        for d in range(2, 6):
            ev("u1", "clue.created", at(d), channel="walk_in")
        ev("u1", "clue.created", dt.datetime(2026, 10, 31, 23, 30, tzinfo=TZ))
        ev("u1", "clue.created", dt.datetime(2026, 12, 1, 0, 10, tzinfo=TZ))
        for d in range(1, 13):
            ev("u2", "clue.created", at(d), channel="hotline_12315")
        for d in range(1, 4):
            ev("system", "clue.created", at(d), channel="sensor")
        # analysis: u2 4
        for d in range(1, 5):
            ev("u2", "clue.analysed", at(d), rule_id="A05", disposal="inspect")
        # dispatch: u1 10
        for d in range(1, 11):
            ev("u1", "clue.transition", at(d), action="dispatch", to="dispatched")
        # execution: submits u1 4, u3 8
        for d in range(1, 5):
            ev("u1", "task.transition", at(d), target="task", action="submit", to="submitted")
        for d in range(1, 9):
            ev("u3", "task.transition", at(d), target="task", action="submit", to="submitted")
        # supervision: u1 one overdue task (assignees as user ids, as the workflow writes them), u3 one case
        ev("system:supervision", "supervision.clue_created", at(20), target="task", clock_id="task_due",
           assignees=[ids["u1"]])  # fmt: skip
        ev("system:supervision", "supervision.clue_created", at(21), target="case", clock_id="case_decision",
           assignees=["u3"])  # fmt: skip
        # acknowledgements: u1 100 s and 500 s (mean 300), a summary ack not counted; u3 1950 s
        ev("u1", "notification.acked", at(3), target="incident", response_s=100, via_summary=False)
        ev("u1", "notification.acked", at(4), target="incident", response_s=500, via_summary=False)
        ev("u1", "notification.acked", at(4), target="incident", response_s=3000, via_summary=True)
        ev("u3", "notification.acked", at(5), target="incident", response_s=1950, via_summary=False)
        # spot check found a problem in u2's work
        ev("sup", "supervision.spot_check_reviewed", at(25), target="task", verdict="problem", responsible=["u2"])
        ev("sup", "supervision.spot_check_reviewed", at(25), target="task", verdict="ok", responsible=["u1"])
        # distinctive work: u3 personally 6, department SC01 8
        ev("sup", "assessment.manual_score", at(28), target="user", user="u3", points=6, reason="食品快检")
        ev("sup", "assessment.manual_score", at(28), target="department", department="SC01", points=8, reason="示范")
        session.commit()
    return ids


EXPECTED_PERSONS = {
    #     clue  analysis dispatch execution supervision compliance distinctive  total
    "u1": (5.0, 0.0, 10.0, 15.0, 18.0, 15.0, 0.0, 63.0),
    "u2": (10.0, 4.0, 0.0, 0.0, 10.0, 13.33, 0.0, 37.33),
    "u3": (0.0, 0.0, 0.0, 25.0, 13.0, 10.0, 6.0, 54.0),
}
EXPECTED_DEPTS = {
    "SC01": (8.5, 2.0, 5.0, 11.25, 18.0, 13.33, 8.0, 66.08),
    "SC02": (0.0, 0.0, 0.0, 25.0, 13.0, 10.0, 0.0, 48.0),
}
DIMS = ("clue_collection", "analysis", "dispatch", "execution", "supervision", "compliance", "distinctive")


def _row(card: Any) -> tuple[float, ...]:
    return (*(card.dimensions[d] for d in DIMS), card.total)


def test_scorecards_for_a_seeded_month_match_hand_computed_values(cloud_engine: Engine) -> None:
    seed_month(cloud_engine)
    with Session(cloud_engine) as session:
        persons, depts = evaluate(session, *NOV)
    assert {c.key: _row(c) for c in persons} == EXPECTED_PERSONS
    assert {c.key: _row(c) for c in depts} == EXPECTED_DEPTS
    u1 = next(c for c in persons if c.key == "u1")
    values = {r.id: r.value for r in u1.indicators}
    assert values["clues_registered"] == 5 and values["tasks_on_time"] == pytest.approx(0.75)
    assert values["ack_response_s"] == pytest.approx(300)


def test_a_task_submitted_by_one_officer_counts_for_both(cloud_engine: Engine) -> None:
    """Two officers inspect together and one presses 提交: ``actor+payload.assignees`` credits each once; a submit
    journaled before events carried the assignees still counts for its actor."""
    with Session(writer(cloud_engine)) as session:
        ids = {}
        for name in ("lead", "second", "old"):
            user = create_user(
                session,
                user_create=UserCreate(username=name, password="Passw0rd-xyz!", role=Role.INSPECTOR, department="SC01"),
            )
            ids[name] = user.id or 0
        journal.append(session, actor="lead", action="task.transition", target_type="task", target_id="1",
                       payload={"action": "submit", "assignees": [ids["lead"], ids["second"]]}, ts=at(3))  # fmt: skip
        journal.append(session, actor="old", action="task.transition", target_type="task", target_id="2",
                       payload={"action": "submit"}, ts=at(4))  # fmt: skip
        session.commit()
    with Session(cloud_engine) as session:
        persons, _ = evaluate(session, *NOV)
    done = {c.key: next(r.value for r in c.indicators if r.id == "tasks_completed") for c in persons}
    assert done == {"lead": 1, "second": 1, "old": 1}


def test_a_different_period_gives_different_scores(cloud_engine: Engine) -> None:
    seed_month(cloud_engine)
    with Session(cloud_engine) as session:
        persons, _ = evaluate(session, dt.datetime(2026, 10, 1, tzinfo=TZ), dt.datetime(2026, 11, 1, tzinfo=TZ))
    u1 = next(c for c in persons if c.key == "u1")
    assert {r.id: r.value for r in u1.indicators}["clues_registered"] == 1  # the one on 31 October


async def test_scorecard_api_json_and_csv_export(cloud_settings: Settings) -> None:
    from cloud.app import create_app
    from tests.cloud.conftest import ADMIN_PASSWORD

    app = create_app(cloud_settings, run_background=False)
    seed_month(app.state.engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await client.get("/api/v1/assessment/scorecards?month=2026-11&scope=department", headers=auth)
        assert r.status_code == 200, r.text
        cards = r.json()
        assert {c["key"]: c["total"] for c in cards} == {"SC01": 66.08, "SC02": 48.0}
        csv_r = await client.get("/api/v1/assessment/scorecards?month=2026-11&format=csv", headers=auth)
        assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
        lines = csv_r.text.lstrip("\ufeff").splitlines()
        assert lines[0].startswith("范围,对象,部门") and lines[0].endswith("总分")
        assert any(line.startswith("个人,u1,SC01") and line.endswith(",63.0") for line in lines)
        r = await client.post(
            "/api/v1/assessment/manual-scores", headers=auth, json={"user": "u2", "points": 3, "reason": "宣传"}
        )
        assert r.status_code == 201
        cards = (await client.get("/api/v1/assessment/scorecards?month=2026-12", headers=auth)).json()
        # the manual score is journalled now (December 2026 per the test machine's date or later) or not at all
        assert isinstance(cards, list)
    app.state.engine.dispose()
