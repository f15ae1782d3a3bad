"""The agent's incarnation (issue 15): created with its data dir, kept across restarts, stamped on every entry,
new after a wipe; acks for another incarnation are ignored (another box with our ids must not empty our outbox)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from edge.config.models import MqttConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.messages import Ack, AckRange, Reading, TelemetryBatch, decode, encode


def build(seq: int) -> bytes:
    now = datetime.now(UTC)
    return encode(
        TelemetryBatch(
            site_id="s1",
            agent_id="a1",
            seq=seq,
            sent_at=now,
            readings=[Reading(sensor_id="t1", ts=now, value=4.5, unit="°C")],
        )
    )


def test_incarnation_is_kept_stamped_and_new_after_a_wipe(tmp_path: Path) -> None:
    data = tmp_path / "data"
    box = Outbox(data / "edge.db", fsync="normal")
    first = box.incarnation
    box.append("telemetry", build, readings=1)
    box.close()
    box = Outbox(data / "edge.db", fsync="normal")
    assert box.incarnation == first, "kept across a restart"
    box.append("telemetry", build, readings=1)
    entries = box.pending()
    assert [decode(e.payload, TelemetryBatch).incarnation for e in entries] == [first, first]
    assert json.loads(entries[0].payload)["readings"][0]["unit"] == "°C"
    box.close()
    shutil.rmtree(data)
    box = Outbox(data / "edge.db", fsync="normal")
    assert box.incarnation != first, "a wiped data dir is a new incarnation"
    assert box.append("telemetry", build, readings=1) == 1
    box.close()


def test_an_ack_for_another_incarnation_deletes_nothing(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "edge.db", fsync="normal")
    for _ in range(3):
        box.append("telemetry", build, readings=1)

    async def never(_: object) -> object:
        raise AssertionError("no command expected")

    uplink = Uplink(
        MqttConfig(),
        "s1",
        "a1",
        box,
        on_command=never,  # type: ignore[arg-type]
        heartbeat=lambda: None,  # type: ignore[arg-type, return-value]
        announce=lambda: None,  # type: ignore[arg-type, return-value]
    )
    now = datetime.now(UTC)
    other = "20200101t000000z-00000000"
    uplink.handle_ack(Ack(agent_id="a1", incarnation=other, committed=[AckRange(first=1, last=3)], ts=now))
    assert box.depth == 3, "another box's ack must not empty our outbox"
    uplink.handle_ack(Ack(agent_id="a1", incarnation=box.incarnation, committed=[AckRange(first=1, last=2)], ts=now))
    assert box.depth == 1
    assert uplink.clock_offset_s is not None and abs(uplink.clock_offset_s) < 60
    box.close()
