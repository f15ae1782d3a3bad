"""Device identity on a real mosquitto: generated password file + ACL, and mutual TLS with our PKI.

A site's credentials cannot publish under another site's topics nor read another agent's acks; the cloud
user reads everything; a wrong password is refused; over mutual TLS the agent certificate's CN is its
username, so the same ACL applies.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import Engine

from cloud.core.db import session_scope
from cloud.registry.models import Site
from cloud.security import pki, provisioning
from cloud.security.mqtt_auth import hash_password, verify_password
from sentinel_cli import servers
from sentinel_cli.servers import Server
from tests.conftest import missing_system_package, start_or_skip

pytestmark = pytest.mark.broker
V311 = aiomqtt.ProtocolVersion.V311  # what the edge agent speaks
#: mosquitto started as root drops to the 'mosquitto' user before reading the 0600 password file:
#: keep root in tests
AS_ROOT = "user root\n" if os.geteuid() == 0 else ""


def test_hash_format_matches_mosquitto_passwd(tmp_path: Path) -> None:
    encoded = hash_password("secret", iterations=101)
    assert encoded.startswith("$7$101$") and verify_password("secret", encoded)
    assert not verify_password("Secret", encoded)
    binary = servers.find_binary("mosquitto_passwd")
    if binary is None:
        missing_system_package("mosquitto_passwd is not installed (apt-get install mosquitto)")
    import subprocess

    pwfile = tmp_path / "pw"
    subprocess.run([binary, "-b", "-c", str(pwfile), "u", "secret"], check=True)
    theirs = pwfile.read_text().strip().split(":", 1)[1]
    assert verify_password("secret", theirs)  # we read their format …


@pytest.fixture
def credentials(cloud_engine: Engine, tmp_path: Path) -> dict[str, str]:
    with session_scope(cloud_engine, write=True) as session:
        session.add_all([Site(site_id="site-a", name="甲药店"), Site(site_id="site-b", name="乙药店")])
        session.flush()
        a = provisioning.provision_agent(session, "site-a", "edge-1", actor="test")
        b = provisioning.provision_agent(session, "site-b", "edge-1", actor="test")
        cloud = provisioning.provision_cloud(session, actor="test")
        provisioning.render(session, tmp_path / "mqtt")
    return {a.username: a.password, b.username: b.password, cloud.username: cloud.password}


@pytest.fixture
def secured_broker(tmp_path: Path, credentials: dict[str, str]) -> Server:
    mqtt = tmp_path / "mqtt"
    server = start_or_skip(
        lambda d: servers.start_mosquitto(d, password_file=mqtt / "passwd", acl_file=mqtt / "acl", extra_conf=AS_ROOT),
        tmp_path / "broker",
    )
    yield server  # type: ignore[misc]
    server.stop()


def client(port: int, username: str, password: str, version: aiomqtt.ProtocolVersion = V311) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=username, password=password, protocol=version)


async def forge(port: int, username: str | None, password: str | None, topic: str, **kwargs: object) -> None:
    """Publish where the ACL denies it, on a connection of its own: mosquitto 2.0.11 answers PUBACK 135 (not
    authorised) — to a 3.1.1 client too, which then drops the connection. Either way nothing is delivered."""
    try:
        async with aiomqtt.Client(
            "127.0.0.1", port, username=username, password=password, protocol=V311, **kwargs
        ) as agent:  # type: ignore[arg-type]
            await agent.publish(topic, b"forged", qos=1, timeout=3)
    except aiomqtt.MqttError:
        pass


async def collect(sub: aiomqtt.Client, until: str, seen: list[str]) -> None:
    async for message in sub.messages:
        seen.append(message.topic.value)
        if message.topic.value == until:
            return


async def test_agent_cannot_publish_or_read_outside_its_own_topics(
    secured_broker: Server, credentials: dict[str, str]
) -> None:
    port = secured_broker.port
    seen: list[str] = []
    async with client(port, "sentinel-cloud", credentials["sentinel-cloud"], aiomqtt.ProtocolVersion.V5) as cloud:
        await cloud.subscribe("ms/v1/#", qos=1)
        # publish under another site's prefix (and another agent of the same site): dropped by the broker
        await forge(port, "site-a.edge-1", credentials["site-a.edge-1"], "ms/v1/site-b/edge-1/telemetry")
        await forge(port, "site-a.edge-1", credentials["site-a.edge-1"], "ms/v1/site-a/edge-2/events")
        # its own prefix but not one of the uplink channels (issue 15: `bogus` was accepted by the broker)
        await forge(port, "site-a.edge-1", credentials["site-a.edge-1"], "ms/v1/site-a/edge-1/bogus")
        await forge(port, "site-a.edge-1", credentials["site-a.edge-1"], "ms/v1/site-a/edge-1/ack")
        async with client(port, "site-a.edge-1", credentials["site-a.edge-1"]) as agent:
            await agent.publish("ms/v1/site-a/edge-1/telemetry", b"mine", qos=1)
            await asyncio.wait_for(collect(cloud, "ms/v1/site-a/edge-1/telemetry", seen), 10)
            # reading another agent's acks: mosquitto grants the subscription but never delivers (read ACL)
            await agent.subscribe("ms/v1/site-b/edge-1/ack", qos=1)
            await agent.subscribe("ms/v1/site-a/edge-1/ack", qos=1)
            await cloud.publish("ms/v1/site-b/edge-1/ack", b"not yours", qos=1)
            await cloud.publish("ms/v1/site-a/edge-1/ack", b"ack", qos=1)
            got = await asyncio.wait_for(anext(aiter(agent.messages)), 10)
            assert got.topic.value == "ms/v1/site-a/edge-1/ack"
    assert seen == ["ms/v1/site-a/edge-1/telemetry"], seen


async def test_wrong_password_is_refused(secured_broker: Server, credentials: dict[str, str]) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(secured_broker.port, "site-a.edge-1", credentials["site-b.edge-1"]):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", secured_broker.port, protocol=aiomqtt.ProtocolVersion.V5):
            pass  # anonymous


async def test_mutual_tls_maps_the_certificate_to_the_acl(tmp_path: Path, credentials: dict[str, str]) -> None:
    ca_dir = tmp_path / "pki"
    pki.init_ca(ca_dir)
    pki.issue_server(ca_dir, ["127.0.0.1", "localhost"])
    agent = pki.issue_agent(ca_dir, "site-a", "edge-1")
    cloud_pair = pki.issue(ca_dir, "cloud", common_name="sentinel-cloud", client=True)
    tls_port = servers.free_port()
    mqtt = tmp_path / "mqtt"
    broker = start_or_skip(
        lambda d: servers.start_mosquitto(
            d,
            password_file=mqtt / "passwd",
            acl_file=mqtt / "acl",
            extra_conf=AS_ROOT + pki.mosquitto_listener(ca_dir, tls_port, mutual=True, bind="127.0.0.1"),
        ),
        tmp_path / "broker",
    )
    try:
        servers.wait_for_port(tls_port, 10)

        def context(pair: pki.Pair | None) -> ssl.SSLContext:
            ctx = ssl.create_default_context(cafile=str(ca_dir / "ca.crt"))
            if pair is not None:
                ctx.load_cert_chain(str(pair.cert), str(pair.key))
            return ctx

        seen: list[str] = []
        async with aiomqtt.Client(
            "127.0.0.1", tls_port, tls_context=context(cloud_pair), protocol=aiomqtt.ProtocolVersion.V5
        ) as cloud:
            await cloud.subscribe("ms/v1/#", qos=1)
            await forge(tls_port, None, None, "ms/v1/site-b/edge-1/telemetry", tls_context=context(agent))
            async with aiomqtt.Client("127.0.0.1", tls_port, tls_context=context(agent), protocol=V311) as edge:
                await edge.publish("ms/v1/site-a/edge-1/telemetry", b"mine", qos=1)
                await asyncio.wait_for(collect(cloud, "ms/v1/site-a/edge-1/telemetry", seen), 10)
        assert seen == ["ms/v1/site-a/edge-1/telemetry"]
        with pytest.raises(aiomqtt.MqttError):  # no client certificate: the handshake fails
            async with aiomqtt.Client("127.0.0.1", tls_port, tls_context=context(None), timeout=5):
                pass
    finally:
        broker.stop()
