"""Elevator trapped passenger (困人): the maintenance unit / 96333 rescue must be on site within 30 minutes in a
city and within 1 hour elsewhere (regulations.md §3 [r]). Expected times are written here from that rule:

* both alarms start at T0 (the alert's own start, 70 minutes before "now");
* city site: due T0 + 30 min. An inspector's check-in and the alarm clearing do NOT meet it; the maintenance unit
  arriving at T0 + 29 min (reported afterwards) does, on time.
* site classed "elsewhere": due T0 + 60 min; nobody arrives; at T0 + 60 min the clock still runs, one second
  later it is breached: the department head is notified and a supervision clue (督办线索) is raised. The rescuers
  arriving at T0 + 61 min are recorded as late.
* the trapped-passenger clue is handled directly (analysis rule A03t), not sent out as an inspection task.

Real app (TestClient) and real notification service over SQLite, processing its journal batch by batch; the tick
is given explicit times (time cannot be run forward here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud import journal
from cloud.alerts import AlertPhase, AlertSignal, apply_signal
from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.core.users import Role, UserCreate, create_user
from cloud.notify.config import AreaRules, NotifySettings, load_rules
from cloud.notify.models import Contact, Incident, Notification, Rank, SiteContact
from cloud.notify.service import NotifyService
from cloud.workflow.clues import Clue, ClueSource
from tests.cloud.notify.conftest import DEPT, SITE, seed_department

RURAL = "lift-rural-1"
PASSWORD = "Rescue-Passw0rd!"
MINUTE = dt.timedelta(minutes=1)


class Rig:
    def __init__(self, client: TestClient, engine: Engine, service: NotifyService, t0: dt.datetime) -> None:
        self.client, self.engine, self.service, self.t0 = client, engine, service, t0
        self.token = ""

    def incident(self, site: str) -> Incident:
        with Session(self.engine) as session:
            return session.exec(select(Incident).where(Incident.site_id == site)).one()

    def arrive(self, site: str, at: dt.datetime, status: int = 201, **extra: Any) -> dict[str, Any]:
        body = {"unit": "苏州某电梯维保有限公司", "rescuer": "维保员 周某", "arrived_at": at.isoformat(), **extra}
        r = self.client.post(
            f"/api/v1/notifications/incidents/{self.incident(site).id}/arrival",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert r.status_code == status, r.text
        self.service.process_batch()
        return r.json()  # type: ignore[no-any-return]


def _trapped(engine: Engine, site: str, device: str, started: dt.datetime, phase: AlertPhase) -> None:
    with Session(writer(engine)) as session:
        apply_signal(
            session,
            AlertSignal(
                site_id=site,
                device_id=device,
                rule_id="elevator.trapped",
                phase=phase,
                severity="critical",
                category="elevator",
                message="1 号电梯疑似困人：轿厢停在平层区外且轿内有人已超过 30 秒",
                ts=started if phase == AlertPhase.RAISE else utcnow(),
                started_at=started,
            ),
        )
        session.commit()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    from tests.cloud.conftest import ADMIN_PASSWORD

    tmp = tmp_path_factory.mktemp("rescue")
    settings = Settings(
        data_dir=tmp / "data",
        jwt_secret="test-secret-" + "x" * 32,
        admin_password=ADMIN_PASSWORD,
        ingest_enabled=False,
        presence_enabled=False,
        mqtt_client_id="test-rescue-1",
    )
    app = create_app(settings, run_background=False)
    with TestClient(app) as client:
        engine: Engine = app.state.engine
        seed_department(engine, site_category="special_equipment")
        from cloud.registry.models import Department, Site

        with Session(writer(engine)) as session:
            dept = session.exec(select(Department).where(Department.code == DEPT)).one()
            session.add(Site(site_id=RURAL, name="某镇卫生院电梯", category="special_equipment", department_id=dept.id))
            session.add(Contact(key="wb-1", full_name="维保值班", rank=Rank.EXTERNAL))
            session.add(Contact(key="r96333", full_name="96333 救援平台", rank=Rank.EXTERNAL))
            for site in (SITE, RURAL):
                session.add(SiteContact(site_id=site, contact_key="wb-1", designation="maintenance_unit"))
            session.add(SiteContact(site_id=SITE, contact_key="r96333", designation="maintenance_unit"))
            create_user(
                session,
                user_create=UserCreate(username="wb-user", password=PASSWORD, role=Role.INSPECTOR, department=DEPT),
            )
            session.commit()
        # the packaged limits (escalation.toml); only the test site's area class is given here
        rules = load_rules().model_copy(
            update={"areas": AreaRules.model_validate({"assign": [{"class": "elsewhere", "sites": [RURAL]}]})}
        )
        service = NotifyService(
            settings, engine, nsettings=NotifySettings(mqtt_enabled=False), rules=rules, channels=[]
        )
        t0 = (utcnow() - 70 * MINUTE).replace(microsecond=0)
        _trapped(engine, SITE, "lift-1", t0, AlertPhase.RAISE)
        _trapped(engine, RURAL, "lift-2", t0, AlertPhase.RAISE)
        service.process_batch()
        r = client.post("/api/v1/auth/token", data={"username": "wb-user", "password": PASSWORD})
        rig = Rig(client, engine, service, t0)
        rig.token = r.json()["access_token"]
        yield rig


def test_maintenance_unit_and_96333_are_notified_with_the_limit_of_the_area(rig: Rig) -> None:
    city, rural = rig.incident(SITE), rig.incident(RURAL)
    assert city.route_id == "elevator_trapped" and not city.understaffed
    assert city.sla_due_at == rig.t0 + 30 * MINUTE and "城区 30 分钟" in (city.sla_name or "")
    assert rural.sla_due_at == rig.t0 + 60 * MINUTE and "其他地区 1 小时" in (rural.sla_name or "")
    with Session(rig.engine) as session:
        to = set(session.exec(select(Notification.recipient).where(Notification.incident_id == city.id)).all())
    assert {"wb-1", "r96333", "insp-a"} <= to


def test_the_clue_is_not_an_inspection_task(rig: Rig) -> None:
    from cloud.workflow.analysis import Disposal, decide
    from cloud.workflow.decisions import clue_facts

    with Session(rig.engine) as session:
        clue = session.get(Clue, rig.incident(SITE).clue_id)
        assert clue is not None
        decision = decide(clue_facts(session, clue))
    assert decision.rule_id == "A03t" and decision.disposal == Disposal.HANDLE_DIRECTLY


def test_only_staff_with_a_business_duty_record_the_arrival(rig: Rig) -> None:
    """Recording the arrival meets the statutory clock: the auditor (read-only) and the system administrator (三员,
    no business duty) are refused naming the rule; nothing is recorded (the stranger walk found both allowed)."""
    from tests.cloud.conftest import ADMIN_PASSWORD

    with Session(writer(rig.engine)) as session:
        create_user(session, user_create=UserCreate(username="audit-1", password=PASSWORD, role=Role.AUDITOR))
        session.commit()
    staff_token = rig.token
    try:
        for name, password in (("audit-1", PASSWORD), ("admin", ADMIN_PASSWORD)):
            r = rig.client.post("/api/v1/auth/token", data={"username": name, "password": password})
            rig.token = r.json()["access_token"]
            refused = rig.arrive(SITE, rig.t0 + 20 * MINUTE, status=403)
            assert "rescue_arrival_recorder" in refused["detail"] and "救援到场" in refused["detail"], refused
    finally:
        rig.token = staff_token
    assert rig.incident(SITE).sla_met_at is None


def test_check_in_or_clearing_is_not_the_rescue_arriving_but_the_maintenance_unit_is(rig: Rig) -> None:
    city = rig.incident(SITE)
    with Session(writer(rig.engine)) as session:  # what inspection.py journals when an inspector checks in
        journal.append(
            session,
            actor="insp-a",
            action="task.transition",
            target_type="task",
            target_id=1,
            payload={"from": "accepted", "to": "checked_in", "action": "check_in", "clue_id": city.clue_id},
        )
        session.commit()
    _trapped(rig.engine, SITE, "lift-1", rig.t0, AlertPhase.CLEAR)
    rig.service.process_batch()
    assert rig.incident(SITE).sla_met_at is None
    rig.arrive(SITE, rig.t0 + 90 * MINUTE, status=422)  # in the future
    got = rig.arrive(SITE, rig.t0 + 29 * MINUTE, via="rescue_96333")
    assert got["on_time"] is True and got["unit"] == "苏州某电梯维保有限公司"
    met = rig.incident(SITE)
    assert met.sla_met_at == rig.t0 + 29 * MINUTE and not met.sla_breached
    rig.arrive(SITE, rig.t0 + 29 * MINUTE, status=409)  # recorded once


def test_late_arrival_escalates_and_raises_a_supervision_clue(rig: Rig) -> None:
    rig.service.tick(rig.t0 + 60 * MINUTE)
    assert not rig.incident(RURAL).sla_breached
    rig.service.tick(rig.t0 + 60 * MINUTE + dt.timedelta(seconds=1))
    late = rig.incident(RURAL)
    assert late.sla_breached
    with Session(rig.engine) as session:
        breach = [e for e in journal.read_since(session, 0, limit=5000) if e.action == "sla.breached"]
        assert len(breach) == 1 and breach[0].payload["recipients"] == ["head-a"]
        source = session.exec(select(ClueSource).where(ClueSource.ref == f"sla:{late.id}")).one()
        assert source.clue_id == breach[0].payload["supervision_clue_id"]
        heads = session.exec(select(Notification).where(Notification.recipient == "head-a")).all()
        assert any(n.incident_id == late.id for n in heads)
    got = rig.arrive(RURAL, rig.t0 + 61 * MINUTE, via="maintenance_unit")
    assert got["on_time"] is False
    assert rig.incident(RURAL).sla_met_at == rig.t0 + 61 * MINUTE
