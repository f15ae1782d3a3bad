"""Device errors say what they mean (issue 15): a Modbus exception names its meaning and the likely fix instead
of pymodbus's ``ExceptionResponse(dev_id=1, function_code=131, exception_code=2)``; a serial port that cannot be
opened is named with the OS's error. Real pymodbus TCP simulator; a real (missing) device path."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config.models import SerialBusConfig, TcpBusConfig
from edge.drivers.modbus import ModbusTransport
from edge.errors import DriverError
from protocols.registers import RegisterFunction
from sentinel_cli.servers import free_port
from simulators.clock import ScenarioClock
from simulators.modbus_tcp import SiteServer
from simulators.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "firmware-config" / "demo" / "pharmacy.scenario.toml"


async def test_illegal_address_is_explained() -> None:
    port = free_port()
    async with SiteServer(load_scenario(SCENARIO), port, clock=ScenarioClock(1)):
        transport = ModbusTransport(TcpBusConfig(kind="tcp", id="gw", host="127.0.0.1", port=port))
        try:
            assert len(await transport.read(RegisterFunction.HOLDING, 0, 1, 1)) == 1
            with pytest.raises(DriverError) as info:
                await transport.read(RegisterFunction.HOLDING, 9000, 2, 1)
        finally:
            await transport.close()
    text = str(info.value)
    assert "illegal data address" in text and "wrong function code or register" in text, text
    assert "ExceptionResponse" not in text


async def test_a_missing_serial_port_is_named_with_the_os_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyUSB7")
    transport = ModbusTransport(SerialBusConfig(kind="serial", id="rs485", port=missing))
    with pytest.raises(DriverError) as info:
        await transport.open()
    assert missing in str(info.value) and "No such file or directory" in str(info.value), str(info.value)
