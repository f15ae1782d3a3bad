"""Batching of readings into telemetry batches written to the outbox (``batch_max_readings`` or every
``batch_interval_s``, whichever comes first)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from edge.drivers.base import Sample
from edge.outbox import Outbox
from protocols.messages import Reading, TelemetryBatch, encode
from protocols.topics import Channel


class Batcher:
    def __init__(
        self, outbox: Outbox, site_id: str, agent_id: str, max_readings: int, on_written: Callable[[], None]
    ) -> None:
        self.outbox = outbox
        self.site_id = site_id
        self.agent_id = agent_id
        self.max_readings = max_readings
        self.on_written = on_written
        self.buffer: list[Reading] = []
        self.readings_written = 0

    def add(self, samples: list[Sample]) -> None:
        for s in samples:
            self.buffer.append(
                Reading(sensor_id=s.sensor_id, ts=s.ts, value=s.value, unit=s.unit[:16], quality=s.quality)
            )
            if len(self.buffer) >= self.max_readings:
                self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        readings, self.buffer = self.buffer, []

        def build(seq: int) -> bytes:
            return encode(
                TelemetryBatch(
                    site_id=self.site_id, agent_id=self.agent_id, seq=seq, sent_at=datetime.now(UTC), readings=readings
                )
            )

        self.outbox.append(Channel.TELEMETRY.value, build, readings=len(readings))
        self.readings_written += len(readings)
        self.on_written()
