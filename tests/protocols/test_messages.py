"""The wire contract: round-trips, rejection of malformed payloads with clear errors, topic identity."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import (
    Ack,
    AckRange,
    AlertEvent,
    AlertPhase,
    Channel,
    Command,
    CommandName,
    EvidenceRef,
    Heartbeat,
    ProtocolError,
    Quality,
    Reading,
    Severity,
    SiteState,
    Status,
    TelemetryBatch,
    decode,
    encode,
    parse_topic,
    subscription,
    topic_for,
)
from protocols.messages import MAX_PAYLOAD_BYTES, decode_for_topic, json_schemas

ids = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,20}\Z")
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    quality = draw(st.sampled_from(list(Quality)))
    value = draw(st.none() | finite) if quality is Quality.BAD else draw(finite)
    return Reading(
        sensor_id=draw(ids),
        ts=draw(aware),
        value=value,
        unit=draw(st.sampled_from(["°C", "%RH", "MPa"])),
        quality=quality,
    )


@st.composite
def batches(draw: st.DrawFn) -> TelemetryBatch:
    return TelemetryBatch(
        site_id=draw(ids),
        agent_id=draw(ids),
        seq=draw(st.integers(1, 2**63 - 1)),
        sent_at=draw(aware),
        readings=draw(st.lists(readings(), min_size=1, max_size=20)),
    )


@st.composite
def alerts(draw: st.DrawFn) -> AlertEvent:
    started = draw(aware)
    return AlertEvent(
        site_id=draw(ids),
        agent_id=draw(ids),
        seq=draw(st.integers(1, 2**40)),
        alert_id=draw(st.text("abcdef0123456789", min_size=8, max_size=32)),
        device_id=draw(ids),
        sensor_id=draw(st.none() | ids),
        rule_id=draw(ids),
        phase=draw(st.sampled_from(list(AlertPhase))),
        severity=draw(st.sampled_from(list(Severity))),
        category=draw(ids),
        value=draw(st.none() | finite),
        limit=draw(st.none() | finite),
        message=draw(st.text(max_size=100)),
        ts=started,
        started_at=started,
        evidence=draw(
            st.lists(
                st.builds(
                    EvidenceRef,
                    sha256=st.text("0123456789abcdef", min_size=64, max_size=64),
                    size=st.integers(0, 10**6),
                ),
                max_size=3,
            )
        ),
    )


@given(batches())
def test_telemetry_round_trip(batch: TelemetryBatch) -> None:
    assert decode(encode(batch)) == batch
    assert decode(encode(batch), TelemetryBatch) == batch


@given(alerts())
def test_alert_round_trip(alert: AlertEvent) -> None:
    assert decode(encode(alert)) == alert


def test_other_messages_round_trip() -> None:
    now = datetime.now(UTC)
    for msg in (
        Status(site_id="s", agent_id="a", state=SiteState.OFFLINE, ts=now, reason="lwt"),
        Heartbeat(site_id="s", agent_id="a", ts=now, uptime_s=3, outbox_depth=7, drivers={"bus1": "ok"}),
        Command(command_id="c1", name=CommandName.PUSH_CONFIG, issued_at=now, payload={"toml": "x = 1"}),
        Ack(agent_id="a", committed=[AckRange(first=1, last=5)], ts=now),
    ):
        assert decode(encode(msg)) == msg


def _valid_batch_dict() -> dict[str, object]:
    return json.loads(
        encode(
            TelemetryBatch(
                site_id="pharmacy-1",
                agent_id="agent-1",
                seq=1,
                sent_at=datetime(2026, 11, 26, tzinfo=UTC),
                readings=[Reading(sensor_id="fridge-t", ts=datetime(2026, 11, 26, tzinfo=UTC), value=4.0, unit="°C")],
            )
        )
    )


@pytest.mark.parametrize(
    ("mutate", "reason", "names"),
    [
        (lambda d: d.update(seq=0), "invalid_payload", "seq"),
        (lambda d: d.update(seq=-3), "invalid_payload", "seq"),
        (lambda d: d.update(site_id="a/b"), "invalid_payload", "site_id"),
        (lambda d: d.update(site_id="+"), "invalid_payload", "site_id"),
        (lambda d: d.update(readings=[]), "invalid_payload", "readings"),
        (lambda d: d["readings"][0].update(ts="2026-11-26T00:00:00"), "invalid_payload", "ts"),
        (lambda d: d["readings"][0].update(value=None), "invalid_payload", "readings"),
        (lambda d: d["readings"][0].update(value="warm"), "invalid_payload", "value"),
        (lambda d: d.update(extra_field=1), "invalid_payload", "extra_field"),
        (lambda d: d.update(v=2), "unsupported_version", "v"),  # as documented
        (lambda d: d.pop("agent_id"), "invalid_payload", "agent_id"),
    ],
)
def test_malformed_batch_rejected_with_named_field(mutate, reason: str, names: str) -> None:  # type: ignore[no-untyped-def]
    data = _valid_batch_dict()
    mutate(data)
    with pytest.raises(ProtocolError) as info:
        decode(json.dumps(data).encode(), TelemetryBatch)
    assert info.value.reason == reason
    assert names in str(info.value)


def test_nan_and_infinity_rejected() -> None:
    raw = json.dumps(_valid_batch_dict()).replace("4.0", "NaN").encode()
    with pytest.raises(ProtocolError):
        decode(raw, TelemetryBatch)


def test_not_json_and_oversized() -> None:
    with pytest.raises(ProtocolError) as info:
        decode(b"{not json")
    assert info.value.reason == "malformed_json"
    with pytest.raises(ProtocolError) as info:
        decode(b" " * (MAX_PAYLOAD_BYTES + 1))
    assert info.value.reason == "oversized"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_garbage_never_escapes_as_other_error(payload: bytes) -> None:
    try:
        decode(payload)
    except ProtocolError as exc:
        assert exc.reason in {"malformed_json", "invalid_payload"}


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    )
)
def test_arbitrary_json_is_rejected_cleanly(value: object) -> None:
    with pytest.raises(ProtocolError):
        decode(json.dumps(value).encode(), TelemetryBatch)


def test_topics_round_trip_and_reject() -> None:
    topic = topic_for("pharmacy-1", "agent-1", Channel.TELEMETRY)
    assert topic == "ms/v1/pharmacy-1/agent-1/telemetry"
    address = parse_topic(topic)
    assert (address.site_id, address.agent_id, address.channel) == (
        "pharmacy-1",
        "agent-1",
        Channel.TELEMETRY,
    )
    assert subscription(Channel.EVENTS, share_group="ingest") == "$share/ingest/ms/v1/+/+/events"
    for bad in (
        "ms/v2/s/a/telemetry",
        "ms/v1/s/a/unknown",
        "x/v1/s/a/telemetry",
        "ms/v1/s/telemetry",
        "ms/v1/S!/a/ack",
    ):
        with pytest.raises(ProtocolError):
            parse_topic(bad)
    with pytest.raises(ProtocolError):
        topic_for("a/b", "x", Channel.ACK)


def test_identity_mismatch_between_topic_and_payload() -> None:
    payload = json.dumps(_valid_batch_dict()).encode()
    address, msg = decode_for_topic("ms/v1/pharmacy-1/agent-1/telemetry", payload)
    assert isinstance(msg, TelemetryBatch) and address.site_id == "pharmacy-1"
    with pytest.raises(ProtocolError) as info:
        decode_for_topic("ms/v1/other-site/agent-1/telemetry", payload)
    assert info.value.reason == "identity_mismatch"
    with pytest.raises(ProtocolError) as info:  # a telemetry payload on the events channel
        decode_for_topic("ms/v1/pharmacy-1/agent-1/events", payload)
    assert info.value.reason == "invalid_payload"


def test_ack_seqs_and_range_order() -> None:
    ack = Ack(
        agent_id="a",
        committed=[AckRange(first=3, last=5)],
        rejected=[{"seq": 9, "reason": "x"}],
        ts=datetime.now(UTC),
    )  # type: ignore[list-item]
    assert ack.seqs() == {3, 4, 5, 9}
    with pytest.raises(ValueError):
        AckRange(first=5, last=3)


def test_messages_are_frozen() -> None:
    status = Status(site_id="s", agent_id="a", state=SiteState.ONLINE, ts=datetime.now(UTC))
    with pytest.raises(ValueError):
        status.state = SiteState.OFFLINE  # type: ignore[misc]


def test_exported_json_schema_is_current() -> None:
    """docs/protocol/*.schema.json must match the models (regenerate: python -m protocols.export)."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "protocol"
    for kind, schema in json_schemas().items():
        on_disk = json.loads((docs / f"{kind}.schema.json").read_text(encoding="utf-8"))
        on_disk.pop("$schema"), on_disk.pop("x-protocol-version")
        assert on_disk == json.loads(json.dumps(schema)), f"{kind}.schema.json is stale"
