"""The notifications API over real HTTP: SSE stream per user, acknowledgement by API and by one-time link."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.db import writer
from cloud.core.users import Role, UserCreate, create_user
from cloud.notify.models import Contact, Incident, IncidentStatus, Rank
from cloud.notify.service import NotifyService
from tests.cloud.conftest import ADMIN_PASSWORD, wait_until
from tests.cloud.notify.conftest import (
    SmtpServer,
    add_contacts,
    free_port,
    notify_settings,
    seed_department,
)
from tests.cloud.notify.test_delivery import raise_alert

PASSWORD = "Inspect-Passw0rd!"


@contextlib.asynccontextmanager
async def served(settings: Settings, smtp: SmtpServer | None) -> AsyncIterator[tuple[str, Engine, NotifyService]]:
    """The app on a real uvicorn port, with the notification service running in the same loop."""
    port = free_port()
    nsettings = notify_settings(smtp).model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings, run_background=False)
    engine: Engine = app.state.engine
    service = NotifyService(settings, engine, nsettings=nsettings)
    app.state.notify = service
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    tasks = [asyncio.create_task(server.serve()), asyncio.create_task(service.run())]
    try:
        await wait_until(lambda: server.started, 15, "uvicorn started")
        yield f"http://127.0.0.1:{port}", engine, service
    finally:
        server.should_exit = True
        tasks[1].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[1]
        await asyncio.wait_for(tasks[0], 10)


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def make_inspector(engine: Engine, username: str = "insp-a") -> None:
    with Session(writer(engine)) as session:
        create_user(
            session,
            user_create=UserCreate(username=username, password=PASSWORD, role=Role.INSPECTOR, department="SC01"),
        )
        session.commit()


async def test_sse_stream_delivers_to_the_logged_in_inspector_and_api_ack_stops_escalation(
    cloud_settings: Settings,
) -> None:
    async with served(cloud_settings, None) as (base, engine, _service):
        seed_department(engine)
        add_contacts(
            engine, [Contact(key=f"ext:{n}", rank=Rank.EXTERNAL) for n in "abc"], site_designation="gsp_designated"
        )
        make_inspector(engine)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            token = await login(client, "insp-a", PASSWORD)
            assert (await client.get("/api/v1/notifications/stream")).status_code == 401
            events: list[dict[str, Any]] = []

            async def listen() -> None:
                async with client.stream(
                    "GET", "/api/v1/notifications/stream", headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("text/event-stream")
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            events.append(json.loads(line[6:]))

            listener = asyncio.create_task(listen())
            await wait_until(lambda: _service.hub.stream_count("insp-a") == 1, 10, "stream open")
            raise_alert(engine)
            await wait_until(lambda: events, 10, "an SSE event")
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            event = events[0]
            assert event["recipient"] == "insp-a" and event["category"] == "drug_storage"
            mine = (await client.get("/api/v1/notifications", headers={"Authorization": f"Bearer {token}"})).json()
            assert [n["incident"]["id"] for n in mine] == [event["incident_id"]]
            r = await client.post(
                f"/api/v1/notifications/incidents/{event['incident_id']}/ack",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200 and r.json()["status"] == "acked" and r.json()["acked_by"] == "insp-a"


async def test_signed_link_acknowledges_once_and_rejects_forgery(
    cloud_settings: Settings, smtp_server: SmtpServer
) -> None:
    async with served(cloud_settings, smtp_server) as (base, engine, _service):
        seed_department(engine)
        people = [Contact(key=f"ext:{n}", rank=Rank.EXTERNAL, email=f"{n}@pharm.example") for n in "abc"]
        add_contacts(engine, people, site_designation="gsp_designated")
        raise_alert(engine)
        await wait_until(lambda: len(smtp_server.handler.messages) == 3, 15, "three e-mails")
        text = smtp_server.to("b@pharm.example")[0].get_content()  # type: ignore[attr-defined]
        url = re.search(r"(http://\S+/api/v1/notifications/ack\?token=\S+)", text)
        assert url is not None
        token = url.group(1).split("token=", 1)[1]
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            page = await client.get(url.group(1))  # a mail scanner prefetching the link acknowledges nothing
            assert page.status_code == 200 and "确认收到" in page.text
            with Session(engine) as session:
                assert session.exec(select(Incident)).one().status == IncidentStatus.OPEN
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            assert (await client.post("/api/v1/notifications/ack", data={"token": forged})).status_code == 400
            ok = await client.post("/api/v1/notifications/ack", data={"token": token})
            assert ok.status_code == 200 and "已确认" in ok.text
            again = await client.post("/api/v1/notifications/ack", data={"token": token})
            assert again.status_code == 400 and "已使用" in again.text
        with Session(engine) as session:
            incident = session.exec(select(Incident)).one()
        assert incident.status == IncidentStatus.ACKED and incident.acked_by == "ext:b" and incident.acked_via == "link"


async def test_config_check_flags_drug_sites_with_fewer_than_three_designated(cloud_settings: Settings) -> None:
    app = create_app(cloud_settings, run_background=False)
    engine: Engine = app.state.engine
    seed_department(engine)
    add_contacts(engine, [Contact(key="ext:solo", rank=Rank.EXTERNAL)], site_designation="gsp_designated")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        token = await login(client, "admin", ADMIN_PASSWORD)
        r = await client.get("/api/v1/notifications/config/check", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    body = r.json()
    assert not body["ok"] and body["problems"][0]["designated"] == 1 and body["problems"][0]["required"] == 3
    engine.dispose()
