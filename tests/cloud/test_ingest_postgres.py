"""Lossless ingest on PostgreSQL: business DB and telemetry store on a real PostgreSQL, real mosquitto.

The same checks as ``test_ingest.py`` (issue 3) plus the alert-upsert race on PostgreSQL, where there is no
database-wide write lock: concurrent raises must still leave one open alert and one clue, and concurrent
updates must not lose increments.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from cloud.alerts import apply_signal
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine, writer
from cloud.telemetry.store import TelemetryStore, open_store
from protocols import Ack, AlertPhase, Channel, decode, encode, topic_for
from sentinel_cli.servers import Server
from tests.cloud.conftest import ADMIN_PASSWORD, running_ingest, wait_until
from tests.cloud.test_alerts import signal
from tests.cloud.test_ingest import batch, malformed, publish_all, register_world, scalar
from tests.utils.registry_db import fresh_postgres, let_postgres_user_in

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def pg_settings(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, postgres_server: Server
) -> Iterator[Settings]:
    let_postgres_user_in(tmp_path_factory.getbasetemp())
    with fresh_postgres(postgres_server.extra["dsn"]) as url:
        yield Settings(
            data_dir=tmp_path / "data",
            database_url=url,
            telemetry_backend="postgres",
            jwt_secret="test-secret-" + "x" * 32,
            admin_password=ADMIN_PASSWORD,
            ingest_enabled=False,
            presence_enabled=False,
            mqtt_client_id="test-pg-ingest-1",
            ingest_max_wait_ms=2,
        )


@pytest.fixture
def pg_engine(pg_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(pg_settings)
    init_db(engine)
    register_world(engine)  # as installed (data of unregistered sites is quarantined, #13)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_store(pg_settings: Settings, pg_engine: Engine) -> Iterator[TelemetryStore]:
    store = open_store(pg_settings, pg_engine)
    assert store.name == "postgres"
    yield store
    store.close()


@pytest.mark.broker
async def test_pg_10k_batches_with_duplicates_and_malformed_stored_exactly_once(
    mosquitto: Server, pg_settings: Settings, pg_engine: Engine, pg_store: TelemetryStore
) -> None:
    pg_settings.mqtt_port = mosquitto.port
    agents = [(f"site{i:02d}", f"agent{i:02d}") for i in range(20)]
    good = [(s, a, seq) for s, a in agents for seq in range(1, 501)]  # 10,000 batches
    rng = random.Random(11)
    messages = [(topic_for(s, a, Channel.TELEMETRY), encode(batch(s, a, seq))) for s, a, seq in good]
    duplicates = rng.sample(messages, 1000)
    bad = [malformed(i, *agents[i % len(agents)]) for i in range(100)]
    stream = messages + duplicates + [(t, p) for t, p, _ in bad]
    rng.shuffle(stream)
    acked: dict[str, set[int]] = {a: set() for _, a in agents}

    async with running_ingest(pg_settings, pg_engine, pg_store) as service:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="test-pg-acks") as listener:
            await listener.subscribe("ms/v1/+/+/ack", qos=1)

            async def collect() -> None:
                async for m in listener.messages:
                    ack = decode(m.payload, Ack)
                    acked[ack.agent_id].update(ack.seqs() - {r.seq for r in ack.rejected})

            collector = asyncio.create_task(collect())
            await publish_all(mosquitto.port, stream)
            await wait_until(
                lambda: (
                    service.stats.received >= len(stream)  # type: ignore[attr-defined]
                    and all(len(acked[a]) == 500 for _, a in agents)
                ),
                90,
                "every message processed and every good seq acked",
            )
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)

    assert pg_store.count() == 20_000
    assert scalar(pg_engine, "SELECT count(*) FROM (SELECT DISTINCT site_id, sensor_id, ts FROM reading) d") == 20_000
    assert scalar(pg_engine, "SELECT count(*) FROM ingest_seq") == 10_000
    assert scalar(pg_engine, "SELECT count(*) FROM reading_latest") == 20 * 2
    for _, a in agents:
        assert acked[a] == set(range(1, 501))
    with pg_engine.connect() as conn:
        rows = conn.execute(text("SELECT topic, reason, payload FROM dead_letter")).all()
    assert sorted((t, r, bytes(p)) for t, r, p in rows) == sorted((t, r, p) for t, p, r in bad)
    stats = service.stats.snapshot()  # type: ignore[attr-defined]
    assert (stats["committed"], stats["duplicates"], stats["dead_letters_total"]) == (10_000, 1000, 100)


@pytest.mark.broker
async def test_pg_two_workers_on_a_shared_subscription_split_without_loss_or_duplication(
    mosquitto: Server, pg_settings: Settings, pg_engine: Engine, pg_store: TelemetryStore
) -> None:
    pg_settings.mqtt_port = mosquitto.port
    second = pg_settings.model_copy(update={"mqtt_client_id": "test-pg-ingest-2"})
    # the same agents reach both workers, duplicates included: dedup and reading_latest upserts contend
    stream = [
        (topic_for(f"s{i}", f"a{i}", Channel.TELEMETRY), encode(batch(f"s{i}", f"a{i}", seq)))
        for i in range(10)
        for seq in range(1, 301)
    ]
    stream += random.Random(3).sample(stream, 300)
    async with (
        running_ingest(pg_settings, pg_engine, pg_store) as w1,
        running_ingest(second, pg_engine, pg_store) as w2,
    ):
        assert w1.protocol == "5" and w2.protocol == "5"  # type: ignore[attr-defined]
        await publish_all(mosquitto.port, stream)
        await wait_until(
            lambda: w1.stats.received + w2.stats.received == len(stream),  # type: ignore[attr-defined]
            60,
            "every message received",
        )
        await wait_until(lambda: scalar(pg_engine, "SELECT count(*) FROM ingest_seq") == 3000, 60, "3000 commits")
    s1, s2 = w1.stats.snapshot(), w2.stats.snapshot()  # type: ignore[attr-defined]
    assert s1["received"] > 0 and s2["received"] > 0, f"the stream was not split: {s1} / {s2}"
    assert s1["committed"] + s2["committed"] == 3000
    assert s1["duplicates"] + s2["duplicates"] == 300
    assert pg_store.count() == 6000
    assert scalar(pg_engine, "SELECT count(*) FROM reading_latest") == 20
    assert scalar(pg_engine, "SELECT count(*) FROM dead_letter") == 0


def test_pg_simultaneous_raises_leave_one_open_alert_one_clue_and_every_update(pg_engine: Engine) -> None:
    workers = 8
    barrier = threading.Barrier(workers)
    created: list[bool] = []
    errors: list[BaseException] = []

    def raise_it(i: int) -> None:
        try:
            barrier.wait()
            with Session(writer(pg_engine)) as session:
                created.append(apply_signal(session, signal(AlertPhase.RAISE, 12.0 + i)).created)
                session.commit()
        except BaseException as exc:
            errors.append(exc)

    for _round in range(3):  # the race is timing-dependent: give it several chances to show
        with pg_engine.begin() as conn:
            conn.execute(text("UPDATE alert SET status='cleared' WHERE status='open'"))
        created.clear()
        threads = [threading.Thread(target=raise_it, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert sorted(created) == [False] * (workers - 1) + [True]
        assert scalar(pg_engine, "SELECT count(*) FROM alert WHERE status='open'") == 1
        assert scalar(pg_engine, "SELECT update_count FROM alert WHERE status='open'") == workers - 1, "lost update"
    assert scalar(pg_engine, "SELECT count(*) FROM alert") == 3
    # one clue: the alerts of one identity fold into the open clue
    assert scalar(pg_engine, "SELECT count(*) FROM clue") == 1
    assert scalar(pg_engine, "SELECT count(*) FROM journal_event WHERE action='alert.raised'") == 3
