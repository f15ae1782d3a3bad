"""Remote commands to edge agents (issue 15, remote configuration): stored, signed, journaled, delivered once.

A command (any :class:`~protocols.messages.CommandName`) is a row of ``fleet_command``: its target (site, agent), name,
payload, who created it, when and why (also journaled: ``fleet.command_created``), the cloud's Ed25519 signature
over :func:`protocols.messages.command_signing_bytes`, and its state:

* ``pending`` — waiting for the agent to be online; the ingest publishes it on the agent's ``cmd`` topic (QoS 1)
  and marks it ``sent``;
* ``sent`` — when the agent reconnects (its ``status: online`` arrives) before a result came, it is made
  ``pending`` again and resent: the edge applies each command id at most once and answers a resend with the
  first result, so a command arrives **exactly once** however often it is sent;
* ``done`` / ``failed`` — the agent's ``cmd_result`` arrived (``detail`` says what happened or why it refused);
* ``expired`` — no result before ``expires_at`` (reason in ``reason``);
* ``cancelled`` — an admin cancelled it before a result came (:func:`cancel_command`): it is not sent (again); a
  result that still arrives (the agent had it already) is kept in ``reason``/``output``, the state stays.

A command may belong to a **group** (:mod:`cloud.fleet_groups`): one request to many agents fans out into one row
per agent, each signed for its own target, sharing ``group_id``.

Payloads (checked here before signing, :func:`payload_problem`): ``push_config`` ``{config: <site TOML>}``;
``push_rule_pack`` / ``push_register_map`` ``{name, text}`` (the file ``<name>.toml``); ``logs`` ``{lines: N}``;
``snapshot`` ``{camera: <id>}``; ``export_range`` ``{camera, start, end}`` (at most 30 minutes); ``ping`` /
``reload`` nothing. A push's ``config_version`` is the 12-hex SHA-256 prefix of the text pushed; the agent's
result says which version is in force (``version``) and whether it rolled back (``rolled_back``, after failing
health on the new one).

The signing key is ``SENTINEL_FLEET_COMMAND_KEY`` (a PKCS#8 PEM Ed25519 key, as made by
:func:`cloud.signing.generate_key_file`), else ``<data_dir>/fleet-command.key``, generated on first use; its raw
public key (base64) is what an agent is provisioned with as ``[agent] command_key``.

Desired versions (:func:`last_pushes`): per agent and per file — the site file, each rule pack and each register
map by name — the version of its last push (cancelled ones aside); the agent reports the version in force of each
in its heartbeat (:func:`protocols.messages.content_version`), and the fleet view pairs them (cloud/fleet.py).
A ``snapshot`` / ``export_range`` result names its evidence (``evidence``): the agent uploads the bytes by hash and
the command links the cloud's copy (``/api/v1/evidence/{sha256}``).
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from sqlalchemy import JSON, Connection, Text
from sqlmodel import Field, Session, SQLModel, col, select

from cloud import journal
from cloud.core.config import Settings
from cloud.core.db import UTCDateTime, utcnow
from cloud.presence import AgentPresence
from cloud.signing import SigningKey, generate_key_file, load_signing_key
from protocols import Channel, ProtocolError, encode, topic_for
from protocols.messages import (
    COMMAND_TEXT_MAX,
    Command,
    CommandName,
    CommandResult,
    command_signing_bytes,
    content_version,
)

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BEIJING = ZoneInfo("Asia/Shanghai")


class CommandState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


OPEN_STATES = (CommandState.PENDING.value, CommandState.SENT.value)
STATE_LABELS = {
    "pending": "待发送",
    "sent": "已发送",
    "done": "已执行",
    "failed": "失败",
    "expired": "已过期",
    "cancelled": "已取消",
}
ROLLED_BACK_LABEL = "已自动回滚"
NAME_LABELS = {
    "ping": "连通测试",
    "reload": "重新加载配置",
    "push_config": "下发站点配置",
    "push_rule_pack": "下发规则包",
    "push_register_map": "下发寄存器映射",
    "snapshot": "抓拍画面",
    "logs": "获取日志",
    "export_range": "导出录像",
}
#: commands whose payload is a text pushed to the agent, and the payload key holding it
PUSHED_TEXT = {
    CommandName.PUSH_CONFIG: "config",
    CommandName.PUSH_RULE_PACK: "text",
    CommandName.PUSH_REGISTER_MAP: "text",
}
MAX_LOG_LINES = 1000
#: the longest recorded range one export_range may ask for (as the edge's edge/vision/bridge.py MAX_EXPORT_S)
MAX_EXPORT_S = 1800


class CommandError(ValueError):
    """A command request the cloud refuses before signing (the message says what to fix)."""


def payload_problem(name: CommandName, payload: dict[str, Any]) -> str | None:
    """Why ``payload`` is not a valid payload for ``name`` (Chinese, for the requester), or None."""
    key = PUSHED_TEXT.get(name)
    if key is not None:
        text = payload.get(key)
        if not isinstance(text, str) or not text.strip():
            return f"{name.value} 需要 payload.{key}（TOML 文本）"
        if len(text) > COMMAND_TEXT_MAX:
            return f"payload.{key} 过长：{len(text)} 字符，上限 {COMMAND_TEXT_MAX}"
    if name in (CommandName.PUSH_RULE_PACK, CommandName.PUSH_REGISTER_MAP):
        file_name = payload.get("name")
        if not isinstance(file_name, str) or not ID_RE.fullmatch(file_name):
            return f"{name.value} 需要 payload.name（文件名，不含 .toml，字母数字 _ - .）"
    if name is CommandName.LOGS:
        lines = payload.get("lines", 200)
        if not isinstance(lines, int) or isinstance(lines, bool) or not 1 <= lines <= MAX_LOG_LINES:
            return f"logs 的 payload.lines 须为 1 至 {MAX_LOG_LINES} 的整数"
    if name in (CommandName.SNAPSHOT, CommandName.EXPORT_RANGE):
        camera = payload.get("camera")
        if not isinstance(camera, str) or not camera:
            return f"{name.value} 需要 payload.camera（摄像头 ID）"
    if name is CommandName.EXPORT_RANGE:
        return _range_problem(payload.get("start"), payload.get("end"))
    return None


def _range_problem(start: Any, end: Any) -> str | None:
    try:
        begin, until = datetime.fromisoformat(str(start)), datetime.fromisoformat(str(end))
    except ValueError:
        return "export_range 需要 payload.start、end（ISO 8601 时间，带时区）"
    if begin.tzinfo is None or until.tzinfo is None:
        return "export_range 的 start、end 须带时区"
    if not timedelta(0) < until - begin <= timedelta(seconds=MAX_EXPORT_S):
        return f"export_range 的时段须大于 0 且不超过 {MAX_EXPORT_S // 60} 分钟"
    return None


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
    group_id: str | None = Field(default=None, max_length=64, index=True, description="fan-out group, if any")
    output: str | None = Field(default=None, sa_type=Text, description="logs: the lines the agent returned")
    version_in_force: str | None = Field(default=None, max_length=64, description="push_*: version on the agent")
    rolled_back: bool | None = Field(default=None, description="push_*: applied, unhealthy, rolled back")
    evidence: list[dict[str, Any]] | None = Field(
        default=None, sa_type=JSON, description="snapshot / export_range: the evidence refs the agent reported"
    )


EVIDENCE_LABELS = {"image/jpeg": "抓拍画面", "video/webm": "录像片段"}


class CommandEvidence(SQLModel):
    """A piece of evidence a command produced on the agent: uploaded by the agent under its hash; ``url`` is the
    cloud's copy (GET with a staff token; 404 until the agent's upload arrived)."""

    sha256: str
    content_type: str
    size: int
    label: str | None
    kind_label: str
    url: str

    @classmethod
    def of(cls, ref: dict[str, Any]) -> CommandEvidence:
        content_type = str(ref.get("content_type", ""))
        return cls(
            sha256=str(ref["sha256"]),
            content_type=content_type,
            size=int(ref.get("size", 0)),
            label=ref.get("label"),
            kind_label=EVIDENCE_LABELS.get(content_type, "证据文件"),
            url=f"/api/v1/evidence/{ref['sha256']}",
        )


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
    group_id: str | None
    output: str | None
    version_in_force: str | None
    rolled_back: bool | None
    evidence: list[CommandEvidence]
    name_label: str
    payload_summary: str

    @classmethod
    def of(cls, row: FleetCommand) -> FleetCommandPublic:
        derived = {"state_label", "name_label", "payload_summary", "evidence"}
        values = {name: getattr(row, name) for name in cls.model_fields if name not in derived}
        label = STATE_LABELS[row.state]
        if row.rolled_back:
            label = f"{label}（{ROLLED_BACK_LABEL}）"
        return cls(
            **values,
            state_label=label,
            name_label=NAME_LABELS.get(row.name, row.name),
            payload_summary=_summary(row),
            evidence=[CommandEvidence.of(e) for e in row.evidence or []],
        )


def _summary(row: FleetCommand) -> str:
    """The payload in a few words (pushed texts are not repeated in listings)."""
    payload = row.payload or {}
    if row.name == CommandName.PUSH_CONFIG.value:
        return f"站点配置 {row.config_version}"
    if row.name in (CommandName.PUSH_RULE_PACK.value, CommandName.PUSH_REGISTER_MAP.value):
        return f"{payload.get('name')}.toml {row.config_version}"
    if row.name == CommandName.LOGS.value:
        return f"最近 {payload.get('lines', 200)} 行"
    if row.name == CommandName.SNAPSHOT.value:
        return f"摄像头 {payload.get('camera')}"
    if row.name == CommandName.EXPORT_RANGE.value:
        return f"摄像头 {payload.get('camera')} {_beijing(payload.get('start'))} 至 {_beijing(payload.get('end'))}"
    return ""


def _beijing(value: Any) -> str:
    """An ISO time of a payload as a person reads it (Asia/Shanghai)."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S（北京时间）")
    except ValueError:
        return str(value)


