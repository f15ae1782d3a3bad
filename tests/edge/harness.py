"""Test helpers: run a scenario through a real simulator, real drivers and the rule engine (no MQTT)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from edge.config.loader import load_site_text
from edge.outbox import Outbox
from edge.rules.engine import RuleEngine
from edge.runtime import Runtime, build_pollers, build_rule_instances
from protocols.messages import AlertEvent, AlertPhase, decode
from simulators.clock import ScenarioClock
from simulators.modbus_tcp import SiteServer
from simulators.scenario import Scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "simulators" / "scenarios"


def alert_events(outbox: Outbox) -> list[AlertEvent]:
    return [decode(e.payload, AlertEvent) for e in outbox.pending(0, 1_000_000) if e.is_alert]


def lifecycle_complete(events: list[AlertEvent], scenario: Scenario) -> bool:
    for exp in scenario.expect:
        phases = [e.phase for e in events if e.device_id == exp.device and e.rule_id == exp.rule]
        if AlertPhase.RAISE not in phases:
            return False
        if exp.clear_before_s is not None and AlertPhase.CLEAR not in phases:
            return False
    return True


async def run_pack_scenario(
    scenario: Scenario, site_toml: str, tmp_path: Path, *, time_scale: float, port: int
) -> list[AlertEvent]:
    server = SiteServer(scenario, port, clock=ScenarioClock(time_scale))
    async with server:
        site = load_site_text(site_toml, "test-site.toml", tmp_path)
        outbox = Outbox(tmp_path / "edge.db", fsync="normal")
        try:
            engine = RuleEngine(
                outbox, site.config.agent.site_id, site.config.agent.agent_id, build_rule_instances(site)
            )
            runtime = Runtime(site, build_pollers(site, engine.observe))
            runtime.start()
            deadline = time.monotonic() + scenario.scenario.duration_s / time_scale + 10
            try:
                while time.monotonic() < deadline:
                    engine.tick()
                    if server.clock.now() > scenario.scenario.duration_s and lifecycle_complete(
                        alert_events(outbox), scenario
                    ):
                        break
                    await asyncio.sleep(0.05)
            finally:
                await runtime.stop()
            return alert_events(outbox)
        finally:
            outbox.close()
