"""Notifications carry the clue's real severity and a body a person can act on (issue #19 item 7).

The stranger's walk: "the notification for an urgent clue is marked 次要 with an empty body". The drug fridge's
first alert was a minor rate-of-change alert; the 9.3 ℃ alarm (limit 8 ℃, GSP 2–8 ℃) joined the same clue and was
folded into the minor notification. Here, over a real SMTP server and real HTTP webhook receivers (generic JSON and a
WeCom robot), the graver alarm upgrades the notification: 紧急 in every channel, the body names the site, its
address, 药品冷藏柜 1 号温度, 9.3 ℃ and the 8 ℃ limit, since when (Beijing time), the deadline and the clue's link.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.alerts import AlertSignal, apply_signal
from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.journal import JournalEvent
from cloud.notify.message import alert_lines, amount, describe, local_time
from cloud.notify.models import Incident, IncidentStatus, Notification
from cloud.notify.routing import facts_from_event
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
)
from tests.cloud.notify.test_delivery import designated

ADDRESS = "姑苏区人民路 88 号"
STARTED = dt.datetime(2026, 12, 1, 6, 30, tzinfo=dt.UTC)  # 14:30 in Asia/Shanghai


def register_fridge(engine: Engine) -> None:
    from cloud.registry.models import Device, Site

    with Session(writer(engine)) as session:
        site = session.get(Site, SITE)
        assert site is not None
        site.address = ADDRESS
        session.add(site)
        session.add(Device(site_id=SITE, device_id="fridge1", name="药品冷藏柜 1 号"))
        session.commit()


def fridge_alert(engine: Engine, *, rule: str, severity: str, value: float, limit: float, message: str) -> None:
    with Session(writer(engine)) as session:
        apply_signal(
            session,
            AlertSignal(
                site_id=SITE, device_id="fridge1", rule_id=rule, phase=AlertPhase.RAISE, severity=severity,
                category="drug_storage", message=message, ts=utcnow(), started_at=STARTED,
                sensor_id="fridge1.temperature", value=value, limit=limit, unit="°C",
            ),
        )  # fmt: skip
        session.commit()


def mail_text(smtp: SmtpServer, address: str) -> list[tuple[str, str]]:
    return [(str(m["Subject"]), m.get_content()) for m in smtp.to(address)]  # type: ignore[attr-defined]


async def test_an_urgent_fridge_clue_notifies_as_urgent_with_a_body_to_act_on(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer, webhooks: Receivers
) -> None:
    seed_department(cloud_engine)
    register_fridge(cloud_engine)
    add_contacts(cloud_engine, designated(webhooks), site_designation="gsp_designated")
    nsettings = notify_settings(smtp_server).model_copy(update={"public_base_url": "https://sentinel.example"})
    async with running_notify(cloud_settings, cloud_engine, nsettings):
        fridge_alert(cloud_engine, rule="temp_rate", severity="minor", value=6.1, limit=2.0, message="温度上升过快")
        await wait_until(lambda: len(smtp_server.to("qa@pharm.example")) >= 1, 15, "the first e-mail")
        fridge_alert(cloud_engine, rule="temp_high", severity="critical", value=9.3, limit=8.0, message="超出 2–8 ℃")
        await wait_until(lambda: len(smtp_server.to("qa@pharm.example")) >= 2, 15, "the upgraded e-mail")
        await wait_until(lambda: len(webhooks.received.get("owner-wecom", [])) >= 2, 15, "the upgraded robot post")
        await wait_until(lambda: len(webhooks.received.get("keeper", [])) >= 2, 15, "the upgraded webhook")

    with Session(cloud_engine) as session:
        incident = session.exec(select(Incident)).one()  # one clue, one notification: upgraded, not a second one
        people = set(session.exec(select(Notification.recipient)).all())
    assert incident.severity == "critical" and incident.count == 2 and incident.status == IncidentStatus.OPEN
    assert people == {"ext:qa", "ext:keeper", "ext:owner", "insp-a"}

    subject, body = mail_text(smtp_server, "qa@pharm.example")[-1]
    assert subject.startswith("【紧急】") and "城东大药房·药品冷藏柜 1 号温度" in subject, subject
    assert "次要" not in subject
    assert f"场所：城东大药房（地址：{ADDRESS}）" in body, body
    assert "情况：药品冷藏柜 1 号温度 9.3 ℃，限值 8 ℃" in body, body
    assert "开始时间：2026-12-01 14:30（北京时间）" in body, body
    assert re.search(r"处置期限：请于 \d{4}-\d\d-\d\d \d\d:\d\d 前确认收到，逾时升级至分管负责人", body), body
    assert f"查看线索：https://sentinel.example/#/clue/{incident.clue_id}" in body, body
    assert "/api/v1/notifications/ack?token=" in body
    # the first (minor) mail was minor: the severity is the source's, not a default
    assert mail_text(smtp_server, "qa@pharm.example")[0][0].startswith("【次要】")

    generic = webhooks.received["keeper"][-1]
    assert generic["severity"] == "critical" and generic["headline"].startswith("【紧急】")
    assert "9.3 ℃" in generic["body"] and "限值 8 ℃" in generic["body"] and "药品冷藏柜" in generic["body"]
    wecom = webhooks.received["owner-wecom"][-1]["markdown"]["content"]
    assert wecom.startswith("### 【紧急】") and "城东大药房" in wecom and "9.3 ℃" in wecom and "8 ℃" in wecom
    assert SITE not in wecom  # the place by its name, never the site id
    # the in-app list and the phone read the incident: the same severity and body
    assert "9.3 ℃" in incident.body and "限值 8 ℃" in incident.body and ADDRESS in incident.body


def test_a_task_notification_carries_its_clues_severity_site_and_due_date(cloud_engine: Engine) -> None:
    from cloud.registry.models import Site
    from cloud.workflow.clues import Clue
    from cloud.workflow.models import InspectionTask

    now = utcnow()
    with Session(writer(cloud_engine)) as session:
        session.add(Site(site_id="pharm-02", name="仁和大药房", address="平江路 1 号", category="drug"))
        clue = Clue(
            site_id="pharm-02", category="drug_storage", severity="critical", title="仁和大药房·药品冷藏柜温度超限",
            first_seen_at=now, last_seen_at=now,
        )  # fmt: skip
        session.add(clue)
        session.flush()
        task = InspectionTask(
            task_no="JC2026-000001", clue_id=clue.id, site_id="pharm-02", due_date=dt.date(2026, 12, 4),
            instructions="核查冷藏柜温度记录", created_by="wangqiang",
        )  # fmt: skip
        session.add(task)
        session.commit()
        event = JournalEvent(
            actor="wangqiang", action="task.created", target_type="task", target_id=str(task.id),
            payload={"task_no": "JC2026-000001", "clue_id": clue.id, "assignees": [2]}, prev_hash="", hash="",
        )  # fmt: skip
        facts = facts_from_event(event, session)
        describe(session, event, facts)
    assert facts.severity == "critical"
    assert "场所：仁和大药房（地址：平江路 1 号）" in facts.body
    assert "要求：核查冷藏柜温度记录" in facts.body and "完成期限：2026-12-04" in facts.body


def test_amounts_and_times_read_as_a_person_writes_them() -> None:
    assert amount(9.3, "°C") == "9.3 ℃" and amount(8.0, "°C") == "8 ℃" and amount(45, "%RH") == "45 %RH"
    assert local_time(STARTED) == "2026-12-01 14:30" and local_time("2026-12-01T06:30:00+00:00") == "2026-12-01 14:30"
    assert local_time(None) is None


def test_a_rate_of_change_alert_reads_per_minute() -> None:
    """The edge sends a rate rule's value and limit in ``°C/min`` (the stranger walk read 限值 2.0 next to a
    temperature): the body says 12.99 ℃/分钟, 限值 2 ℃/分钟."""
    assert amount(2.0, "°C/min") == "2 ℃/分钟"
    payload = {"value": 12.99, "limit": 2.0, "unit": "°C/min", "message": "温度每分钟上升 12.99°C，超过 2°C/分钟"}
    lines = alert_lines(None, payload, "城东大药房·药品冷藏柜 1 号温度")
    assert "情况：药品冷藏柜 1 号温度 12.99 ℃/分钟，限值 2 ℃/分钟" in lines, lines
