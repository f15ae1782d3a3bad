"""Stopping polling ends it even when a driver library turns the cancellation into an I/O error (pymodbus can):
a reload or shutdown must not wait for a bus forever (a rule-pack test hung 300 s in a clean-clone CI run)."""

from __future__ import annotations

import asyncio

from edge.bus import BusPoller, PolledDevice, SlaveHealth


class _Gateway:
    name = "gw"

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class _SwallowingReader:
    """Answers a cancelled request with an error, as a library that wraps every failure would."""

    device_id = "power1"

    def __init__(self) -> None:
        self.reads = 0
        self.polling = asyncio.Event()

    async def read(self, transport: object) -> dict[str, float | None]:
        self.reads += 1
        if self.reads >= 3:
            self.polling.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            raise OSError("connection lost while waiting for the response") from None
        return {"voltage": 230.0}


async def test_a_cancelled_poller_stops_even_if_the_driver_swallows_the_cancellation() -> None:
    reader = _SwallowingReader()
    device = PolledDevice(reader, {"voltage": "V"}, SlaveHealth(interval_s=0.0, backoff_max_s=0.1))
    poller = BusPoller(_Gateway(), [device], lambda device_id, samples: None, pause_s=0.0, retries=2)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(reader.polling.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled()
