"""The fleet simulator against the real ingest: every batch acknowledged, stored once, re-sent after an outage."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from cloud.core.config import Settings
from cloud.telemetry.store import TelemetryStore
from sentinel_cli.servers import Server
from simulators.fleet import fleet_world, run_fleet
from tests.cloud.conftest import running_ingest
from tests.utils.registration import register_many

pytestmark = pytest.mark.broker


async def test_fleet_batches_are_all_acked_and_stored_once(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    register_many(cloud_engine, fleet_world(sites=3, sensors_per_site=60))
    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        report = await run_fleet(port=mosquitto.port, sites=3, sensors_per_site=60, interval=0, batch=50, count=5)
    assert report.total("batches") == 3 * 5 * 2  # 60 sensors → batches of 50 + 10
    assert report.total("acked") == report.total("batches") and report.total("unacked") == 0
    assert cloud_store.count() == report.total("readings") == 3 * 5 * 60
    assert service.stats.statuses >= 3  # type: ignore[attr-defined]


async def test_fleet_keeps_batches_while_the_cloud_is_down_and_resends(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    register_many(cloud_engine, fleet_world(sites=2, sensors_per_site=10))
    # create the ingest's persistent session, then take the cloud away
    async with running_ingest(cloud_settings, cloud_engine, cloud_store):
        pass
    fleet = asyncio.create_task(
        run_fleet(port=mosquitto.port, sites=2, sensors_per_site=10, interval=0.05, batch=50, count=10)
    )
    await asyncio.sleep(1.0)
    assert not fleet.done()  # no acks while the cloud is down: the sites keep their outboxes
    async with running_ingest(cloud_settings, cloud_engine, cloud_store):
        report = await asyncio.wait_for(fleet, 60)
    assert report.total("unacked") == 0
    assert cloud_store.count() == report.total("readings") == 2 * 10 * 10
