"""The device simulators themselves: scenario timing, the Modbus TCP site server over a real pymodbus client,
ASCII probe frames with their checksum on a real pty, and a silent device behind the gateway (exception 0x0B)."""

from __future__ import annotations

import struct
import time
import tomllib
from pathlib import Path

import pytest
import serial
from pymodbus.client import AsyncModbusTcpClient

from protocols.probe_ascii import ProbeReading, checksum, decode_reply, encode_request
from sentinel_cli.servers import free_port
from simulators.clock import ScenarioClock
from simulators.modbus_tcp import SiteServer
from simulators.registers import PROBE_FAULT
from simulators.scenario import Scenario, fault_at, load_scenario, values_at
from simulators.serial_bus import AsciiBus

SCENARIOS = Path(__file__).resolve().parents[2] / "simulators" / "scenarios"

SCENARIO = """
[scenario]
id = "sim_test"
duration_s = 100

[[devices]]
id = "fridge1"
kind = "probe"
unit_id = 1
values = { temperature = 5.0, humidity = 50.0 }
[[devices.script]]
at = 10
ramp_s = 4
values = { temperature = 11.0 }
[[devices.script]]
at = 30
fault = "sensor_error"
[[devices.script]]
at = 40
fault = "silent"
[[devices.script]]
at = 50
fault = "none"

[[devices]]
id = "probe3"
kind = "probe"
unit_id = 3
values = { temperature = -18.4, humidity = 61.5 }

[[devices]]
id = "boiler1"
kind = "equipment"
unit_id = 7
register_map = "boiler_controller"
values = { steam_pressure = 0.85, water_level = -35.0 }
"""


def scenario() -> Scenario:
    return Scenario.model_validate(tomllib.loads(SCENARIO))


def frozen_at(t: float) -> ScenarioClock:
    """A clock standing (practically) still at scenario second ``t``."""
    return ScenarioClock(time_scale=1e-9, start_at=t)


# -- scenario timing --------------------------------------------------------------------------------------------
def test_scripted_values_ramp_linearly_and_faults_start_and_end_on_time() -> None:
    fridge = scenario().device("fridge1")
    assert values_at(fridge, 9.9)["temperature"] == pytest.approx(5.0)
    assert values_at(fridge, 12.0)["temperature"] == pytest.approx(8.0)  # halfway through the 4 s ramp
    assert values_at(fridge, 14.0)["temperature"] == pytest.approx(11.0)
    assert values_at(fridge, 60.0) == pytest.approx({"temperature": 11.0, "humidity": 50.0})
    assert [fault_at(fridge, t) for t in (29.9, 30, 39.9, 40, 49.9, 50)] == [
        "none",
        "sensor_error",
        "sensor_error",
        "silent",
        "silent",
        "none",
    ]


def test_scenario_clock_scales_time_and_rejects_a_zero_scale() -> None:
    clock = ScenarioClock(time_scale=1000, start_at=20)
    deadline = time.monotonic() + 5
    while clock.now() < 30:  # 10 scenario seconds = 10 ms of real time
        assert time.monotonic() < deadline, "the scenario clock does not advance"
    assert 20 <= frozen_at(20).now() < 20.001
    with pytest.raises(ValueError):
        ScenarioClock(time_scale=0)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_scenarios_have_ground_truth_inside_their_duration(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.expect, "every shipped scenario states the alerts that must follow"
    for exp in sc.expect:
        sc.device(exp.device)  # the expected alert's device exists
        assert exp.raise_after_s < exp.raise_before_s <= sc.scenario.duration_s
        if exp.clear_before_s is not None:
            assert exp.raise_before_s <= exp.clear_before_s <= sc.scenario.duration_s


# -- Modbus TCP site server ----------------------------------------------------------------------------------
async def read(port: int, device_id: int, address: int, count: int, function: int = 3) -> tuple[int, list[int]]:
    """(exception code or 0, registers) from one request of a real pymodbus client."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    try:
        call = client.read_holding_registers if function == 3 else client.read_input_registers
        response = await call(address, count=count, device_id=device_id)
        if response.isError():
            return int(response.exception_code), []
        return 0, list(response.registers)
    finally:
        client.close()


async def test_site_server_serves_probe_and_equipment_registers_from_the_scenario() -> None:
    port = free_port()
    async with SiteServer(scenario(), port, clock=frozen_at(12.0)):
        assert await read(port, 1, 0, 2) == (0, [80, 500])  # 8.0 °C mid-ramp, 50.0 %RH, ×10
        code, (temp, hum) = await read(port, 3, 0, 2, function=4)
        assert code == 0 and struct.unpack(">h", temp.to_bytes(2, "big"))[0] == -184 and hum == 615
        code, regs = await read(port, 7, 0, 3)  # boiler: float32 low word first, then int16 water level
        assert code == 0
        pressure = struct.unpack(">f", regs[1].to_bytes(2, "big") + regs[0].to_bytes(2, "big"))[0]
        assert pressure == pytest.approx(0.85, abs=1e-6)
        assert struct.unpack(">h", regs[2].to_bytes(2, "big"))[0] == -35


async def test_site_server_reports_sensor_errors_and_a_silent_probe_as_gateway_exception_0x0b() -> None:
    port = free_port()
    async with SiteServer(scenario(), port, clock=frozen_at(35.0)):
        assert await read(port, 1, 0, 2) == (0, [PROBE_FAULT, PROBE_FAULT])
    async with SiteServer(scenario(), port, clock=frozen_at(45.0)) as server:
        assert await read(port, 1, 0, 2) == (0x0B, [])  # gateway target device failed to respond
        assert (await read(port, 3, 0, 2))[0] == 0, "its neighbour on the same gateway still answers"
        assert server.requests == 2


# -- ASCII probes on a pty pair -------------------------------------------------------------------------------
def xor_checksum_ok(line: bytes) -> bool:
    text = line.decode("ascii").rstrip("\r\n")
    body, _, cs = text[1:].partition("*")
    value = 0
    for byte in body.encode("ascii"):
        value ^= byte
    return text.startswith("$") and cs == f"{value:02X}" == checksum(body)


def test_ascii_probe_answers_with_a_checksummed_frame_and_ignores_bad_ones() -> None:
    with AsciiBus(scenario(), clock=frozen_at(12.0)) as bus:
        with serial.Serial(bus.port, 9600, timeout=1) as port:
            port.write(encode_request(3))
            line = port.readline()
            assert line.endswith(b"\r\n") and xor_checksum_ok(line), line
            assert decode_reply(line) == ProbeReading(3, -18.4, 61.5)

            port.write(encode_request(1))
            assert decode_reply(port.readline()) == ProbeReading(1, 8.0, 50.0)

            corrupt = bytearray(encode_request(3))
            corrupt[corrupt.index(b"*") + 1] ^= 0x01  # wrong checksum: a real probe stays quiet
            port.write(bytes(corrupt))
            port.timeout = 0.3
            assert port.readline() == b""
            assert bus.requests == 2 and bus.answers["probe3"] == 1
