"""Fast decoding of telemetry batches: one C pass from bytes (msgspec), never more lenient than ``protocols``.

The ingest's hot path is telemetry. ``protocols.TelemetryBatch.model_validate_json`` builds a frozen pydantic
model per reading (with a Python model validator each); at 50 readings per batch that was the largest single
cost of the ingest. Here the same payload is validated in one msgspec pass into slotted structs, with the
timestamps kept as strings (a batch's readings usually share one) and converted once per distinct string.

Contract: :func:`decode_telemetry` accepts a *subset* of what ``protocols`` accepts (same field names, same
identifier pattern, the same bounds, RFC 3339 timestamps with an offset, finite numbers, ``value`` null only
when quality is bad, the topic's identity). Whatever it does not accept, it returns ``None`` for, and the
caller falls back to ``protocols.decode_for_topic`` — the authority that also produces the rejection reason.
So a payload is never accepted here that the wire contract would refuse; a test compares both on edge cases.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from protocols.messages import MAX_PAYLOAD_BYTES, MAX_READINGS_PER_BATCH, MAX_SEQ
from protocols.topics import ID_PATTERN

Identifier = Annotated[str, Meta(pattern=ID_PATTERN)]
#: RFC 3339 with an explicit offset, ≤ 6 fractional digits (what every edge sends); anything else → protocols
_TS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$"
Timestamp = Annotated[str, Meta(pattern=_TS)]


class FastReading(Struct, forbid_unknown_fields=True, frozen=True):
    sensor_id: Identifier
    ts: Timestamp
    value: float | None
    unit: Annotated[str, Meta(max_length=16)]
    quality: Literal["good", "uncertain", "bad"] = "good"


class FastBatch(Struct, forbid_unknown_fields=True, frozen=True):
    """The fields of :class:`protocols.TelemetryBatch`; ``readings[i].ts`` stays a string here
    (:meth:`FastDecoder.instant` gives the aware datetime and epoch ms)."""

    site_id: Identifier
    agent_id: Identifier
    seq: Annotated[int, Meta(ge=1, le=MAX_SEQ)]
    sent_at: Timestamp
    readings: Annotated[list[FastReading], Meta(min_length=1, max_length=MAX_READINGS_PER_BATCH)]
    incarnation: Identifier | None = None
    v: Literal[1] = 1
    kind: Literal["telemetry"] = "telemetry"


_decoder = msgspec.json.Decoder(FastBatch)


class FastDecoder:
    """Decodes telemetry payloads; caches timestamp string → (aware datetime, epoch ms). Shared by the
    pipelined ingest's validating thread and its writer thread: every cache operation is one atomic dict call, and
    an entry lost to a concurrent ``clear()`` is only parsed again."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: dict[str, tuple[datetime, int]] = {}
        self._cache_size = cache_size

    def instant(self, ts: str) -> tuple[datetime, int] | None:
        hit = self._cache.get(ts)
        if hit is not None:
            return hit
        try:
            dt = datetime.fromisoformat(ts)
        except ValueError:  # e.g. 2026-02-30: protocols decides
            return None
        if dt.tzinfo is None:
            return None
        hit = (dt, int(dt.timestamp() * 1000))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[ts] = hit
        return hit

    def decode_telemetry(self, site_id: str, agent_id: str, payload: bytes) -> FastBatch | None:
        """The batch if it is certainly valid for the topic ``site_id``/``agent_id``; ``None`` → ask protocols."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            return None
        try:
            batch = _decoder.decode(payload)
        except msgspec.DecodeError:
            return None
        if batch.site_id != site_id or batch.agent_id != agent_id:
            return None
        if self.instant(batch.sent_at) is None:
            return None
        instant = self.instant
        isfinite = math.isfinite
        last = ""
        for r in batch.readings:
            if r.ts != last:
                if instant(r.ts) is None:
                    return None
                last = r.ts
            v = r.value
            if v is None:
                if r.quality != "bad":
                    return None
            elif not isfinite(v):
                return None
        return batch
