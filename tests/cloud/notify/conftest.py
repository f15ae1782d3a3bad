"""Fixtures of the notification tests: a real SMTP server (aiosmtpd), real HTTP webhook receivers, a seeded
department with a duty roster, and a running :class:`NotifyService`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session

from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.notify.config import NotifyRules, NotifySettings, Policy, load_rules
from cloud.notify.models import Contact, DutyShift, Rank, SiteContact, WebhookFormat
from cloud.notify.service import NotifyService
from tests.utils.receivers import Receivers, webhook_receivers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=email_policy.default))
        return "250 OK queued"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _Handler

    def to(self, address: str) -> list[Message]:
        return [m for m in self.handler.messages if m["To"] == address]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = _Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def webhooks() -> Iterator[Receivers]:
    with webhook_receivers() as receivers:
        yield receivers


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A TCP port that accepts connections (kernel backlog) but never answers: a dead webhook."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/robot"
    finally:
        sock.close()


DEPT = "SC01"
SITE = "pharm-01"


def seed_department(engine: Engine, *, site_category: str = "drug") -> None:
    """Department SC01 with site pharm-01; on duty now: insp-a; supervisor sup-a; head head-a."""
    from cloud.registry.models import Department, Site

    now = utcnow()
    with Session(writer(engine)) as session:
        dept = Department(code=DEPT, name="城东市场监督管理所")
        session.add(dept)
        session.flush()
        session.add(Site(site_id=SITE, name="城东大药房", category=site_category, department_id=dept.id))
        session.add(
            DutyShift(
                department=DEPT,
                contact_key="insp-a",
                starts_at=now - dt.timedelta(hours=1),
                ends_at=now + dt.timedelta(hours=8),
            )
        )
        session.add(
            DutyShift(
                department=DEPT,
                contact_key="insp-off",
                starts_at=now - dt.timedelta(hours=20),
                ends_at=now - dt.timedelta(hours=12),
            )
        )
        session.add(Contact(key="insp-a", full_name="张检查", department=DEPT, rank=Rank.INSPECTOR, mqtt=True))
        session.add(Contact(key="insp-off", full_name="下班人", department=DEPT, rank=Rank.INSPECTOR))
        session.add(Contact(key="sup-a", full_name="李分管", department=DEPT, rank=Rank.SUPERVISOR))
        session.add(Contact(key="head-a", full_name="王所长", department=DEPT, rank=Rank.HEAD))
        session.commit()


def add_contacts(engine: Engine, contacts: list[Contact], *, site_designation: str | None = None) -> None:
    with Session(writer(engine)) as session:
        for contact in contacts:
            session.add(contact)
            if site_designation:
                session.add(SiteContact(site_id=SITE, contact_key=contact.key, designation=site_designation))
        session.commit()


def set_channels(engine: Engine, key: str, **values: Any) -> None:
    from sqlmodel import select

    with Session(writer(engine)) as session:
        contact = session.exec(select(Contact).where(Contact.key == key)).one()
        for name, value in values.items():
            setattr(contact, name, value)
        session.add(contact)
        session.commit()


def with_policy(rules: NotifyRules, name: str, policy: dict[str, Any]) -> NotifyRules:
    policies = dict(rules.escalation.policies)
    policies[name] = Policy.model_validate(policy)
    return rules.model_copy(update={"escalation": rules.escalation.model_copy(update={"policies": policies})})


def with_storm(rules: NotifyRules, **values: Any) -> NotifyRules:
    storm = rules.escalation.storm.model_copy(update=values)
    return rules.model_copy(update={"escalation": rules.escalation.model_copy(update={"storm": storm})})


def with_delivery(rules: NotifyRules, **values: Any) -> NotifyRules:
    delivery = rules.escalation.delivery.model_copy(update=values)
    return rules.model_copy(update={"escalation": rules.escalation.model_copy(update={"delivery": delivery})})


def notify_settings(smtp: SmtpServer | None, *, mqtt: bool = False) -> NotifySettings:
    return NotifySettings(
        smtp_host=smtp.host if smtp else None,
        smtp_port=smtp.port if smtp else 25,
        mqtt_enabled=mqtt,
        poll_s=0.05,
        tick_s=0.1,
        mqtt_client_id="test-notify",
    )


@contextlib.asynccontextmanager
async def running_notify(
    settings: Settings, engine: Engine, nsettings: NotifySettings, rules: NotifyRules | None = None
) -> AsyncIterator[NotifyService]:
    service = NotifyService(settings, engine, nsettings=nsettings, rules=rules or load_rules())
    task = asyncio.create_task(service.run(), name="notify-test")
    try:
        await asyncio.wait_for(service.ready.wait(), 10)
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = [
    "DEPT",
    "SITE",
    "Receivers",
    "SmtpServer",
    "WebhookFormat",
    "add_contacts",
    "free_port",
    "notify_settings",
    "running_notify",
    "seed_department",
    "set_channels",
    "with_delivery",
    "with_policy",
    "with_storm",
]
