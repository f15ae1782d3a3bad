"""MQTT channel: one topic per person, ``ms/v1/notify/<key>`` (QoS 1, not retained), JSON payload.

A mobile app subscribes to its user's topic (broker ACL pattern ``ms/v1/notify/%u``). The connection is opened
lazily and re-opened after an error; a broker that is down fails the delivery, which is retried with back-off
while the other channels go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl

import aiomqtt

from cloud.core.config import Settings
from cloud.notify.channels.base import ChannelError, OutboundMessage

log = logging.getLogger(__name__)


def topic_for(prefix: str, key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "_.@-" else "_" for c in key)
    return f"{prefix.rstrip('/')}/{safe}"


class MqttChannel:
    name = "mqtt"

    def __init__(self, settings: Settings, *, prefix: str, client_id: str, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.prefix = prefix
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        s = self.settings
        tls = ssl.create_default_context(cafile=str(s.mqtt_tls_ca) if s.mqtt_tls_ca else None) if s.mqtt_tls else None
        client = aiomqtt.Client(
            s.mqtt_host,
            s.mqtt_port,
            identifier=self.client_id,
            username=s.mqtt_username,
            password=s.mqtt_password.get_secret_value() if s.mqtt_password else None,
            tls_context=tls,
            keepalive=s.mqtt_keepalive_s,
            timeout=self.timeout_s,
        )
        await client.__aenter__()
        self._client = client
        return client

    async def send(self, message: OutboundMessage) -> str:
        topic = topic_for(self.prefix, message.recipient)
        payload = json.dumps(message.as_json(), ensure_ascii=False)
        try:
            async with self._lock:
                client = await self._connect()
            await asyncio.wait_for(client.publish(topic, payload, qos=1), self.timeout_s)
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            await self._drop()
            raise ChannelError(f"MQTT {self.settings.mqtt_host}:{self.settings.mqtt_port}: {exc}") from exc
        return f"puback {topic}"

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def close(self) -> None:
        await self._drop()
