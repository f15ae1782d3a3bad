"""In-app channel: a per-user fan-out hub feeding the Server-Sent-Events stream of ``GET /notifications/stream``.

The hub lives in the process that runs the notification service (``sentinel cloud serve``). A delivery counts as
sent when it is queued to every open stream of the user; with no stream open it is still sent (the user sees it
in the notification list at next login) and the receipt says ``streams=0``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from cloud.notify.channels.base import OutboundMessage


class SseHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self._streams: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._queue_size = queue_size

    def publish(self, user: str, event: dict[str, Any]) -> int:
        queues = self._streams.get(user, set())
        for queue in list(queues):
            if queue.full():  # a stalled client: drop its oldest item rather than block everybody
                queue.get_nowait()
            queue.put_nowait(event)
        return len(queues)

    def subscribe(self, user: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_size)
        self._streams.setdefault(user, set()).add(queue)
        return queue

    def unsubscribe(self, user: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        streams = self._streams.get(user)
        if streams is not None:
            streams.discard(queue)
            if not streams:
                del self._streams[user]

    def stream_count(self, user: str) -> int:
        return len(self._streams.get(user, ()))

    async def sse(self, user: str, *, keepalive_s: float = 15.0) -> AsyncIterator[str]:
        """SSE frames for ``user`` until the client goes away (comment frames keep proxies from timing out)."""
        queue = self.subscribe(user)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                data = json.dumps(event, ensure_ascii=False)
                kind = event.get("type", "notification")
                yield f"id: {event.get('delivery_id', '')}\nevent: {kind}\ndata: {data}\n\n"
        finally:
            self.unsubscribe(user, queue)


class InAppChannel:
    name = "inapp"

    def __init__(self, hub: SseHub) -> None:
        self.hub = hub

    async def send(self, message: OutboundMessage) -> str:
        return f"streams={self.hub.publish(message.recipient, message.as_json())}"

    async def close(self) -> None:
        return None
