"""The msgspec fast path never accepts what protocols refuses, and reads the same values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud.ingest.fastpath import FastDecoder
from protocols import ProtocolError, TelemetryBatch, topic_for
from protocols.messages import decode_for_topic
from protocols.topics import Channel

TOPIC = topic_for("s1", "a1", Channel.TELEMETRY)


def payload(**changes: Any) -> dict[str, Any]:
    reading = {"sensor_id": "t1", "ts": "2026-11-26T08:00:00.123456+08:00", "value": 4.5, "unit": "°C"}
    reading.update(changes.pop("reading", {}))
    body: dict[str, Any] = {
        "v": 1,
        "kind": "telemetry",
        "site_id": "s1",
        "agent_id": "a1",
        "seq": 5,
        "sent_at": "2026-11-26T00:00:00Z",
        "readings": [reading, {**reading, "sensor_id": "t2"}],
    }
    body.update(changes)
    return body


CASES: list[dict[str, Any]] = [
    payload(),
    payload(reading={"quality": "bad", "value": None}),
    payload(reading={"value": None}),  # null only when bad
    payload(reading={"value": 3}),  # int is a number
    payload(reading={"value": True}),
    payload(reading={"value": "4.5"}),
    payload(reading={"value": 1e999}),  # inf
    payload(reading={"ts": "2026-11-26T08:00:00"}),  # naive
    payload(reading={"ts": "2026-02-30T08:00:00Z"}),
    payload(reading={"ts": "2026-11-26T08:00:00.1234567Z"}),
    payload(reading={"ts": "2026-11-26 08:00:00Z"}),
    payload(reading={"ts": 1764000000}),
    payload(reading={"sensor_id": "T1"}),
    payload(reading={"sensor_id": "x" * 65}),
    payload(reading={"unit": "u" * 17}),
    payload(reading={"quality": "excellent"}),
    payload(reading={"extra": 1}),
    payload(site_id="s2"),
    payload(agent_id="a2"),
    payload(seq=0),
    payload(seq=2**63),
    payload(seq="5"),
    payload(v=2),
    payload(kind="alert"),
    payload(readings=[]),
    payload(extra=True),
    payload(sent_at="yesterday"),
]


@pytest.mark.parametrize("body", CASES, ids=range(len(CASES)))
def test_fast_path_accepts_a_subset_with_the_same_values(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    decoder = FastDecoder()
    fast = decoder.decode_telemetry("s1", "a1", raw)
    try:
        _, slow = decode_for_topic(TOPIC, raw)
    except ProtocolError:
        assert fast is None, "the fast path accepted what protocols refuses"
        return
    assert isinstance(slow, TelemetryBatch)
    if fast is None:
        return  # stricter than protocols: the writer falls back to protocols, which accepts it
    assert (fast.site_id, fast.agent_id, fast.seq) == (slow.site_id, slow.agent_id, slow.seq)
    for f, s in zip(fast.readings, slow.readings, strict=True):
        instant = decoder.instant(f.ts)
        assert instant is not None
        assert (f.sensor_id, instant[0], f.value, f.unit, f.quality) == (s.sensor_id, s.ts, s.value, s.unit, s.quality)
        assert instant[1] == int(s.ts.timestamp() * 1000)


def test_the_common_payload_takes_the_fast_path() -> None:
    assert FastDecoder().decode_telemetry("s1", "a1", json.dumps(payload()).encode()) is not None
