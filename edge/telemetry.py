"""Batching of readings into telemetry batches written to the outbox (``batch_max_readings`` or every
``batch_interval_s``, whichever comes first).

Every poll's readings are staged in the outbox database at once (one transaction per poll), so nothing that was
read is lost by a ``kill -9`` before its batch is formed; batches are built from the staged readings in order.
"""

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
        self.readings_written = 0

    @property
    def pending(self) -> int:
        """Readings staged (durable) but not yet batched."""
        return self.outbox.staged

    def add(self, samples: list[Sample]) -> None:
        """Stage one poll's readings durably (one transaction); write full batches."""
        readings = [
            Reading(
                sensor_id=s.sensor_id, ts=s.ts, value=s.value, unit=s.unit[:16], quality=s.quality
            ).model_dump_json()
            for s in samples
        ]
        self.outbox.stage(readings)
        if self.outbox.staged >= self.max_readings:
            self.flush(full_only=True)

    def flush(self, *, full_only: bool = False) -> None:
        """Write the staged readings as batches of at most ``max_readings`` (with ``full_only``, only full ones)."""
        written = 0
        while self.outbox.staged and (not full_only or self.outbox.staged >= self.max_readings):
            before = self.outbox.staged
            seq = self.outbox.batch_staged(Channel.TELEMETRY.value, self._build, limit=self.max_readings)
            if seq is None:
                break
            written += before - self.outbox.staged
        if written:
            self.readings_written += written
            self.on_written()

    def _build(self, seq: int, staged: list[str]) -> bytes:
        readings = [Reading.model_validate_json(text) for text in staged]
        return encode(
            TelemetryBatch(
                site_id=self.site_id, agent_id=self.agent_id, seq=seq, sent_at=datetime.now(UTC), readings=readings
            )
        )
