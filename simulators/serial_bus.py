"""Serial RS-485 buses on a pty pair: Modbus RTU probes/controllers and ASCII probes of a scenario.

The simulator owns the pty master; the agent opens the slave path (``bus.port``). Open the slave with pyserial
before the simulator writes (bytes written earlier are flushed away). Several devices share the line
(multi-drop); a ``silent`` device simply does not answer, like a dead slave on a real bus.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from pathlib import Path

from protocols.probe_ascii import ProbeFrameError, ProbeReading, decode_request, encode_reading
from protocols.registers import RegisterFunction, RegisterMap
from simulators.clock import ScenarioClock
from simulators.registers import equipment_registers, find_register_map, probe_registers
from simulators.scenario import Scenario, ScenarioDevice, fault_at, values_at


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


class PtyBus:
    """A pty pair whose master end is served by a thread until :meth:`stop`."""

    def __init__(
        self, scenario: Scenario, clock: ScenarioClock | None = None, registers_dir: Path | None = None
    ) -> None:
        self.scenario = scenario
        self.clock = clock or ScenarioClock()
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        self.port = os.ttyname(self._slave)
        self.devices = {d.unit_id: d for d in scenario.devices}
        self.maps: dict[str, RegisterMap] = {
            d.id: find_register_map(d.register_map, registers_dir)
            for d in scenario.devices
            if d.kind == "equipment" and d.register_map
        }
        self.requests = 0
        self.answers: dict[str, int] = {d.id: 0 for d in scenario.devices}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"pty-sim-{self.port}", daemon=False)

    def start(self) -> PtyBus:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> PtyBus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                if buffer:
                    buffer = b""  # inter-frame silence: drop a partial frame
                continue
            try:
                chunk = os.read(self.master, 512)
            except OSError:
                return
            buffer += chunk
            buffer = self.handle(buffer)

    def handle(self, buffer: bytes) -> bytes:
        raise NotImplementedError

    def reply(self, data: bytes) -> None:
        os.write(self.master, data)


class RtuBus(PtyBus):
    """Modbus RTU slaves (function 03/04) on one line."""

    def handle(self, buffer: bytes) -> bytes:
        while len(buffer) >= 8:
            frame, buffer = buffer[:8], buffer[8:]
            if crc16(frame[:6]).to_bytes(2, "little") != frame[6:]:
                return b""  # garbage: resynchronise on the next silence
            self.requests += 1
            unit, function = frame[0], frame[1]
            address, count = int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big")
            device = self.devices.get(unit)
            if device is None:
                continue
            t = self.clock.now()
            if fault_at(device, t) == "silent":
                continue
            if function not in (3, 4):
                self.reply(with_crc(bytes([unit, function | 0x80, 1])))
                continue
            image = self._image(device, RegisterFunction(function), t)
            words = [image.get(address + i, 0) for i in range(count)]
            payload = b"".join(w.to_bytes(2, "big") for w in words)
            self.answers[device.id] += 1
            self.reply(with_crc(bytes([unit, function, len(payload)]) + payload))
        return buffer

    def _image(self, device: ScenarioDevice, function: RegisterFunction, t: float) -> dict[int, int]:
        if device.kind == "probe":
            return dict(enumerate(probe_registers(device, t)))
        return equipment_registers(device, self.maps[device.id], t)[function]


class AsciiBus(PtyBus):
    """ASCII probes (:mod:`protocols.probe_ascii`) on one line."""

    def handle(self, buffer: bytes) -> bytes:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                request = decode_request(line)
            except ProbeFrameError:
                continue
            self.requests += 1
            device = self.devices.get(request.address)
            if device is None:
                continue
            t = self.clock.now()
            fault = fault_at(device, t)
            if fault == "silent":
                continue
            values = values_at(device, t)
            error = fault == "sensor_error"
            reading = ProbeReading(
                request.address,
                None if error else round(values.get("temperature", 0.0), 1),
                None if error or "humidity" not in values else round(values["humidity"], 1),
                temperature_fault=error,
                humidity_fault=error and "humidity" in values,
            )
            self.answers[device.id] += 1
            self.reply(encode_reading(reading))
        return buffer
