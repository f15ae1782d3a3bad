"""MQTT version negotiation against a broker that silently ignores MQTT 5 (as the embedded amqtt broker does).

A small TCP relay stands in front of a real broker (the embedded amqtt): it swallows every MQTT 5 CONNECT without
answering (no CONNACK, no close) and relays MQTT 3.1.1 connections untouched. The uplink must time out, fall
back to 3.1.1, keep that version for every reconnect (one MQTT 5 attempt in all, however often the link drops),
and still deliver exactly once: the outbox empties only on the cloud's application Acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.config.models import MqttConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.messages import Announce, Heartbeat, Reading, TelemetryBatch, encode
from sentinel_cli.servers import Server, ServerUnavailable, start_embedded_broker
from tests.edge.cloud_standin import CloudStandIn

SITE, AGENT = "s-neg", "edge-1"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


class SilentToMqtt5:
    """Relay to ``upstream``; an MQTT 5 CONNECT is read and never answered."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.v5_connects = 0
        self.v311_connects = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> SilentToMqtt5:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every open connection (a link outage)."""
        for writer in list(self._links):
            writer.close()
        self._links.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        try:
            head = await reader.readexactly(1)  # packet type, then the remaining length as a varint
            length, shift = 0, 0
            while True:
                byte = await reader.readexactly(1)
                head += byte
                length |= (byte[0] & 0x7F) << shift
                shift += 7
                if not byte[0] & 0x80:
                    break
            body = await reader.readexactly(length)
            level = body[6] if len(body) > 6 else 0  # 00 04 'MQTT' <level>
            if level == 5:
                self.v5_connects += 1
                await reader.read()  # never answer; wait for the client to give up
                return
            self.v311_connects += 1
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            self._links.add(up_writer)
            up_writer.write(head + body)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(ConnectionError, OSError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._links.discard(writer)


@pytest.fixture
def amqtt(tmp_path: Path) -> Server:
    try:
        server = start_embedded_broker(tmp_path / "amqtt")
    except ServerUnavailable as exc:  # a declared cloud dependency: absent only on a broken install
        pytest.fail(str(exc))
    yield server  # type: ignore[misc]
    server.stop()


def fill(box: Outbox, batches: int) -> None:
    for n in range(batches):
        readings = [Reading(sensor_id="p1.temperature", ts=T0, value=4.0 + n / 10, unit="°C")]

        def build(seq: int, readings: list[Reading] = readings) -> bytes:
            return encode(TelemetryBatch(site_id=SITE, agent_id=AGENT, seq=seq, sent_at=T0, readings=readings))

        box.append("telemetry", build, readings=1)


async def wait_for(predicate: object, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_silent_mqtt5_broker_falls_back_once_and_keeps_3_1_1(amqtt: Server, tmp_path: Path) -> None:
    cloud = CloudStandIn(amqtt.port)
    cloud.start()
    box = Outbox(tmp_path / "edge.db")
    fill(box, 5)
    try:
        async with SilentToMqtt5(amqtt.port) as relay:
            config = MqttConfig(port=relay.port, connect_timeout_s=1.5, reconnect_min_s=0.2, reconnect_max_s=0.5)
            uplink = Uplink(
                config,
                SITE,
                AGENT,
                box,
                on_command=None,  # type: ignore[arg-type]
                heartbeat=lambda: Heartbeat(site_id=SITE, agent_id=AGENT, ts=T0, uptime_s=0, outbox_depth=0),
                announce=lambda: Announce(site_id=SITE, agent_id=AGENT, ts=T0, devices=[]),
                heartbeat_interval_s=3600,
            )
            task = asyncio.create_task(uplink.run())
            try:
                await wait_for(lambda: box.depth == 0, 30, "the first five batches acked over 3.1.1")
                assert uplink.negotiated == "3.1.1" and uplink.protocol_in_use == "3.1.1"
                assert (relay.v5_connects, uplink.fallbacks) == (1, 1)
                for outage in range(2):  # the link drops; the uplink must come back on 3.1.1 directly
                    relay.cut()
                    await wait_for(lambda n=outage: uplink.connects >= n + 2, 30, f"reconnect #{outage + 1}")
                    fill(box, 3)
                    uplink.wake()
                    await wait_for(lambda: box.depth == 0, 30, "batches after the reconnect acked")
                assert relay.v5_connects == 1, "an established 3.1.1 link must never probe MQTT 5 again"
                assert uplink.fallbacks == 1
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        assert len(cloud.committed) == 11 and cloud.duplicates >= 0
        assert sorted(seq for _, seq in cloud.committed) == list(range(1, 12))  # every seq exactly once
    finally:
        cloud.stop()
        box.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_a_refused_login_says_what_to_check(
    protocol: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Session 4 (stranger walk): after `sentinel device provision` rotated a box's password the agent logged only
    "[code:135] Not authorized (retrying)" (MQTT 3.1.1: code 5). The installer reading journalctl is told in
    Chinese what was refused and what to check."""
    from cloud.security.mqtt_auth import hash_password
    from sentinel_cli.servers import start_mosquitto
    from tests.conftest import start_or_skip

    passwd = tmp_path / "passwd"
    passwd.write_text(f"box:{hash_password('right-password')}\n", encoding="utf-8")
    as_root = "user root\n" if os.geteuid() == 0 else ""  # pytest's temp dirs are 0700: keep the broker's uid
    broker = start_or_skip(lambda d: start_mosquitto(d, password_file=passwd, extra_conf=as_root), tmp_path / "mq")
    try:
        config = MqttConfig(
            port=broker.port, protocol=protocol, username="box", password="old-password", reconnect_max_s=0.5
        )
        uplink = Uplink(
            config,
            SITE,
            AGENT,
            Outbox(tmp_path / "edge.db"),
            on_command=None,  # type: ignore[arg-type]
            heartbeat=lambda: Heartbeat(site_id=SITE, agent_id=AGENT, ts=T0, uptime_s=0, outbox_depth=0),
            announce=lambda: Announce(site_id=SITE, agent_id=AGENT, ts=T0, devices=[]),
        )
        with caplog.at_level("WARNING", logger="edge.uplink"):
            task = asyncio.create_task(uplink.run())
            try:
                await wait_for(lambda: "lost or refused" in caplog.text, 20, "the refusal logged")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        assert "broker 拒绝了账号" in caplog.text and "SENTINEL_MQTT_PASSWORD" in caplog.text, caplog.text
    finally:
        broker.stop()
