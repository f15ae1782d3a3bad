"""Automatic supervision: an overdue task gives a warning, then a supervision clue; both reach the assignee.
Spot checks, attendance and the continuous-improvement report over seeded journal events."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud import journal
from cloud.assessment.attendance import attendance
from cloud.assessment.config import load_supervision_rules
from cloud.assessment.improvement import report
from cloud.assessment.models import SupervisionClock
from cloud.assessment.monitor import SupervisionMonitor
from cloud.assessment.spot_checks import draw, review
from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.core.users import Role, UserCreate, create_user
from cloud.notify.config import NotifySettings
from cloud.notify.models import DutyShift, Incident, Notification
from cloud.notify.service import NotifyService
from cloud.workflow.clues import Clue

TZ = ZoneInfo("Asia/Shanghai")


def add_event(engine: Engine, actor: str, name: str, target: tuple[str, str], ts: dt.datetime, **p: Any) -> None:
    with Session(writer(engine)) as session:
        journal.append(session, actor=actor, action=name, target_type=target[0], target_id=target[1], payload=p, ts=ts)
        session.commit()


def make_user(engine: Engine, name: str) -> int:
    with Session(writer(engine)) as session:
        user = create_user(
            session, user_create=UserCreate(username=name, password="Passw0rd-xyz!", role=Role.INSPECTOR)
        )
        session.commit()
        return user.id or 0


def test_overdue_task_gives_a_warning_then_a_supervision_clue_and_both_are_notified(
    cloud_settings: Settings, cloud_engine: Engine
) -> None:
    uid = make_user(cloud_engine, "insp-a")
    created = utcnow()
    due_day = (created.astimezone(TZ) + dt.timedelta(days=3)).date()
    # the workflow journals a new task like this (cloud/workflow/inspection.py): assignees as user ids
    add_event(
        cloud_engine, "disp", "task.created", ("task", "7"), created,
        clue_id=None, due_date=due_day.isoformat(), assignees=[uid], department_id=None,
    )  # fmt: skip
    add_event(  # a second task submitted in time never warns
        cloud_engine, "disp", "task.created", ("task", "8"), created, due_date=due_day.isoformat(), assignees=[uid]
    )
    add_event(cloud_engine, "insp-a", "task.transition", ("task", "8"), created, action="submit", to="submitted")
    monitor = SupervisionMonitor(cloud_engine)
    notify = NotifyService(cloud_settings, cloud_engine, nsettings=NotifySettings(mqtt_enabled=False))
    assert monitor.process_batch() == 3
    due = dt.datetime.combine(due_day, dt.time(23, 59, 59), tzinfo=TZ)

    assert monitor.tick(due - dt.timedelta(hours=48)) == {"warnings": 0, "clues": 0}  # not yet
    assert monitor.tick(due - dt.timedelta(hours=10)) == {"warnings": 1, "clues": 0}  # 24 h warning window
    assert monitor.tick(due - dt.timedelta(hours=9)) == {"warnings": 0, "clues": 0}  # warned once
    notify.process_batch()
    assert monitor.tick(due + dt.timedelta(seconds=1)) == {"warnings": 0, "clues": 1}
    assert monitor.tick(due + dt.timedelta(hours=5)) == {"warnings": 0, "clues": 0}  # one clue per breach
    while notify.process_batch()[0]:
        pass

    with Session(cloud_engine) as session:
        clocks = {c.target_id: c for c in session.exec(select(SupervisionClock)).all()}
        assert clocks["8"].stopped_at is not None and clocks["8"].warned_at is None
        overdue = clocks["7"]
        assert overdue.people == ["insp-a"] and overdue.warned_at and overdue.breached_at
        clue = session.get(Clue, overdue.supervision_clue_id)
        assert clue is not None and clue.channel == "assessment" and "督办" in clue.title
        events = [
            e.action
            for e in journal.read_since(session, 0, actions=["supervision.warning", "supervision.clue_created"])
        ]
        assert events == ["supervision.warning", "supervision.clue_created"]
        titles = session.exec(select(Incident.title).join(Notification).where(Notification.recipient == "insp-a")).all()
    assert any("期限预警" in t for t in titles) and any("督办" in t and "超期" in t for t in titles)


def test_spot_check_draw_is_reproducible_and_a_problem_becomes_a_supervision_clue(cloud_engine: Engine) -> None:
    start = utcnow() - dt.timedelta(days=7)
    for i in range(1, 41):
        add_event(
            cloud_engine, "insp-a", "task.transition", ("task", str(i)), start + dt.timedelta(hours=i), to="submitted"
        )
        add_event(cloud_engine, "head", "task.transition", ("task", str(i)), start + dt.timedelta(hours=i), to="closed")
    spec = load_supervision_rules().spot_check
    with Session(writer(cloud_engine)) as session:
        first = [(c.target_type, c.target_id) for c in draw(session, spec, start, utcnow(), seed="abc")]
        second = [(c.target_type, c.target_id) for c in draw(session, spec, start, utcnow(), seed="abc")]
        session.commit()
    assert first == second and len(first) == 3  # max(3, 5 % of 40)
    with Session(writer(cloud_engine)) as session:
        from cloud.assessment.models import SpotCheck

        check = session.exec(select(SpotCheck)).first()
        assert check is not None and check.responsible == ["insp-a"]
        review(session, check.id or 0, verdict="problem", note="现场笔录缺少当事人签名", by="sup")
        session.commit()
        reviewed = journal.read_since(session, 0, actions=["supervision.spot_check_reviewed"])
        assert reviewed[0].payload["responsible"] == ["insp-a"]
        clue = session.get(Clue, reviewed[0].payload["supervision_clue_id"])
        assert clue is not None and "抽查发现问题" in clue.title


def test_attendance_from_check_ins_against_the_roster(cloud_engine: Engine) -> None:
    day = dt.datetime(2026, 11, 2, 8, 30, tzinfo=TZ)
    with Session(writer(cloud_engine)) as session:
        for person in ["a", "b", "c"]:
            session.add(
                DutyShift(department="SC01", contact_key=person, starts_at=day, ends_at=day + dt.timedelta(hours=9))
            )
        session.commit()
    add_event(cloud_engine, "a", "attendance.check_in", ("user", "a"), day - dt.timedelta(minutes=10))  # on time
    add_event(cloud_engine, "b", "task.transition", ("task", "1"), day + dt.timedelta(hours=2), action="check_in")
    with Session(cloud_engine) as session:
        rows = {
            r.person: r
            for r in attendance(
                session, load_supervision_rules().attendance, day - dt.timedelta(hours=9), day + dt.timedelta(days=1)
            )
        }
    assert (rows["a"].on_time, rows["b"].late, rows["c"].absent) == (1, 1, 1)


def test_improvement_report_flags_poor_confirmation_and_thresholds_firing_too_often(cloud_engine: Engine) -> None:
    start = utcnow() - dt.timedelta(days=30)
    t = start + dt.timedelta(days=1)
    for clue in range(1, 7):  # rule A05 produced 6 clues, one confirmed by a task conclusion
        add_event(cloud_engine, "system", "clue.analysed", ("clue", str(clue)), t, rule_id="A05", disposal="inspect")
    for clue in range(7, 9):  # rule A03: 2 clues, both confirmed (one by a case)
        add_event(cloud_engine, "system", "clue.analysed", ("clue", str(clue)), t, rule_id="A03", disposal="inspect")
    add_event(cloud_engine, "u1", "task.transition", ("task", "1"), t, to="submitted", conclusion="rectify", clue_id=1)
    add_event(
        cloud_engine, "u1", "task.transition", ("task", "2"), t, to="submitted", conclusion="compliant", clue_id=2
    )
    add_event(cloud_engine, "u1", "task.transition", ("task", "3"), t, to="submitted", conclusion="case", clue_id=7)
    add_event(cloud_engine, "u1", "case.registered", ("case", "1"), t, clue_id=8)
    for i in range(5):  # the edge rule temp_high fires 5 times at one site on one day
        add_event(cloud_engine, "agent:x", "alert.raised", ("alert", str(i)), t + dt.timedelta(minutes=i),
                  rule_id="temp_high", site_id="s1", clue_id=1)  # fmt: skip
    with Session(cloud_engine) as session:
        rows = {(r.kind, r.rule_id): r for r in report(session, start, utcnow())}
    a05 = rows[("analysis", "A05")]
    assert (a05.clues, a05.confirmed, a05.confirmation_rate) == (6, 1, round(1 / 6, 4))
    assert a05.disposals == {"inspect": 6} and any("确认率偏低" in f for f in a05.flags)
    a03 = rows[("analysis", "A03")]
    assert (a03.confirmed, a03.flags) == (2, [])
    edge = rows[("edge", "temp_high")]
    assert edge.alerts == 5 and edge.max_alerts_per_site_day == 5 and any("过于频繁" in f for f in edge.flags)
