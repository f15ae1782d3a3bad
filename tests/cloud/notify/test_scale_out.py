"""Issue #18, the check: two `sentinel cloud serve` instances on one PostgreSQL behind a real nginx.

One alert produces each notification exactly once (real SMTP and webhook receivers), before and after the
holder of the ``notify`` lease is killed with SIGKILL; SSE clients on both instances see every in-app event and
every alert on the console feed (no repeats); login through the proxy works on any instance and the session holds
on the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, select

from cloud.core.leases import LeaseRow
from cloud.notify.models import Contact, Delivery, DeliveryStatus, Notification, Rank, SiteContact
from sentinel_cli import servers
from sentinel_cli.servers import Server
from tests.cloud.conftest import wait_until
from tests.cloud.notify.conftest import Receivers, SmtpServer, add_contacts, seed_department
from tests.cloud.notify.test_api import PASSWORD, make_inspector
from tests.cloud.notify.test_delivery import raise_alert
from tests.utils.registry_db import fresh_postgres, let_postgres_user_in

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SENTINEL = str(Path(sys.executable).with_name("sentinel"))
LEASE_TTL_S = 2.0


class Instance:
    def __init__(self, name: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.port, self.proc, self.log = name, port, proc, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_instance(name: str, workdir: Path, env: dict[str, str]) -> Instance:
    port = servers.free_port()
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [SENTINEL, "cloud", "serve", "--port", str(port), "--no-ingest"],
            env={**os.environ, **env, "SENTINEL_DATA_DIR": str(workdir / name)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        servers.wait_for_port(port, 60, proc)
    except Exception as exc:
        proc.kill()
        raise RuntimeError(f"{name} did not start: {exc}\n{log.read_text(errors='replace')[-3000:]}") from exc
    return Instance(name, port, proc, log)


@pytest.fixture
def pg_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    let_postgres_user_in(tmp_path)
    server: Server = request.getfixturevalue("postgres_server")
    with fresh_postgres(server.extra["dsn"]) as url:
        yield url


@contextlib.asynccontextmanager
async def sse(
    url: str, token: str, events: list[dict[str, Any]], path: str = "/api/v1/notifications/stream"
) -> AsyncIterator[None]:
    opened = asyncio.Event()

    async def listen() -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", f"{url}{path}", headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith(": connected"):
                    opened.set()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))

    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(opened.wait(), 20)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


def raised(feed: list[dict[str, Any]]) -> int:
    ids = [e["id"] for e in feed if e.get("action") == "alert.raised"]
    assert len(ids) == len(set(ids)), f"console feed repeated an event: {ids}"
    return len(ids)


def holder_of(engine: Engine, name: str) -> tuple[int, int]:
    with Session(engine) as session:
        row = session.get(LeaseRow, name)
        assert row is not None
        return int(row.holder.split(":")[1]), row.token


def sent(engine: Engine, channel: str) -> list[tuple[str, Delivery]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Notification.recipient, Delivery)
            .join(Notification, Notification.id == Delivery.notification_id)  # type: ignore[arg-type]
            .where(Delivery.channel == channel)
        ).all()
        return [(r, d) for r, d in rows]


def all_settled(engine: Engine) -> bool:
    with Session(engine) as session:
        statuses = session.exec(select(Delivery.status)).all()
    return bool(statuses) and all(s in (DeliveryStatus.SENT, DeliveryStatus.SKIPPED) for s in statuses)


def check_exactly_once(engine: Engine, smtp: SmtpServer, webhooks: Receivers, alerts: int) -> None:
    """Every sent delivery was received exactly once; nothing was received that the DB does not know."""
    webhook_ids = [int(m["id"]) for m in webhooks.received.get("keeper", [])]
    assert len(webhook_ids) == len(set(webhook_ids)) == alerts, f"webhook duplicates or losses: {webhook_ids}"
    sent_webhooks = {d.notification_id for r, d in sent(engine, "webhook") if d.status == DeliveryStatus.SENT}
    assert set(webhook_ids) == sent_webhooks
    mails = smtp.to("qa@pharm.example")
    assert len(mails) == alerts, f"{len(mails)} e-mails for {alerts} alerts"
    numbers = [m.get_content().split("通知编号：")[1].split()[0] for m in mails]  # type: ignore[attr-defined]
    assert len(set(numbers)) == alerts, f"duplicate e-mails: {numbers}"


SITE2 = "pharm-02"


def second_site(engine: Engine, keys: list[str]) -> None:
    """Another pharmacy of the same department with the same designated people (its own clue, its own incident)."""
    from cloud.registry.models import Department, Site

    with Session(engine) as session:
        dept = session.exec(select(Department)).one()
        session.add(Site(site_id=SITE2, name="城东第二药房", category="drug", department_id=dept.id))
        for key in keys:
            session.add(SiteContact(site_id=SITE2, contact_key=key, designation="gsp_designated"))
        session.commit()


async def test_two_instances_behind_nginx_notify_exactly_once_across_a_kill_9(
    tmp_path: Path, pg_url: str, smtp_server: SmtpServer, webhooks: Receivers
) -> None:
    env = {
        "SENTINEL_DATABASE_URL": pg_url,
        "SENTINEL_TELEMETRY_BACKEND": "postgres",
        "SENTINEL_JWT_SECRET": "scale-out-test-secret-" + "x" * 32,
        "SENTINEL_ADMIN_PASSWORD": PASSWORD,
        "SENTINEL_LEASE_TTL_S": str(LEASE_TTL_S),
        "SENTINEL_PRESENCE_ENABLED": "false",
        "SENTINEL_NOTIFY_ENABLED": "true",
        "SENTINEL_NOTIFY_MQTT_ENABLED": "false",
        "SENTINEL_NOTIFY_SMTP_HOST": smtp_server.host,
        "SENTINEL_NOTIFY_SMTP_PORT": str(smtp_server.port),
        "SENTINEL_NOTIFY_POLL_S": "0.1",
        "SENTINEL_NOTIFY_TICK_S": "0.5",
    }
    a = start_instance("a", tmp_path, env)  # creates the schema; b starts on it
    b = start_instance("b", tmp_path, env)
    instances = {a.proc.pid: a, b.proc.pid: b}
    proxy = servers.start_nginx(tmp_path / "nginx", [a.port, b.port])
    engine = create_engine(pg_url)
    try:
        seed_department(engine)
        people = [
            Contact(key="ext:qa", rank=Rank.EXTERNAL, email="qa@pharm.example", mqtt=False),
            Contact(key="ext:keeper", rank=Rank.EXTERNAL, webhook_url=webhooks.url("keeper"), mqtt=False),
            Contact(key="ext:owner", rank=Rank.EXTERNAL, mqtt=False, inapp=False),
        ]
        keys = [c.key for c in people]
        add_contacts(engine, people, site_designation="gsp_designated")
        second_site(engine, keys)
        make_inspector(engine)
        proxy_url = proxy.extra["url"]
        async with httpx.AsyncClient(base_url=proxy_url, timeout=10) as client:
            r = await client.post("/api/v1/auth/token", data={"username": "insp-a", "password": PASSWORD})
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            me = [await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}) for _ in "abcd"]
            assert all(m.status_code == 200 for m in me), "the session holds on whichever instance answers"

        on_a: list[dict[str, Any]] = []
        on_b: list[dict[str, Any]] = []
        live_a: list[dict[str, Any]] = []
        live_b: list[dict[str, Any]] = []
        live = "/api/v1/console/live"
        async with (
            sse(a.url, token, on_a),
            sse(b.url, token, on_b),
            sse(a.url, token, live_a, live),
            sse(b.url, token, live_b, live),
        ):
            # before the kill
            await wait_until(lambda: holder_of(engine, "notify")[0] in instances, 30, "a notify lease holder")
            raise_alert(engine, device="fridge-1")
            await wait_until(lambda: len(webhooks.received.get("keeper", [])) == 1, 30, "the first webhook")
            await wait_until(lambda: len(smtp_server.to("qa@pharm.example")) == 1, 30, "the first e-mail")
            await wait_until(lambda: len(on_a) == 1 and len(on_b) == 1, 30, "the in-app event on both instances")
            await wait_until(lambda: raised(live_a) == raised(live_b) == 1, 30, "the console feed on both instances")
            await wait_until(lambda: all_settled(engine), 30, "every delivery settled")

            # kill -9 the holder of the notification lease
            pid, token_before = holder_of(engine, "notify")
            victim = instances[pid]
            survivor = b if victim is a else a
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            victim.proc.wait(10)
            raise_alert(engine, site=SITE2, device="fridge-2")  # a second alert while nobody holds the lease
            await wait_until(lambda: len(webhooks.received.get("keeper", [])) == 2, 60, "the second webhook")
            takeover_s = time.monotonic() - killed_at
            await wait_until(lambda: len(smtp_server.to("qa@pharm.example")) == 2, 30, "the second e-mail")
            survivor_events = on_a if survivor is a else on_b
            await wait_until(lambda: len(survivor_events) == 2, 30, "the second in-app event on the survivor")
            survivor_live = live_a if survivor is a else live_b
            await wait_until(lambda: raised(survivor_live) == 2, 30, "the second alert on the survivor's console feed")
            await wait_until(lambda: all_settled(engine), 30, "every delivery settled")
            new_pid, token_after = holder_of(engine, "notify")
            assert new_pid == survivor.proc.pid and token_after > token_before

            # the proxy routes around the dead instance
            async with httpx.AsyncClient(base_url=proxy_url, timeout=10) as client:
                for _ in range(4):
                    health = await client.get("/api/v1/health")
                    assert health.status_code == 200

        check_exactly_once(engine, smtp_server, webhooks, alerts=2)
        in_app = [e["delivery_id"] for e in survivor_events]
        assert len(set(in_app)) == 2, f"in-app events duplicated or lost on the survivor: {in_app}"
        killed_events = on_b if survivor is a else on_a
        assert [e["delivery_id"] for e in killed_events][:1] == in_app[:1]
        print(f"\nnotify lease takeover + second delivery after kill -9: {takeover_s:.1f} s (ttl {LEASE_TTL_S} s)")
    finally:
        engine.dispose()
        proxy.stop()
        for inst in (a, b):
            inst.stop()
