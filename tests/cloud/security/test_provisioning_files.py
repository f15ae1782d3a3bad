"""Provisioning as a new user tries it (issue 15): an unregistered site is refused; the rendered broker files can
be given to the broker's group and keep an administrator's mode and group across re-renders; a real mosquitto
running as its own user reads them."""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import Engine

from cloud.core.db import session_scope
from cloud.registry.models import Site
from cloud.security import provisioning
from cloud.security.mqtt_auth import write_private
from sentinel_cli import servers
from tests.conftest import start_or_skip


def test_a_site_not_in_the_registry_is_refused(cloud_engine: Engine) -> None:
    with pytest.raises(provisioning.UnknownSite, match="不在登记册中"), session_scope(cloud_engine, write=True) as s:
        provisioning.provision_agent(s, "no-such-site", "edge-1", actor="test")
    with session_scope(cloud_engine, write=True) as session:
        session.add(Site(site_id="pharmacy-01", name="某药店"))
        session.flush()
        issued = provisioning.provision_agent(session, "pharmacy-01", "edge-1", actor="test")
    assert issued.username == "pharmacy-01.edge-1"


def _group_other_than_ours() -> int | None:
    for name in ("mosquitto", "nogroup"):
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            continue
        if gid != os.getgid():
            return gid
    return None


def test_rerender_keeps_mode_and_group_and_group_option_sets_them(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    write_private(path, "a:1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "a new file is private by default"
    path.chmod(0o640)
    gid = _group_other_than_ours()
    if gid is not None and os.geteuid() == 0:
        os.chown(path, -1, gid)  # what the administrator did: chgrp mosquitto passwd
    write_private(path, "a:2\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640, "a re-render keeps the administrator's mode"
    if gid is not None and os.geteuid() == 0:
        assert path.stat().st_gid == gid, "… and group"
    assert path.read_text() == "a:2\n"
    with pytest.raises(ValueError, match="does not exist"):
        write_private(path, "a:3\n", group="no-such-group-here")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the broker's own user can traverse (pytest's temp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="sentinel-mqtt-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.broker
async def test_mosquitto_as_its_own_user_reads_files_rendered_for_its_group(
    cloud_engine: Engine, shared_dir: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mosquitto drops to its own user only when started as root")
    try:
        grp.getgrnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto group")
    with session_scope(cloud_engine, write=True) as session:
        session.add(Site(site_id="pharmacy-01", name="某药店"))
        session.flush()
        issued = provisioning.provision_agent(session, "pharmacy-01", "edge-1", actor="test")
        passwd, acl = provisioning.render(session, shared_dir / "mqtt", group="mosquitto")
    (shared_dir / "mqtt").chmod(0o755)
    for f in (passwd, acl):
        assert stat.S_IMODE(f.stat().st_mode) == 0o640 and f.stat().st_gid == grp.getgrnam("mosquitto").gr_gid
    server = start_or_skip(
        lambda d: servers.start_mosquitto(d, password_file=passwd, acl_file=acl), shared_dir / "broker"
    )
    try:
        async with aiomqtt.Client(
            "127.0.0.1", server.port, username=issued.username, password=issued.password, timeout=10
        ) as client:
            await asyncio.wait_for(client.publish("ms/v1/pharmacy-01/edge-1/heartbeat", b"{}", qos=1), 10)
    finally:
        server.stop()


def test_every_command_that_renders_broker_files_takes_the_broker_options() -> None:
    """Session 4 (stranger walk): docs/operations.md step 3 says `sentinel device cloud-user --render DIR --group
    mosquitto`; cloud-user answered "No such option: --group", and without it the files were 0600 root, which a
    mosquitto running as its own user cannot read (the broker does not start). Every command that renders takes
    the same options as `device render`."""
    import inspect

    from cloud.security.cli import device_app

    renderers = {c.name: inspect.signature(c.callback).parameters for c in device_app.registered_commands if c.callback}
    renderers = {name: params for name, params in renderers.items() if "render_dir" in params or name == "render"}
    assert {"provision", "cloud-user", "revoke", "render"} <= set(renderers)
    for name, params in renderers.items():
        assert {"group", "reload_pid"} <= set(params), f"device {name} lacks --group/--reload-pid"


def test_cloud_user_as_documented_gives_the_files_to_the_brokers_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cloud.core.config import get_settings
    from cloud.security.cli import device_app

    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        group = grp.getgrgid(os.getgid()).gr_name
        out = CliRunner().invoke(device_app, ["cloud-user", "--render", str(tmp_path / "broker"), "--group", group])
        assert out.exit_code == 0, out.output
        assert "SENTINEL_MQTT_PASSWORD=" in out.output
        for name in ("passwd", "acl"):
            assert stat.S_IMODE((tmp_path / "broker" / name).stat().st_mode) == 0o640
        out = CliRunner().invoke(
            device_app, ["revoke", "sentinel-cloud", "--render", str(tmp_path / "broker"), "--group", group]
        )
        assert out.exit_code == 0 and "已吊销" in out.output, out.output
    finally:
        get_settings.cache_clear()
