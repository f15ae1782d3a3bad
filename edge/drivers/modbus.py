"""Modbus transports (RTU over a serial line, TCP) and the readers of Modbus devices.

pymodbus 3.16: ``device_id=`` and ``count=`` are keyword-only. Each request has a timeout; the client
does no retries or reconnects on its own (the bus poller owns retries, back-off and reconnects).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.config.models import ModbusEquipmentConfig, ModbusProbeConfig, SerialBusConfig, TcpBusConfig
from edge.drivers.base import Transport
from edge.errors import DriverError
from protocols.registers import RegisterFunction, RegisterMap, RegisterPoint, decode_point

log = logging.getLogger(__name__)

#: Largest number of registers read in one request (Modbus allows 125).
MAX_BLOCK = 100
#: Raw int16 values probes use to say "sensor broken".
PROBE_FAULT_RAW = {-32768, 32767}

#: Modbus exception codes (Modbus Application Protocol v1.1b3, §7): meaning and the likely fix.
EXCEPTION_CODES: dict[int, tuple[str, str]] = {
    1: ("illegal function 非法功能码", "the device does not support this function: holding (03) vs input (04)?"),
    2: ("illegal data address 非法数据地址", "wrong function code or register? (addresses are 0-based on the wire)"),
    3: ("illegal data value 非法数据值", "register count too large for the device?"),
    4: ("server device failure 从站设备故障", "the device reports an internal fault: check it on site"),
    5: ("acknowledge 已受理（处理中）", "the device needs longer: raise timeout_s"),
    6: ("server device busy 从站忙", "poll less often or raise pause_ms"),
    8: ("memory parity error 存储奇偶校验错误", "the device's memory is faulty"),
    10: ("gateway path unavailable 网关路径不可用", "the gateway has no route to this slave address"),
    11: ("gateway target failed to respond 网关目标无响应", "slave address wrong, device off, or RS-485 wiring"),
}


def explain_exception(response: Any) -> str:
    """``ExceptionResponse(dev_id=1, function_code=131, exception_code=2)`` in words, with the likely fix."""
    code = getattr(response, "exception_code", None)
    function = (getattr(response, "function_code", 0) or 0) & 0x7F
    meaning, hint = EXCEPTION_CODES.get(code or -1, (f"exception code {code}", "see the device's manual"))
    return f"Modbus exception {code} on function {function:02d}: {meaning} — {hint}"


def explain_port(port: str) -> str:
    """Why a serial port cannot be opened, with the OS's own words (missing device, permission, busy)."""
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        hint = " (add the agent's user to the dialout group)" if exc.errno == errno.EACCES else ""
        return f"serial port {port}: {exc.strerror} [errno {exc.errno}]{hint}"
    os.close(fd)
    return f"serial port {port} opens, but the Modbus client could not use it"


