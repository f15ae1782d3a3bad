"""Remote commands to edge agents (issue 15, remote configuration): stored, signed, journaled, delivered once.

A command (``push_config`` / ``reload`` / ``ping``) is a row of ``fleet_command``: its target (site, agent), name,
payload, who created it, when and why (also journaled: ``fleet.command_created``), the cloud's Ed25519 signature
over :func:`protocols.messages.command_signing_bytes`, and its state:

* ``pending`` — waiting for the agent to be online; the ingest publishes it on the agent's ``cmd`` topic (QoS 1)
  and marks it ``sent``;
* ``sent`` — when the agent reconnects (its ``status: online`` arrives) before a result came, it is made
  ``pending`` again and resent: the edge applies each command id at most once and answers a resend with the
  first result, so a command arrives **exactly once** however often it is sent;
* ``done`` / ``failed`` — the agent's ``cmd_result`` arrived (``detail`` says what happened or why it refused);
* ``expired`` — no result before ``expires_at`` (reason in ``reason``).

The signing key is ``SENTINEL_FLEET_COMMAND_KEY`` (a PKCS#8 PEM Ed25519 key, as made by
:func:`cloud.signing.generate_key_file`), else ``<data_dir>/fleet-command.key``, generated on first use; its raw
public key (base64) is what an agent is provisioned with as ``[agent] command_key``.

The desired config version of an agent is that of its last ``push_config`` (the same 12-hex SHA-256 prefix of
the site file text the agent reports in its heartbeat).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import JSON, Connection
from sqlmodel import Field, Session, SQLModel, col, select

from cloud import journal
from cloud.core.config import Settings
from cloud.core.db import UTCDateTime, utcnow
from cloud.presence import AgentPresence
from cloud.signing import SigningKey, generate_key_file, load_signing_key
from protocols import Channel, encode, topic_for
from protocols.messages import Command, CommandName, CommandResult, command_signing_bytes


class CommandState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


OPEN_STATES = (CommandState.PENDING.value, CommandState.SENT.value)
STATE_LABELS = {"pending": "待发送", "sent": "已发送", "done": "已执行", "failed": "失败", "expired": "已过期"}


class FleetCommand(SQLModel, table=True):
    __tablename__ = "fleet_command"

    id: str = Field(primary_key=True, max_length=64)
    site_id: str = Field(max_length=64, index=True)
    agent_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    config_version: str | None = Field(default=None, max_length=64, description="push_config: version pushed")
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    signature: str = Field(max_length=200)
    key_id: str = Field(max_length=16)
    created_by: str = Field(max_length=64)
    why: str = Field(max_length=500)
    state: str = Field(default=CommandState.PENDING.value, max_length=16, index=True)
    sent_count: int = 0
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    result_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=2000, description="the agent's result detail, or expiry")


class FleetCommandPublic(SQLModel):
    id: str
    site_id: str
    agent_id: str
    name: str
    config_version: str | None
    issued_at: datetime
    expires_at: datetime
    key_id: str
    created_by: str
    why: str
    state: str
    state_label: str
    sent_count: int
    sent_at: datetime | None
    result_at: datetime | None
    reason: str | None

    @classmethod
    def of(cls, row: FleetCommand) -> FleetCommandPublic:
        values = {name: getattr(row, name) for name in cls.model_fields if name != "state_label"}
        return cls(**values, state_label=STATE_LABELS[row.state])


def config_version_of(text: str) -> str:
    """The version an agent reports for a site file (edge/agent.py: first 12 hex of SHA-256 of the text)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def command_key(settings: Settings) -> SigningKey:
    path = settings.fleet_command_key or settings.ensure_data_dir() / "fleet-command.key"
    if not path.exists() and settings.fleet_command_key is None:
        try:
            return generate_key_file(path)
        except FileExistsError:  # another process made it first
            pass
    return load_signing_key(path)


def public_key_b64(key: SigningKey) -> str:
    raw = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _message(row: FleetCommand) -> Command:
    return Command(
        command_id=row.id,
        name=CommandName(row.name),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        payload=row.payload,
        signature=row.signature or None,
    )


def create_command(
    session: Session,
    key: SigningKey,
    *,
    site_id: str,
    agent_id: str,
    name: CommandName,
    payload: dict[str, Any],
    actor: str,
    why: str,
    ttl: timedelta,
    now: datetime | None = None,
) -> FleetCommand:
    """Sign, store and journal one command (in the caller's transaction; the caller commits)."""
    now = now or utcnow()
    unsigned = Command(
        command_id=uuid.uuid4().hex, name=name, issued_at=now, expires_at=now + ttl, payload=payload, signature=None
    )
    signature = base64.b64encode(key.private_key.sign(command_signing_bytes(site_id, agent_id, unsigned))).decode()
    text = payload.get("config")
    row = FleetCommand(
        id=unsigned.command_id,
        site_id=site_id,
        agent_id=agent_id,
        name=name.value,
        payload=payload,
        config_version=config_version_of(text) if name is CommandName.PUSH_CONFIG and isinstance(text, str) else None,
        issued_at=now,
        expires_at=now + ttl,
        signature=signature,
        key_id=key.key_id,
        created_by=actor,
        why=why,
    )
    session.add(row)
    journal.append(
        session,
        actor=actor,
        action="fleet.command_created",
        target_type="agent",
        target_id=f"{site_id}/{agent_id}",
        payload={
            "command_id": row.id,
            "name": row.name,
            "why": why,
            "config_version": row.config_version,
            "expires_at": row.expires_at.isoformat(),
            "key_id": key.key_id,
        },
        ts=now,
    )
    session.flush()
    return row


