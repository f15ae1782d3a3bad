"""What every driver shares: a sample, a driver state and the transport/reader interfaces.

Drivers read devices and return values; they import neither MQTT nor any web framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from protocols.messages import Quality


class DriverState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # answering, but some requests fail
    DOWN = "down"  # not answering; retried with back-off


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one point of one device at one instant."""

    device_id: str
    point: str
    value: float | None
    unit: str
    ts: datetime
    quality: Quality = Quality.GOOD

    @property
    def sensor_id(self) -> str:
        return f"{self.device_id}.{self.point}"


class Transport(Protocol):
    """A connection to one bus (a serial line or a TCP gateway/controller)."""

    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class Reader(Protocol):
    """Reads one device over its bus's transport: point → value (None = the sensor reports a fault)."""

    device_id: str

    async def read(self, transport: Transport) -> dict[str, float | None]: ...
