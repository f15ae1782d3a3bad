"""Lossless ingest through a real mosquitto into real SQLite (issue 3's checks)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from sqlalchemy import Engine, text

from cloud.core.config import Settings
from cloud.telemetry.store import TelemetryStore
from protocols import (
    Ack,
    AlertEvent,
    AlertPhase,
    Channel,
    Reading,
    Severity,
    TelemetryBatch,
    decode,
    encode,
    topic_for,
)
from sentinel_cli import servers
from sentinel_cli.servers import Server
from tests.cloud.conftest import running_ingest, wait_until
from tests.utils.registration import register, register_many

pytestmark = pytest.mark.broker
#: a recent past (the ingest refuses data older than any edge backlog can be: clock_behind)
T0 = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=5)
#: the sites these tests publish from, registered as an installation does (unregistered data is quarantined, #13)
SITES = ["p1", "pharmacy-01", "restaurant-01"] + [f"s{i}" for i in range(10)] + [f"site{i:02d}" for i in range(20)]


def register_world(engine: Engine) -> None:
    """The sites, devices and sensors these tests publish from, as an installer registers them."""
    register_many(engine, {site: [f"t{i}" for i in range(4)] for site in SITES})
    register(engine, "pharmacy-1", devices={"fridge-1": ["t1"]})


@pytest.fixture(autouse=True)
def registered_world(cloud_engine: Engine) -> None:
    register_world(cloud_engine)


def batch(site: str, agent: str, seq: int, n: int = 2) -> TelemetryBatch:
    ts = T0 + timedelta(seconds=seq)
    return TelemetryBatch(
        site_id=site,
        agent_id=agent,
        seq=seq,
        sent_at=ts,
        readings=[Reading(sensor_id=f"t{i}", ts=ts, value=4.0 + i / 10, unit="°C") for i in range(n)],
    )


def malformed(i: int, site: str, agent: str) -> tuple[str, bytes, str]:
    """(topic, payload, expected reason) — ten kinds of bad input, cycling."""
    topic = topic_for(site, agent, Channel.TELEMETRY)
    good = json.loads(encode(batch(site, agent, 900_000 + i)))
    kind = i % 10
    if kind == 0:
        return topic, b"{not json", "malformed_json"
    if kind == 1:
        return topic, b"", "malformed_json"
    if kind == 2:
        good["readings"][0]["value"] = "warm"
        return topic, json.dumps(good).encode(), "invalid_payload"
    if kind == 3:
        good["readings"][0]["ts"] = "2026-11-26T08:00:00"  # naive timestamp
        return topic, json.dumps(good).encode(), "invalid_payload"
    if kind == 4:
        good["site_id"] = "someone-else"  # identity in payload differs from topic
        return topic, json.dumps(good).encode(), "identity_mismatch"
    if kind == 5:
        good["seq"] = 0
        return topic, json.dumps(good).encode(), "invalid_payload"
    if kind == 6:
        good["readings"] = []
        return topic, json.dumps(good).encode(), "invalid_payload"
    if kind == 7:
        return topic_for(site, agent, Channel.EVENTS), json.dumps(good).encode(), "invalid_payload"
    if kind == 8:
        return topic, b'{"pad": "' + b"x" * 1_100_000 + b'"}', "oversized"
    good["v"] = 2
    return topic, json.dumps(good).encode(), "unsupported_version"


async def publish_all(port: int, messages: list[tuple[str, bytes]], window: int = 500) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="test-publisher", max_inflight_messages=window) as c:
        c.pending_calls_threshold = 1 << 30
        for start in range(0, len(messages), window):
            await asyncio.gather(*(c.publish(t, p, qos=1) for t, p in messages[start : start + window]))


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


async def test_10k_batches_with_duplicates_and_malformed_stored_exactly_once(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    agents = [(f"site{i:02d}", f"agent{i:02d}") for i in range(20)]
    good = [(s, a, seq) for s, a in agents for seq in range(1, 501)]  # 10,000 batches
    assert len(good) == 10_000
    rng = random.Random(7)
    messages = [(topic_for(s, a, Channel.TELEMETRY), encode(batch(s, a, seq))) for s, a, seq in good]
    duplicates = rng.sample(messages, 1000)
    bad = [malformed(i, *agents[i % len(agents)]) for i in range(100)]
    stream = messages + duplicates + [(t, p) for t, p, _ in bad]
    rng.shuffle(stream)
    # the edge's seq order is kept per agent in reality; a shuffled stream is the harder case
    acked: dict[str, set[int]] = {a: set() for _, a in agents}
    rejected: dict[str, set[int]] = {a: set() for _, a in agents}

    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="test-acks") as listener:
            await listener.subscribe("ms/v1/+/+/ack", qos=1)

            async def collect() -> None:
                async for m in listener.messages:
                    ack = decode(m.payload, Ack)  # type: ignore[arg-type]
                    acked[ack.agent_id].update(ack.seqs() - {r.seq for r in ack.rejected})
                    rejected[ack.agent_id].update(r.seq for r in ack.rejected)

            collector = asyncio.create_task(collect())
            await publish_all(mosquitto.port, stream)
            await wait_until(
                lambda: (
                    service.stats.received >= len(stream)  # type: ignore[attr-defined]
                    and all(len(acked[a]) == 500 for _, a in agents)
                ),
                60,
                "every message processed and every good seq acked",
            )
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)

    assert cloud_store.count() == 10_000 * 2
    with cloud_engine.connect() as conn:
        distinct = conn.execute(text("SELECT count(*) FROM (SELECT DISTINCT site_id, sensor_id, ts_ms FROM reading)"))
        assert distinct.scalar_one() == 20_000, "a reading was stored twice"
    assert scalar(cloud_engine, "SELECT count(*) FROM ingest_seq") == 10_000
    for _, a in agents:
        assert acked[a] == set(range(1, 501))
    # every bad payload dead-lettered with its reason and its raw bytes
    with cloud_engine.connect() as conn:
        rows = conn.execute(text("SELECT topic, reason, payload FROM dead_letter")).all()
    assert len(rows) == 100
    expected = sorted((t, r, p) for t, p, r in bad)
    assert sorted((t, r, bytes(p)) for t, r, p in rows) == expected
    stats = service.stats.snapshot()  # type: ignore[attr-defined]
    assert stats["dead_letters_total"] == 100
    assert stats["committed"] == 10_000
    assert stats["duplicates"] == 1000
    # the rejected seqs that could be read were reported back so the edge can drop them
    assert any(rejected.values())


async def test_two_workers_on_a_shared_subscription_split_without_loss_or_duplication(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    second = cloud_settings.model_copy(update={"mqtt_client_id": "test-ingest-2"})
    stream = [
        (topic_for(f"s{i}", f"a{i}", Channel.TELEMETRY), encode(batch(f"s{i}", f"a{i}", seq)))
        for i in range(10)
        for seq in range(1, 301)
    ]
    async with (
        running_ingest(cloud_settings, cloud_engine, cloud_store) as w1,
        running_ingest(second, cloud_engine, cloud_store) as w2,
    ):
        assert w1.protocol == "5" and w2.protocol == "5"  # type: ignore[attr-defined]
        await publish_all(mosquitto.port, stream)
        await wait_until(lambda: scalar(cloud_engine, "SELECT count(*) FROM ingest_seq") == 3000, 60, "3000 commits")
    n1, n2 = w1.stats.received, w2.stats.received  # type: ignore[attr-defined]
    assert n1 > 0 and n2 > 0, f"the stream was not split: {n1} / {n2}"
    assert n1 + n2 == 3000, "a message was delivered to both workers (or lost)"
    assert cloud_store.count() == 6000


@pytest.mark.parametrize("pipeline", [True, False], ids=["pipelined", "unpipelined"])
async def test_ack_is_published_only_after_commit(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore, pipeline: bool
) -> None:
    """Pipelined, the next batch is validated while this one commits: its acks must still wait for its commit."""
    cloud_settings.mqtt_port = mosquitto.port
    cloud_settings.ingest_pipeline = pipeline
    violations: list[int] = []
    checked = 0
    async with running_ingest(cloud_settings, cloud_engine, cloud_store):
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="edge-x") as edge:
            await edge.subscribe(topic_for("p1", "a1", Channel.ACK), qos=1)
            await publish_all(
                mosquitto.port,
                [(topic_for("p1", "a1", Channel.TELEMETRY), encode(batch("p1", "a1", s))) for s in range(1, 1001)],
            )
            seen: set[int] = set()
            async with asyncio.timeout(30):
                async for m in edge.messages:
                    ack = decode(m.payload, Ack)  # type: ignore[arg-type]
                    with cloud_engine.connect() as conn:  # a separate connection sees only committed rows
                        committed = {r[0] for r in conn.execute(text("SELECT seq FROM ingest_seq WHERE agent_id='a1'"))}
                    violations.extend(sorted(ack.seqs() - committed))
                    checked += 1
                    seen |= ack.seqs()
                    if len(seen) == 1000:
                        break
    assert checked > 0
    assert violations == [], f"acked before commit: {violations[:10]}"


async def test_alert_events_become_alerts_and_clues(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port

    def event(seq: int, phase: AlertPhase, value: float) -> tuple[str, bytes]:
        ev = AlertEvent(
            site_id="pharmacy-1",
            agent_id="agent-1",
            seq=seq,
            alert_id="al-0001-fridge",
            device_id="fridge-1",
            sensor_id="t1",
            rule_id="drug_fridge_high",
            phase=phase,
            severity=Severity.MAJOR,
            category="drug_storage",
            value=value,
            limit=8.0,
            unit="°C",
            message=f"药品冷藏柜温度 {value} °C 超过上限 8 °C",
            ts=T0 + timedelta(minutes=seq),
            started_at=T0,
        )
        return topic_for("pharmacy-1", "agent-1", Channel.EVENTS), encode(ev)

    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        await publish_all(
            mosquitto.port,
            [event(1, AlertPhase.RAISE, 12.0), event(2, AlertPhase.UPDATE, 12.5), event(2, AlertPhase.UPDATE, 12.5)],
        )
        await wait_until(lambda: scalar(cloud_engine, "SELECT count(*) FROM ingest_seq") == 2, 20, "events")
        with cloud_engine.connect() as conn:
            alert = conn.execute(text("SELECT status, value, update_count FROM alert")).one()
            clue = conn.execute(text("SELECT site_id, sensor_id, value, severity, title, source_count FROM clue")).one()
        assert tuple(alert) == ("open", 12.5, 1)
        assert clue.site_id == "pharmacy-1" and clue.sensor_id == "t1" and clue.severity == "major"
        assert clue.value == 12.0 and "药品储存" in clue.title and clue.source_count == 1
        await publish_all(mosquitto.port, [event(3, AlertPhase.CLEAR, 6.0)])
        await wait_until(
            lambda: scalar(cloud_engine, "SELECT count(*) FROM alert WHERE status='cleared'") == 1, 20, "clear"
        )
        assert service.stats.snapshot()["clears_without_open_alert"] == 0  # type: ignore[attr-defined]
        # a second clear (the alert is no longer open) changes nothing and is counted, not dropped silently
        await publish_all(mosquitto.port, [event(4, AlertPhase.CLEAR, 6.0)])
        await wait_until(lambda: scalar(cloud_engine, "SELECT count(*) FROM ingest_seq") == 4, 20, "the 2nd clear")
        await wait_until(
            lambda: service.stats.snapshot()["clears_without_open_alert"] == 1,  # type: ignore[attr-defined]
            20,
            "the stray clear counted",
        )
        assert scalar(cloud_engine, "SELECT count(*) FROM alert") == 1


async def test_falls_back_to_mqtt_311_plain_subscriptions_on_amqtt(
    tmp_path: object, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    from pathlib import Path

    from sentinel_cli.servers import ServerUnavailable, start_embedded_broker

    try:
        broker = start_embedded_broker(Path(str(tmp_path)) / "amqtt")
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        cloud_settings.mqtt_port = broker.port
        async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
            assert service.protocol == "3.1.1"  # type: ignore[attr-defined]
            assert not any(
                s.startswith("$share")
                for s in service.subscriptions(  # type: ignore[attr-defined]
                    aiomqtt.ProtocolVersion.V311
                )
            )
            await publish_all(
                broker.port,
                [(topic_for("p1", "a1", Channel.TELEMETRY), encode(batch("p1", "a1", s))) for s in range(1, 21)],
            )
            await wait_until(lambda: cloud_store.count() == 40, 30, "40 readings via amqtt")
    finally:
        broker.stop()


async def test_two_sites_whose_agents_share_an_id_do_not_collide(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    """An agent is (site, agent id): pharmacy-01/edge-1 seq 1 and restaurant-01/edge-1 seq 1 are both new."""
    cloud_settings.mqtt_port = mosquitto.port
    sites = ("pharmacy-01", "restaurant-01")
    async with running_ingest(cloud_settings, cloud_engine, cloud_store):
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="edge-two-sites") as edge:
            for site in sites:
                await edge.subscribe(topic_for(site, "edge-1", Channel.ACK), qos=1)
            await publish_all(
                mosquitto.port,
                [
                    (topic_for(site, "edge-1", Channel.TELEMETRY), encode(batch(site, "edge-1", s)))
                    for s in range(1, 51)
                    for site in sites
                ],
            )
            acked: dict[str, set[int]] = {site: set() for site in sites}
            async with asyncio.timeout(30):
                async for m in edge.messages:
                    acked[m.topic.value.split("/")[2]] |= decode(m.payload, Ack).seqs()  # type: ignore[arg-type]
                    if all(len(v) == 50 for v in acked.values()):
                        break
    assert acked == {site: set(range(1, 51)) for site in sites}
    assert scalar(cloud_engine, "SELECT COUNT(*) FROM ingest_seq WHERE agent_id='edge-1'") == 100
    assert cloud_store.count() == 2 * 50 * 2


async def test_unknown_channel_and_version_are_dead_lettered_not_ignored(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    """Issue 15: a publish on ms/v1/<site>/<agent>/bogus was silently ignored. The cloud's own publications
    (acks, commands, app notifications) are not ingest input and are not dead-lettered."""
    cloud_settings.mqtt_port = mosquitto.port
    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        await publish_all(
            mosquitto.port,
            [
                ("ms/v1/p1/a1/bogus", b'{"hello": 1}'),
                ("ms/v2/p1/a1/telemetry", encode(batch("p1", "a1", 1))),
                ("ms/v1/p1/a1/cmd", b"{}"),
                ("ms/v1/notify/inspector-1", b"{}"),
                # matches both the shared ms/# and the plain status subscription: dead-lettered once, not twice
                (topic_for("p1", "a1", Channel.STATUS), b"not json"),
                (topic_for("p1", "a1", Channel.TELEMETRY), encode(batch("p1", "a1", 2))),
            ],
        )
        await wait_until(lambda: cloud_store.count() == 2, 20, "the good batch")
        await wait_until(lambda: scalar(cloud_engine, "SELECT count(*) FROM dead_letter") >= 3, 20, "dead letters")
        await asyncio.sleep(0.5)  # anything else that would be dead-lettered has arrived by now (not a timing check)
        stats = service.stats.snapshot()  # type: ignore[attr-defined]
    with cloud_engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(text("SELECT topic, reason FROM dead_letter")))
    assert rows == [
        ("ms/v1/p1/a1/bogus", "unknown_channel"),
        ("ms/v1/p1/a1/status", "malformed_json"),
        ("ms/v2/p1/a1/telemetry", "unsupported_version"),
    ]
    assert stats["dead_letters"] == {"unknown_channel": 1, "malformed_json": 1, "unsupported_version": 1}


async def test_the_worker_reconnects_after_a_broker_restart(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    """Regression: the fleet-command task ran in a TaskGroup, so a disconnect surfaced as an ExceptionGroup that
    the reconnect loop did not catch and the worker ended at the first broker restart (nothing acked after it)."""
    cloud_settings.mqtt_port = mosquitto.port
    topic = topic_for("p1", "a1", Channel.TELEMETRY)
    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        await publish_all(mosquitto.port, [(topic, encode(batch("p1", "a1", 1)))])
        await wait_until(lambda: scalar(cloud_engine, "SELECT COUNT(*) FROM ingest_seq") == 1, what="seq 1")
        mosquitto.stop()
        await wait_until(lambda: not service.connected, what="the worker sees the broker go")  # type: ignore[attr-defined]
        restarted = servers.start_mosquitto(mosquitto.workdir, mosquitto.port, persistence=True)
        try:
            # published once the worker is back (mosquitto does not restore a shared subscription from its
            # persistence, so what is published before the re-subscribe waits for the edge's resend)
            await wait_until(lambda: service.connected, what="the worker reconnects")  # type: ignore[attr-defined]
            await publish_all(restarted.port, [(topic, encode(batch("p1", "a1", 2)))])
            await wait_until(
                lambda: scalar(cloud_engine, "SELECT COUNT(*) FROM ingest_seq") == 2, what="seq 2 after the restart"
            )
            assert service.connected  # type: ignore[attr-defined]
        finally:
            restarted.stop()
