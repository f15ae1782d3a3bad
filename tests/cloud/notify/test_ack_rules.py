"""A logged-in acknowledgement is personal too (#13): only a recipient of the incident's notifications, or the
department head ``routing.toml`` ``[ack]`` names, stops an escalation; anyone else in the jurisdiction -- an
inspector of the same department who was not notified, the county-wide admin -- is refused 403 with the rule's
Chinese and English text and journaled ``notification.ack_refused``.

Real parts: the app on uvicorn, the notification service following the journal, real SQLite.
"""

from __future__ import annotations

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.core.config import Settings
from cloud.core.db import writer
from cloud.core.users import Role, UserCreate, create_user
from cloud.notify.models import Contact, Incident, IncidentStatus, Notification, Rank
from tests.cloud.conftest import ADMIN_PASSWORD, wait_until
from tests.cloud.notify.conftest import add_contacts, seed_department
from tests.cloud.notify.test_api import PASSWORD, login, served
from tests.cloud.notify.test_delivery import raise_alert
from tests.cloud.notify.test_personal_ack import events, second_pharmacy


def _users(engine: Engine) -> None:
    with Session(writer(engine)) as session:
        for name, role in (("insp-a", Role.INSPECTOR), ("insp-off", Role.INSPECTOR), ("head-a", Role.SUPERVISOR)):
            create_user(session, user_create=UserCreate(username=name, password=PASSWORD, role=role, department="SC01"))
        session.commit()


def _incidents(engine: Engine) -> list[Incident]:
    with Session(engine) as session:
        return list(session.exec(select(Incident).order_by(Incident.id)))  # type: ignore[arg-type]


def _recipients(engine: Engine, incident_id: int) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(Notification.recipient).where(Notification.incident_id == incident_id)))


async def test_only_a_recipient_or_the_department_head_acknowledges(cloud_settings: Settings) -> None:
    async with served(cloud_settings, None) as (base, engine, _service):
        seed_department(engine)  # insp-a on duty; insp-off off duty; head-a rank head of SC01
        add_contacts(
            engine, [Contact(key=f"ext:{n}", rank=Rank.EXTERNAL) for n in "abc"], site_designation="gsp_designated"
        )
        _users(engine)
        second_pharmacy(engine)
        raise_alert(engine)
        raise_alert(engine, site="pharm-02")
        await wait_until(lambda: len(_incidents(engine)) == 2, 15, "two incidents")
        first, second = (i.id or 0 for i in _incidents(engine))
        recipients = _recipients(engine, first)
        assert "insp-a" in recipients and not {"insp-off", "head-a", "admin"} & recipients
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            tokens = {name: await login(client, name, PASSWORD) for name in ("insp-a", "insp-off", "head-a")}
            tokens["admin"] = await login(client, "admin", ADMIN_PASSWORD)

            async def ack(who: str, incident_id: int) -> httpx.Response:
                return await client.post(
                    f"/api/v1/notifications/incidents/{incident_id}/ack",
                    headers={"Authorization": f"Bearer {tokens[who]}"},
                )

            for outsider in ("insp-off", "admin"):  # same department / county-wide, but never notified
                refused = await ack(outsider, first)
                assert refused.status_code == 403, refused.text
                detail = refused.json()["detail"]
                assert "只有该通知的接收人" in detail and "ack_personal" in detail and "recipient" in detail
                # an arrival report is recorded, but it does not acknowledge for a non-recipient
                on_site = await client.post(
                    f"/api/v1/notifications/incidents/{first}/on-site",
                    headers={"Authorization": f"Bearer {tokens[outsider]}"},
                )
                assert on_site.status_code == 200 and on_site.json()["status"] == "open"
            assert all(i.status == IncidentStatus.OPEN for i in _incidents(engine))
            refusals = events(engine, "notification.ack_refused")
            assert [(e.actor, e.payload["reason"], e.payload["rule"]) for e in refusals] == [
                ("insp-off", "not_a_recipient", "ack_personal"),
                ("admin", "not_a_recipient", "ack_personal"),
            ]
            assert all(e.outcome == "denied" and e.target_id == str(first) for e in refusals)

            mine = await ack("insp-a", first)  # the recipient
            assert mine.status_code == 200 and mine.json()["acked_by"] == "insp-a", mine.text
            head = await ack("head-a", second)  # not notified, but the head of the incident's department
            assert head.status_code == 200 and head.json()["acked_by"] == "head-a", head.text
        acked = [e for e in events(engine, "notification.acked")]
        assert [(e.actor, e.payload["proof"]) for e in acked] == [("insp-a", "login"), ("head-a", "login")]
