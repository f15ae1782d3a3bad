"""Issue #18, "none sent twice": a webhook send in flight when its lease holder could not renew (SQLite locked) is
not sent again by the next holder, and a send claimed by a holder that died is sent again with the same key.

The session-3 soak's repeat, reproduced: instance A claims a delivery and POSTs it to a real webhook receiver
that holds its answer; while the send is in flight another connection holds SQLite's write lock across A's
renewal (``database is locked``), A's lease expires, instance B takes the lease over; then the receiver answers A.
Before the fix B found the delivery still pending and sent it again, and A's record of its send was fenced out
(``LeaseLost``): two POSTs with one Idempotency-Key. Now the delivery is claimed (``sending``, A's holder#token)
before the send; B leaves a fresh claim of another holder alone; A records its result under its claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from cloud.core import leases
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine, utcnow
from cloud.core.leases import Lease, LeaseRow
from cloud.notify.channels.webhook import WebhookChannel
from cloud.notify.config import DeliveryRules
from cloud.notify.dispatcher import ChannelWorker
from cloud.notify.models import Delivery, DeliveryStatus, Incident, Notification
from tests.cloud.conftest import wait_until
from tests.utils.receivers import Receivers, webhook_receivers

TTL_S = 3.0  # generous: the machine these run on is loaded (a renewal every ttl/3)
RULES = DeliveryRules(timeout_s=5.0, claim_expiry_s=30.0, retry_base_s=0.2)


def _settings(tmp_path: Path, busy_ms: int) -> Settings:
    return Settings(data_dir=tmp_path / "data", jwt_secret="test-secret-" + "x" * 32, sqlite_busy_timeout_ms=busy_ms)


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two instances on one SQLite file: A gives up on a locked database after 0.1 s, B waits up to 10 s."""
    a = make_engine(_settings(tmp_path, 100))
    b = make_engine(_settings(tmp_path, 10_000))
    init_db(a)
    yield a, b
    a.dispose()
    b.dispose()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with webhook_receivers() as r:
        yield r


def add_delivery(engine: Engine, url: str, **fields: object) -> int:
    with Session(engine) as session:
        incident = Incident(key="alert:p1/fridge1/temp", kind="alert", route_id="r", policy="p", title="冷藏柜超温")
        session.add(incident)
        session.flush()
        notification = Notification(incident_id=incident.id or 0, recipient="ext:keeper")
        session.add(notification)
        session.flush()
        delivery = Delivery(notification_id=notification.id or 0, channel="webhook", address=url, **fields)
        session.add(delivery)
        session.commit()
        return int(delivery.id or 0)


def delivery(engine: Engine, delivery_id: int) -> Delivery:
    with Session(engine) as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def lease_row(engine: Engine) -> LeaseRow | None:
    with Session(engine) as session:
        return session.exec(select(LeaseRow).where(LeaseRow.name == "notify")).first()


def worker(engine: Engine) -> ChannelWorker:
    return ChannelWorker(WebhookChannel(timeout_s=RULES.timeout_s), engine, RULES, secret=b"s" * 32, ack_base_url="")


@contextlib.asynccontextmanager
async def running(coro: object) -> AsyncIterator[asyncio.Task[None]]:
    task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_send_in_flight_when_the_lease_could_not_be_renewed_is_not_sent_again(
    engines: tuple[Engine, Engine], receivers: Receivers, tmp_path: Path
) -> None:
    engine_a, engine_b = engines
    first = add_delivery(engine_a, receivers.url("keeper", "hold"))

    # instance A holds the notify lease and runs the webhook worker under it (as leases.hold does)
    lease_a = Lease(engine_a, "notify", holder="A", ttl_s=TTL_S)
    assert lease_a.acquire()
    ctx = contextvars.copy_context()
    ctx.run(leases._current.set, lease_a)

    async def renew_a() -> None:  # A's renewals while all is well (leases.hold renews every ttl/3)
        while True:
            await asyncio.sleep(lease_a.renew_s)
            assert await asyncio.to_thread(lease_a.acquire)

    async with running(asyncio.get_running_loop().create_task(worker(engine_a).run(), context=ctx)):
        async with running(renew_a()):
            await wait_until(lambda: len(receivers.received.get("keeper", [])) == 1, 30, "A's POST at the receiver")

        # while A's send is in flight, another connection holds the write lock across A's renewal
        blocker = sqlite3.connect(tmp_path / "data" / "sentinel.db", timeout=0, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            await asyncio.to_thread(lease_a.acquire)
        expires = lease_row(engine_b)
        assert expires is not None
        await wait_until(lambda: utcnow() > expires.expires_at, 30, "A's lease expired")
        blocker.rollback()
        blocker.close()

        # instance B takes the lease over; its worker runs until a later delivery has gone out
        async with running(leases.hold(engine_b, "notify", worker(engine_b).run, ttl_s=TTL_S, holder="B")):
            await wait_until(lambda: (r := lease_row(engine_b)) is not None and r.holder == "B", 30, "B's takeover")
            later = add_delivery(engine_b, receivers.url("qa"))
            await wait_until(lambda: delivery(engine_b, later).status == DeliveryStatus.SENT, 30, "B sends")

            # the receiver answers A at last: A records its send under its claim
            receivers.release.set()
            await wait_until(lambda: delivery(engine_b, first).status == DeliveryStatus.SENT, 30, "first recorded")

    keys = [h.get("Idempotency-Key") for h in receivers.headers["keeper"]]
    assert keys == [f"sentinel-delivery-{first}"], f"sent {len(keys)} times: {keys}"
    recorded = delivery(engine_b, first)
    assert recorded.claimed_by == "A#1" and recorded.attempts == 1


async def test_a_send_claimed_by_a_dead_holder_is_sent_again_after_the_claim_expiry_with_the_same_key(
    engines: tuple[Engine, Engine], receivers: Receivers
) -> None:
    _engine_a, engine_b = engines
    long_ago = utcnow() - dt.timedelta(seconds=RULES.claim_expiry_s + 1)
    dead = add_delivery(
        engine_b, receivers.url("keeper"), status=DeliveryStatus.SENDING, claimed_by="A#1", claimed_at=long_ago
    )
    fresh = add_delivery(
        engine_b, receivers.url("owner"), status=DeliveryStatus.SENDING, claimed_by="A#1", claimed_at=utcnow()
    )
    # B keeps its lease throughout (the production ttl): this test is about A's dead claim, not about B losing the
    # lease — with the 3 s ttl a loaded machine let B's lease lapse and the run hung (clean-clone CI, 300 s timeout)
    async with running(leases.hold(engine_b, "notify", worker(engine_b).run, ttl_s=15.0, holder="B")):
        await wait_until(lambda: delivery(engine_b, dead).status == DeliveryStatus.SENT, 30, "the dead claim resent")
        later = add_delivery(engine_b, receivers.url("qa"))
        await wait_until(lambda: delivery(engine_b, later).status == DeliveryStatus.SENT, 30, "a later delivery")
    assert [h.get("Idempotency-Key") for h in receivers.headers["keeper"]] == [f"sentinel-delivery-{dead}"]
    assert delivery(engine_b, dead).claimed_by == "B#1"
    assert "owner" not in receivers.received, "a fresh claim of another holder is left alone"
    assert delivery(engine_b, fresh).status == DeliveryStatus.SENDING