class ModbusTransport:
    """One pymodbus client for one bus: a serial RS-485 line or a TCP endpoint."""

    def __init__(self, bus: SerialBusConfig | TcpBusConfig) -> None:
        self.bus = bus
        self.name = bus.id
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None

    def _make_client(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        if isinstance(self.bus, SerialBusConfig):
            return AsyncModbusSerialClient(
                self.bus.port,
                baudrate=self.bus.baudrate,
                bytesize=self.bus.bytesize,
                parity=self.bus.parity,
                stopbits=self.bus.stopbits,
                timeout=self.bus.timeout_s,
                retries=0,
                reconnect_delay=0,
                name=self.bus.id,
            )
        return AsyncModbusTcpClient(
            self.bus.host,
            port=self.bus.port,
            timeout=self.bus.timeout_s,
            retries=0,
            reconnect_delay=0,
            name=self.bus.id,
        )

    async def open(self) -> None:
        if self._client is not None and self._client.connected:
            return
        await self.close()
        client = self._make_client()
        try:
            ok = await asyncio.wait_for(client.connect(), self.bus.timeout_s + 2)
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise DriverError(f"bus {self.name}: cannot connect: {self._why(exc)}") from None
        if not ok:
            client.close()
            raise DriverError(f"bus {self.name}: cannot connect: {self._why(None)}")
        self._client = client

    def _why(self, exc: BaseException | None) -> str:
        if isinstance(self.bus, SerialBusConfig):
            return explain_port(self.bus.port)
        where = f"{self.bus.host}:{self.bus.port}"
        return f"{where}: {exc}" if exc is not None and str(exc) else f"{where} refused or unreachable"

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(self, function: RegisterFunction, address: int, count: int, device_id: int) -> list[int]:
        await self.open()
        assert self._client is not None
        call: Any = (
            self._client.read_holding_registers
            if function is RegisterFunction.HOLDING
            else self._client.read_input_registers
        )
        try:
            response = await asyncio.wait_for(
                call(address, count=count, device_id=device_id), self.bus.timeout_s * 2 + 1
            )
        except TimeoutError:
            raise DriverError(f"device {device_id} on {self.name}: no answer") from None
        except (ModbusException, OSError) as exc:
            if not self._client.connected:
                await self.close()
            raise DriverError(f"device {device_id} on {self.name}: {exc}") from None
        if response.isError():
            raise DriverError(f"device {device_id} on {self.name}: {explain_exception(response)}")
        registers = list(response.registers)
        if len(registers) < count:
            raise DriverError(f"device {device_id} on {self.name}: short answer ({len(registers)}/{count})")
        return registers[:count]


def _as_modbus(transport: Transport) -> ModbusTransport:
    if not isinstance(transport, ModbusTransport):
        raise DriverError(f"bus {transport.name} does not speak Modbus")
    return transport


class ModbusProbeReader:
    """An RS-485 temperature/humidity probe: signed registers holding value × 10."""

    def __init__(self, device: ModbusProbeConfig) -> None:
        self.device = device
        self.device_id = device.id
        self.function = RegisterFunction(device.function)

    async def read(self, transport: Transport) -> dict[str, float | None]:
        modbus = _as_modbus(transport)
        regs = self.device.registers
        wanted = {
            name: regs.wire(address)
            for name, address in (("temperature", regs.temperature), ("humidity", regs.humidity))
            if address is not None
        }
        low, high = min(wanted.values()), max(wanted.values())
        registers = await modbus.read(self.function, low, high - low + 1, self.device.address)
        out: dict[str, float | None] = {}
        for name, address in wanted.items():
            raw = registers[address - low]
            signed = raw - 0x10000 if raw >= 0x8000 else raw
            out[name] = None if signed in PROBE_FAULT_RAW else round(signed * self.device.registers.scale, 3)
        return out


def plan_blocks(points: list[RegisterPoint]) -> list[tuple[RegisterFunction, int, int, list[RegisterPoint]]]:
    """Group points into as few contiguous reads as possible: (function, start, count, points)."""
    blocks: list[tuple[RegisterFunction, int, int, list[RegisterPoint]]] = []
    for function in RegisterFunction:
        chosen = sorted((p for p in points if p.function is function), key=lambda p: p.address)
        current: list[RegisterPoint] = []
        start = end = 0
        for point in chosen:
            p_end = point.address + point.words
            if current and p_end - start <= MAX_BLOCK and point.address <= end + 4:
                current.append(point)
                end = max(end, p_end)
                continue
            if current:
                blocks.append((function, start, end - start, current))
            current, start, end = [point], point.address, p_end
        if current:
            blocks.append((function, start, end - start, current))
    return blocks


class ModbusEquipmentReader:
    """A controller described by a register map (elevator, boiler, power monitor …)."""

    def __init__(self, device: ModbusEquipmentConfig, register_map: RegisterMap) -> None:
        self.device = device
        self.device_id = device.id
        self.register_map = register_map
        wanted = set(device.points) if device.points is not None else None
        points = [
            p
            for p in register_map.points
            if wanted is None or p.name in wanted or any(b.name in wanted for b in p.bits)
        ]
        self.wanted = wanted
        self.blocks = plan_blocks(points)

    async def read(self, transport: Transport) -> dict[str, float | None]:
        modbus = _as_modbus(transport)
        out: dict[str, float | None] = {}
        for function, start, count, points in self.blocks:
            registers = await modbus.read(function, start, count, self.device.address)
            for point in points:
                offset = point.address - start
                values = decode_point(point, registers[offset : offset + point.words])
                for name, value in values.items():
                    if self.wanted is None or name in self.wanted:
                        out[name] = None if value != value else value  # NaN → sensor fault
        return out
