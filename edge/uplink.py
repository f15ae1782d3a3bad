"""The uplink: one aiomqtt connection that drains the outbox, receives Acks and commands, and reports health.

* QoS 1 everywhere that matters, a fixed client id and a persistent session (MQTT 5 ``clean_start=False`` with
  a session expiry, or MQTT 3.1.1 ``clean_session=False``). ``protocol="auto"`` tries MQTT 5 and falls back to
  3.1.1 when the broker refuses it **or never answers the MQTT 5 CONNECT** (the embedded amqtt broker speaks
  3.1.1 only and silently ignores an MQTT 5 CONNECT with properties). The version that worked is remembered:
  every reconnect of this uplink uses it, so a broker outage never flips a working 3.1.1 link back to probing.
  The delivery guarantee does not depend on the version: the outbox deletes an entry only on the cloud's
  application :class:`Ack`, which is the same message on 3.1.1 and 5.
* Retained :class:`Status` ``online`` on connect; the last will is ``Status(state=offline, reason="lwt")``.
* Outbox entries are published strictly in seq order, at most ``inflight_window`` of them waiting for the
  cloud's :class:`Ack`, at most ``replay_rate_per_s`` per second. After a reconnect, or when no Ack came for
  ``ack_timeout_s``, everything unacked is published again from the oldest seq (the cloud dedups by seq).
  The window also keeps us far below paho's 65,535 in-flight message ids.
* Reconnects with jittered exponential back-off, forever; a repeated failure is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config.models import MqttConfig
from edge.outbox import Outbox
from protocols.errors import ProtocolError
from protocols.messages import (
    Ack,
    Announce,
    Command,
    CommandResult,
    Heartbeat,
    SiteState,
    Status,
    decode,
    encode,
)
from protocols.topics import Channel, topic_for

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"


class Uplink:
    def __init__(
        self,
        config: MqttConfig,
        site_id: str,
        agent_id: str,
        outbox: Outbox,
        *,
        on_command: Callable[[Command], Awaitable[CommandResult]],
        heartbeat: Callable[[], Heartbeat],
        announce: Callable[[], Announce],
        heartbeat_interval_s: float = 30,
        replay_rate_per_s: float = 500,
    ) -> None:
        self.config = config
        self.site_id = site_id
        self.agent_id = agent_id
        self.outbox = outbox
        self.on_command = on_command
        self.heartbeat = heartbeat
        self.announce = announce
        self.heartbeat_interval_s = heartbeat_interval_s
        self.replay_rate_per_s = replay_rate_per_s
        self.client_id = config.client_id or f"edge-{site_id}-{agent_id}"[:64]
        self.connected = False
        self.protocol_in_use: str | None = None
        self._force_v311 = config.protocol == "3.1.1"
        # auto: None until a CONNECT succeeds; then the version that worked, kept for every reconnect
        self.negotiated: str | None = config.protocol if config.protocol != "auto" else None
        self.fallbacks = 0
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()
        self._inflight: dict[int, float] = {}
        self.published = 0
        self.acks = 0
        self.connects = 0
        self.clock_offset_s: float | None = None
        self._offsets: deque[float] = deque(maxlen=20)
        self._commands: asyncio.Queue[Command] = asyncio.Queue()
        self._client_now: aiomqtt.Client | None = None

    def topic(self, channel: Channel) -> str:
        return topic_for(self.site_id, self.agent_id, channel)

    def wake(self) -> None:
        """New outbox entries are waiting."""
        self._wake.set()

    # -- connection -------------------------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        will = aiomqtt.Will(
            self.topic(Channel.STATUS),
            encode(self._status(SiteState.OFFLINE, "lwt")),
            qos=1,
            retain=True,
        )
        password = cfg.password.get_secret_value() if cfg.password else None
        if password is None and cfg.password_env:
            password = os.environ.get(cfg.password_env)
        tls: dict[str, Any] = {}
        if cfg.tls.enabled:
            context = ssl.create_default_context(cafile=str(cfg.tls.ca_file) if cfg.tls.ca_file else None)
            if cfg.tls.cert_file:
                context.load_cert_chain(str(cfg.tls.cert_file), str(cfg.tls.key_file) if cfg.tls.key_file else None)
            if cfg.tls.insecure:
                context.check_hostname = False
            tls = {"tls_context": context, "tls_insecure": cfg.tls.insecure}
        common: dict[str, Any] = {
            "username": cfg.username,
            "password": password,
            "identifier": self.client_id,
            "will": will,
            "keepalive": cfg.keepalive_s,
            "timeout": cfg.connect_timeout_s,
            "max_inflight_messages": cfg.inflight_window + 8,
            **tls,
        }
        if self._force_v311:
            self.protocol_in_use = "3.1.1"
            client = aiomqtt.Client(
                cfg.host, cfg.port, protocol=aiomqtt.ProtocolVersion.V311, clean_session=False, **common
            )
        else:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry_s
            self.protocol_in_use = "5"
            client = aiomqtt.Client(
                cfg.host, cfg.port, protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props, **common
            )
        client.pending_calls_threshold = 1000 + 2 * cfg.inflight_window  # we bound in-flight ourselves
        return client

    async def run(self) -> None:
        """Connect, serve, reconnect — until cancelled. Commands run in their own task, one at a time, outside the
        connection: a push on trial (waiting for the cloud's acks) neither blocks the acks nor dies with a lost
        connection; its result goes out on the connection of the moment, or is answered again on the resend."""
        worker = asyncio.create_task(self._command_worker(), name="commands")
        try:
            await self._connect_loop()
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _command_worker(self) -> None:
        while True:
            command = await self._commands.get()
            try:
                result = await self.on_command(command)
            except Exception:
                log.exception("command %s (%s) failed unexpectedly", command.name.value, command.command_id)
                continue
            client = self._client_now
            if client is None:
                log.warning("command %s answered while offline: the result goes out on its resend", result.command_id)
                continue
            try:
                await client.publish(self.topic(Channel.COMMAND_RESULT), encode(result), qos=1)
                # a heartbeat right after: the fleet view shows the versions now in force without waiting a beat
                await client.publish(self.topic(Channel.HEARTBEAT), encode(self.heartbeat()), qos=0)
            except aiomqtt.MqttError as exc:
                log.warning("command %s: result not sent (%s): it goes out on its resend", result.command_id, exc)

    async def _connect_loop(self) -> None:
        attempt = 0
        last_error = ""
        while True:
            fallback = False
            try:
                async with self._client() as client:
                    attempt = 0
                    if self.negotiated is None and self.protocol_in_use is not None:
                        self.negotiated = self.protocol_in_use
                        log.info("MQTT %s works with %s:%s: kept for every reconnect", *self._where())
                    if last_error:
                        log.warning("broker %s:%s reachable again", self.config.host, self.config.port)
                        last_error = ""
                    await self._session(client)
            except* MqttConnectError as group:
                exc = group.exceptions[0]
                rc = getattr(getattr(exc, "rc", None), "value", getattr(exc, "rc", None))
                if self._probing_v5() and rc in (1, 132):
                    log.info("broker %s:%s refuses MQTT 5: using MQTT 3.1.1", self.config.host, self.config.port)
                    self._force_v311 = fallback = True
                    self.fallbacks += 1
                else:
                    last_error = self._log_once(last_error, exc)
            except* (aiomqtt.MqttError, OSError) as group:
                error = group.exceptions[0]
                if self._probing_v5() and _is_connect_timeout(error):
                    # amqtt never answers an MQTT 5 CONNECT: try 3.1.1 at once. If 3.1.1 fails too, the broker is
                    # simply unreachable and the next attempt probes MQTT 5 again (nothing is remembered yet).
                    log.info(
                        "broker %s:%s did not answer an MQTT 5 CONNECT: trying MQTT 3.1.1",
                        self.config.host,
                        self.config.port,
                    )
                    self._force_v311 = fallback = True
                    self.fallbacks += 1
                else:
                    if self.negotiated is None and self.config.protocol == "auto":
                        self._force_v311 = False  # 3.1.1 did not work either: probe MQTT 5 next time
                    last_error = self._log_once(last_error, error)
            except* Exception as group:  # a bug must not end the uplink for good: log it and reconnect
                log.error("uplink failed unexpectedly; reconnecting", exc_info=group.exceptions[0])
                last_error = repr(group.exceptions[0])
            if fallback:
                continue
            self.connected = False
            delay = min(self.config.reconnect_max_s, self.config.reconnect_min_s * 2 ** min(attempt, 16))
            attempt += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _probing_v5(self) -> bool:
        """auto mode, nothing negotiated yet, and this attempt was MQTT 5."""
        return self.config.protocol == "auto" and self.negotiated is None and not self._force_v311

    def _where(self) -> tuple[str | None, str, int]:
        return self.protocol_in_use, self.config.host, self.config.port

    def _log_once(self, last: str, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        hint = refusal_hint(exc)
        if hint:
            text = f"{text}；{hint}"
        if text != last:
            log.warning(
                "MQTT connection to %s:%s lost or refused: %s (retrying)", self.config.host, self.config.port, text
            )
        return text

    def _status(self, state: SiteState, reason: str | None = None) -> Status:
        return Status(
            site_id=self.site_id,
            agent_id=self.agent_id,
            state=state,
            ts=datetime.now(UTC),
            agent_version=AGENT_VERSION,
            reason=reason,
            incarnation=self.outbox.incarnation,
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        self.connects += 1
        await client.subscribe(self.topic(Channel.ACK), qos=1)
        await client.subscribe(self.topic(Channel.COMMAND), qos=1)
        await client.publish(self.topic(Channel.STATUS), encode(self._status(SiteState.ONLINE)), qos=1, retain=True)
        await client.publish(self.topic(Channel.ANNOUNCE), encode(self.announce()), qos=1)
        self.connected = True
        self._client_now = client
        log.info("connected to %s:%s (MQTT %s)", self.config.host, self.config.port, self.protocol_in_use)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive(client))
                group.create_task(self._send(client))
                group.create_task(self._beat(client))
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(
                    client.publish(
                        self.topic(Channel.STATUS),
                        encode(self._status(SiteState.OFFLINE, "shutdown")),
                        qos=1,
                        retain=True,
                    ),
                    2,
                )
            except (TimeoutError, aiomqtt.MqttError):
                pass
            raise
        finally:
            self.connected = False
            self._client_now = None

    # -- tasks inside one connection ----------------------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        ack_topic, cmd_topic = self.topic(Channel.ACK), self.topic(Channel.COMMAND)
        async for message in client.messages:
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes | str) else b""
            try:
                if topic == ack_topic:
                    self.handle_ack(decode(payload, Ack))
                elif topic == cmd_topic:
                    self._commands.put_nowait(decode(payload, Command))
            except ProtocolError as exc:
                log.warning("ignoring bad message on %s: %s", topic, exc)

    def handle_ack(self, ack: Ack) -> None:
        if ack.agent_id != self.agent_id:
            log.warning("ack for agent %s arrived on our topic; ignored", ack.agent_id)
            return
        # our clock minus the cloud's at the ack; delays (latency, an ack queued while we were away) only add,
        # so the smallest of the recent samples is the best estimate (reported in the heartbeat)
        self._offsets.append(time.time() - ack.ts.timestamp())
        self.clock_offset_s = round(min(self._offsets), 3)
        if ack.incarnation is not None and ack.incarnation != self.outbox.incarnation:
            log.error(
                "ack for incarnation %s arrived, ours is %s: ignored (another box with our ids?)",
                ack.incarnation,
                self.outbox.incarnation,
            )
            return
        spans = [(r.first, r.last) for r in ack.committed] + [(r.seq, r.seq) for r in ack.rejected]
        for rejected in ack.rejected:
            log.warning("cloud rejected seq %d (dead-lettered): %s", rejected.seq, rejected.reason)
        self.outbox.ack(spans)
        self.acks += 1
        for seq in [s for s in self._inflight if any(a <= s <= b for a, b in spans)]:
            del self._inflight[seq]
        self._acked.set()

    async def _wait(self, seconds: float) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._acked.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        self._wake.clear()
        self._acked.clear()

    async def _send(self, client: aiomqtt.Client) -> None:
        inflight = self._inflight
        inflight.clear()
        cursor = 0  # highest seq published on this connection; a new connection replays everything unacked
        window = self.config.inflight_window
        tokens = float(window)
        last_fill = time.monotonic()
        while True:
            now = time.monotonic()
            tokens = min(
                float(max(window, self.replay_rate_per_s)), tokens + (now - last_fill) * self.replay_rate_per_s
            )
            last_fill = now
            if inflight and now - min(inflight.values()) > self.config.ack_timeout_s:
                oldest = min(inflight)
                log.warning("no Ack for seq %d after %.0fs: re-sending from it", oldest, self.config.ack_timeout_s)
                cursor = oldest - 1
                inflight.clear()
            room = min(window - len(inflight), int(tokens))
            if room <= 0:
                await self._wait(0.05 if len(inflight) < window else 1.0)
                continue
            entries = self.outbox.pending(cursor, min(room, 500))
            if not entries:
                await self._wait(1.0)
                continue
            # In flight BEFORE publishing: the cloud's Ack for the first entry can arrive while we still await the
            # broker's PUBACK for the last one; an entry registered after its Ack would stay "in flight" for ever,
            # shrink the window and force a needless re-send after ack_timeout_s.
            sent = time.monotonic()
            for e in entries:
                inflight[e.seq] = sent
            cursor = entries[-1].seq
            await asyncio.gather(*(client.publish(self.topic(Channel(e.channel)), e.payload, qos=1) for e in entries))
            tokens -= len(entries)
            self.published += len(entries)

    async def _beat(self, client: aiomqtt.Client) -> None:
        while True:
            await client.publish(self.topic(Channel.HEARTBEAT), encode(self.heartbeat()), qos=0)
            await asyncio.sleep(self.heartbeat_interval_s)


#: CONNACK refusals a person can fix, by reason code (MQTT 5 and, below 128, MQTT 3.1.1), and what to check
_CREDENTIALS = (
    "broker 拒绝了账号（用户名或密码错误，或账号已轮换、吊销）：检查站点文件 [mqtt] username 与环境变量 "
    "SENTINEL_MQTT_PASSWORD（sentinel device provision 签发，密码只显示一次；轮换后旧密码失效）"
)
REFUSALS: dict[int, str] = {
    4: _CREDENTIALS,
    5: _CREDENTIALS,
    134: _CREDENTIALS,
    135: _CREDENTIALS,
    2: "broker 拒绝了 client id：检查 [mqtt] client_id",
    133: "broker 拒绝了 client id：检查 [mqtt] client_id",
    138: "broker 已封禁此账号：请联系管理员",
}


def refusal_hint(exc: BaseException) -> str | None:
    """What a person should check when the broker refused the connection (None for other errors)."""
    if not isinstance(exc, aiomqtt.MqttCodeError):
        return None
    rc = getattr(exc.rc, "value", exc.rc)
    return REFUSALS.get(rc) if isinstance(rc, int) else None


def _is_connect_timeout(exc: BaseException) -> bool:
    """aiomqtt's "Operation timed out": TCP was accepted but no CONNACK came within the timeout."""
    return isinstance(exc, aiomqtt.MqttError) and "timed out" in str(exc).lower()
