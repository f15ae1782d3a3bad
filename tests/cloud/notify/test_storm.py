"""Storm control: repeats fold with a counter; a burst is bounded by rate limits and a summary."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.alerts import AlertSignal, apply_signal
from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.notify.config import load_rules
from cloud.notify.models import Delivery, DeliveryStatus, Incident, Notification
from protocols import AlertPhase
from tests.cloud.conftest import wait_until
from tests.cloud.notify.conftest import (
    DEPT,
    SmtpServer,
    notify_settings,
    running_notify,
    seed_department,
    set_channels,
    with_storm,
)


def signal(site: str, device: str, phase: AlertPhase) -> AlertSignal:
    now = utcnow()
    return AlertSignal(
        site_id=site,
        device_id=device,
        rule_id="temp_high",
        phase=phase,
        severity="major",
        category="food_cold_chain",
        message="冷库温度超限",
        ts=now,
        started_at=now,
    )


def burst(engine: Engine, signals: list[AlertSignal], per_tx: int = 50) -> None:
    for i in range(0, len(signals), per_tx):
        with Session(writer(engine)) as session:
            for s in signals[i : i + per_tx]:
                apply_signal(session, s)
            session.commit()


async def test_500_alerts_in_a_burst_give_bounded_notifications_with_correct_counters(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_department(cloud_engine, site_category="food")  # food alarms: storm control applies (drug sites are exempt)
    set_channels(cloud_engine, "insp-a", email="insp-a@amr.example")
    rules = load_rules()
    routing = rules.routing.model_copy(update={"default_department": DEPT})  # unregistered sites → SC01
    rules = with_storm(rules.model_copy(update={"routing": routing}), summary_flush_s=0.2)
    # a district power cut: 500 cold rooms at 500 sites raise within moments
    signals = [signal(f"coldroom-{i:03d}", "room", AlertPhase.RAISE) for i in range(500)]
    async with running_notify(cloud_settings, cloud_engine, notify_settings(smtp_server), rules) as service:
        burst(cloud_engine, signals)

        def settled() -> bool:
            with Session(cloud_engine) as session:
                n = len(session.exec(select(Incident).where(Incident.kind == "alert")).all())
                pending = session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.PENDING)).all()
            return n == 500 and not pending and service.process_batch()[0] == 0

        # a hang guard, not a speed check: on the shared 2-core machine this takes ~60 s under load
        await wait_until(settled, 240, "500 incidents and no pending delivery")
        await wait_until(lambda: _summary_mailed(cloud_engine), 10, "final summary count sent")

    with Session(cloud_engine) as session:
        notes = session.exec(select(Notification).where(Notification.recipient == "insp-a")).all()
        direct = [n for n in notes if n.summarised_into is None and n.incident_id != _summary(session).id]
        summarised = [n for n in notes if n.summarised_into is not None]
        summary = _summary(session)
        emails = session.exec(
            select(Delivery).join(Notification).where(Notification.recipient == "insp-a", Delivery.channel == "email")
        ).all()
    storm = rules.escalation.storm
    # nothing is lost: every alert is either notified directly or counted in the summary
    assert len(direct) + summary.count == 500
    assert len(summarised) == summary.count == len(summary.items)
    assert len(direct) <= storm.rate_per_recipient
    # and the flood is bounded: direct ones + a few summary updates, not 500 e-mails
    assert len(emails) <= storm.rate_per_recipient + 10
    assert len(smtp_server.to("insp-a@amr.example")) == len(emails)


def _summary(session: Session) -> Incident:
    return session.exec(select(Incident).where(Incident.kind == "summary")).one()


def _summary_mailed(engine: Engine) -> bool:
    with Session(engine) as session:
        summary = _summary(session)
        counts = session.exec(
            select(Delivery.count)
            .join(Notification)
            .where(Notification.incident_id == summary.id, Delivery.channel == "email", Delivery.status == "sent")
        ).all()
    return bool(counts) and max(counts) == summary.count


async def test_repeated_alarms_about_one_clue_fold_into_one_notification_with_a_counter(
    cloud_settings: Settings, cloud_engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_department(cloud_engine, site_category="food")  # food alarms: storm control applies (drug sites are exempt)
    set_channels(cloud_engine, "insp-a", email="insp-a@amr.example")
    from tests.cloud.notify.conftest import SITE

    flapping: list[AlertSignal] = []
    for _ in range(40):
        flapping += [signal(SITE, "coldroom-1", AlertPhase.RAISE), signal(SITE, "coldroom-1", AlertPhase.CLEAR)]
    async with running_notify(cloud_settings, cloud_engine, notify_settings(smtp_server)) as service:
        burst(cloud_engine, flapping, per_tx=10)

        def folded() -> bool:
            with Session(cloud_engine) as session:
                incidents = session.exec(select(Incident)).all()
            return len(incidents) == 1 and incidents[0].count == 40 and service.process_batch()[0] == 0

        await wait_until(folded, 30, "one incident counting 40 raises")
        await wait_until(lambda: _sent(cloud_engine) == ["inapp"], 10, "one in-app delivery")
    with Session(cloud_engine) as session:
        assert len(session.exec(select(Notification)).all()) == 1
    assert _sent(cloud_engine) == ["inapp"]  # the general alert route: in-app + MQTT (MQTT off here)
    assert smtp_server.to("insp-a@amr.example") == []


def _sent(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery.channel).where(Delivery.status == DeliveryStatus.SENT)).all())
