"""Fixtures of the cloud-core tests: settings in a temp dir, a real SQLite DB, the ingest on a real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine
from cloud.telemetry.store import TelemetryStore, open_store

ADMIN_PASSWORD = "Admin-Passw0rd!"


@pytest.fixture
def cloud_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        jwt_secret="test-secret-" + "x" * 32,
        admin_password=ADMIN_PASSWORD,
        ingest_enabled=False,
        presence_enabled=False,
        mqtt_client_id="test-ingest-1",
        ingest_max_wait_ms=2,
    )


@pytest.fixture
def cloud_engine(cloud_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(cloud_settings)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def cloud_store(cloud_settings: Settings, cloud_engine: Engine) -> Iterator[TelemetryStore]:
    store = open_store(cloud_settings, cloud_engine)
    yield store
    store.close()


@contextlib.asynccontextmanager
async def running_ingest(settings: Settings, engine: Engine, store: TelemetryStore) -> AsyncIterator[object]:
    """An :class:`IngestService` task, subscribed before the block starts, cancelled after it."""
    from cloud.ingest.service import IngestService

    service = IngestService(settings, engine, store)
    task = asyncio.create_task(service.run(), name=f"ingest-{settings.mqtt_client_id}")
    try:
        await asyncio.wait_for(service.ready.wait(), 15)
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_until(predicate: object, timeout: float = 30.0, what: str = "condition") -> None:  # noqa: ASYNC109
    """Poll ``predicate()`` (sync) until true, failing after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