def list_commands(session: Session, site_id: str, agent_id: str) -> list[FleetCommand]:
    return list(
        session.exec(
            select(FleetCommand)
            .where(FleetCommand.site_id == site_id, FleetCommand.agent_id == agent_id)
            .order_by(col(FleetCommand.issued_at).desc())
        )
    )


def desired_versions(session: Session) -> dict[tuple[str, str], str]:
    """(site, agent) → config version of its last push_config."""
    out: dict[tuple[str, str], str] = {}
    rows = session.exec(
        select(FleetCommand)
        .where(FleetCommand.name == CommandName.PUSH_CONFIG.value)
        .order_by(col(FleetCommand.issued_at))
    )
    for row in rows:
        if row.config_version:
            out[(row.site_id, row.agent_id)] = row.config_version
    return out


# -- the ingest's side (delivery and results) -------------------------------------------------------------------
def record_results(session: Session, results: list[CommandResult], now: datetime) -> None:
    """The agents' cmd_result messages: close the commands (a result for an unknown or closed command is
    journaled as such, never silently dropped)."""
    for result in results:
        row = session.get(FleetCommand, result.command_id)
        known = row is not None and (row.site_id, row.agent_id) == (result.site_id, result.agent_id)
        if row is not None and known and row.state in OPEN_STATES:
            row.state = (CommandState.DONE if result.ok else CommandState.FAILED).value
            row.result_at = now
            row.reason = result.detail
            session.add(row)
        journal.append(
            session,
            actor=f"agent:{result.agent_id}",
            action="fleet.command_result",
            target_type="agent",
            target_id=f"{result.site_id}/{result.agent_id}",
            outcome="ok" if result.ok else "failed",
            payload={"command_id": result.command_id, "detail": result.detail, "known": known},
            ts=now,
        )


def resend_on_reconnect(session: Session, agents: set[tuple[str, str]]) -> None:
    """An agent came (back) online: what was sent without a result is sent again (the edge dedups by id)."""
    for site_id, agent_id in agents:
        rows = session.exec(
            select(FleetCommand).where(
                FleetCommand.site_id == site_id,
                FleetCommand.agent_id == agent_id,
                FleetCommand.state == CommandState.SENT.value,
            )
        )
        for row in rows:
            row.state = CommandState.PENDING.value
            session.add(row)


def due_for_delivery(conn: Connection, settings: Settings, now: datetime) -> list[tuple[str, str, bytes]]:
    """Expire what is past its deadline; return (command id, topic, payload) of the pending commands whose agent
    is online (status online, heard from within its offline interval)."""
    out: list[tuple[str, str, bytes]] = []
    with Session(bind=conn) as session:
        open_rows = session.exec(select(FleetCommand).where(col(FleetCommand.state).in_(OPEN_STATES))).all()
        for row in open_rows:
            if row.expires_at <= now:
                row.state = CommandState.EXPIRED.value
                row.reason = f"{row.expires_at.isoformat()} 前未收到代理的执行结果（共发送 {row.sent_count} 次）"
                session.add(row)
                journal.append(
                    session,
                    actor="system",
                    action="fleet.command_expired",
                    target_type="agent",
                    target_id=f"{row.site_id}/{row.agent_id}",
                    outcome="failed",
                    payload={"command_id": row.id, "sent_count": row.sent_count},
                    ts=now,
                )
                continue
            if row.state != CommandState.PENDING.value:
                continue
            presence = session.get(AgentPresence, (row.site_id, row.agent_id))
            if presence is None or presence.state != "online":
                continue
            limit = timedelta(seconds=presence.offline_after_s or settings.site_offline_after_s)
            if now - presence.last_seen_at > limit:
                continue
            out.append((row.id, topic_for(row.site_id, row.agent_id, Channel.COMMAND), encode(_message(row))))
        session.flush()
    return out


def mark_sent(conn: Connection, command_id: str, now: datetime) -> None:
    with Session(bind=conn) as session:
        row = session.get(FleetCommand, command_id)
        if row is not None and row.state == CommandState.PENDING.value:
            row.state = CommandState.SENT.value
            row.sent_count += 1
            row.sent_at = now
            session.add(row)
        session.flush()
