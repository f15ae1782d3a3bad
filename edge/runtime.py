"""What a configuration swap replaces: the bus pollers (transports, readers) and the rule instances."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from edge.bus import BusPoller, PolledDevice, SampleSink, SlaveHealth
from edge.config.loader import LoadedSite, points_of
from edge.config.models import (
    AsciiProbeConfig,
    ModbusEquipmentConfig,
    ModbusProbeConfig,
    SerialBusConfig,
)
from edge.drivers.ascii_probe import AsciiProbeReader, AsciiTransport
from edge.drivers.base import Reader, Transport
from edge.drivers.modbus import ModbusEquipmentReader, ModbusProbeReader, ModbusTransport
from edge.rules.engine import RuleInstance, build_instances

log = logging.getLogger(__name__)


def build_reader(device: ModbusProbeConfig | AsciiProbeConfig | ModbusEquipmentConfig, site: LoadedSite) -> Reader:
    if isinstance(device, ModbusProbeConfig):
        return ModbusProbeReader(device)
    if isinstance(device, AsciiProbeConfig):
        return AsciiProbeReader(device)
    return ModbusEquipmentReader(device, site.register_maps[device.register_map])


def build_pollers(site: LoadedSite, sink: SampleSink) -> list[BusPoller]:
    pollers: list[BusPoller] = []
    for bus in site.config.buses:
        transport: Transport
        if isinstance(bus, SerialBusConfig) and bus.protocol == "ascii_probe":
            transport = AsciiTransport(bus)
        else:
            transport = ModbusTransport(bus)
        devices = [
            PolledDevice(
                build_reader(d, site),
                points_of(d, site.register_maps),
                SlaveHealth(interval_s=d.poll_interval_s, backoff_max_s=bus.backoff_max_s),
            )
            for d in site.config.devices
            if d.bus == bus.id
        ]
        if devices:
            pollers.append(BusPoller(transport, devices, sink, pause_s=bus.pause_ms / 1000, retries=bus.retries))
    return pollers


def build_rule_instances(site: LoadedSite) -> list[RuleInstance]:
    instances: list[RuleInstance] = []
    for binding in site.config.rules:
        pack = site.rule_packs[binding.pack]
        for device_id in binding.devices:
            device = site.config.device(device_id)
            instances.extend(
                build_instances(
                    pack,
                    binding.profile,
                    device_id,
                    device.label,
                    points_of(device, site.register_maps),
                    dict(binding.overrides),
                )
            )
    return instances


@dataclass
class Runtime:
    """Running pollers of one configuration."""

    site: LoadedSite
    pollers: list[BusPoller]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(p.run(), name=f"bus-{p.name}") for p in self.pollers]

    #: how long stopping waits for a bus task to end before it names the task and goes on
    STOP_TIMEOUT_S = 15.0

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        done, stuck = await asyncio.wait(self.tasks, timeout=self.STOP_TIMEOUT_S) if self.tasks else (set(), set())
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: a bus that failed while stopping is not reported at exit
        for task in stuck:  # a driver that ignores cancellation must not hang a reload or a shutdown
            log.error(
                "总线 %s 未在 %.0f 秒内停止（驱动未响应取消），继续 / bus task did not stop",
                task.get_name(),
                self.STOP_TIMEOUT_S,
            )
        self.tasks = []

    def driver_states(self) -> dict[str, str]:
        states: dict[str, str] = {}
        for poller in self.pollers:
            states.update(poller.states())
        return states
