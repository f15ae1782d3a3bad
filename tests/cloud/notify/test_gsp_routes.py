"""GSP: every alarm of a drug-storage site — temperature, humidity, power failure, device/agent offline, stale
data — reaches at least three of the enterprise's designated people; on-duty bureau inspectors are notified
too but do not count toward the three (GSP 2016 appendix: alarm "to at least 3 designated people")."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud import journal
from cloud.core.config import Settings
from cloud.notify.models import Contact, Incident, Notification, Rank
from tests.cloud.conftest import wait_until
from tests.cloud.notify.conftest import add_contacts, notify_settings, running_notify, seed_department
from tests.cloud.notify.test_delivery import raise_alert

NAMES = {"ext:qa": "质量负责人", "ext:keeper": "保管员", "ext:owner": "企业负责人"}


def designated(n: int = 3) -> list[Contact]:
    return [Contact(key=k, full_name=v, rank=Rank.EXTERNAL) for k, v in list(NAMES.items())[:n]]


def _incident(engine: Engine) -> tuple[Incident, set[str]]:
    with Session(engine) as session:
        incident = session.exec(select(Incident)).one()
        people = {n.recipient for n in session.exec(select(Notification))}
        return incident, people


@pytest.mark.parametrize(
    ("rule", "category", "route"),
    [
        ("temp_high", "drug_storage", "drug_temperature"),
        ("humidity_high", "drug_storage", "drug_temperature"),
        ("temp_stale", "drug_storage", "drug_temperature"),
        ("mains_lost", "power", "drug_site"),  # mains_power pack
        ("agent_offline", "presence", "drug_site"),  # cloud presence check: edge box silent
        ("device_offline", "presence", "drug_site"),
    ],
)
async def test_every_drug_site_alarm_reaches_three_designated(
    cloud_settings: Settings, cloud_engine: Engine, rule: str, category: str, route: str
) -> None:
    seed_department(cloud_engine)
    add_contacts(cloud_engine, designated(), site_designation="gsp_designated")
    async with running_notify(cloud_settings, cloud_engine, notify_settings(None)) as service:
        raise_alert(cloud_engine, rule=rule, category=category, severity="critical")
        await wait_until(lambda: service.process_batch()[0] == 0 and _count(cloud_engine) == 1, 10)
    incident, people = _incident(cloud_engine)
    assert incident.route_id == route and not incident.understaffed
    assert set(NAMES) <= people and "insp-a" in people


async def test_on_duty_inspector_does_not_count_toward_the_three(
    cloud_settings: Settings, cloud_engine: Engine
) -> None:
    seed_department(cloud_engine)
    add_contacts(cloud_engine, designated(2), site_designation="gsp_designated")
    async with running_notify(cloud_settings, cloud_engine, notify_settings(None)) as service:
        raise_alert(cloud_engine, rule="mains_lost", category="power", severity="critical")
        await wait_until(lambda: service.process_batch()[0] == 0 and _count(cloud_engine) == 1, 10)
    incident, people = _incident(cloud_engine)
    assert len(people) == 3 and incident.understaffed  # 2 designated + 1 inspector is not enough
    with Session(cloud_engine) as session:
        flagged = journal.read_since(session, 0, actions=["notification.understaffed"])
    assert flagged[0].payload["designated"] == 2 and flagged[0].payload["required_designated"] == 3


def _count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(Incident)).all())
