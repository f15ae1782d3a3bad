"""The asynchronous half of the ingest: MQTT session, batching, commit in the writer thread, acks.

* One persistent MQTT session per worker: fixed client id (``SENTINEL_MQTT_CLIENT_ID``), MQTT 5 with
  ``clean_start=False`` and a session expiry, or MQTT 3.1.1 with ``clean_session=False``; the broker
  queues QoS 1 messages while the worker is away (mosquitto: set ``max_queued_messages`` high or 0).
* ``SENTINEL_MQTT_PROTOCOL=auto`` tries MQTT 5 and falls back to 3.1.1 when the broker refuses it
  (the embedded amqtt broker). With MQTT 5 and a share group, the data channels are shared
  subscriptions ``$share/<group>/ms/v1/+/+/<channel>`` so several workers split the stream; ``status``
  stays a plain subscription because brokers do not deliver retained messages to shared subscriptions
  (every worker records it; the upsert is idempotent). On 3.1.1 every subscription is plain.
* Loop: wait for one message, drain what is queued (≤ ``ingest_max_batch``; if fewer, linger
  ``ingest_max_wait_ms`` once and drain again), commit the batch in the single writer thread, then
  publish the acks (QoS 1) — never before the commit returned. Pipelined (``ingest_pipeline``, the default):
  the next batch is received and validated in a validator thread while the previous one commits; commits stay
  one at a time and in order, and at most one validated batch waits for the writer.
* aiomqtt PUBACKs a message when it is queued locally, before the commit. That is safe because the edge
  keeps every entry until the application ack: a message lost in a crash here is resent by its edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine

from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.fleet_commands import due_for_delivery, mark_sent
from cloud.ingest.stats import IngestStats
from cloud.ingest.writer import CommitResult, IngestWriter, Prepared, RawMessage, seq_ranges
from cloud.telemetry.store import TelemetryStore
from protocols import Ack, AckRange, Channel, encode, subscription, topic_for
from protocols.messages import RejectedSeq
from protocols.topics import INGEST_FILTER, published_by_cloud

log = logging.getLogger("cloud.ingest")

_B = TypeVar("_B")

#: how long a worker whose connection dropped (or that is stopping) waits for its received batches to commit
LEFTOVER_COMMIT_S = 30.0

#: acks waiting for their PUBACK before the loop pauses (keeps paho far below its 65,535 message ids)
MAX_PENDING_ACKS = 5000


class _CapturingQueue(asyncio.Queue):  # type: ignore[type-arg]
    """aiomqtt's incoming queue, captured so the loop can drain it without one task per message."""

    last: _CapturingQueue | None = None

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        type(self).last = self


