"""The elevator trapped-passenger SLA: a response on site within the configured time, or a recorded breach."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud import journal
from cloud.core.config import Settings
from cloud.core.db import writer
from cloud.notify.config import load_rules
from cloud.notify.incidents import sla_trigger_matches
from cloud.notify.models import Incident
from tests.cloud.conftest import wait_until
from tests.cloud.notify.conftest import SmtpServer, notify_settings, running_notify, seed_department, with_policy
from tests.cloud.notify.test_delivery import raise_alert


def _incident(engine: Engine) -> Incident | None:
    with Session(engine) as session:
        return session.exec(select(Incident)).first()


def _trapped(engine: Engine) -> None:
    raise_alert(engine, device="lift-1", rule="elevator.trapped_passenger", category="elevator", severity="critical")


def _sla_policy(within_s: float) -> dict[str, object]:
    return {
        "levels": [],
        "sla": {
            "name": "电梯困人救援到场",
            "within_s": within_s,
            "met_by": ["sla.on_site", "task.transition:check_in"],
            "breach_to": "head",
        },
    }


def test_trigger_spec_matches_action_and_optional_sub_action() -> None:
    event = journal.JournalEvent(
        actor="u",
        action="task.transition",
        target_type="task",
        target_id="1",
        payload={"action": "check_in"},
        prev_hash="",
        hash="",
    )
    assert sla_trigger_matches(event, "task.transition:check_in")
    assert sla_trigger_matches(event, "task.transition")
    assert not sla_trigger_matches(event, "task.transition:submit")
    assert not sla_trigger_matches(event, "sla.on_site")


async def test_inspector_check_in_meets_the_trapped_passenger_sla(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_department(cloud_engine, site_category="special_equipment")
    rules = with_policy(load_rules(), "elevator_trapped", _sla_policy(1800))
    async with running_notify(cloud_settings, cloud_engine, notify_settings(smtp_server), rules):
        _trapped(cloud_engine)
        await wait_until(lambda: _incident(cloud_engine) is not None, 10, "incident for the trapped passenger")
        incident = _incident(cloud_engine)
        assert incident is not None and incident.sla_due_at is not None and incident.clue_id is not None
        with Session(writer(cloud_engine)) as session:  # what inspection.py journals when an inspector checks in
            journal.append(
                session,
                actor="insp-a",
                action="task.transition",
                target_type="task",
                target_id=1,
                payload={"from": "accepted", "to": "checked_in", "action": "check_in", "clue_id": incident.clue_id},
            )
            session.commit()
        await wait_until(lambda: (_incident(cloud_engine) or incident).sla_met_at is not None, 10, "SLA met")
    final = _incident(cloud_engine)
    assert final is not None and not final.sla_breached


async def test_nobody_on_site_in_time_is_a_recorded_breach(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_department(cloud_engine, site_category="special_equipment")
    rules = with_policy(load_rules(), "elevator_trapped", _sla_policy(1))
    async with running_notify(cloud_settings, cloud_engine, notify_settings(smtp_server), rules):
        _trapped(cloud_engine)
        await wait_until(lambda: bool((_incident(cloud_engine) or Incident()).sla_breached), 15, "SLA breach")
    with Session(cloud_engine) as session:
        breaches = [e for e in journal.read_since(session, 0, limit=1000) if e.action == "sla.breached"]
    assert len(breaches) == 1 and breaches[0].payload["sla"] == "电梯困人救援到场"
    assert (_incident(cloud_engine) or Incident()).sla_met_at is None
