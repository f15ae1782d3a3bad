"""Routing and delivery over real SMTP, real HTTP webhooks and a real MQTT broker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.alerts import AlertSignal, apply_signal
from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.notify.config import load_rules
from cloud.notify.models import Contact, Delivery, DeliveryStatus, Incident, Notification, Rank, WebhookFormat
from protocols import AlertPhase
from tests.cloud.conftest import wait_until
from tests.cloud.notify.conftest import (
    SITE,
    Receivers,
    SmtpServer,
    add_contacts,
    notify_settings,
    running_notify,
    seed_department,
    with_delivery,
    with_policy,
)


def raise_alert(
    engine: Engine,
    *,
    site: str = SITE,
    device: str = "fridge-1",
    rule: str = "temp_high",
    category: str = "drug_storage",
    severity: str = "major",
    phase: AlertPhase = AlertPhase.RAISE,
) -> None:
    now = utcnow()
    with Session(writer(engine)) as session:
        apply_signal(
            session,
            AlertSignal(
                site_id=site,
                device_id=device,
                rule_id=rule,
                phase=phase,
                severity=severity,
                category=category,
                message="冷藏柜温度 9.6 °C 超出 2–8 °C",
                ts=now,
                started_at=now,
                sensor_id="t1",
                value=9.6,
                limit=8.0,
                unit="°C",
            ),
        )
        session.commit()


def designated(receivers: Receivers) -> list[Contact]:
    return [
        Contact(key="ext:qa", full_name="质量负责人", rank=Rank.EXTERNAL, email="qa@pharm.example", mqtt=False),
        Contact(
            key="ext:keeper",
            full_name="保管员",
            rank=Rank.EXTERNAL,
            webhook_url=receivers.url("keeper"),
            mqtt=False,
        ),
        Contact(
            key="ext:owner",
            full_name="企业负责人",
            rank=Rank.EXTERNAL,
            webhook_url=receivers.url("owner-wecom"),
            webhook_format=WebhookFormat.WECOM,
            email="owner@pharm.example",
            mqtt=False,
        ),
    ]


def deliveries(engine: Engine) -> list[tuple[str, str, Delivery]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Notification.recipient, Delivery.channel, Delivery).join(
                Notification, Notification.id == Delivery.notification_id
            )
        ).all()
        return [(r, c, d) for r, c, d in rows]


@pytest.mark.broker
async def test_drug_fridge_alarm_reaches_three_designated_people_on_their_channels(
    cloud_settings: Settings,
    cloud_engine: Engine,
    smtp_server: SmtpServer,
    webhooks: Receivers,
    mosquitto: Any,
) -> None:
    seed_department(cloud_engine)
    add_contacts(cloud_engine, designated(webhooks), site_designation="gsp_designated")
    settings = cloud_settings.model_copy(update={"mqtt_port": mosquitto.port})
    received: list[dict[str, Any]] = []

    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="inspector-app") as app:
        await app.subscribe("ms/v1/notify/#", qos=1)

        async def listen() -> None:
            async for message in app.messages:
                received.append({"topic": str(message.topic), **json.loads(bytes(message.payload))})  # type: ignore[arg-type]

        listener = asyncio.create_task(listen())
        try:
            async with running_notify(settings, cloud_engine, notify_settings(smtp_server, mqtt=True)):
                raise_alert(cloud_engine)
                await wait_until(lambda: len(smtp_server.handler.messages) >= 2, 15, "two e-mails")
                await wait_until(lambda: {"keeper", "owner-wecom"} <= set(webhooks.received), 15, "two webhooks")
                await wait_until(lambda: any(r["topic"] == "ms/v1/notify/insp-a" for r in received), 15, "mqtt")
                await wait_until(
                    lambda: all(d.status == DeliveryStatus.SENT for _, _, d in deliveries(cloud_engine)),
                    15,
                    "every delivery recorded as sent",
                )
        finally:
            listener.cancel()

    # the three designated people, each on every channel configured for them
    qa_mail = smtp_server.to("qa@pharm.example")
    assert len(qa_mail) == 1 and "药品储存" in str(qa_mail[0]["Subject"])
    body = qa_mail[0].get_content()  # type: ignore[attr-defined]
    assert "/api/v1/notifications/ack?token=" in body
    assert len(smtp_server.to("owner@pharm.example")) == 1
    generic = webhooks.received["keeper"][0]
    assert generic["type"] == "notification" and generic["site_id"] == SITE and generic["ack_url"]
    wecom = webhooks.received["owner-wecom"][0]
    assert wecom["msgtype"] == "markdown" and "确认收到" in wecom["markdown"]["content"]
    # one idempotency key per delivery (kept on retries and by a new lease holder): a receiver can drop a repeat
    keys = [h["Idempotency-Key"] for name in ("keeper", "owner-wecom") for h in webhooks.headers[name]]
    assert all(k.startswith("sentinel-delivery-") for k in keys) and len(set(keys)) == len(keys)
    # the on-duty inspector (not the one off duty) on MQTT; nobody else on the per-person topics
    assert {r["topic"] for r in received} == {"ms/v1/notify/insp-a"}
    with Session(cloud_engine) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.route_id == "drug_temperature" and not incident.understaffed
        people = set(session.exec(select(Notification.recipient)).all())
    assert people == {"ext:qa", "ext:keeper", "ext:owner", "insp-a"}
    sent = [(r, c) for r, c, d in deliveries(cloud_engine) if d.status == DeliveryStatus.SENT]
    assert ("ext:qa", "email") in sent and ("ext:owner", "webhook") in sent and ("insp-a", "inapp") in sent
    assert all(d.receipt for _, _, d in deliveries(cloud_engine) if d.status == DeliveryStatus.SENT)


async def test_drug_alarm_with_fewer_than_three_designated_is_flagged(
    cloud_settings: Settings, cloud_engine: Engine
) -> None:
    from cloud import journal

    seed_department(cloud_engine)
    add_contacts(cloud_engine, [Contact(key="ext:solo", rank=Rank.EXTERNAL)], site_designation="gsp_designated")
    async with running_notify(cloud_settings, cloud_engine, notify_settings(None)) as service:
        raise_alert(cloud_engine)
        await wait_until(lambda: service.process_batch()[0] == 0 and _count(cloud_engine, Incident) == 1, 10)
    with Session(cloud_engine) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.understaffed
        flagged = journal.read_since(session, 0, actions=["notification.understaffed"])
    assert len(flagged) == 1 and flagged[0].payload["required"] == 3 and flagged[0].payload["resolved"] == 2


def _count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return len(session.exec(select(model)).all())


async def test_unacknowledged_alarm_escalates_to_supervisor_then_head(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer, webhooks: Receivers
) -> None:
    seed_department(cloud_engine)
    add_contacts(cloud_engine, designated(webhooks), site_designation="gsp_designated")
    from tests.cloud.notify.conftest import set_channels

    set_channels(cloud_engine, "sup-a", email="sup@amr.example")
    set_channels(cloud_engine, "head-a", email="head@amr.example")
    rules = with_policy(
        load_rules(), "gsp_alarm", {"levels": [{"after_s": 1, "to": "supervisor"}, {"after_s": 2, "to": "head"}]}
    )
    async with running_notify(cloud_settings, cloud_engine, notify_settings(smtp_server), rules):
        raise_alert(cloud_engine)
        await wait_until(lambda: len(smtp_server.to("sup@amr.example")) == 1, 15, "supervisor e-mail")
        await wait_until(lambda: len(smtp_server.to("head@amr.example")) == 1, 15, "head e-mail")
    assert "升级·分管负责人" in str(smtp_server.to("sup@amr.example")[0]["Subject"])
    assert "升级·部门负责人" in str(smtp_server.to("head@amr.example")[0]["Subject"])
    with Session(cloud_engine) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.level == 2 and incident.escalate_at is None and incident.acked_at is None
        levels = sorted(session.exec(select(Notification.level).where(Notification.recipient != "x")).all())
    assert levels.count(1) == 1 and levels.count(2) == 1


async def test_acknowledged_alarm_does_not_escalate(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer, webhooks: Receivers
) -> None:
    from cloud.notify.incidents import acknowledge

    seed_department(cloud_engine)
    add_contacts(cloud_engine, designated(webhooks), site_designation="gsp_designated")
    rules = with_policy(load_rules(), "gsp_alarm", {"levels": [{"after_s": 1, "to": "supervisor"}]})
    async with running_notify(cloud_settings, cloud_engine, notify_settings(smtp_server), rules) as service:
        raise_alert(cloud_engine)
        await wait_until(lambda: _count(cloud_engine, Incident) == 1, 10, "incident")
        with Session(writer(cloud_engine)) as session:
            incident = session.exec(select(Incident)).one()
            acknowledge(session, incident.id or 0, by="insp-a", via="api", now=utcnow(), rule=rules.routing.ack)
            session.commit()
        # the escalation time passes: one more tick after it must not escalate
        await asyncio.sleep(0)  # let the loop run
        later = utcnow().replace(microsecond=0)
        import datetime as dt

        service.tick(later + dt.timedelta(seconds=5))
    with Session(cloud_engine) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.acked_by == "insp-a" and incident.level == 0
        assert not session.exec(select(Notification).where(Notification.level > 0)).all()


async def test_dead_webhook_does_not_delay_email(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer, hanging_url: str
) -> None:
    seed_department(cloud_engine)
    people = [
        Contact(key=f"ext:{n}", rank=Rank.EXTERNAL, webhook_url=hanging_url, email=f"{n}@pharm.example", mqtt=False)
        for n in ("a", "b", "c")
    ]
    add_contacts(cloud_engine, people, site_designation="gsp_designated")
    rules = with_delivery(load_rules(), timeout_s=3.0, retry_base_s=0.2)
    async with running_notify(cloud_settings, cloud_engine, notify_settings(smtp_server), rules):
        raise_alert(cloud_engine)
        await wait_until(lambda: len(smtp_server.handler.messages) == 3, 15, "three e-mails")
        hooks = [d for _, c, d in deliveries(cloud_engine) if c == "webhook"]
        # every e-mail is out while every webhook attempt is still hanging on the dead receiver (claimed: sending)
        assert len(hooks) == 3 and all(d.attempts == 0 and d.status == DeliveryStatus.SENDING for d in hooks)
        await wait_until(
            lambda: all(d.status == DeliveryStatus.FAILED for _, c, d in deliveries(cloud_engine) if c == "webhook"),
            20,
            "webhook attempts recorded as failed",
        )
    hooks = [d for _, c, d in deliveries(cloud_engine) if c == "webhook"]
    assert all(d.error and d.next_attempt_at > d.created_at for d in hooks)


async def test_failed_webhook_is_retried_with_backoff_and_recorded(
    cloud_settings: Settings, cloud_engine: Engine, webhooks: Receivers
) -> None:
    seed_department(cloud_engine)
    people = [
        Contact(key=f"ext:{n}", rank=Rank.EXTERNAL, webhook_url=webhooks.url(n, "fail"), mqtt=False)
        for n in ("a", "b", "c")
    ]
    add_contacts(cloud_engine, people, site_designation="gsp_designated")
    rules = with_delivery(load_rules(), retry_base_s=0.1, retry_max_s=0.2, max_attempts=3)
    async with running_notify(cloud_settings, cloud_engine, notify_settings(None), rules):
        raise_alert(cloud_engine)
        await wait_until(
            lambda: [d.status for _, c, d in deliveries(cloud_engine) if c == "webhook"] == [DeliveryStatus.DEAD] * 3,
            20,
            "dead after 3 attempts",
        )
    assert all(len(webhooks.received[n]) == 3 for n in ("a", "b", "c"))
    from cloud import journal

    with Session(cloud_engine) as session:
        assert len(journal.read_since(session, 0, actions=["notification.dead"])) == 3
