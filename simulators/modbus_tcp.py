"""A Modbus TCP server (pymodbus) serving every device of a scenario: equipment controllers and probes.

Probes behind an RS-485→Ethernet gateway are realistic: each probe is a unit id on the server. Register values
are computed from the scenario at the moment of each request. A ``silent`` fault answers with exception 0x0B
(gateway target device failed to respond), which is what a real gateway does for a dead serial slave.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols.registers import RegisterFunction, RegisterMap
from simulators.clock import ScenarioClock
from simulators.registers import equipment_registers, find_register_map, probe_registers
from simulators.scenario import Scenario, ScenarioDevice, fault_at

log = logging.getLogger(__name__)
REGISTERS = 256


class SiteServer:
    def __init__(
        self,
        scenario: Scenario,
        port: int,
        *,
        host: str = "127.0.0.1",
        clock: ScenarioClock | None = None,
        registers_dir: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock = clock or ScenarioClock()
        self.maps: dict[str, RegisterMap] = {}
        for d in scenario.devices:
            if d.kind == "equipment" and d.register_map:
                self.maps[d.id] = find_register_map(d.register_map, registers_dir)
        self.requests = 0
        devices = [self._sim_device(d) for d in scenario.devices]
        self.server = ModbusTcpServer(devices, address=(host, port))
        self._task: asyncio.Task[None] | None = None

    def _sim_device(self, device: ScenarioDevice) -> SimDevice:
        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            self.requests += 1
            t = self.clock.now()
            if fault_at(device, t) == "silent":
                return ExcCodes.GATEWAY_NO_RESPONSE
            if function_code not in (3, 4):
                return ExcCodes.ILLEGAL_FUNCTION
            if device.kind == "probe":
                image = dict(enumerate(probe_registers(device, t)))
            else:
                image = equipment_registers(device, self.maps[device.id], t)[RegisterFunction(function_code)]
            for i in range(count):
                registers[address - start_address + i] = image.get(address + i, 0)
            return None

        def block() -> list[SimData]:
            return [SimData(0, count=REGISTERS, datatype=DataType.REGISTERS)]

        bits = [SimData(0, count=16, datatype=DataType.BITS)]
        return SimDevice(id=device.unit_id, simdata=(bits, list(bits), block(), block()), action=action)

    async def start(self) -> None:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        self._task = asyncio.create_task(self.server.serve_forever())
        for _ in range(100):
            if self.server.transport is not None:
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.server.shutdown()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> SiteServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
