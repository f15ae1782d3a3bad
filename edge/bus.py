"""Bus discipline: one poller (and one lock) per bus, a pause between requests, per-slave retries and back-off.

A slave that stops answering is marked down and retried with exponential back-off while its bus
neighbours keep their poll rate; a dropped TCP connection is reopened on the next request; the
poller never stops for good. A repeated failure is logged once at warning level, then quietly until
the slave recovers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edge.drivers.base import DriverState, Reader, Sample, Transport
from edge.errors import DriverError
from protocols.messages import Quality

log = logging.getLogger(__name__)

SampleSink = Callable[[str, list[Sample]], None]


@dataclass
class SlaveHealth:
    """Failure bookkeeping of one device."""

    interval_s: float
    backoff_max_s: float
    failures: int = 0
    state: DriverState = DriverState.OK
    last_error: str = ""
    next_due: float = 0.0
    polls: int = 0
    errors: int = 0

    def succeeded(self, now: float) -> bool:
        recovered = self.state is DriverState.DOWN
        self.failures = 0
        self.state = DriverState.OK
        # keep the cadence, but never poll again sooner than one interval: the first poll (next_due 0) or a late
        # one used to schedule the next poll *now*, giving two readings milliseconds apart
        following = self.next_due + self.interval_s
        self.next_due = following if now < following <= now + self.interval_s else now + self.interval_s
        return recovered

    def failed(self, now: float, error: str) -> bool:
        """Returns True the first time the device goes down (log it once)."""
        self.failures += 1
        self.errors += 1
        self.last_error = error
        first = self.state is not DriverState.DOWN
        self.state = DriverState.DOWN
        delay = min(self.interval_s * 2 ** min(self.failures - 1, 16), self.backoff_max_s)
        self.next_due = now + max(delay, self.interval_s)
        return first


@dataclass
class PolledDevice:
    reader: Reader
    units: dict[str, str]
    health: SlaveHealth


def _still_running() -> None:
    """Re-raise a cancellation a driver library turned into an error (pymodbus may answer a cancelled request
    with an I/O error): polling must stop when it is stopped, or a reload or shutdown waits for it forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class BusPoller:
    """Polls every device of one bus in turn under the bus lock."""

    transport: Transport
    devices: list[PolledDevice]
    sink: SampleSink
    pause_s: float
    retries: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    clock: Callable[[], float] = time.monotonic

    @property
    def name(self) -> str:
        return self.transport.name

    def states(self) -> dict[str, str]:
        return {d.reader.device_id: d.health.state.value for d in self.devices}

    async def run(self) -> None:
        try:
            while True:
                now = self.clock()
                due = sorted((d for d in self.devices if d.health.next_due <= now), key=lambda d: d.health.next_due)
                if not due:
                    wake = min((d.health.next_due for d in self.devices), default=now + 1.0)
                    await asyncio.sleep(min(max(wake - now, 0.01), 1.0))
                    continue
                for device in due:
                    await self.poll(device)
        finally:
            await self.transport.close()

    async def poll(self, device: PolledDevice) -> None:
        values: dict[str, float | None] | None = None
        error = ""
        async with self.lock:
            for attempt in range(self.retries + 1):
                try:
                    values = await device.reader.read(self.transport)
                    break
                except DriverError as exc:
                    _still_running()
                    error = str(exc)
                except Exception as exc:  # a driver bug must not end polling for good
                    _still_running()
                    log.exception("driver %s crashed", device.reader.device_id)
                    error = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:
                    await asyncio.sleep(self.pause_s + 0.05 * 2**attempt)
            if self.pause_s:
                await asyncio.sleep(self.pause_s)
        now = self.clock()
        device.health.polls += 1
        if values is None:
            if device.health.failed(now, error):
                log.warning("device %s down: %s (retrying with back-off)", device.reader.device_id, error)
            return
        if device.health.succeeded(now):
            log.warning("device %s answers again", device.reader.device_id)
        ts = datetime.now(UTC)
        samples = [
            Sample(
                device.reader.device_id,
                point,
                value,
                device.units.get(point, ""),
                ts,
                Quality.GOOD if value is not None else Quality.BAD,
            )
            for point, value in values.items()
            if point in device.units
        ]
        self.sink(device.reader.device_id, samples)
