"""Test helpers: run a scenario through a real simulator, real drivers and the rule engine (no MQTT)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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


async def await_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


class SentinelProcess:
    """``sentinel ARGS`` as a child process in its own session (output appended to ``log``), stopped by PID."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args, self.log, self.env = args, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sentinel_cli.main", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, **self.env} if self.env else None,
                start_new_session=True,
            )

    def freeze(self) -> None:
        """SIGSTOP: the process stops between two instructions, holding whatever state it had."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


class AgentProcess(SentinelProcess):
    """``sentinel edge run CONFIG`` as a child process."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(["edge", "run", str(config)], log, env)
        self.config = config
