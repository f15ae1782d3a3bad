"""Serial transport for the line-oriented ASCII probe protocol (:mod:`protocols.probe_ascii`).

pyserial is blocking; each request runs in a worker thread while the bus lock is held, so the event
loop never blocks and two requests never share the line.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import serial

from edge.config.models import AsciiProbeConfig, SerialBusConfig
from edge.drivers.base import Transport
from edge.errors import DriverError
from protocols.probe_ascii import (
    MAX_LINE,
    ProbeErrorReply,
    ProbeFrameError,
    ProbeReading,
    decode_reply,
    encode_request,
)

log = logging.getLogger(__name__)


class AsciiTransport:
    def __init__(self, bus: SerialBusConfig) -> None:
        self.bus = bus
        self.name = bus.id
        self._port: serial.Serial | None = None
        self._guard = threading.Lock()

    async def open(self) -> None:
        if self._port is not None:
            return
        try:
            self._port = serial.Serial(
                self.bus.port,
                baudrate=self.bus.baudrate,
                bytesize=self.bus.bytesize,
                parity=self.bus.parity,
                stopbits=self.bus.stopbits,
                timeout=self.bus.timeout_s,
                write_timeout=self.bus.timeout_s,
            )
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"bus {self.name}: cannot open {self.bus.port}: {exc}") from None

    async def close(self) -> None:
        with self._guard:
            if self._port is not None:
                self._port.close()
                self._port = None

    def _exchange(self, address: int) -> bytes:
        with self._guard:
            port = self._port
            if port is None:
                raise DriverError(f"bus {self.name}: closed")
            port.reset_input_buffer()
            port.write(encode_request(address))
            port.flush()
            return bytes(port.read_until(b"\n", MAX_LINE + 2))

    async def query(self, address: int) -> ProbeReading:
        await self.open()
        try:
            line = await asyncio.to_thread(self._exchange, address)
        except (serial.SerialException, OSError) as exc:
            await self.close()
            raise DriverError(f"bus {self.name}: {exc}") from None
        if not line:
            raise DriverError(f"probe {address} on {self.name}: no answer")
        try:
            reply = decode_reply(line)
        except ProbeFrameError as exc:
            raise DriverError(f"probe {address} on {self.name}: {exc.detail}") from None
        if isinstance(reply, ProbeErrorReply):
            raise DriverError(f"probe {address} on {self.name}: error {reply.code}")
        if reply.address != address:
            raise DriverError(f"probe {address} on {self.name}: answer from address {reply.address}")
        return reply


class AsciiProbeReader:
    def __init__(self, device: AsciiProbeConfig) -> None:
        self.device = device
        self.device_id = device.id

    async def read(self, transport: Transport) -> dict[str, float | None]:
        if not isinstance(transport, AsciiTransport):
            raise DriverError(f"bus {transport.name} does not speak the ASCII probe protocol")
        reply = await transport.query(self.device.address)
        out: dict[str, float | None] = {"temperature": reply.temperature}
        if self.device.humidity:
            out["humidity"] = reply.humidity
        return out