def config_version_of(text: str) -> str:
    """The version an agent reports for a pushed text (:func:`protocols.messages.content_version`)."""
    return content_version(text)


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
    group_id: str | None = None,
) -> FleetCommand:
    """Check, sign, store and journal one command (in the caller's transaction; the caller commits).

    Raises :class:`CommandError` for a bad target or payload."""
    try:
        topic_for(site_id, agent_id, Channel.COMMAND)
    except ProtocolError as exc:
        raise CommandError(str(exc)) from None
    problem = payload_problem(name, payload)
    if problem is not None:
        raise CommandError(problem)
    now = now or utcnow()
    unsigned = Command(
        command_id=uuid.uuid4().hex, name=name, issued_at=now, expires_at=now + ttl, payload=payload, signature=None
    )
    signature = base64.b64encode(key.private_key.sign(command_signing_bytes(site_id, agent_id, unsigned))).decode()
    text_key = PUSHED_TEXT.get(name)
    text = payload.get(text_key) if text_key else None
    row = FleetCommand(
        id=unsigned.command_id,
        site_id=site_id,
        agent_id=agent_id,
        name=name.value,
        payload=payload,
        config_version=config_version_of(text) if isinstance(text, str) else None,
        issued_at=now,
        expires_at=now + ttl,
        signature=signature,
        key_id=key.key_id,
        created_by=actor,
        why=why,
        group_id=group_id,
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
            "group_id": group_id,
        },
        ts=now,
    )
    session.flush()
    return row


