"""Fleet simulator: N simulated sites, each a real MQTT client speaking the protocol like an edge agent.

Every site publishes a retained ``online`` status (its last will says ``offline``/``lwt``), heartbeats,
and telemetry batches of ``--batch`` readings from ``--sensors-per-site`` probes every ``--interval``
seconds. Like a real agent it keeps every batch in an outbox until the cloud's application ack
names its seq (committed or rejected), re-sends unacknowledged batches after a reconnect or after
``ack_timeout``, and bounds what is in flight. At the end it waits for the acks and prints totals.

Imports only :mod:`protocols` and aiomqtt (the ``simulators`` contract).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
import typer

from protocols import (
    Ack,
    Channel,
    Heartbeat,
    Reading,
    SiteState,
    Status,
    TelemetryBatch,
    decode,
    encode,
    topic_for,
)

AGENT_VERSION = "fleet-sim/1"


@dataclass
class SiteTotals:
    site_id: str
    batches: int = 0
    readings: int = 0
    published: int = 0  # publishes incl. re-sends
    resent: int = 0
    acked: int = 0
    rejected: int = 0
    reconnects: int = 0

    @property
    def unacked(self) -> int:
        return self.batches - self.acked - self.rejected


@dataclass
class FleetReport:
    sites: list[SiteTotals] = field(default_factory=list)
    elapsed_s: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sites)

    def summary(self) -> str:
        readings = self.total("readings")
        rate = readings / self.elapsed_s if self.elapsed_s else 0.0
        return (
            f"站点 sites {len(self.sites)}  批次 batches {self.total('batches')}  读数 readings {readings}  "
            f"已确认 acked {self.total('acked')}  被拒 rejected {self.total('rejected')}  "
            f"未确认 unacked {self.total('unacked')}  重发 resent {self.total('resent')}  "
            f"重连 reconnects {self.total('reconnects')}  用时 {self.elapsed_s:.1f} s  ({rate:,.0f} readings/s)"
        )


class SimulatedSite:
    """One site = one agent = one MQTT client with an outbox."""

    def __init__(
        self,
        site_id: str,
        *,
        host: str,
        port: int,
        sensors: int,
        batch: int,
        interval: float,
        window: int = 500,
        ack_timeout: float = 30.0,
        heartbeat_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        self.site_id = site_id
        self.agent_id = f"{site_id}-agent"
        self.host, self.port = host, port
        self.sensor_ids = sensor_ids(sensors)
        self.batch = batch
        self.interval = interval
        self.window = window
        self.ack_timeout = ack_timeout
        self.heartbeat_s = heartbeat_s
        self.totals = SiteTotals(site_id)
        self.outbox: OrderedDict[int, tuple[bytes, float]] = OrderedDict()  # seq → (payload, last sent)
        self._seq = 0
        self._rng = random.Random(seed if seed is not None else hash(site_id))
        self._values = [4.0 + self._rng.uniform(-1, 1) for _ in self.sensor_ids]
        self._space = asyncio.Condition()
        self._started = time.monotonic()

    def topic(self, channel: Channel) -> str:
        return topic_for(self.site_id, self.agent_id, channel)

    def _readings(self, now: datetime) -> list[Reading]:
        out = []
        for i, sensor in enumerate(self.sensor_ids):
            self._values[i] += self._rng.gauss(0, 0.05) + (4.0 - self._values[i]) * 0.05
            out.append(Reading(sensor_id=sensor, ts=now, value=round(self._values[i], 2), unit="°C"))
        return out

    def make_batches(self) -> list[int]:
        """One tick: a reading from every sensor, cut into batches of ``batch``, each with the next seq."""
        now = datetime.now(UTC)
        readings = self._readings(now)
        payloads = []
        for start in range(0, len(readings), self.batch):
            self._seq += 1
            chunk = readings[start : start + self.batch]
            msg = TelemetryBatch(
                site_id=self.site_id, agent_id=self.agent_id, seq=self._seq, sent_at=now, readings=chunk
            )
            payload = encode(msg)
            self.outbox[self._seq] = (payload, 0.0)
            self.totals.batches += 1
            self.totals.readings += len(chunk)
            payloads.append(self._seq)
        return payloads

    def on_ack(self, ack: Ack) -> None:
        rejected = {r.seq for r in ack.rejected}
        for seq in ack.seqs():
            if self.outbox.pop(seq, None) is not None:
                if seq in rejected:
                    self.totals.rejected += 1
                else:
                    self.totals.acked += 1

    async def run(self, *, count: int | None, duration: float | None, stop: asyncio.Event) -> None:
        will = aiomqtt.Will(
            self.topic(Channel.STATUS),
            encode(
                Status(
                    site_id=self.site_id,
                    agent_id=self.agent_id,
                    state=SiteState.OFFLINE,
                    ts=datetime.now(UTC),
                    reason="lwt",
                    agent_version=AGENT_VERSION,
                )
            ),
            qos=1,
            retain=True,
        )
        deadline = None if duration is None else self._started + duration
        ticks = 0
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.agent_id,
                    clean_session=False,
                    will=will,
                    max_inflight_messages=self.window,
                    keepalive=30,
                ) as client:
                    client.pending_calls_threshold = 1 << 30  # the outbox window bounds what is in flight
                    await client.subscribe(self.topic(Channel.ACK), qos=1)
                    await client.publish(self.topic(Channel.STATUS), self._status(SiteState.ONLINE), qos=1, retain=True)
                    receiver = asyncio.create_task(self._receive(client))
                    try:
                        await self._resend(client, force=True)
                        last_heartbeat = 0.0
                        while not stop.is_set():
                            finished = (count is not None and ticks >= count) or (
                                deadline is not None and time.monotonic() >= deadline
                            )
                            if finished:
                                break
                            tick_started = time.monotonic()
                            for seq in self.make_batches():
                                await self._wait_window()
                                if seq in self.outbox:
                                    await self._send(client, seq)
                            ticks += 1
                            if tick_started - last_heartbeat >= self.heartbeat_s:
                                last_heartbeat = tick_started
                                await client.publish(self.topic(Channel.HEARTBEAT), self._heartbeat(), qos=0)
                            await self._resend(client)
                            if self.interval > 0:
                                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - tick_started)))
                        # drain: wait for the acks of what is still in the outbox, re-sending as needed
                        while self.outbox and not stop.is_set():
                            await asyncio.sleep(0.05)
                            await self._resend(client)
                        stop_status = self._status(SiteState.OFFLINE, reason="shutdown")
                        await client.publish(self.topic(Channel.STATUS), stop_status, qos=1, retain=True)
                        return
                    finally:
                        receiver.cancel()
                        await asyncio.gather(receiver, return_exceptions=True)
            except aiomqtt.MqttError:
                self.totals.reconnects += 1
                await asyncio.sleep(0.5)

    async def _wait_window(self) -> None:
        async with self._space:
            await self._space.wait_for(lambda: len(self.outbox) <= self.window)

    async def _send(self, client: aiomqtt.Client, seq: int) -> None:
        payload, _ = self.outbox[seq]
        self.outbox[seq] = (payload, time.monotonic())
        await client.publish(self.topic(Channel.TELEMETRY), payload, qos=1)
        self.totals.published += 1

    async def _resend(self, client: aiomqtt.Client, *, force: bool = False) -> None:
        now = time.monotonic()
        for seq, (_, sent) in list(self.outbox.items()):
            if seq in self.outbox and (force or not sent or now - sent > self.ack_timeout):
                if sent:
                    self.totals.resent += 1
                await self._send(client, seq)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                ack = decode(message.payload if isinstance(message.payload, bytes) else b"", Ack)
            except ValueError:
                continue
            self.on_ack(ack)
            async with self._space:
                self._space.notify_all()

    def _status(self, state: SiteState, reason: str | None = None) -> bytes:
        return encode(
            Status(
                site_id=self.site_id,
                agent_id=self.agent_id,
                state=state,
                ts=datetime.now(UTC),
                agent_version=AGENT_VERSION,
                reason=reason,
            )
        )

    def _heartbeat(self) -> bytes:
        oldest = min((sent for _, sent in self.outbox.values() if sent), default=None)
        return encode(
            Heartbeat(
                site_id=self.site_id,
                agent_id=self.agent_id,
                ts=datetime.now(UTC),
                uptime_s=time.monotonic() - self._started,
                outbox_depth=len(self.outbox),
                outbox_oldest_age_s=None if oldest is None else time.monotonic() - oldest,
            )
        )


def sensor_ids(n: int) -> list[str]:
    """The sensor ids of a simulated site with ``n`` sensors."""
    return [f"t{i:03d}" for i in range(n)]


def fleet_world(sites: int, sensors_per_site: int, prefix: str = "sim") -> dict[str, list[str]]:
    """site id → sensor ids of the fleet :func:`run_fleet` simulates: what an installer registers in the cloud
    before the boxes report (the cloud quarantines data of unregistered sites)."""
    return {f"{prefix}{i:04d}": sensor_ids(sensors_per_site) for i in range(sites)}


async def run_fleet(
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    sites: int = 10,
    sensors_per_site: int = 10,
    interval: float = 5.0,
    batch: int = 50,
    count: int | None = None,
    duration: float | None = None,
    prefix: str = "sim",
    drain_timeout: float = 30.0,
) -> FleetReport:
    """Run the fleet until ``count`` ticks per site or ``duration`` seconds, then wait for acks."""
    if count is None and duration is None:
        duration = math.inf
    fleet = [
        SimulatedSite(site_id, host=host, port=port, sensors=sensors_per_site, batch=batch, interval=interval)
        for site_id in fleet_world(sites, sensors_per_site, prefix)
    ]
    stop = asyncio.Event()
    started = time.monotonic()
    tasks = [asyncio.create_task(site.run(count=count, duration=duration, stop=stop)) for site in fleet]
    done, pending = await asyncio.wait(
        tasks, timeout=None if duration in (None, math.inf) else (duration or 0) + drain_timeout
    )
    if pending:
        stop.set()
        await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    return FleetReport([s.totals for s in fleet], time.monotonic() - started)


def fleet_command(
    sites: int = typer.Option(10, "--sites", min=1, help="模拟站点数 number of sites"),
    sensors_per_site: int = typer.Option(10, "--sensors-per-site", min=1, help="每站测点数 probes per site"),
    interval: float = typer.Option(5.0, "--interval", min=0.0, help="采样间隔秒 seconds between ticks (0 = flat out)"),
    batch: int = typer.Option(50, "--batch", min=1, max=5000, help="每批读数 readings per batch"),
    duration: float | None = typer.Option(None, "--duration", help="运行秒数 seconds to run"),
    count: int | None = typer.Option(None, "--count", help="每站采样次数 ticks per site"),
    host: str = typer.Option("127.0.0.1", "--host", envvar="SENTINEL_MQTT_HOST"),
    port: int = typer.Option(1883, "--port", envvar="SENTINEL_MQTT_PORT"),
    prefix: str = typer.Option("sim", "--prefix", help="site id prefix"),
) -> None:
    """模拟一批站点（真实 MQTT 客户端，带发件箱/确认）。Simulate a fleet of sites with outbox/ack behaviour."""
    report = asyncio.run(
        run_fleet(
            host=host,
            port=port,
            sites=sites,
            sensors_per_site=sensors_per_site,
            interval=interval,
            batch=batch,
            count=count,
            duration=duration,
            prefix=prefix,
        )
    )
    typer.echo(report.summary())
    if report.total("unacked"):
        raise typer.Exit(1)
