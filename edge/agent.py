"""Composition root of the edge agent: wires config, drivers, rules, outbox and uplink. Logic lives elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime

from edge.commands import CommandHandler
from edge.config.loader import LoadedSite, points_of
from edge.config.models import ModbusEquipmentConfig
from edge.drivers.base import Sample
from edge.health import ProcessHealth
from edge.logbuffer import RecentLogs
from edge.outbox import Outbox
from edge.rules.engine import RuleEngine
from edge.runtime import Runtime, build_pollers, build_rule_instances
from edge.telemetry import Batcher
from edge.uplink import AGENT_VERSION, Uplink
from edge.vision.bridge import CameraBridge
from protocols.messages import Announce, AnnouncedDevice, EvidenceRef, Heartbeat, Severity

log = logging.getLogger(__name__)


def config_version(site: LoadedSite) -> str:
    """The applied configuration's version as the fleet view shows it: the first 12 hex of its text's SHA-256."""
    return site.version


class Agent:
    def __init__(self, site: LoadedSite) -> None:
        self.site = site
        agent = site.config.agent
        self.health = ProcessHealth()
        self.outbox = Outbox(
            agent.data_dir / "edge.db",
            max_bytes=int(agent.outbox_max_mb * 1_048_576),
            max_entries=agent.outbox_max_entries,
            fsync=agent.fsync,
            on_thinned=self._on_thinned,
        )
        self.engine = RuleEngine(self.outbox, agent.site_id, agent.agent_id, build_rule_instances(site))
        self.uplink = Uplink(
            site.config.mqtt,
            agent.site_id,
            agent.agent_id,
            self.outbox,
            on_command=CommandHandler(
                agent.site_id, agent.agent_id, self, AGENT_VERSION, state_file=agent.data_dir / "commands.json"
            ),
            heartbeat=self.heartbeat,
            announce=self.announce,
            heartbeat_interval_s=agent.heartbeat_interval_s,
            replay_rate_per_s=agent.replay_rate_per_s,
        )
        self.cameras = CameraBridge.from_site(site.config, self.outbox, wake=self.uplink.wake)
        self._cam_stop = asyncio.Event()
        self._cam_task: asyncio.Task[None] | None = None
        self.batcher = Batcher(self.outbox, agent.site_id, agent.agent_id, agent.batch_max_readings, self.uplink.wake)
        self.runtime = Runtime(site, build_pollers(site, self.on_samples))
        self._overflowing = False
        self.logs = RecentLogs()

    # -- data path ---------------------------------------------------------------------------------
    def on_samples(self, device_id: str, samples: list[Sample]) -> None:
        before = self.engine.events_written
        self.engine.observe(device_id, samples)
        self.batcher.add(samples)
        if self.engine.events_written != before:
            self.uplink.wake()

    def _on_thinned(self, batches: int, readings: int) -> None:
        self._overflowing = True
        stats = self.outbox.stats()
        self.engine.set_condition(
            self.site.config.agent.agent_id,
            "edge.outbox_overflow",
            True,
            value=float(stats.thinned_readings),
            title="边缘缓存溢出",
            message=(
                f"离线缓存已满，已稀疏最旧遥测 {stats.thinned_batches} 批 / {stats.thinned_readings} 条读数"
                "（报警从不丢弃）"
            ),
            severity=Severity.MAJOR,
        )

    def _check_overflow_cleared(self) -> None:
        if (
            self._overflowing
            and self.outbox.depth < self.outbox.max_entries // 2
            and (self.outbox.stats().bytes < self.outbox.max_bytes // 2)
        ):
            self._overflowing = False
            self.engine.set_condition(self.site.config.agent.agent_id, "edge.outbox_overflow", False)

    # -- reports -----------------------------------------------------------------------------------
    def heartbeat(self) -> Heartbeat:
        stats = self.outbox.stats()
        drivers = self.runtime.driver_states()
        drivers.update(self.cameras.health())
        drivers["outbox"] = "degraded" if stats.thinned_batches and self._overflowing else "ok"
        agent = self.site.config.agent
        return Heartbeat(
            site_id=agent.site_id,
            agent_id=agent.agent_id,
            ts=datetime.now(UTC),
            uptime_s=self.health.uptime_s(),
            outbox_depth=stats.depth,
            outbox_oldest_age_s=stats.oldest_age_s,
            last_acked_seq=stats.last_acked_seq,
            drivers=drivers,
            cpu_percent=self.health.cpu_percent(),
            rss_mb=round(self.health.rss_mb(), 1),
            incarnation=self.outbox.incarnation,
            clock_offset_s=self.uplink.clock_offset_s,
            config_version=config_version(self.site),
            rule_pack_versions=dict(self.site.rule_pack_versions),
            register_map_versions=dict(self.site.register_map_versions),
        )

    def announce(self) -> Announce:
        site = self.site
        devices = [
            AnnouncedDevice(
                device_id=d.id,
                device_type=d.device_type if isinstance(d, ModbusEquipmentConfig) else "probe",
                model=site.register_maps[d.register_map].model[:128]
                if isinstance(d, ModbusEquipmentConfig)
                else d.type,
                sensors=[f"{d.id}.{p}" for p in points_of(d, site.register_maps)],
            )
            for d in site.config.devices
        ]
        devices += self.cameras.announced_devices()
        return Announce(
            site_id=site.config.agent.site_id,
            agent_id=site.config.agent.agent_id,
            ts=datetime.now(UTC),
            agent_version=AGENT_VERSION,
            devices=devices,
            incarnation=self.outbox.incarnation,
        )

    # -- configuration swap ------------------------------------------------------------------------
    async def apply(self, site: LoadedSite) -> None:
        """Stop pollers and cameras, swap rules, pollers and cameras to ``site``, start again (raises if it cannot
        start)."""
        await self.runtime.stop()
        await self._stop_cameras()
        self.batcher.flush()
        agent = site.config.agent
        self.engine = RuleEngine(self.outbox, agent.site_id, agent.agent_id, build_rule_instances(site))
        self.runtime = Runtime(site, build_pollers(site, self.on_samples))
        self.cameras = CameraBridge.from_site(site.config, self.outbox, wake=self.uplink.wake)
        self.site = site
        self.batcher.max_readings = agent.batch_max_readings
        self.runtime.start()
        self._start_cameras()
        log.info(
            "configuration applied: %d buses, %d devices, %d cameras",
            len(self.runtime.pollers),
            len(site.config.devices),
            len(self.cameras.cameras),
        )

    def failing(self) -> dict[str, str]:
        """What does not work on the running configuration right now (a push's baseline): ``device:<id>`` whose
        last poll failed and ``camera:<id>`` that is down (cannot be opened, no frames), each with a label."""
        out = {}
        for poller in self.runtime.pollers:
            for device in poller.devices:
                if device.health.failures > 0:
                    why = device.health.last_error or "采集失败"
                    out[f"device:{device.reader.device_id}"] = f"设备 {device.reader.device_id}（{why}）"
        reasons = self.cameras.reasons()
        for key, state in self.cameras.health().items():
            if state == "down":
                cid = key.removeprefix("camera:")
                out[key] = f"摄像头 {cid}（{reasons.get(cid) or '无画面'}）"
        return out

    def health_problems(self, acks_before: int, tolerated: frozenset[str] = frozenset()) -> list[str]:
        """Why the agent is not (yet) healthy on its configuration since an apply (empty: healthy). Healthy: every
        device polled successfully at least once, every camera decoded at least one frame, and — when the uplink
        is connected — the cloud acknowledged something since ``acks_before`` or nothing waits in the outbox (MQTT
        settings change only on restart, so a network outage is not the new configuration's fault and is not
        judged). Devices and cameras in ``tolerated`` (``device:<id>`` / ``camera:<id>``: already failing before
        the push) are not judged: a push is refused for what it breaks, not for what was broken already."""
        problems = []
        for poller in self.runtime.pollers:
            for device in poller.devices:
                health = device.health
                if f"device:{device.reader.device_id}" in tolerated:
                    continue
                if health.polls - health.errors < 1:
                    why = health.last_error or "尚未轮询"
                    problems.append(f"设备 {device.reader.device_id} 未能成功采集（{why}）")
        for cid, why in self.cameras.without_frame().items():
            if f"camera:{cid}" not in tolerated:
                problems.append(f"摄像头 {cid} 无画面（{why}）")
        if self.uplink.connected and self.outbox.depth > 0 and self.uplink.acks == acks_before:
            problems.append("云端尚未确认新版本下发送的数据")
        return problems

    async def await_healthy(self, deadline_s: float, tolerated: frozenset[str] = frozenset()) -> str | None:
        """Wait until :meth:`health_problems` is empty (None) or ``deadline_s`` passed (the problems)."""
        loop = asyncio.get_running_loop()
        acks_before, end = self.uplink.acks, loop.time() + deadline_s
        while True:
            problems = self.health_problems(acks_before, tolerated)
            if not problems:
                return None
            left = end - loop.time()
            if left <= 0:
                return "；".join(problems)
            await asyncio.sleep(min(0.25, left))

    def recent_logs(self, lines: int) -> list[str]:
        return self.logs.last(lines)

    async def snapshot(self, camera_id: str) -> EvidenceRef:
        return await self.cameras.snapshot(camera_id)

    async def export_range(self, camera_id: str, start: datetime, end: datetime) -> EvidenceRef:
        return await self.cameras.export_range(camera_id, start, end)

    def _start_cameras(self) -> None:
        self._cam_stop = asyncio.Event()
        self._cam_task = asyncio.create_task(self.cameras.run(self._cam_stop), name="cameras")

    async def _stop_cameras(self) -> None:
        """Stop the camera workers and the evidence uploader (the bridge ends by itself once its event is set)."""
        task, self._cam_task = self._cam_task, None
        if task is None:
            return
        self._cam_stop.set()
        try:
            await task
        except Exception:
            log.exception("camera bridge failed while stopping")

    # -- life cycle --------------------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.site.config.agent.batch_interval_s))
            self.engine.tick()
            self.uplink.wake()
            if self.batcher.pending:
                self.batcher.flush()
            self._check_overflow_cleared()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        log.info(
            "edge agent %s/%s starting: %d devices, outbox depth %d",
            self.site.config.agent.site_id,
            self.site.config.agent.agent_id,
            len(self.site.config.devices),
            self.outbox.depth,
        )
        logging.getLogger().addHandler(self.logs)
        self.batcher.flush()  # readings staged before a crash go out first
        self.runtime.start()
        self._start_cameras()
        tasks = [
            asyncio.create_task(self.uplink.run(), name="uplink"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        try:
            await stop.wait()
        finally:
            await self.runtime.stop()
            await self._stop_cameras()
            self.batcher.flush()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.outbox.close()
            log.info("edge agent stopped")
            logging.getLogger().removeHandler(self.logs)


async def run_agent(site: LoadedSite) -> None:
    """Run until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await Agent(site).run(stop)
