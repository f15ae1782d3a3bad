"""Acknowledgement is personal (#13 item 3): a link posted to a WeCom group is one person's, and only that person's
own proof (login password, or the personal ack code of someone without a login) acknowledges through it.

Real parts: the app on uvicorn, the notification service, a loopback HTTP receiver answering like a WeCom robot.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cloud import journal
from cloud.core.config import Settings
from cloud.core.db import writer
from cloud.notify.models import AckLink, Contact, Incident, IncidentStatus, Rank, SiteContact, WebhookFormat
from tests.cloud.conftest import ADMIN_PASSWORD, wait_until
from tests.cloud.notify.conftest import Receivers, add_contacts, seed_department, set_channels
from tests.cloud.notify.test_api import PASSWORD, login, make_inspector, served
from tests.cloud.notify.test_delivery import raise_alert

LINK = re.compile(r"\[确认收到（仅限 (\S+?) 本人，需输入本人密码或个人确认码）\]\((http://\S+?)\)")


def group_links(webhooks: Receivers, incident_id: int) -> dict[str, str]:
    """Person's name -> their link, from the group's messages about ``incident_id``."""
    out: dict[str, str] = {}
    for message in webhooks.received.get("group", []):
        content = str(message["markdown"]["content"])
        if f"通知编号：{incident_id}" in content:
            for name, url in LINK.findall(content):
                out[name] = url
    return out


def incident_state(engine: Engine, incident_id: int) -> Incident:
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident


def events(engine: Engine, action: str) -> list[journal.JournalEvent]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(journal.JournalEvent)
                .where(journal.JournalEvent.action == action)
                .order_by(col(journal.JournalEvent.id))
            )
        )


def second_pharmacy(engine: Engine) -> None:
    from cloud.registry.models import Department, Site

    with Session(writer(engine)) as session:
        dept = session.exec(select(Department)).one()
        session.add(Site(site_id="pharm-02", name="城东二药房", category="drug", department_id=dept.id))
        for key in ("ext:qa", "ext:keeper", "ext:owner"):
            session.add(SiteContact(site_id="pharm-02", contact_key=key, designation="gsp_designated"))
        session.commit()


async def post_ack(client: httpx.AsyncClient, url: str, **form: Any) -> httpx.Response:
    token = url.split("token=", 1)[1]
    return await client.post("/api/v1/notifications/ack", data={"token": token, **form})


async def test_a_group_link_acknowledges_only_with_its_recipients_own_proof(
    cloud_settings: Settings, webhooks: Receivers
) -> None:
    async with served(cloud_settings, None) as (base, engine, _service):
        seed_department(engine)
        group = {"webhook_url": webhooks.url("group"), "webhook_format": WebhookFormat.WECOM, "mqtt": False}
        add_contacts(
            engine,
            [
                Contact(key="ext:qa", full_name="质量负责人", rank=Rank.EXTERNAL, **group),
                Contact(key="ext:keeper", full_name="保管员", rank=Rank.EXTERNAL, **group),
                Contact(key="ext:owner", full_name="企业负责人", rank=Rank.EXTERNAL, email="o@pharm.example"),
            ],
            site_designation="gsp_designated",
        )
        set_channels(engine, "insp-a", **group)  # the on-duty inspector reads the same group
        make_inspector(engine)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            admin = await login(client, "admin", ADMIN_PASSWORD)
            issued = await client.post(
                "/api/v1/notifications/contacts/ext:qa/ack-code", headers={"Authorization": f"Bearer {admin}"}
            )
            assert issued.status_code == 201, issued.text
            qa_code = issued.json()["code"]
            with Session(engine) as session:  # only the hash is kept
                qa = session.exec(select(Contact).where(Contact.key == "ext:qa")).one()
                assert qa.ack_code_hash and qa_code not in qa.ack_code_hash

            # one alarm: the group receives one message per person, each naming whose link it carries
            raise_alert(engine)
            await wait_until(lambda: len(webhooks.received.get("group", [])) == 3, 15, "three group messages")
            first = incident_state(engine, 1)
            links = group_links(webhooks, first.id or 0)
            assert set(links) == {"质量负责人", "保管员", "张检查"}
            qa_link, keeper_link, insp_link = links["质量负责人"], links["保管员"], links["张检查"]

            page = await client.get(qa_link)  # opening the link (or a scanner prefetching it) asks for the proof
            assert page.status_code == 200 and "质量负责人" in page.text and "type='password'" in page.text
            bare = await post_ack(client, qa_link)  # the link alone acknowledges nothing
            assert bare.status_code == 403 and "本人" in bare.text
            # the inspector in the group uses the quality manager's link, with the inspector's own valid login
            other = await post_ack(client, qa_link, username="insp-a", secret=PASSWORD)
            assert other.status_code == 403 and "不能用它代为确认" in other.text
            wrong = await post_ack(client, qa_link, secret="00000000")
            assert wrong.status_code == 403 and "个人确认码错误" in wrong.text
            # somebody's code does not open another recipient's link
            assert (await post_ack(client, insp_link, secret=qa_code)).status_code == 403
            # a recipient with neither a login nor a code cannot be impersonated by anybody
            assert (await post_ack(client, keeper_link, secret=qa_code)).status_code == 403
            assert incident_state(engine, first.id or 0).status == IncidentStatus.OPEN

            ok = await post_ack(client, qa_link, secret=qa_code)
            assert ok.status_code == 200 and "确认人：质量负责人" in ok.text
            done = incident_state(engine, first.id or 0)
            assert done.status == IncidentStatus.ACKED and done.acked_by == "ext:qa" and done.acked_via == "link"
            acked = events(engine, "notification.acked")
            assert [(e.actor, e.payload["proof"], e.payload["link_channel"]) for e in acked] == [
                ("ext:qa", "personal_code", "webhook")
            ]
            refused = events(engine, "notification.ack_refused")
            assert [(e.payload["recipient"], e.payload["reason"]) for e in refused] == [
                ("ext:qa", "not_the_recipient"),
                ("ext:qa", "bad_code"),
                ("insp-a", "login_bad_credentials"),
                ("ext:keeper", "no_proof_available"),
            ]
            assert refused[0].actor == "insp-a" and refused[0].outcome == "denied"

            # an alarm at a second pharmacy: the inspector acknowledges with their own link and own password
            second_pharmacy(engine)
            raise_alert(engine, site="pharm-02")
            await wait_until(lambda: len(webhooks.received.get("group", [])) == 6, 15, "three more group messages")
            second = incident_state(engine, 2)
            links = group_links(webhooks, second.id or 0)
            ok = await post_ack(client, links["张检查"], username="insp-a", secret=PASSWORD)
            assert ok.status_code == 200 and "确认人：张检查" in ok.text
            assert events(engine, "notification.acked")[-1].payload["proof"] == "password"
            assert incident_state(engine, second.id or 0).acked_by == "insp-a"

            # guessing burns the link: after five wrong proofs it is spent
            keeper2 = links["保管员"]
            for _ in range(5):
                assert (await post_ack(client, keeper2, secret="12345678")).status_code == 403
            spent = await post_ack(client, keeper2, secret="12345678")
            assert spent.status_code == 400 and "已使用" in spent.text
            with Session(engine) as session:
                used = session.exec(select(AckLink).where(AckLink.recipient == "ext:keeper")).all()
            assert sorted(link.failed_proofs or 0 for link in used) == [1, 5]
