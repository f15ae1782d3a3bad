"""Message models of the wire contract (protocol version 1).

Every message is a frozen pydantic model that validates on construction, serialises to compact JSON
and carries ``v`` (protocol version) and ``kind`` (its type). Timestamps must carry a time zone.
Use :func:`encode` / :func:`decode`; :func:`decode_for_topic` also checks that the identity in the
payload matches the topic it arrived on.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self, TypeVar, overload

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from protocols.errors import ProtocolError
from protocols.topics import ID_PATTERN, Channel, TopicAddress, parse_topic

PROTOCOL_VERSION: Final = 1
#: Largest payload any decoder accepts; bigger ones are rejected before parsing.
MAX_PAYLOAD_BYTES: Final = 1_048_576
#: Largest number of readings in one telemetry batch.
MAX_READINGS_PER_BATCH: Final = 5000
MAX_SEQ: Final = 2**63 - 1

Identifier = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id: a-z 0-9 _ . -, ≤64 chars")]
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ, description="per-agent sequence number, strictly increasing")]
#: An agent installation's epoch: created on its first start, kept in its data dir; a wiped or replaced box gets
#: a new one, so its sequence numbers start again at 1 without colliding with the old box's.
Incarnation = Annotated[
    str,
    Field(pattern=ID_PATTERN, description="epoch of the agent installation (new data dir → new incarnation)"),
]


class Quality(StrEnum):
    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class Severity(StrEnum):
    """Five severities, most to least urgent (ThingsBoard's scale)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INDETERMINATE = "indeterminate"


SEVERITY_RANK: Final = {s: i for i, s in enumerate(Severity)}


class AlertPhase(StrEnum):
    RAISE = "raise"
    UPDATE = "update"
    CLEAR = "clear"


class SiteState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class CommandName(StrEnum):
    PING = "ping"
    RELOAD = "reload"
    PUSH_CONFIG = "push_config"
    PUSH_RULE_PACK = "push_rule_pack"
    PUSH_REGISTER_MAP = "push_register_map"
    SNAPSHOT = "snapshot"
    LOGS = "logs"
    EXPORT_RANGE = "export_range"


#: a pushed file's name (``<name>.toml``) and the version of a text, as both sides name them
ArtifactName = Annotated[str, Field(min_length=1, max_length=64)]
ContentVersion = Annotated[str, Field(min_length=1, max_length=64)]
#: most rule packs / register maps one agent reports
MAX_ARTIFACTS: Final = 200


def content_version(text: str) -> str:
    """The version of a site file, rule pack or register map as the agent reports it and the cloud shows it: the
    first 12 hex of the SHA-256 of its text (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


#: the largest text a command payload may carry (a whole site file, rule pack or register map)
COMMAND_TEXT_MAX: Final = 262_144
#: the largest output a command result may carry (logs: the last N lines, bounded)
COMMAND_OUTPUT_MAX: Final = 65_536


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_max_length=4096)

    v: Literal[1] = PROTOCOL_VERSION


class _FromAgent(_Message):
    site_id: Identifier
    agent_id: Identifier


class Reading(BaseModel):
    """One measured value of one sensor at one instant."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    sensor_id: Identifier
    ts: AwareDatetime
    value: float | None = Field(description="null only when quality is bad")
    unit: str = Field(max_length=16, description="e.g. °C, %RH, MPa, bool")
    quality: Quality = Quality.GOOD

    @model_validator(mode="after")
    def _value_present_unless_bad(self) -> Self:
        if self.value is None and self.quality is not Quality.BAD:
            raise ValueError("value may be null only when quality is 'bad'")
        return self


class TelemetryBatch(_FromAgent):
    """A batch of readings; the unit of storage, dedup (site_id, agent_id, incarnation, seq) and acknowledgement."""

    kind: Literal["telemetry"] = "telemetry"
    seq: Seq
    incarnation: Incarnation | None = Field(default=None, description="absent: an agent older than the epoch")
    sent_at: AwareDatetime
    readings: list[Reading] = Field(min_length=1, max_length=MAX_READINGS_PER_BATCH)


class EvidenceRef(BaseModel):
    """A content-addressed piece of evidence (e.g. a JPEG snapshot) uploaded separately."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str = Field(max_length=64, default="image/jpeg")
    size: int = Field(ge=0, le=50_000_000)
    label: str | None = Field(default=None, max_length=64)


class AlertEvent(_FromAgent):
    """One step in an alert's lifecycle (raise → update* → clear), identified by (site, device, rule)."""

    kind: Literal["alert"] = "alert"
    seq: Seq
    incarnation: Incarnation | None = None
    alert_id: str = Field(min_length=8, max_length=64, description="stable id of this open alert instance")
    device_id: Identifier
    sensor_id: Identifier | None = None
    rule_id: Identifier
    phase: AlertPhase
    severity: Severity
    category: Identifier = Field(description="domain: drug_storage, food_cold_chain, elevator, boiler, power, video…")
    value: float | None = None
    limit: float | None = None
    unit: str | None = Field(default=None, max_length=16)
    message: str = Field(max_length=500, description="human text (Chinese) for notifications")
    ts: AwareDatetime = Field(description="when this lifecycle step happened")
    started_at: AwareDatetime = Field(description="when the alert was raised")
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class Status(_FromAgent):
    """Retained presence message; the agent's last will publishes ``offline``."""

    kind: Literal["status"] = "status"
    state: SiteState
    ts: AwareDatetime
    agent_version: str = Field(max_length=32, default="")
    reason: str | None = Field(default=None, max_length=200)
    incarnation: Incarnation | None = None


class Heartbeat(_FromAgent):
    """Periodic health report of an agent."""

    kind: Literal["heartbeat"] = "heartbeat"
    ts: AwareDatetime
    uptime_s: float = Field(ge=0)
    outbox_depth: int = Field(ge=0)
    outbox_oldest_age_s: float | None = Field(default=None, ge=0)
    last_acked_seq: int = Field(ge=0, default=0)
    drivers: dict[str, str] = Field(default_factory=dict, description="driver id → ok | degraded | down")
    cpu_percent: float | None = Field(default=None, ge=0)
    rss_mb: float | None = Field(default=None, ge=0)
    incarnation: Incarnation | None = None
    clock_offset_s: float | None = Field(
        default=None,
        description="agent clock minus the cloud clock, seconds, as the agent last measured it from Ack.ts "
        "(positive: the agent runs ahead)",
    )
    config_version: str | None = Field(default=None, max_length=64, description="version of the applied config")
    rule_pack_versions: dict[ArtifactName, ContentVersion] | None = Field(
        default=None,
        max_length=MAX_ARTIFACTS,
        description="rule pack name → version (content_version of its file) in force; absent: an older agent",
    )
    register_map_versions: dict[ArtifactName, ContentVersion] | None = Field(
        default=None,
        max_length=MAX_ARTIFACTS,
        description="register map name → version (content_version of its file) in force; absent: an older agent",
    )


class AnnouncedDevice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: Identifier
    device_type: str = Field(max_length=64, description="probe, elevator_controller, boiler_controller, camera…")
    model: str | None = Field(default=None, max_length=128)
    sensors: list[Identifier] = Field(default_factory=list, max_length=500)


class Announce(_FromAgent):
    """An agent tells the cloud which devices and sensors it has; unknown ones wait for approval."""

    kind: Literal["announce"] = "announce"
    ts: AwareDatetime
    agent_version: str = Field(max_length=32, default="")
    devices: list[AnnouncedDevice] = Field(max_length=500)
    incarnation: Incarnation | None = None


class Command(_Message):
    """Cloud → edge instruction."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_max_length=COMMAND_TEXT_MAX)

    kind: Literal["command"] = "command"
    command_id: str = Field(min_length=1, max_length=64)
    name: CommandName
    issued_at: AwareDatetime
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    expires_at: AwareDatetime | None = Field(default=None, description="an agent refuses the command after this")
    signature: str | None = Field(
        default=None,
        max_length=200,
        description="cloud's Ed25519 signature (base64) over command_signing_bytes(site_id, agent_id, command)",
    )


COMMAND_SIGNATURE_TAG: Final = b"market-sentinel-command-v1\n"


def command_signing_bytes(site_id: str, agent_id: str, command: Command) -> bytes:
    """What the cloud signs for a command: a domain tag and a canonical JSON (sorted keys, no spaces, UTF-8) of
    the target (site, agent, from the topic), id, name, times and payload — everything but the signature."""
    body = {
        "site_id": site_id,
        "agent_id": agent_id,
        "command_id": command.command_id,
        "name": command.name.value,
        "issued_at": command.issued_at.isoformat(),
        "expires_at": command.expires_at.isoformat() if command.expires_at else None,
        "payload": command.payload,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return COMMAND_SIGNATURE_TAG + canonical.encode()


class CommandResult(_FromAgent):
    """Edge → cloud outcome of a command."""

    kind: Literal["command_result"] = "command_result"
    command_id: str = Field(min_length=1, max_length=64)
    ok: bool
    detail: str = Field(max_length=2000, default="")
    ts: AwareDatetime
    output: str | None = Field(
        default=None, max_length=COMMAND_OUTPUT_MAX, description="logs: the agent's last log lines (bounded)"
    )
    version: str | None = Field(
        default=None,
        max_length=64,
        description="push_*: the version now in force on the agent (after a rollback: the previous one)",
    )
    rolled_back: bool = Field(default=False, description="the new version was applied, failed health and was undone")
    evidence: list[EvidenceRef] = Field(
        default_factory=list,
        max_length=5,
        description="snapshot / export_range: what went into the agent's evidence store (uploaded by content hash)",
    )


class AckRange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    first: Seq
    last: Seq

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last < self.first:
            raise ValueError("last must be ≥ first")
        return self


class RejectedSeq(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: Seq
    reason: str = Field(max_length=200)


class Ack(_Message):
    """Application-level acknowledgement: these sequence numbers are committed (or dead-lettered) in the cloud.

    The edge deletes an outbox entry only when its seq is in ``committed`` or ``rejected``.
    """

    kind: Literal["ack"] = "ack"
    agent_id: Identifier
    incarnation: Incarnation | None = Field(
        default=None, description="the seqs are of this incarnation; an agent ignores acks for another one"
    )
    committed: list[AckRange] = Field(default_factory=list, max_length=10_000)
    rejected: list[RejectedSeq] = Field(default_factory=list, max_length=10_000)
    ts: AwareDatetime

    def seqs(self) -> set[int]:
        out = {r.seq for r in self.rejected}
        for rng in self.committed:
            out.update(range(rng.first, rng.last + 1))
        return out


Message = TelemetryBatch | AlertEvent | Status | Heartbeat | Announce | Command | CommandResult | Ack
_ANY: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="kind")])

CHANNEL_MESSAGE: Final[dict[Channel, type[BaseModel]]] = {
    Channel.TELEMETRY: TelemetryBatch,
    Channel.EVENTS: AlertEvent,
    Channel.STATUS: Status,
    Channel.HEARTBEAT: Heartbeat,
    Channel.ANNOUNCE: Announce,
    Channel.COMMAND: Command,
    Channel.COMMAND_RESULT: CommandResult,
    Channel.ACK: Ack,
}


def encode(message: BaseModel) -> bytes:
    """Compact JSON bytes for the wire."""
    return message.model_dump_json(exclude_none=False).encode()


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{loc}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


M = TypeVar("M", bound=BaseModel)


@overload
def decode(payload: bytes | str, model: None = None) -> Message: ...
@overload
def decode(payload: bytes | str, model: type[M]) -> M: ...
def decode(payload: bytes | str, model: type[M] | None = None) -> M | Message:
    """Parse and validate one payload. With ``model`` given, only that type is accepted."""
    size = len(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise ProtocolError("oversized", f"payload of {size} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        if model is not None:
            return model.model_validate_json(payload)
        return _ANY.validate_json(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        kinds = {e["type"] for e in errors}
        if "json_invalid" in kinds:
            reason = "malformed_json"
        elif any(e["loc"] and e["loc"][-1] == "v" and len(e["loc"]) <= 2 for e in errors):
            reason = "unsupported_version"  # documented: another protocol version than this decoder speaks
        else:
            reason = "invalid_payload"
        raise ProtocolError(reason, _explain(exc)) from None


def decode_for_topic(topic: str, payload: bytes | str) -> tuple[TopicAddress, BaseModel]:
    """Decode a payload received on ``topic``: the right type for the channel, and the same identity."""
    address = parse_topic(topic)
    message = decode(payload, CHANNEL_MESSAGE[address.channel])
    site = getattr(message, "site_id", address.site_id)
    agent = getattr(message, "agent_id", address.agent_id)
    if site != address.site_id or agent != address.agent_id:
        raise ProtocolError(
            "identity_mismatch",
            f"payload says site={site!r} agent={agent!r} but topic is site={address.site_id!r} "
            f"agent={address.agent_id!r}",
        )
    return address, message


def stamp_incarnation(payload: bytes, incarnation: str) -> bytes:
    """``payload`` (an encoded message with an ``incarnation`` field) with its incarnation set.

    The edge's outbox owns the (incarnation, seq) namespace and stamps every entry it writes, whoever built it.
    """
    data = json.loads(payload)
    if not isinstance(data, dict) or "seq" not in data:
        raise ValueError("only messages with a seq carry an incarnation")
    data["incarnation"] = incarnation
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def utc_iso(ts: datetime) -> str:
    """ISO 8601 with offset; refuses naive datetimes."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: the wire carries time zones")
    return ts.isoformat()


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every message, keyed by ``kind``, for people who write their own devices."""
    return {
        model.model_fields["kind"].default: model.model_json_schema(mode="serialization")
        for model in CHANNEL_MESSAGE.values()
    }
