"""Per-agent MQTT credentials (``sentinel device provision``) and the broker files rendered from them.

The cloud keeps only the ``$7$`` hash; the clear password is shown once to whoever provisions the agent
(it goes into the agent's environment as ``SENTINEL_MQTT_PASSWORD``). Provisioning an existing agent again
rotates its password. Revoking removes it from the files. Each operation is journaled.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from cloud.core.db import utcnow
from cloud.security import mqtt_auth
from cloud.security.events import record
from cloud.security.models import DeviceCredential
from protocols.topics import check_id

CLOUD_USERNAME = "sentinel-cloud"


@dataclass(frozen=True)
class Issued:
    username: str
    password: str
    site_id: str | None
    agent_id: str | None

    def edge_snippet(self, host: str = "127.0.0.1", port: int = 1883) -> str:
        return (
            "[mqtt]\n"
            f'host = "{host}"\nport = {port}\nusername = "{self.username}"\n'
            'password_env = "SENTINEL_MQTT_PASSWORD"  # export SENTINEL_MQTT_PASSWORD=<the password shown once>\n'
        )


def _upsert(
    session: Session, *, username: str, kind: str, site_id: str | None, agent_id: str | None, actor: str
) -> Issued:
    password = mqtt_auth.new_password()
    row = session.get(DeviceCredential, username)
    rotated = row is not None and row.revoked_at is None
    if row is None:
        row = DeviceCredential(username=username, kind=kind, site_id=site_id, agent_id=agent_id, password_hash="")
    row.password_hash = mqtt_auth.hash_password(password)
    row.created_at, row.created_by, row.revoked_at = utcnow(), actor, None
    session.add(row)
    record(
        session,
        actor=actor,
        action="device.provisioned",
        target_type="device",
        target_id=username,
        payload={"kind": kind, "site_id": site_id, "agent_id": agent_id, "rotated": rotated},
    )
    session.flush()
    return Issued(username, password, site_id, agent_id)


class UnknownSite(ValueError):
    """Credentials for a site that is not in the registry (a typo would give a box data nobody sees)."""


def _check_registered(session: Session, site_id: str) -> None:
    try:
        from cloud.registry.models import Site
    except ModuleNotFoundError:  # a cloud without the registry module: nothing to check against
        return
    if session.get(Site, site_id) is None:
        raise UnknownSite(
            f"场所 {site_id!r} 不在登记册中：请先登记场所（POST /api/v1/registry/sites 或 "
            "`sentinel cloud registry import-csv`），再签发其边缘代理账号"
        )


def provision_agent(session: Session, site_id: str, agent_id: str, *, actor: str) -> Issued:
    """Issue (or rotate) an agent's broker account; the site must be registered (:class:`UnknownSite`)."""
    check_id("site_id", site_id)
    check_id("agent_id", agent_id)
    _check_registered(session, site_id)
    username = mqtt_auth.agent_username(site_id, agent_id)
    return _upsert(session, username=username, kind="agent", site_id=site_id, agent_id=agent_id, actor=actor)


def provision_cloud(session: Session, *, actor: str, username: str = CLOUD_USERNAME) -> Issued:
    """The cloud's own service account (ingest, acks, commands, notifications)."""
    return _upsert(session, username=username, kind="cloud", site_id=None, agent_id=None, actor=actor)


def revoke(session: Session, username: str, *, actor: str) -> bool:
    row = session.get(DeviceCredential, username)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    session.add(row)
    record(session, actor=actor, action="device.revoked", target_type="device", target_id=username)
    return True


def active(session: Session) -> list[DeviceCredential]:
    query = select(DeviceCredential).where(col(DeviceCredential.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(DeviceCredential.username))))


def render(
    session: Session, out_dir: Path, *, reload_pid: int | None = None, group: str | None = None
) -> tuple[Path, Path]:
    """Write ``passwd`` and ``acl`` for mosquitto into ``out_dir``; SIGHUP the broker when its pid is given.

    ``group``: the broker's group (0640); without it existing files keep their mode and group
    (see :func:`~cloud.security.mqtt_auth.write_private`)."""
    users = [mqtt_auth.BrokerUser(r.username, r.password_hash, r.kind, r.site_id, r.agent_id) for r in active(session)]
    passwd, acl = out_dir / "passwd", out_dir / "acl"
    mqtt_auth.write_private(passwd, mqtt_auth.render_password_file(users), group=group)
    mqtt_auth.write_private(acl, mqtt_auth.render_acl(users), group=group)
    if reload_pid:
        os.kill(reload_pid, signal.SIGHUP)  # mosquitto re-reads password and ACL files on SIGHUP
    return passwd, acl
