"""Fault soak: the fault rig's county (tests/faults/rig.py) under steady load with a schedule of mixed faults.

Real mosquitto (persistence), the cloud ingest as a process, a cloud API instance (``sentinel cloud serve
--no-ingest``, same database) that runs the notification follower under its lease, two edge agents polling a real
Modbus TCP simulator, a TCP proxy between the edges and the broker, and a real webhook receiver for the sites'
designated people. The schedule, one after another with steady load between them: broker restart, ``kill -9`` of
the ingest worker, ``kill -9`` of the API instance, a network cut between the edges and the broker (``cut_s``; the
issue's 5 minutes = 300), the edges' outbox disk quota reached while the ingest is down.

At the end: batches written vs committed, readings stored, duplicates, alerts committed, notifications expected
(webhook deliveries the cloud recorded) vs received (distinct ids at the receiver, repeats counted), recovery time
per fault. Used by ``benchmarks/fault_soak.py`` (the recorded ≥ 20-minute run) and by its short form
``tests/faults/test_soak.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlmodel import Session, select

from sentinel_cli import servers
from simulators.clock import ScenarioClock
from simulators.modbus_tcp import SiteServer
from simulators.scenario import load_scenario
from tests.edge.harness import SentinelProcess, await_for
from tests.faults.rig import SCENARIO, SITES, County, _query, make_county
from tests.utils.receivers import Receivers, webhook_receivers

#: the designated people of both pharmacies (GSP asks for ≥ 3), each reached by its own webhook
DESIGNATED = ("keeper", "qa", "owner")


class ApiInstance(SentinelProcess):
    """``sentinel cloud serve --no-ingest`` on the county's database: the notification follower under its lease."""

    def __init__(self, data_dir: Path, log: Path, lease_ttl_s: float = 15.0) -> None:
        self.port = servers.free_port()
        env = {
            "SENTINEL_DATA_DIR": str(data_dir),
            # the production default: a lease must outlast the longest the ingest's commits hold SQLite's write lock
            # while the edges replay a backlog (with 3 s, renewals ran late and the session-3 run repeated a send)
            "SENTINEL_LEASE_TTL_S": str(lease_ttl_s),
            "SENTINEL_PRESENCE_ENABLED": "false",
            "SENTINEL_NOTIFY_ENABLED": "true",
            "SENTINEL_NOTIFY_MQTT_ENABLED": "false",
            "SENTINEL_NOTIFY_POLL_S": "0.2",
            "SENTINEL_NOTIFY_TICK_S": "0.5",
        }
        super().__init__(["cloud", "serve", "--no-ingest", "--port", str(self.port)], log, env)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False


def seed_sites(db: Path, receivers: Receivers) -> None:
    """The two pharmacies (drug sites) of one department, their probes, and their designated people, each with a
    webhook."""
    from cloud.notify.models import Contact, Rank, SiteContact
    from cloud.registry.models import Department, Device, Sensor, Site

    engine = create_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as session:
            dept = Department(code="SOAK01", name="城东市场监督管理所")
            session.add(dept)
            session.flush()
            for i, site_id in enumerate(SITES, 1):
                session.add(Site(site_id=site_id, name=f"仁和大药房{i}号店", category="drug", department_id=dept.id))
            session.flush()
            # the probes are registered and approved: an announced unknown device's data would be quarantined
            for site_id in SITES:
                for device_id in ("fridge1", "store1"):
                    session.add(Device(site_id=site_id, device_id=device_id, device_type="modbus_probe"))
                    for quantity in ("temperature", "humidity"):
                        sensor = f"{device_id}.{quantity}"
                        session.add(Sensor(site_id=site_id, sensor_id=sensor, device_id=device_id))
            for name in DESIGNATED:
                session.add(Contact(key=f"ext:{name}", rank=Rank.EXTERNAL, webhook_url=receivers.url(name), mqtt=False))
                for site_id in SITES:
                    session.add(SiteContact(site_id=site_id, contact_key=f"ext:{name}", designation="gsp_designated"))
            session.commit()
    finally:
        engine.dispose()


def notification_counts(db: Path, receivers: Receivers) -> dict[str, int]:
    """Webhook deliveries the cloud recorded (expected) vs what the receivers got (distinct ids, repeats)."""
    from cloud.notify.models import Delivery, DeliveryStatus, Notification

    engine = create_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as session:
            rows = session.exec(
                select(Notification.recipient, Delivery.notification_id, Delivery.status)
                .join(Notification, Notification.id == Delivery.notification_id)  # type: ignore[arg-type]
                .where(Delivery.channel == "webhook")
            ).all()
    finally:
        engine.dispose()
    expected = {(r, int(n)) for r, n, _s in rows}
    unsettled = sum(s not in (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.DEAD) for *_x, s in rows)
    arrivals: dict[tuple[str, int], list[str | None]] = {}
    for name, bodies in receivers.received.items():
        for body, head in zip(bodies, receivers.headers.get(name, []), strict=True):
            arrivals.setdefault((f"ext:{name}", int(body["id"])), []).append(head.get("Idempotency-Key"))
    got = set(arrivals)
    keys = [k for ks in arrivals.values() for k in ks]
    incidents = _query(db, "SELECT COUNT(*) FROM notify_incident")
    return {
        "incidents": int(incidents[0][0]) if incidents else 0,
        "notifications_expected": len(expected),
        "notifications_delivered": len(got & expected),
        # a repeat = a send in flight when the notify lease was lost (kill -9, or a renewal late under load): it
        # carries the same Idempotency-Key, so a receiver that honours the key drops it (docs/operations.md)
        "notifications_repeated": sum(len(ks) - 1 for ks in arrivals.values()),
        "notifications_repeated_with_another_key": sum(len(set(ks)) - 1 for ks in arrivals.values()),
        "notifications_without_idempotency_key": keys.count(None),
        "notifications_unknown": len(got - expected),
        "notifications_unsettled": unsettled,
        "notifications_dead": sum(s == DeliveryStatus.DEAD for *_x, s in rows),
    }


