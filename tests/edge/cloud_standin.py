"""Test-only cloud stand-in: it stands in for cloud ingest so the edge can be tested without the cloud.

It does exactly what the shared decisions say the cloud does: subscribe to telemetry and events (QoS 1,
persistent session), dedup by (agent_id, seq), "commit" (record in memory), then publish
``Ack(committed=[ranges])`` on ms/v1/{site}/{agent}/ack with QoS 1. It also records command results and can
send commands.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from protocols.messages import (
    Ack,
    AckRange,
    AlertEvent,
    Command,
    CommandName,
    CommandResult,
    Heartbeat,
    TelemetryBatch,
    decode,
    encode,
)
from protocols.topics import Channel, parse_topic, subscription, topic_for


@dataclass
class CloudStandIn:
    port: int
    client_id: str = "cloud-standin"
    committed: dict[tuple[str, int], TelemetryBatch | AlertEvent] = field(default_factory=dict)
    order: list[tuple[str, int]] = field(default_factory=list)  # first arrivals
    deliveries: int = 0
    duplicates: int = 0
    results: list[CommandResult] = field(default_factory=list)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    ack: bool = True

    def __post_init__(self) -> None:
        # Persistent session so the broker queues (and persists) messages for us while we or it are away.
        # MQTT 3.1.1 clean_session=False never expires (up to the broker's persistent_client_expiration). With
        # MQTT 5 the equivalent is clean_start=False AND a SessionExpiryInterval > 0: the default 0 ends the
        # session at disconnect and mosquitto drops everything queued for it.
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 1)
        self.client.max_inflight_messages_set(1000)

    def start(self) -> CloudStandIn:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        for channel in (Channel.TELEMETRY, Channel.EVENTS, Channel.COMMAND_RESULT, Channel.HEARTBEAT):
            client.subscribe(subscription(channel), qos=1)

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        address = parse_topic(message.topic)
        if address.channel is Channel.COMMAND_RESULT:
            with self.lock:
                self.results.append(decode(message.payload, CommandResult))
            return
        if address.channel is Channel.HEARTBEAT:
            with self.lock:
                self.heartbeats.append(decode(message.payload, Heartbeat))
            return
        model = TelemetryBatch if address.channel is Channel.TELEMETRY else AlertEvent
        item = decode(message.payload, model)
        key = (item.agent_id, item.seq)
        with self.lock:
            self.deliveries += 1
            if key in self.committed:
                self.duplicates += 1
            else:
                self.committed[key] = item
                self.order.append(key)
            if not self.ack:
                return
        ack = Ack(agent_id=item.agent_id, committed=[AckRange(first=item.seq, last=item.seq)], ts=datetime.now(UTC))
        client.publish(topic_for(address.site_id, address.agent_id, Channel.ACK), encode(ack), qos=1)

    def send_command(self, site_id: str, agent_id: str, name: CommandName, payload: dict[str, Any]) -> str:
        command_id = uuid.uuid4().hex[:12]
        command = Command(command_id=command_id, name=name, issued_at=datetime.now(UTC), payload=payload)
        self.client.publish(topic_for(site_id, agent_id, Channel.COMMAND), encode(command), qos=1)
        return command_id

    def snapshot(self) -> tuple[dict[tuple[str, int], TelemetryBatch | AlertEvent], list[tuple[str, int]]]:
        with self.lock:
            return dict(self.committed), list(self.order)
