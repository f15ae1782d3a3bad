"""MQTT topic scheme, version 1.

All topics live under ``ms/v1/{site_id}/{agent_id}/{channel}``:

==============  ==========  =====  ========  ==============================================
channel         direction   QoS    retained  payload
==============  ==========  =====  ========  ==============================================
``telemetry``   edge→cloud  1      no        :class:`~protocols.messages.TelemetryBatch`
``events``      edge→cloud  1      no        :class:`~protocols.messages.AlertEvent`
``status``      edge→cloud  1      yes       :class:`~protocols.messages.Status` (also the last will)
``heartbeat``   edge→cloud  0      no        :class:`~protocols.messages.Heartbeat`
``announce``    edge→cloud  1      no        :class:`~protocols.messages.Announce`
``cmd``         cloud→edge  1      no        :class:`~protocols.messages.Command`
``cmd_result``  edge→cloud  1      no        :class:`~protocols.messages.CommandResult`
``ack``         cloud→edge  1      no        :class:`~protocols.messages.Ack`
==============  ==========  =====  ========  ==============================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from protocols.errors import ProtocolError

TOPIC_ROOT = "ms"
TOPIC_VERSION = "v1"

#: Identifiers that appear in topics: lower-case, digits, ``_`` and ``-``; never MQTT wildcards or ``/``.
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENTS = "events"
    STATUS = "status"
    HEARTBEAT = "heartbeat"
    ANNOUNCE = "announce"
    COMMAND = "cmd"
    COMMAND_RESULT = "cmd_result"
    ACK = "ack"


#: Channels the edge publishes on (the cloud subscribes to these).
UPLINK_CHANNELS = (
    Channel.TELEMETRY,
    Channel.EVENTS,
    Channel.STATUS,
    Channel.HEARTBEAT,
    Channel.ANNOUNCE,
    Channel.COMMAND_RESULT,
)
#: Channels the cloud publishes on (each agent subscribes to its own).
DOWNLINK_CHANNELS = (Channel.COMMAND, Channel.ACK)
_DOWNLINK_NAMES = frozenset(c.value for c in DOWNLINK_CHANNELS)


@dataclass(frozen=True, slots=True)
class TopicAddress:
    site_id: str
    agent_id: str
    channel: Channel


def check_id(kind: str, value: str) -> str:
    if not _ID_RE.match(value):
        raise ProtocolError("invalid_id", f"{kind} {value!r} must match {ID_PATTERN}")
    return value


def topic_for(site_id: str, agent_id: str, channel: Channel) -> str:
    """The topic one agent uses for one channel."""
    check_id("site_id", site_id)
    check_id("agent_id", agent_id)
    return f"{TOPIC_ROOT}/{TOPIC_VERSION}/{site_id}/{agent_id}/{channel.value}"


def parse_topic(topic: str) -> TopicAddress:
    """Split a concrete topic into site, agent and channel; raise :class:`ProtocolError` otherwise."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != TOPIC_ROOT:
        raise ProtocolError("unknown_topic", f"topic {topic!r} is not ms/v1/<site>/<agent>/<channel>")
    if parts[1] != TOPIC_VERSION:
        raise ProtocolError("unsupported_version", f"topic {topic!r} uses version {parts[1]!r}, expected v1")
    try:
        channel = Channel(parts[4])
    except ValueError:
        raise ProtocolError("unknown_channel", f"topic {topic!r} has unknown channel {parts[4]!r}") from None
    return TopicAddress(check_id("site_id", parts[2]), check_id("agent_id", parts[3]), channel)


#: Topic prefix of notifications the cloud publishes to apps (``ms/v1/notify/<user>``), not an agent's topic.
NOTIFY_PREFIX = f"{TOPIC_ROOT}/{TOPIC_VERSION}/notify/"
#: What the cloud ingest subscribes to: everything under the root, so a publish on an unknown channel or version is
#: dead-lettered with its reason instead of going unseen (the cloud's own publications are skipped, see below).
INGEST_FILTER = f"{TOPIC_ROOT}/#"


def published_by_cloud(topic: str) -> bool:
    """A topic the cloud itself publishes on (an agent's ``cmd``/``ack``, app notifications): not ingest input."""
    if topic.startswith(NOTIFY_PREFIX):
        return True
    channel = topic.rpartition("/")[2]
    return channel in _DOWNLINK_NAMES and topic.count("/") == 4


def subscription(channel: Channel, *, site_id: str = "+", agent_id: str = "+", share_group: str | None = None) -> str:
    """A subscription filter for one channel, optionally as an MQTT 5 shared subscription."""
    topic = f"{TOPIC_ROOT}/{TOPIC_VERSION}/{site_id}/{agent_id}/{channel.value}"
    return f"$share/{share_group}/{topic}" if share_group else topic
