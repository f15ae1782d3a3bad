"""Serial buses on real pty pairs: Modbus RTU probes (one dead slave) and ASCII probes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.config.loader import load_site_text
from edge.drivers.base import DriverState, Sample
from edge.runtime import Runtime, build_pollers
from protocols.messages import Quality
from simulators.clock import ScenarioClock
from simulators.scenario import Scenario
from simulators.serial_bus import AsciiBus, RtuBus

PROBES = Scenario.model_validate(
    {
        "scenario": {"id": "three_probes", "duration_s": 600},
        "devices": [
            {"id": "p1", "kind": "probe", "unit_id": 1, "values": {"temperature": 4.5, "humidity": 50}},
            {
                "id": "p2",
                "kind": "probe",
                "unit_id": 2,
                "values": {"temperature": 5.5, "humidity": 60},
                "script": [{"at": 0, "fault": "silent"}],
            },
            {
                "id": "p3",
                "kind": "probe",
                "unit_id": 3,
                "values": {"temperature": -18.2, "humidity": 40},
                "script": [{"at": 0, "fault": "sensor_error"}],
            },
        ],
    }
)


def site(port: str, protocol: str, kind: str, tmp_path: Path) -> str:
    devices = "".join(
        f"""
[[devices]]
type = "{kind}"
id = "p{n}"
bus = "line"
address = {n}
poll_interval_s = 0.2
"""
        for n in (1, 2, 3)
    )
    return f"""
[agent]
site_id = "s1"
data_dir = "{tmp_path}"

[[buses]]
kind = "serial"
id = "line"
port = "{port}"
protocol = "{protocol}"
baudrate = 115200
pause_ms = 5
timeout_s = 0.2
retries = 1
backoff_max_s = 2
{devices}"""


async def collect(text: str, tmp_path: Path, seconds: float) -> tuple[list[Sample], Runtime]:
    got: list[Sample] = []
    loaded = load_site_text(text, "serial.toml", tmp_path)
    runtime = Runtime(loaded, build_pollers(loaded, lambda _d, s: got.extend(s)))
    runtime.start()
    await asyncio.sleep(seconds)
    states = runtime.driver_states()
    await runtime.stop()
    runtime.final_states = states  # type: ignore[attr-defined]
    return got, runtime


async def test_dead_rtu_slave_does_not_stop_its_neighbours(tmp_path: Path) -> None:
    with RtuBus(PROBES, ScenarioClock()) as bus:
        samples, runtime = await collect(site(bus.port, "modbus_rtu", "modbus_probe", tmp_path), tmp_path, 4.0)
    p1 = [s for s in samples if s.device_id == "p1" and s.point == "temperature"]
    assert len(p1) >= 8, "the healthy neighbour kept its poll rate"
    assert all(s.value == 4.5 and s.quality is Quality.GOOD for s in p1)
    assert not [s for s in samples if s.device_id == "p2"], "a silent slave yields nothing"
    p3 = [s for s in samples if s.device_id == "p3"]
    assert p3 and all(s.value is None and s.quality is Quality.BAD for s in p3), "sensor error → bad quality"
    states = runtime.final_states  # type: ignore[attr-defined]
    assert states == {"p1": "ok", "p2": DriverState.DOWN.value, "p3": "ok"}
    p2_polls = next(d for p in runtime.pollers for d in p.devices if d.reader.device_id == "p2").health.polls
    assert p2_polls < len(p1), "the dead slave is retried with back-off, not at the full rate"


async def test_ascii_probes_on_a_pty_bus(tmp_path: Path) -> None:
    with AsciiBus(PROBES, ScenarioClock()) as bus:
        samples, runtime = await collect(site(bus.port, "ascii_probe", "ascii_probe", tmp_path), tmp_path, 2.0)
    hum = [s.value for s in samples if s.device_id == "p1" and s.point == "humidity"]
    assert hum and set(hum) == {50.0}
    assert not [s for s in samples if s.device_id == "p2"]
    assert {s.quality for s in samples if s.device_id == "p3"} == {Quality.BAD}
    assert runtime.final_states["p2"] == "down"  # type: ignore[attr-defined]


async def test_slave_recovers_and_is_polled_again(tmp_path: Path) -> None:
    flaky = Scenario.model_validate(
        {
            "scenario": {"id": "flaky", "duration_s": 60},
            "devices": [
                {
                    "id": "p1",
                    "kind": "probe",
                    "unit_id": 1,
                    "values": {"temperature": 3.0, "humidity": 45},
                    "script": [{"at": 0, "fault": "silent"}, {"at": 1.5, "fault": "none"}],
                }
            ],
        }
    )
    with RtuBus(flaky, ScenarioClock()) as bus:
        text = site(bus.port, "modbus_rtu", "modbus_probe", tmp_path).split("[[devices]]")
        samples, runtime = await collect("[[devices]]".join(text[:2]), tmp_path, 5.0)
    assert [s for s in samples if s.device_id == "p1"], "polling resumed after the slave came back"
    assert runtime.final_states == {"p1": "ok"}  # type: ignore[attr-defined]
