"""Each shipped rule pack fires and clears on its scenario: real pymodbus TCP simulator → drivers → engine.

The ground truth (which alerts must be raised and cleared) comes from the scenario file; any alert the
scenario does not expect fails the test too. Minimum durations are shortened with site overrides because the
scenarios run 20× faster than real time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.messages import AlertPhase
from sentinel_cli.servers import free_port
from simulators.scenario import load_scenario
from tests.edge.harness import SCENARIOS, run_pack_scenario

HEAD = """
[agent]
site_id = "test-site"
agent_id = "edge-1"
data_dir = "{data_dir}"

[[buses]]
kind = "tcp"
id = "gw"
host = "127.0.0.1"
port = {port}
timeout_s = 0.5
"""

SITES = {
    "elevator_faults": """
[[devices]]
type = "modbus_equipment"
id = "lift1"
bus = "gw"
address = 1
register_map = "elevator_controller"
label = "1号电梯"
poll_interval_s = 0.1

[[rules]]
pack = "elevator"
devices = ["lift1"]
overrides = { trapped = { min_duration_s = 0.5 } }
""",
    "boiler_alarms": """
[[devices]]
type = "modbus_equipment"
id = "boiler1"
bus = "gw"
address = 1
register_map = "boiler_controller"
label = "1号锅炉"
poll_interval_s = 0.1

[[rules]]
pack = "boiler"
devices = ["boiler1"]
overrides = { pressure_high = { limit = 1.05, min_duration_s = 0.2 } }
""",
    "mains_failure": """
[[devices]]
type = "modbus_equipment"
id = "power1"
bus = "gw"
address = 10
register_map = "power_monitor"
label = "市电监测"
poll_interval_s = 0.1

[[rules]]
pack = "mains_power"
devices = ["power1"]
overrides = { mains_lost = { min_duration_s = 0.2 } }
""",
    "gsp_fridge": """
[[devices]]
type = "modbus_probe"
id = "fridge1"
bus = "gw"
address = 1
label = "冷藏柜"
poll_interval_s = 0.1

[[rules]]
pack = "gsp"
profile = "refrigerated"
devices = ["fridge1"]
# 20× time compression makes every ramp look steep; rate-of-change is covered by the engine tests
overrides = { temp_rate = { max_per_min = 100000 } }
""",
    "cold_chain_freezer": """
[[devices]]
type = "modbus_probe"
id = "coldroom1"
bus = "gw"
address = 1
label = "冷藏库"
poll_interval_s = 0.1

[[devices]]
type = "modbus_probe"
id = "freezer1"
bus = "gw"
address = 2
label = "冷冻柜"
poll_interval_s = 0.1
points = ["temperature"]

[[rules]]
pack = "cold_chain"
profile = "chilled"
devices = ["coldroom1"]

[[rules]]
pack = "cold_chain"
profile = "frozen"
devices = ["freezer1"]
overrides = { frozen_high = { min_duration_s = 0.5 } }
""",
}


@pytest.mark.parametrize("name", sorted(SITES))
async def test_rule_pack_fires_and_clears_on_its_scenario(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    port = free_port()
    site = HEAD.format(data_dir=tmp_path, port=port) + SITES[name]
    events = await run_pack_scenario(scenario, site, tmp_path, time_scale=20, port=port)

    expected = {(e.device, e.rule) for e in scenario.expect}
    raised = {(e.device_id, e.rule_id) for e in events if e.phase is AlertPhase.RAISE}
    assert raised == expected, f"raised {sorted(raised)}, scenario expects {sorted(expected)}"
    for exp in scenario.expect:
        mine = [e for e in events if (e.device_id, e.rule_id) == (exp.device, exp.rule)]
        phases = [e.phase for e in mine if e.phase is not AlertPhase.UPDATE]
        assert phases == [AlertPhase.RAISE, AlertPhase.CLEAR], f"{exp.rule}: {phases}"
        assert len({e.alert_id for e in mine}) == 1
        assert all("{" not in e.message for e in mine), mine[0].message
