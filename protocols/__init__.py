"""Market Sentinel wire contract: MQTT topics and message models.

This package is the only place the wire format is defined. It imports none of our other packages.
Every change of a topic or payload gets an entry in ``CHANGELOG.md`` and a bump of
``PROTOCOL_VERSION`` when it is not backwards compatible.
"""

from protocols.errors import ProtocolError
from protocols.messages import (
    PROTOCOL_VERSION,
    Ack,
    AckRange,
    AlertEvent,
    AlertPhase,
    Announce,
    AnnouncedDevice,
    Command,
    CommandName,
    CommandResult,
    EvidenceRef,
    Heartbeat,
    Quality,
    Reading,
    Severity,
    SiteState,
    Status,
    TelemetryBatch,
    decode,
    encode,
)
from protocols.topics import Channel, TopicAddress, parse_topic, subscription, topic_for

__all__ = [
    "PROTOCOL_VERSION",
    "Ack",
    "AckRange",
    "AlertEvent",
    "AlertPhase",
    "Announce",
    "AnnouncedDevice",
    "Channel",
    "Command",
    "CommandName",
    "CommandResult",
    "EvidenceRef",
    "Heartbeat",
    "ProtocolError",
    "Quality",
    "Reading",
    "Severity",
    "SiteState",
    "Status",
    "TelemetryBatch",
    "TopicAddress",
    "decode",
    "encode",
    "parse_topic",
    "subscription",
    "topic_for",
]