class IngestService:
    """One ingest worker. ``await run()`` until cancelled; ``ready`` is set once subscribed."""

    def __init__(self, settings: Settings, engine: Engine, store: TelemetryStore) -> None:
        self.settings = settings
        self.writer = IngestWriter(
            engine,
            store,
            sensor_touch_s=min(5.0, settings.sensor_stale_after_s / 4),
            clock_skew_max_s=settings.clock_skew_max_s,
            clock_behind_max_s=settings.clock_behind_max_s,
        )
        self.stats: IngestStats = self.writer.stats
        self.connected = False
        self.protocol: str | None = None
        self.ready = asyncio.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._pending_acks: set[asyncio.Task[None]] = set()
        self._commands_wake = asyncio.Event()
        self.delivery_rounds = 0
        """Fleet-command delivery passes done (each looked at every pending command; for tests and stats)."""

    # -- connection -----------------------------------------------------------------------------------
    def _client(self, version: aiomqtt.ProtocolVersion) -> aiomqtt.Client:
        s = self.settings
        kwargs: dict[str, Any] = {
            "identifier": s.mqtt_client_id,
            "protocol": version,
            "keepalive": s.mqtt_keepalive_s,
            "max_inflight_messages": 1000,
            "queue_type": _CapturingQueue,
            "timeout": 30,
        }
        if version == aiomqtt.ProtocolVersion.V5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.mqtt_session_expiry_s
            props.ReceiveMaximum = 65535
            kwargs["clean_start"] = False
            kwargs["properties"] = props
        else:
            kwargs["clean_session"] = False
        if s.mqtt_username:
            kwargs["username"] = s.mqtt_username
            kwargs["password"] = s.mqtt_password.get_secret_value() if s.mqtt_password else None
        if s.mqtt_tls:
            kwargs["tls_context"] = ssl.create_default_context(cafile=str(s.mqtt_tls_ca) if s.mqtt_tls_ca else None)
        return aiomqtt.Client(s.mqtt_host, s.mqtt_port, **kwargs)

    def subscriptions(self, version: aiomqtt.ProtocolVersion) -> list[str]:
        """Everything under ``ms/`` (unknown channels and versions are dead-lettered, not unseen); with a share
        group, shared, plus ``status`` plain because brokers give retained messages only to plain subscriptions."""
        group = self.settings.mqtt_share_group if version == aiomqtt.ProtocolVersion.V5 else None
        if group:
            return [f"$share/{group}/{INGEST_FILTER}", subscription(Channel.STATUS)]
        return [INGEST_FILTER]

    async def _versions(self) -> list[aiomqtt.ProtocolVersion]:
        if self.protocol == "5" or self.settings.mqtt_protocol == "5":
            return [aiomqtt.ProtocolVersion.V5]
        if self.protocol == "3.1.1" or self.settings.mqtt_protocol == "3.1.1":
            return [aiomqtt.ProtocolVersion.V311]
        return [await self._probe()]

    async def _probe(self) -> aiomqtt.ProtocolVersion:
        """auto: does the broker speak MQTT 5? A bare CONNECT (no properties: amqtt hangs on those)."""
        s = self.settings
        kwargs: dict[str, Any] = {"protocol": aiomqtt.ProtocolVersion.V5, "timeout": 10}
        if s.mqtt_username:
            kwargs["username"] = s.mqtt_username
            kwargs["password"] = s.mqtt_password.get_secret_value() if s.mqtt_password else None
        if s.mqtt_tls:
            kwargs["tls_context"] = ssl.create_default_context(cafile=str(s.mqtt_tls_ca) if s.mqtt_tls_ca else None)
        try:
            async with aiomqtt.Client(s.mqtt_host, s.mqtt_port, **kwargs):
                return aiomqtt.ProtocolVersion.V5
        except MqttConnectError as exc:
            # 3.1.1 "unacceptable protocol version" / 5 "unsupported protocol version"
            if getattr(exc.rc, "value", exc.rc) in (1, 132):
                log.info("broker %s:%s refuses MQTT 5: using 3.1.1 with plain subscriptions", s.mqtt_host, s.mqtt_port)
                return aiomqtt.ProtocolVersion.V311
            raise

    async def run(self) -> None:
        """Connect, subscribe, consume; reconnect with back-off on any MQTT error. Cancel to stop."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-writer")
        checkpointer = (
            asyncio.create_task(self._checkpoint_loop(), name="wal-checkpoint")
            if self.writer.engine.dialect.name == "sqlite"
            else None
        )
        backoff = 0.5
        try:
            while True:
                try:
                    versions = await self._versions()
                except aiomqtt.MqttError as exc:
                    versions = []
                    self.stats.report_once(
                        "mqtt",
                        "ingest cannot reach the broker %s:%s: %s",
                        self.settings.mqtt_host,
                        self.settings.mqtt_port,
                        exc,
                    )
                for version in versions:
                    had_connected = False
                    queue: asyncio.Queue[aiomqtt.Message] | None = None
                    try:
                        client = self._client(version)
                        queue = _CapturingQueue.last  # captured before any await: it is this client's
                        assert queue is not None
                        client.pending_calls_threshold = MAX_PENDING_ACKS + 1  # our own bound
                        async with client:
                            had_connected = True
                            self.protocol = "5" if version == aiomqtt.ProtocolVersion.V5 else "3.1.1"
                            for topic in self.subscriptions(version):
                                await client.subscribe(topic, qos=1, properties=_subscription_id(topic, version))
                            self.connected = True
                            self.ready.set()
                            self.stats.recovered(
                                "mqtt",
                                "ingest connected to %s:%s (MQTT %s)",
                                self.settings.mqtt_host,
                                self.settings.mqtt_port,
                                self.protocol,
                            )
                            log.info("ingest %s subscribed (MQTT %s)", self.settings.mqtt_client_id, self.protocol)
                            backoff = 0.5
                            # not a TaskGroup: it would wrap a disconnect's MqttError in an ExceptionGroup that
                            # the ``except aiomqtt.MqttError`` below never matches, and the worker would exit
                            # instead of reconnecting (a broker restart ended the ingest process)
                            deliver = asyncio.create_task(self._deliver_loop(client), name="fleet-commands")
                            try:
                                await self._consume(client, queue)
                            finally:
                                deliver.cancel()
                                await asyncio.gather(deliver, return_exceptions=True)
                    except aiomqtt.MqttError as exc:
                        self.connected = False
                        self.stats.report_once(
                            "mqtt",
                            "ingest MQTT connection to %s:%s failed: %s",
                            self.settings.mqtt_host,
                            self.settings.mqtt_port,
                            exc,
                        )
                        await self._commit_leftovers(queue)
                        if had_connected:
                            break  # reconnect with the protocol that worked
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)
        finally:
            self.connected = False
            if checkpointer is not None:
                checkpointer.cancel()
                await asyncio.gather(checkpointer, return_exceptions=True)
            for task in list(self._pending_acks):
                task.cancel()
            self._executor.shutdown(wait=True, cancel_futures=True)

    async def _checkpoint_loop(self, every_s: float = 1.0) -> None:
        """SQLite: copy the WAL back into the database off the commit path (a PASSIVE checkpoint never
        blocks the writer), so commits do not pay for auto-checkpoints and latency stays flat."""
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="wal-checkpoint") as pool:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await loop.run_in_executor(pool, self._checkpoint)
                except Exception as exc:  # a busy database is fine: try again next time
                    self.stats.report_once("checkpoint", "WAL checkpoint failed: %s", exc, level=logging.DEBUG)

    def _checkpoint(self) -> None:
        raw = self.writer.engine.raw_connection()  # autocommit: outside any transaction, never BEGIN
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        finally:
            raw.close()

    # -- consuming ------------------------------------------------------------------------------------
    async def _consume(self, client: aiomqtt.Client, queue: asyncio.Queue[aiomqtt.Message]) -> None:
        if self.settings.ingest_pipeline:
            await self._consume_pipelined(client, queue)
            return
        while True:
            raw = await self._receive(client, queue)
            if raw:
                await self._acknowledge(client, await self._commit(raw))

    async def _receive(self, client: aiomqtt.Client, queue: asyncio.Queue[aiomqtt.Message]) -> list[RawMessage]:
        """Wait for one message, drain what is queued (linger once if that is less than a full batch)."""
        max_batch = self.settings.ingest_max_batch
        linger = self.settings.ingest_max_wait_ms / 1000
        batch = [await client.messages.__aiter__().__anext__()]
        self._drain(queue, batch, max_batch)
        if len(batch) < max_batch and linger > 0:
            await asyncio.sleep(linger)
            self._drain(queue, batch, max_batch)
        return _ingest_input(batch)

    async def _acknowledge(self, client: aiomqtt.Client, result: CommitResult) -> None:
        await self._publish_acks(client, result)
        if result.commands_due:
            self._commands_wake.set()

    async def _consume_pipelined(self, client: aiomqtt.Client, queue: asyncio.Queue[aiomqtt.Message]) -> None:
        """Receive and validate batch N+1 (validator thread) while batch N commits (writer thread); commits stay
        in order, one at a time, and each batch's acks go out only after its own commit returned. At most one
        validated batch waits for the writer, so a slow database pushes back on receiving (the broker queues)."""
        loop = asyncio.get_running_loop()
        handoff: asyncio.Queue[Prepared] = asyncio.Queue(maxsize=1)
        committer = asyncio.create_task(self._commit_loop(client, handoff), name="ingest-commit")
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="ingest-validate") as validator:
                while True:
                    raw = await self._receive(client, queue)
                    if not raw:
                        continue
                    prepared = await loop.run_in_executor(validator, self.writer.prepare, raw)
                    put = asyncio.ensure_future(handoff.put(prepared))
                    await asyncio.wait({put, committer}, return_when=asyncio.FIRST_COMPLETED)
                    if committer.done():  # it never ends by itself: an unexpected failure, raised here
                        put.cancel()
                        committer.result()
        finally:
            # the connection dropped (or we stop): what was received is still committed; its acks may not get
            # out on the dead connection — the edges resend and the duplicates are acked then
            # (bounded: with the database down the commit retries forever, and a stopping worker must stop; what
            # is not committed then is not acked either, so the edges resend it)
            if not committer.done():
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(handoff.join(), LEFTOVER_COMMIT_S)
            committer.cancel()
            await asyncio.gather(committer, return_exceptions=True)

    async def _commit_loop(self, client: aiomqtt.Client, handoff: asyncio.Queue[Prepared]) -> None:
        while True:
            prepared = await handoff.get()
            try:
                await self._acknowledge(client, await self._commit_with_retry(self.writer.commit_prepared, prepared))
            finally:
                handoff.task_done()

    async def _commit_leftovers(self, queue: asyncio.Queue[aiomqtt.Message] | None) -> None:
        """Commit what was received before the connection dropped (acks follow when the edge resends)."""
        if queue is None or queue.empty():
            return
        batch: list[aiomqtt.Message] = []
        self._drain(queue, batch, 1 << 30)
        await self._commit(_ingest_input(batch))

    @staticmethod
    def _drain(queue: asyncio.Queue[aiomqtt.Message], batch: list[aiomqtt.Message], limit: int) -> None:
        while len(batch) < limit:
            try:
                batch.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    async def _commit(self, batch: list[RawMessage]) -> CommitResult:
        return await self._commit_with_retry(self.writer.commit, batch)

    async def _commit_with_retry(self, commit: Callable[[_B], CommitResult], batch: _B) -> CommitResult:
        loop = asyncio.get_running_loop()
        delay = 0.2
        while True:
            try:
                result = await loop.run_in_executor(self._executor, commit, batch)
            except Exception as exc:  # DB unwell: keep the batch, retry; the edges keep theirs meanwhile
                with self.stats._lock:
                    self.stats.transaction_failures += 1
                self.stats.report_once(
                    "db", "ingest commit failed (%s); retrying every few seconds", exc, level=logging.ERROR
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.stats.recovered("db", "ingest commits again")
            return result

    # -- fleet commands (cloud → edge) ----------------------------------------------------------------
    async def _deliver_loop(self, client: aiomqtt.Client) -> None:
        """Publish the pending commands of online agents: after an agent's status/results arrive, and every
        ``fleet_command_poll_s`` (commands created in the API). See cloud/fleet_commands.py."""
        loop = asyncio.get_running_loop()
        engine = writer(self.writer.engine)
        while True:
            try:
                await asyncio.wait_for(self._commands_wake.wait(), self.settings.fleet_command_poll_s)
            except TimeoutError:
                pass
            self._commands_wake.clear()
            try:
                due = await loop.run_in_executor(self._executor, self._due, engine)
            except Exception as exc:  # DB unwell: the next round tries again
                self.stats.report_once("commands", "cannot read fleet commands: %s", exc, level=logging.ERROR)
                continue
            self.delivery_rounds += 1
            for command_id, topic, payload in due:
                try:
                    await client.publish(topic, payload, qos=1, timeout=60)
                except aiomqtt.MqttError as exc:  # stays pending: sent again next round
                    self.stats.report_once("commands", "could not publish command on %s: %s", topic, exc)
                    continue
                log.info("command %s published on %s", command_id, topic)
                try:
                    await loop.run_in_executor(self._executor, self._sent, engine, command_id)
                except Exception as exc:  # stays pending: published again next round, the edge applies it once
                    self.stats.report_once("commands", "cannot mark command %s sent: %s", command_id, exc)

    def _due(self, engine: Engine) -> list[tuple[str, str, bytes]]:
        with engine.begin() as conn:
            return due_for_delivery(conn, self.settings, utcnow())

    def _sent(self, engine: Engine, command_id: str) -> None:
        with engine.begin() as conn:
            mark_sent(conn, command_id, utcnow())

    # -- acknowledging (after commit) -----------------------------------------------------------------
    async def _publish_acks(self, client: aiomqtt.Client, result: CommitResult) -> None:
        now = utcnow()
        for (_site, agent_id, _incarnation), pending in result.acks.items():
            ack = Ack(
                agent_id=agent_id,
                incarnation=pending.incarnation,
                committed=[AckRange(first=a, last=b) for a, b in seq_ranges(pending.committed)],
                rejected=[RejectedSeq(seq=s, reason=r[:200]) for s, r in pending.rejected],
                ts=now,
            )
            topic = topic_for(pending.site_id, agent_id, Channel.ACK)
            task = asyncio.create_task(self._publish(client, topic, encode(ack)))
            self._pending_acks.add(task)
            task.add_done_callback(self._pending_acks.discard)
        while len(self._pending_acks) > MAX_PENDING_ACKS:
            await asyncio.wait(list(self._pending_acks), return_when=asyncio.FIRST_COMPLETED)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        try:
            await client.publish(topic, payload, qos=1, timeout=60)
        except aiomqtt.MqttError as exc:  # the edge resends; the duplicate is acked then
            with self.stats._lock:
                self.stats.ack_failures += 1
            self.stats.report_once("ack", "could not publish an ack on %s: %s", topic, exc)
            return
        with self.stats._lock:
            self.stats.acks_published += 1


#: MQTT 5 subscription identifiers: a status publish matches both the shared ``ms/#`` and the plain status
#: subscription, and the broker delivers it once per subscription; the plain one is the copy we keep.
_SHARED_SUBSCRIPTION_ID, _STATUS_SUBSCRIPTION_ID = 1, 2
_STATUS_FILTER = subscription(Channel.STATUS)


def _subscription_id(topic: str, version: aiomqtt.ProtocolVersion) -> Properties | None:
    if version != aiomqtt.ProtocolVersion.V5:
        return None
    properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
    shared = topic.startswith("$share/")
    properties.SubscriptionIdentifier = _SHARED_SUBSCRIPTION_ID if shared else _STATUS_SUBSCRIPTION_ID
    return properties


def _second_copy_of_a_status(message: aiomqtt.Message) -> bool:
    """A status that came through the shared subscription while the plain status subscription also has it."""
    ids = getattr(message.properties, "SubscriptionIdentifier", None) or []
    shared_only = _SHARED_SUBSCRIPTION_ID in ids and _STATUS_SUBSCRIPTION_ID not in ids
    return shared_only and message.topic.matches(_STATUS_FILTER)


def _ingest_input(batch: list[aiomqtt.Message]) -> list[RawMessage]:
    """The received messages the writer takes: all but the cloud's own publications (acks, commands, notify)
    and the shared subscription's copy of a status (the plain status subscription delivers it too)."""
    return [
        RawMessage(m.topic.value, _payload(m))
        for m in batch
        if not published_by_cloud(m.topic.value) and not _second_copy_of_a_status(m)
    ]


def _payload(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
