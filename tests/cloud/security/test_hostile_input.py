"""Hostile input: a flood of 10,000 malformed or oversized MQTT messages is dead-lettered while good traffic keeps
flowing (real mosquitto, the real ingest); request size and rate limits; property tests of the security
mechanisms' parsers and renderers."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import string

import aiomqtt
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from cloud.core.config import Settings
from cloud.ingest.models import DeadLetter
from cloud.security import masking, mqtt_auth
from cloud.security.config import SecuritySettings
from cloud.telemetry.store import TelemetryStore
from sentinel_cli.servers import Server
from simulators.fleet import fleet_world, run_fleet
from tests.cloud.conftest import running_ingest, wait_until
from tests.utils.registration import register_many

FLOOD = 10_000
OVERSIZED = 20


def hostile_payloads(n: int) -> list[bytes]:
    rng = random.Random(7)
    good_shape = {"v": 1, "type": "telemetry", "site_id": "flood", "agent_id": "edge-x", "seq": 1}
    out: list[bytes] = []
    for i in range(n):
        kind = i % 5
        if i < OVERSIZED:
            out.append(b"{" + b" " * (1_100_000) + b"}")  # above the 1 MiB protocol limit
        elif kind == 0:
            out.append(os.urandom(rng.randint(1, 200)))
        elif kind == 1:
            out.append(b'{"v": 1, "type": "telemetry", "readings": [')  # truncated JSON
        elif kind == 2:
            out.append(json.dumps({**good_shape, "seq": -rng.randint(1, 9)}).encode())  # invalid field
        elif kind == 3:
            out.append(json.dumps({**good_shape, "site_id": "other-site"}).encode())  # identity ≠ topic
        else:
            out.append("".join(rng.choices(string.printable, k=rng.randint(0, 80))).encode())
    return out


@pytest.mark.broker
async def test_flood_is_dead_lettered_while_good_traffic_flows(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    register_many(cloud_engine, fleet_world(sites=3, sensors_per_site=20))  # the good fleet is installed
    payloads = hostile_payloads(FLOOD)
    async with running_ingest(cloud_settings, cloud_engine, cloud_store):

        async def flood() -> None:
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, max_queued_outgoing_messages=0) as client:
                for i, payload in enumerate(payloads):
                    await client.publish("ms/v1/flood/edge-x/telemetry", payload, qos=1)
                    if i % 500 == 0:
                        await asyncio.sleep(0)

        good, _ = await asyncio.gather(
            run_fleet(port=mosquitto.port, sites=3, sensors_per_site=20, interval=0.05, batch=20, count=40),
            flood(),
        )

        def dead() -> int:
            with Session(cloud_engine) as session:
                return int(session.exec(select(func.count()).select_from(DeadLetter)).one())

        await wait_until(lambda: dead() >= FLOOD, 120, "every hostile message dead-lettered")
    assert good.total("unacked") == 0 and good.total("rejected") == 0
    assert cloud_store.count() == good.total("readings") == 3 * 40 * 20
    assert dead() == FLOOD
    with Session(cloud_engine) as session:
        reasons = dict(session.exec(select(DeadLetter.reason, func.count()).group_by(DeadLetter.reason)).all())
    assert reasons.get("oversized") == OVERSIZED, reasons


@pytest.fixture
def limited(cloud_settings: Settings) -> TestClient:
    from cloud.app import create_app

    app = create_app(cloud_settings, run_background=False)
    sec: SecuritySettings = app.state.security_settings
    sec.max_request_bytes = 4096
    sec.rate_limit_per_minute = 5
    return TestClient(app)


def test_request_size_limit(limited: TestClient) -> None:
    with limited as client:
        big = client.post("/api/v1/auth/token", data={"username": "x" * 10_000, "password": "y"})
        assert big.status_code == 413

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"a" * 1000

        streamed = client.post(
            "/api/v1/users", content=chunks(), headers={"content-type": "application/json"}
        )  # no Content-Length: counted while read
        assert streamed.status_code == 413


def test_rate_limit_on_public_intake(limited: TestClient) -> None:
    with limited as client:
        codes = [
            client.post("/api/v1/auth/token", data={"username": "nobody", "password": "x"}).status_code
            for _ in range(8)
        ]
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
        r = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "x"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert client.get("/api/v1/health").status_code == 200  # other paths are not limited


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_masking_never_shows_the_middle(value: str) -> None:
    masked = masking.mask_phone(value)
    digits = "".join(re.findall(r"\d", value))
    if len(digits) >= 11:  # 138****1234: only the first 3 and last 4 digits of the number ever show
        core = digits[-11:]
        assert masked == f"{core[:3]}****{core[-4:]}"
    else:
        assert set(masked) - set("*") <= set(digits[-4:])
    assert len(masking.mask_id(value)) <= max(len(value.strip()), 4)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.text(max_size=12) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from([*masking.PII_KEYS, "x", "name"]), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_redact_masks_every_pii_key(data: object) -> None:
    out = masking.redact(data)

    def walk(a: object, b: object) -> None:
        if isinstance(a, dict):
            assert isinstance(b, dict) and a.keys() == b.keys()
            for k in a:
                if k in masking.PII_KEYS and isinstance(a[k], str) and a[k]:
                    assert b[k] == masking.PII_KEYS[k](a[k])
                else:
                    walk(a[k], b[k])
        elif isinstance(a, list):
            assert isinstance(b, list) and len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                walk(x, y)
        else:
            assert a == b

    walk(data, out)


ids = st.from_regex(r"^[a-z0-9][a-z0-9_.-]{0,20}$", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=5, unique=True))
def test_acl_confines_each_agent_to_its_prefix(agents: list[tuple[str, str]]) -> None:
    users = [mqtt_auth.BrokerUser(mqtt_auth.agent_username(s, a), "$7$1$x$y", "agent", s, a) for s, a in agents]
    acl = mqtt_auth.render_acl(users, notify_pattern=False)
    blocks = [b for b in acl.split("\n\n") if b.startswith("user ")]
    assert len(blocks) == len({u.username for u in users})
    for block in blocks:
        lines = block.strip().splitlines()
        user = next(u for u in users if u.username == lines[0].removeprefix("user "))
        prefix = f"ms/v1/{user.site_id}/{user.agent_id}/"
        for line in lines[1:]:
            _, access, topic = line.split(" ", 2)
            assert topic.startswith(prefix) and "+" not in topic
            assert access == "write" or topic in (prefix + "cmd", prefix + "ack")


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=0, max_size=30))
def test_mosquitto_hash_round_trip(password: str) -> None:
    encoded = mqtt_auth.hash_password(password, iterations=10)
    assert mqtt_auth.verify_password(password, encoded)
    assert not mqtt_auth.verify_password(password + "x", encoded)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "SENTINEL_LOCKOUT_THRESHOLD",
                "SENTINEL_IDLE_TIMEOUT_MINUTES",
                "SENTINEL_AUDIT_RETENTION_DAYS",
                "SENTINEL_MAX_REQUEST_BYTES",
            ]
        ),
        st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8),
        max_size=4,
    )
)
def test_security_settings_loader_validates_or_refuses(env: dict[str, str]) -> None:
    from pydantic import ValidationError

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        try:
            sec = SecuritySettings(_env_file=None)  # type: ignore[call-arg]
        except ValidationError:
            return
        assert sec.audit_retention_days >= 183 and sec.lockout_threshold >= 1 and sec.idle_timeout_minutes > 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
