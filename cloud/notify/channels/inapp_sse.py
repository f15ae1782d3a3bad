"""In-app channel and the Server-Sent-Events stream of ``GET /notifications/stream``, on every instance.

The in-app delivery is a row in the shared database: the channel marks it sent (receipt ``stream``), and the
stream of *any* instance reads the user's sent in-app deliveries after a cursor — ``?after=<delivery id>``, or
the ``Last-Event-ID`` a reconnecting ``EventSource`` sends — in id order, so a client that reconnects to another
instance (behind a load balancer) misses nothing and gets nothing twice. The stream stops at the first
delivery not yet sent (it comes next, in order); a dead one is skipped. It looks when woken by
:class:`cloud.core.live.LiveWake` (PostgreSQL LISTEN/NOTIFY) or after its timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from cloud.core.live import INAPP, LiveWake
from cloud.notify.channels.base import OutboundMessage
from cloud.notify.models import Delivery, DeliveryStatus, Incident, Notification

BATCH = 200
#: deliveries still to be sent (claimed ones included): a stream waits for them, in order
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED)
UPDATE = "inapp-update"


class SseHub:
    def __init__(self, engine: Engine, *, secret: bytes, ack_base_url: str, wake: LiveWake | None = None) -> None:
        self.engine = engine
        self.secret = secret
        self.ack_base_url = ack_base_url
        self.wake = wake or LiveWake(engine)
        self._streams: dict[str, int] = {}
        self._updates: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.wake.on_message(UPDATE, self._on_update)

    # ------------------------------------------------------------------ folded repeats: ephemeral updates
    def publish_update(self, user: str, update: dict[str, Any]) -> None:
        """A folded repeat's new count to ``user``'s streams on every instance (blocking; call in a thread)."""
        self.wake.publish(UPDATE, json.dumps({"user": user, "event": update}, ensure_ascii=False, default=str))

    def _on_update(self, data: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver_update, data)

    def _deliver_update(self, data: str) -> None:
        try:
            item = json.loads(data)
        except ValueError:
            return
        for queue in list(self._updates.get(str(item.get("user")), ())):
            if queue.full():  # a stalled client: drop its oldest update rather than grow
                queue.get_nowait()
            queue.put_nowait(item.get("event") or {})
        self.wake.wake(INAPP)

    def stream_count(self, user: str) -> int:
        return self._streams.get(user, 0)

    def _base(self, user: str) -> Any:
        return (
            select(Delivery, Notification, Incident)
            .join(Notification, col(Notification.id) == Delivery.notification_id)
            .join(Incident, col(Incident.id) == Notification.incident_id)
            .where(Delivery.channel == InAppChannel.name, Notification.recipient == user)
        )

    def last_id(self, user: str) -> int:
        """ "Now" for a new stream: after the last delivery, but before any not yet sent."""
        with Session(self.engine) as session:
            mine = (
                select(func.max(col(Delivery.id)), func.min(col(Delivery.id)))
                .join(Notification, col(Notification.id) == Delivery.notification_id)
                .where(Delivery.channel == InAppChannel.name, Notification.recipient == user)
            )
            last = session.exec(mine).one()[0] or 0
            pending = session.exec(mine.where(col(Delivery.status).in_(UNSENT))).one()[1]
            return int(last if pending is None else pending - 1)

    def events_after(self, user: str, after: int) -> tuple[list[dict[str, Any]], int]:
        """Sent in-app deliveries of ``user`` after ``after``, in id order, up to the first unsent one."""
        from cloud.notify.dispatcher import outbound_message

        out: list[dict[str, Any]] = []
        with Session(self.engine) as session:
            query = self._base(user).where(col(Delivery.id) > after).order_by(col(Delivery.id)).limit(BATCH)
            rows = session.exec(query)
            for delivery, notification, incident in rows:
                if delivery.status == DeliveryStatus.SENT:
                    message = outbound_message(
                        session, delivery, notification, incident, secret=self.secret, ack_base_url=self.ack_base_url
                    )
                    out.append(message.as_json())
                elif delivery.status in UNSENT:
                    break  # comes next, in order
                after = delivery.id or after  # dead / skipped: nothing to show, move on
        return out, after

    async def sse(self, user: str, *, after: int | None = None, keepalive_s: float = 15.0) -> AsyncIterator[str]:
        """SSE frames for ``user`` until the client goes away (comment frames keep proxies from timing out)."""
        event = self.wake.subscribe(INAPP)
        updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue(100)
        self._loop = asyncio.get_running_loop()
        self._updates.setdefault(user, set()).add(updates)
        self._streams[user] = self._streams.get(user, 0) + 1
        try:
            cursor = after if after is not None else await asyncio.to_thread(self.last_id, user)
            yield "retry: 2000\n: connected\n\n"
            quiet = 0.0
            while True:
                event.clear()
                items, cursor = await asyncio.to_thread(self.events_after, user, cursor)
                for item in items:
                    data = json.dumps(item, ensure_ascii=False)
                    yield f"id: {item['delivery_id']}\nevent: {item.get('type', 'notification')}\ndata: {data}\n\n"
                while not updates.empty():
                    items.append(updates.get_nowait())
                    yield f"event: update\ndata: {json.dumps(items[-1], ensure_ascii=False, default=str)}\n\n"
                if items:
                    quiet = 0.0
                    continue
                started = asyncio.get_running_loop().time()
                await self.wake.wait(event)
                quiet += asyncio.get_running_loop().time() - started
                if quiet >= keepalive_s:
                    quiet = 0.0
                    yield ": keepalive\n\n"
        finally:
            self._updates.get(user, set()).discard(updates)
            self._streams[user] -= 1
            if not self._streams[user]:
                del self._streams[user]
            self.wake.unsubscribe(INAPP, event)


class InAppChannel:
    """Marks the delivery sent: the stream of every instance shows it (the receipt says so)."""

    name = "inapp"

    async def send(self, message: OutboundMessage) -> str:
        return "stream"

    async def close(self) -> None:
        return None