def cancel_command(session: Session, row: FleetCommand, *, actor: str, why: str, now: datetime | None = None) -> None:
    """Cancel an open command (not sent again; journaled). Raises :class:`CommandError` if it is closed."""
    if row.state not in OPEN_STATES:
        raise CommandError(f"命令已是「{STATE_LABELS[row.state]}」，不能取消")
    now = now or utcnow()
    was_sent = row.state == CommandState.SENT.value
    row.state = CommandState.CANCELLED.value
    row.reason = f"{actor} 取消：{why}" + ("（已送达代理，可能已执行；执行结果到达后记录在此）" if was_sent else "")
    row.result_at = now
    session.add(row)
    journal.append(
        session,
        actor=actor,
        action="fleet.command_cancelled",
        target_type="agent",
        target_id=f"{row.site_id}/{row.agent_id}",
        payload={"command_id": row.id, "why": why, "was_sent": was_sent},
        ts=now,
    )


def list_commands(session: Session, site_id: str, agent_id: str) -> list[FleetCommand]:
    return list(
        session.exec(
            select(FleetCommand)
            .where(FleetCommand.site_id == site_id, FleetCommand.agent_id == agent_id)
            .order_by(col(FleetCommand.issued_at).desc())
        )
    )


#: what a push changes on the agent: (artifact kind, file name; '' for the site file)
ArtifactKey = tuple[str, str]
SITE_CONFIG, RULE_PACK, REGISTER_MAP = "site_config", "rule_pack", "register_map"
ARTIFACT_OF_COMMAND = {
    CommandName.PUSH_CONFIG.value: SITE_CONFIG,
    CommandName.PUSH_RULE_PACK.value: RULE_PACK,
    CommandName.PUSH_REGISTER_MAP.value: REGISTER_MAP,
}


