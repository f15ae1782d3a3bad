"""Channel workers: one asyncio task per channel draining that channel's pending deliveries from the DB.

Each channel has its own task, its own concurrency limit and its own retry schedule, so a dead webhook or an
SMTP server that hangs never delays the other channels. A failed send is retried with exponential back-off
(``retry_base_s * 2^(attempt-1)``, capped); after ``max_attempts`` the delivery is dead and ``notification.dead``
is journalled. Deliveries live in the DB, so a restart resumes them.

Never sent twice by two lease holders: a delivery is **claimed** durably before its send — status ``sending``,
``claimed_by`` = the lease holder and fencing token, ``claimed_at`` — in its own short transaction, fenced by
the ``notify`` lease (a holder that has lost the lease cannot claim). The result is recorded afterwards only if
the claim is still this holder's, and *not* fenced by the lease: the send has happened, and losing its record
because a busy database delayed a renewal is what made the next holder send it again (the session-3 soak). A new
holder leaves a delivery claimed by another holder alone until the claim is provably dead — its holder's lease
is gone (the new holder has it) **and** the claim is older than ``claim_expiry_s`` (≥ the send's own bound
``2 × timeout_s``) — and then sends it again with the same ``Idempotency-Key``. When the lease is lost, sends in
flight are given that bound to finish and record their result before they are cancelled.

What stays at-least-once: a holder that dies (``kill -9``, power) after the receiver answered and before the
record committed; the next holder resends after ``claim_expiry_s`` with the same key (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from sqlalchemy import Engine, and_, or_, update
from sqlmodel import Session, col, select

from cloud import journal
from cloud.core import leases
from cloud.core.db import utcnow, writer
from cloud.core.leases import default_holder
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
        self._claim_failing = False
        self._local = f"local:{default_holder()}"  # the claimant when no lease is held (one instance, tests)

    @property
    def send_bound_s(self) -> float:
        """The longest one send may take (then it counts as failed): ``asyncio.wait_for`` around the channel."""
        return self.rules.timeout_s * 2

    @property
    def claim_expiry_s(self) -> float:
        return max(self.rules.claim_expiry_s, self.send_bound_s + 1.0)

    def _claimant(self) -> str:
        lease = leases.current()
        return f"{lease.holder}#{lease.token}" if lease is not None else self._local

    def _due(self, now: dt.datetime) -> Any:
        """Deliveries this worker may claim: due (pending / failed), or claimed by a send whose holder is dead."""
        stale = now - dt.timedelta(seconds=self.claim_expiry_s)
        return or_(
            and_(
                col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
                col(Delivery.next_attempt_at) <= now,
            ),
            and_(
                col(Delivery.status) == DeliveryStatus.SENDING,
                or_(col(Delivery.claimed_at).is_(None), col(Delivery.claimed_at) <= stale),
            ),
        )

    def _claim(self, limit: int) -> list[tuple[OutboundMessage, str]]:
        """Claim up to ``limit`` due deliveries (one short transaction, fenced by the lease); their messages."""
        now = utcnow()
        with Session(self.engine) as session:  # read first: no write lock while there is nothing to send
            ids = session.exec(
                select(Delivery.id)
                .where(Delivery.channel == self.name, self._due(now), col(Delivery.id).not_in(self._inflight or {-1}))
                .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
                .limit(limit)
            ).all()
        if not ids:
            return []
        claimant = self._claimant()
        with Session(writer(self.engine)) as session:
            claimed = []
            for delivery_id in ids:
                result = session.execute(
                    update(Delivery)
                    .where(col(Delivery.id) == delivery_id, self._due(now))
                    .values(status=DeliveryStatus.SENDING, claimed_by=claimant, claimed_at=now)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(delivery_id)
            rows = session.exec(
                select(Delivery, Notification, Incident)
                .join(Notification, col(Notification.id) == Delivery.notification_id)
                .join(Incident, col(Incident.id) == Notification.incident_id)
                .where(col(Delivery.id).in_(claimed or [-1]))
                .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
            ).all()
            out = [
                (
                    outbound_message(
                        session, delivery, notification, incident, secret=self.secret, ack_base_url=self.ack_base_url
                    ),
                    claimant,
                )
                for delivery, notification, incident in rows
            ]
            session.commit()  # fenced: a holder that lost the lease claims nothing
        return out

    def _record(self, delivery_id: int, claimant: str, receipt: str | None, error: ChannelError | None) -> bool:
        """Record a send's result if the claim is still ours (False: another holder took it over)."""
        now = utcnow()
        with leases.unfenced(), Session(writer(self.engine)) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None:
                return True
            if delivery.status != DeliveryStatus.SENDING or delivery.claimed_by != claimant:
                log.warning(
                    "channel %s: delivery %s was claimed by %s meanwhile; not recording this send (%s)",
                    self.name,
                    delivery_id,
                    delivery.claimed_by,
                    "sent" if error is None else error,
                )
                return False
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
        return True

    async def _send_one(self, message: OutboundMessage, claimant: str) -> None:
        try:
            async with self._sem:
                try:
                    receipt = await asyncio.wait_for(self.channel.send(message), self.send_bound_s)
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
                    lambda: self._record(message.delivery_id, claimant, receipt, error),
                    what=f"recording delivery {message.delivery_id}",
                    attempts=8,
                )
            except Exception:
                log.exception(
                    "channel %s: delivery %s was sent but could not be recorded; it stays claimed and is sent again "
                    "after %.0f s (receivers deduplicate by its Idempotency-Key)",
                    self.name,
                    message.delivery_id,
                    self.claim_expiry_s,
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

    async def _let_sends_finish(self) -> None:
        """Give sends in flight their bound to finish and record (the lease was lost, or shutdown), then cancel."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.send_bound_s + 1.0
        pending = set(self._tasks)
        while pending and loop.time() < deadline:
            try:
                _done, pending = await asyncio.wait(pending, timeout=deadline - loop.time())
            except asyncio.CancelledError:  # cancelled again while waiting: the wait stays bounded
                continue
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def run(self) -> None:
        try:
            while True:
                self.kick.clear()
                free = self.rules.concurrency * 2 - len(self._inflight)
                try:
                    batch = await asyncio.to_thread(self._claim, free) if free > 0 else []
                except Exception as exc:  # lease lost (fenced) or the database busy: try again shortly
                    if not self._claim_failing:
                        log.warning("channel %s: claiming deliveries failed: %s (logged once)", self.name, exc)
                    self._claim_failing, batch = True, []
                else:
                    self._claim_failing = False
                for message, claimant in batch:
                    self._inflight.add(message.delivery_id)
                    name = f"notify-{self.name}-{message.delivery_id}"
                    task = asyncio.create_task(self._send_one(message, claimant), name=name)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if not batch or free <= 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.kick.wait(), 0.5)
        finally:
            await self._let_sends_finish()
            await self.channel.close()