def thinned(county: County) -> int:
    return sum(e.meta("thinned_batches") for e in county.edges)


Recovered = Callable[[], bool]
Fault = Callable[[County, ApiInstance], Awaitable[tuple[dict[str, int], Recovered]]]


def faults(hold_s: float, cut_s: float) -> list[tuple[str, Fault]]:
    """(name, fault): each returns the edges' marks when it is lifted and what "recovered" means for it."""

    async def broker_restart(c: County, _api: ApiInstance) -> tuple[dict[str, int], Recovered]:
        c.broker.stop()
        await asyncio.sleep(hold_s)
        c.broker = servers.start_mosquitto(c.broker.workdir, c.broker.port, persistence=True)
        return c.marks(), lambda: True

    async def kill_ingest(c: County, _api: ApiInstance) -> tuple[dict[str, int], Recovered]:
        c.cloud.kill9()
        await asyncio.sleep(hold_s)
        marks = c.marks()
        c.cloud.start()
        return marks, lambda: True

    async def kill_api(c: County, api: ApiInstance) -> tuple[dict[str, int], Recovered]:
        api.kill9()
        await asyncio.sleep(hold_s)
        api.start()
        return c.marks(), api.healthy

    async def cut(c: County, _api: ApiInstance) -> tuple[dict[str, int], Recovered]:
        assert c.proxy is not None
        await c.proxy.cut()
        await asyncio.sleep(cut_s)
        marks = c.marks()
        await c.proxy.restore()
        return marks, lambda: True

    async def quota(c: County, _api: ApiInstance) -> tuple[dict[str, int], Recovered]:
        before = thinned(c)
        c.cloud.stop()
        await await_for(lambda: thinned(c) > before, 900, "the quota reached")
        marks = c.marks()
        c.cloud.start()
        return marks, lambda: True

    return [
        (f"broker restart (down {hold_s:.0f} s)", broker_restart),
        (f"kill -9 ingest worker (down {hold_s:.0f} s)", kill_ingest),
        (f"kill -9 API instance (restarted after {hold_s:.0f} s)", kill_api),
        (f"network cut edges↔broker ({cut_s:.0f} s, TCP proxy)", cut),
        ("edge outbox quota reached while the ingest is down", quota),
    ]


async def soak(
    tmp: Path,
    *,
    minutes: float,
    cut_s: float,
    hold_s: float,
    quota: int,
    batch: int = 10,
    lease_ttl_s: float = 15.0,
) -> dict[str, Any]:
    county = make_county(tmp, via_proxy=True, batch=batch, max_entries=quota, register=False)  # seed_sites does
    api = ApiInstance(tmp / "cloud", tmp / "api.log", lease_ttl_s)
    schedule = faults(hold_s, cut_s)
    gap_s = max(1.0, minutes * 60 / (len(schedule) + 1) - cut_s / len(schedule))
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    assert county.proxy is not None
    with webhook_receivers() as receivers:
        try:
            county.cloud.start()
            await county.proxy.start()
            # the API starts on the schema the ingest created: two processes creating the tables of a fresh SQLite
            # file at once made the second fail with "database is locked" on a loaded machine (load ≈ 30)
            schema = "SELECT name FROM sqlite_master WHERE name = 'notify_delivery'"
            await await_for(lambda: bool(_query(county.cloud.db, schema)), 120, "the cloud schema")
            api.start()
            await await_for(api.healthy, 180, "the API instance")
            seed_sites(county.cloud.db, receivers)
            async with SiteServer(load_scenario(SCENARIO), county.modbus_port, clock=ScenarioClock(10)):  # type: ignore[attr-defined]
                for edge in county.edges:
                    edge.agent.start()
                await await_for(lambda: county.readings() > 50, 90, "first readings stored")
                for name, fault in schedule:
                    await asyncio.sleep(gap_s)
                    thinned_before = thinned(county)
                    t0 = time.monotonic()
                    marks, recovered = await fault(county, api)
                    lifted = time.monotonic()

                    def done(marks: dict[str, int] = marks, recovered: Recovered = recovered) -> bool:
                        return county.caught_up(marks) and recovered()

                    await await_for(done, 600, f"recovery from {name}")
                    rows.append(
                        {
                            "fault": name,
                            "held_s": round(lifted - t0, 1),
                            "recovery_s": round(time.monotonic() - lifted, 1),
                            # outbox entries the edges' quota thinned from the fault's start to its recovery
                            "thinned": thinned(county) - thinned_before,
                        }
                    )
                    print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
                await asyncio.sleep(gap_s)
            await await_for(lambda: all(e.depth() == 0 for e in county.edges), 300, "outboxes drained")
            await await_for(
                lambda: notification_counts(county.cloud.db, receivers)["notifications_unsettled"] == 0,
                120,
                "every webhook delivery settled",
            )
        except Exception:
            api_log = api.log.read_text(errors="replace")[-3000:] if api.log.exists() else ""
            print(county.logs(), f"\n--- api\n{api_log}")
            raise
        finally:
            for edge in county.edges:
                edge.agent.stop()
            await county.proxy.close()
            api.stop()
            county.cloud.stop()
            county.broker.stop()
        notified = notification_counts(county.cloud.db, receivers)
    elapsed = time.monotonic() - started
    out = county.outcome()
    return {
        "duration_s": round(elapsed),
        "agents": len(county.edges),
        **out.row(elapsed),
        **notified,
        "faults": rows,
    }