def artifact_of(row: FleetCommand) -> ArtifactKey | None:
    """What a push command changes on its agent (None: not a push)."""
    kind = ARTIFACT_OF_COMMAND.get(row.name)
    if kind is None:
        return None
    return (kind, "" if kind == SITE_CONFIG else str((row.payload or {}).get("name", "")))


def last_pushes(session: Session) -> dict[tuple[str, str], dict[ArtifactKey, FleetCommand]]:
    """(site, agent) → artifact → its last push (cancelled ones do not count): what the cloud wants in force."""
    out: dict[tuple[str, str], dict[ArtifactKey, FleetCommand]] = {}
    rows = session.exec(
        select(FleetCommand)
        .where(
            col(FleetCommand.name).in_(list(ARTIFACT_OF_COMMAND)),
            FleetCommand.state != CommandState.CANCELLED.value,
        )
        .order_by(col(FleetCommand.issued_at))
    )
    for row in rows:
        key = artifact_of(row)
        if key is not None and row.config_version:
            out.setdefault((row.site_id, row.agent_id), {})[key] = row
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
            row.output = result.output
            row.version_in_force = result.version
            row.rolled_back = result.rolled_back if row.name in {n.value for n in PUSHED_TEXT} else None
            row.evidence = [e.model_dump(mode="json") for e in result.evidence] or None
            session.add(row)
        elif row is not None and known and row.state == CommandState.CANCELLED.value:
            row.reason = f"{row.reason or ''}；代理仍执行了：{'成功' if result.ok else '失败'} {result.detail}"[:2000]
            row.output = result.output
            row.version_in_force = result.version
            row.evidence = [e.model_dump(mode="json") for e in result.evidence] or None
            session.add(row)
        journal.append(
            session,
            actor=f"agent:{result.agent_id}",
            action="fleet.command_result",
            target_type="agent",
            target_id=f"{result.site_id}/{result.agent_id}",
            outcome="ok" if result.ok else "failed",
            payload={
                "command_id": result.command_id,
                "detail": result.detail,
                "known": known,
                "version": result.version,
                "rolled_back": result.rolled_back,
                "evidence": [e.sha256 for e in result.evidence],
            },
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
