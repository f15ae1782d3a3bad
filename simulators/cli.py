"""``sentinel sim …``: device simulators driven by scenario files."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import typer

from simulators.clock import ScenarioClock
from simulators.scenario import load_scenario

app = typer.Typer(
    help="设备模拟器 (device simulators driven by scenario files)", add_completion=False, no_args_is_help=True
)


@app.command()
def site(
    scenario: Path = typer.Argument(..., help="场景文件 scenario TOML"),
    modbus_port: int = typer.Option(5020, "--modbus-port", help="Modbus TCP 端口 (127.0.0.1)"),
    host: str = typer.Option("127.0.0.1", help="listen address"),
    time_scale: float = typer.Option(1.0, "--time-scale", help="场景时间倍率 (scenario seconds per real second)"),
) -> None:
    """在一个 Modbus TCP 服务上模拟站点全部设备（探头经 RS-485 网关）。Serve a scenario over Modbus TCP."""
    from simulators.modbus_tcp import SiteServer

    spec = load_scenario(scenario)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        server = SiteServer(spec, modbus_port, host=host, clock=ScenarioClock(time_scale))
        async with server:
            typer.echo(
                f"scenario {spec.scenario.id}: {len(spec.devices)} devices on modbus tcp {host}:{modbus_port} "
                f"(time scale {time_scale})",
            )
            await stop.wait()

    asyncio.run(main())


@app.command()
def serial(
    scenario: Path = typer.Argument(..., help="场景文件 scenario TOML"),
    protocol: str = typer.Option("modbus_rtu", help="modbus_rtu | ascii_probe"),
    time_scale: float = typer.Option(1.0, "--time-scale"),
) -> None:
    """在 pty 串口对上模拟 RS-485 总线；打印设备路径。Simulate an RS-485 bus on a pty pair; prints the port."""
    from simulators.serial_bus import AsciiBus, RtuBus

    spec = load_scenario(scenario)
    bus_type = AsciiBus if protocol == "ascii_probe" else RtuBus
    bus = bus_type(spec, ScenarioClock(time_scale)).start()
    typer.echo(f"scenario {spec.scenario.id}: {protocol} bus on {bus.port} (set [[buses]] port to it)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        bus.stop()


@app.command()
def show(
    scenario: Path = typer.Argument(...),
    step: float = typer.Option(10.0, help="seconds between rows"),
) -> None:
    """打印场景时间线与预期报警。Print a scenario's timeline and its expected alerts."""
    from simulators.scenario import fault_at, values_at

    spec = load_scenario(scenario)
    t = 0.0
    while t <= spec.scenario.duration_s:
        row = []
        for d in spec.devices:
            vals = ", ".join(f"{k}={v:.1f}" for k, v in values_at(d, t).items())
            fault = fault_at(d, t)
            row.append(f"{d.id}[{vals}{'' if fault == 'none' else ' ' + fault}]")
        typer.echo(f"t={t:6.0f}s  " + "  ".join(row))
        t += step
    for e in spec.expect:
        clear = f", clear before {e.clear_before_s}s" if e.clear_before_s else ""
        typer.echo(f"expect {e.device}/{e.rule}: raise in [{e.raise_after_s}, {e.raise_before_s}]s{clear}")


from simulators.fleet import fleet_command  # noqa: E402

app.command("fleet")(fleet_command)


from simulators.camera.cli import camera_app  # noqa: E402  (camera simulator: sentinel sim camera …)

app.add_typer(camera_app, name="camera")
