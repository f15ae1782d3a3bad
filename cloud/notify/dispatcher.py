"""Channel workers: one asyncio task per channel draining that channel's pending deliveries from the DB.

Each channel has its own task, its own concurrency limit and its own retry schedule, so a dead webhook or an
SMTP server that hangs never delays the other channels. A failed send is retried with exponential back-off
(``retry_base_s * 2^(attempt-1)``, capped); after ``max_attempts`` the delivery is dead and ``notification.dead``
is journalled. Deliveries live in the DB, so a restart resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cloud import journal
from cloud.core.db import utcnow, writer
from cloud.core.retry import retry_locked
from cloud.notify.channels.base import Channel, ChannelError, OutboundMessage
from cloud.notify.config import DeliveryRules
from cloud.notify.links import token_for
from cloud.notify.models import AckLink, Contact, Delivery, DeliveryStatus, Incident, Notification

log = logging.getLogger(__name__)


def outbound_message(
    session: Session,
    delivery: Delivery,
    notification: Notification,
    incident: Incident,
    *,
    secret: bytes,
    ack_base_url: str,
) -> OutboundMessage:
    """The message a channel renders for one delivery (also what the in-app stream sends)."""
    ack_url = None
    proof_required = False
    if delivery.link_jti:
        link = session.get(AckLink, delivery.link_jti)
        if link is not None:
            proof_required = bool(link.proof_required)
            ack_url = f"{ack_base_url.rstrip('/')}/api/v1/notifications/ack?token={token_for(secret, link)}"
    contact = session.exec(select(Contact).where(Contact.key == notification.recipient)).first()
    return OutboundMessage(
        delivery_id=delivery.id or 0,
        notification_id=notification.id or 0,
        incident_id=incident.id or 0,
        channel=delivery.channel,
        recipient=notification.recipient,
        address=delivery.address,
        kind=incident.kind,
        title=incident.title,
        body=incident.body,
        severity=incident.severity,
        category=incident.category,
        site_id=incident.site_id,
        clue_id=incident.clue_id,
        count=max(delivery.count, 1),
        level=notification.level,
        ts=incident.opened_at,
        ack_url=ack_url,
        ack_proof_required=proof_required,
        recipient_name=contact.full_name if contact else "",
        webhook_format=str(contact.webhook_format) if contact else "generic",
        webhook_secret=contact.webhook_secret if contact else None,
    )


class ChannelWorker:
    def __init__(
        self, channel: Channel, engine: Engine, rules: DeliveryRules, *, secret: bytes, ack_base_url: str
    ) -> None:
        self.channel = channel
        self.name = channel.name
        self.engine = engine
        self.rules = rules
        self.secret = secret
        self.ack_base_url = ack_base_url.rstrip("/")
        self.kick = asyncio.Event()
        self._inflight: set[int] = set()
        self._sem = asyncio.Semaphore(rules.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failing = False

    def _claim(self, limit: int) -> list[OutboundMessage]:
        now = utcnow()
        with Session(self.engine) as session:
            rows = session.exec(
                select(Delivery, Notification, Incident)
                .join(Notification, col(Notification.id) == Delivery.notification_id)
                .join(Incident, col(Incident.id) == Notification.incident_id)
                .where(
                    Delivery.channel == self.name,
                    col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
                    col(Delivery.next_attempt_at) <= now,
                    col(Delivery.id).not_in(self._inflight or {-1}),
                )
                .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
                .limit(limit)
            ).all()
            out = [
                outbound_message(
                    session, delivery, notification, incident, secret=self.secret, ack_base_url=self.ack_base_url
                )
                for delivery, notification, incident in rows
            ]
            return out

    def _record(self, delivery_id: int, receipt: str | None, error: ChannelError | None) -> None:
        now = utcnow()
        with Session(writer(self.engine)) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None:
                return
            delivery.attempts += 1
            if error is None:
                delivery.status = DeliveryStatus.SENT
                delivery.sent_at = now
                delivery.receipt = (receipt or "")[:500]
                delivery.error = None
            else:
                delivery.error = str(error)[:500]
                if not error.retry or delivery.attempts >= self.rules.max_attempts:
                    delivery.status = DeliveryStatus.DEAD
                    journal.append(
                        session,
                        actor="system:notify",
                        action="notification.dead",
                        target_type="delivery",
                        target_id=delivery_id,
                        outcome="failed",
                        payload={
                            "channel": self.name,
                            "notification_id": delivery.notification_id,
                            "attempts": delivery.attempts,
                            "error": delivery.error,
                        },
                    )
                else:
                    delivery.status = DeliveryStatus.FAILED
                    backoff = min(self.rules.retry_base_s * 2 ** (delivery.attempts - 1), self.rules.retry_max_s)
                    delivery.next_attempt_at = now + dt.timedelta(seconds=backoff)
            session.add(delivery)
            session.commit()

    async def _send_one(self, message: OutboundMessage) -> None:
        try:
            async with self._sem:
                try:
                    receipt = await asyncio.wait_for(self.channel.send(message), self.rules.timeout_s * 2)
                    error = None
                except ChannelError as exc:
                    receipt, error = None, exc
                except TimeoutError:
                    receipt, error = None, ChannelError("send timed out")
                except Exception as exc:  # a bug in a channel must not kill the worker
                    log.exception("channel %s crashed on delivery %s", self.name, message.delivery_id)
                    receipt, error = None, ChannelError(f"internal error: {exc}")
            # the send happened: its record must not be lost to a busy database (a lost record is a resend)
            try:
                await asyncio.to_thread(
                    retry_locked,
                    lambda: self._record(message.delivery_id, receipt, error),
                    what=f"recording delivery {message.delivery_id}",
                    attempts=8,
                )
            except Exception:
                log.exception(
                    "channel %s: delivery %s was sent but could not be recorded; it will be sent again "
                    "(receivers deduplicate by its Idempotency-Key)",
                    self.name,
                    message.delivery_id,
                )
                return
            if error is not None and not self._failing:
                log.warning("channel %s failing: %s (logged once until it recovers)", self.name, error)
                self._failing = True
            elif error is None and self._failing:
                log.info("channel %s recovered", self.name)
                self._failing = False
        finally:
            self._inflight.discard(message.delivery_id)
            self.kick.set()

    async def run(self) -> None:
        try:
            while True:
                self.kick.clear()
                free = self.rules.concurrency * 2 - len(self._inflight)
                batch = await asyncio.to_thread(self._claim, free) if free > 0 else []
                for message in batch:
                    self._inflight.add(message.delivery_id)
                    name = f"notify-{self.name}-{message.delivery_id}"
                    task = asyncio.create_task(self._send_one(message), name=name)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if not batch or free <= 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.kick.wait(), 0.5)
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.channel.close()
