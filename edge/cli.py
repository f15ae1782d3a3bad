"""``sentinel edge …``: run the agent, validate a site file, export the JSON Schema."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import typer

from edge.config.loader import load_site
from edge.config.models import ModbusProbeConfig, SerialBusConfig, SiteConfig
from edge.errors import ConfigError

app = typer.Typer(help="边缘代理 (site edge agent)", add_completion=False, no_args_is_help=True)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "firmware-config" / "schema" / "site.schema.json"


def site_schema() -> dict[str, object]:
    schema = SiteConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Market Sentinel edge site configuration"
    return schema


@app.command()
def validate(config: Path = typer.Argument(..., help="站点配置文件 site TOML")) -> None:
    """校验站点配置（含寄存器表与规则包）。Validate a site file with its register maps and rule packs."""
    try:
        site = load_site(config)
    except ConfigError as exc:
        typer.echo(f"配置无效 invalid: {exc}", err=True)
        raise typer.Exit(1) from None
    c = site.config
    typer.echo(
        f"OK {config}: site {c.agent.site_id} agent {c.agent.agent_id}, {len(c.buses)} buses, "
        f"{len(c.devices)} devices, {len(c.rules)} rule bindings, {len(c.cameras)} cameras"
    )
    for line in source_notes(c, config.parent, str(config)):
        typer.echo(line)


def source_notes(c: SiteConfig, base_dir: Path, source: str = "") -> list[str]:
    """Warnings about sources that do not exist here (naming file and key, like the errors), and how probe
    register numbers are read."""
    notes: list[str] = []
    where = f"{source}: " if source else ""
    for index, bus in enumerate(c.buses):
        if isinstance(bus, SerialBusConfig) and not Path(bus.port).exists():
            notes.append(
                f"警告 warning: {where}buses[{index}].port: 串口 {bus.port} 不存在（总线 {bus.id}；"
                "serial port does not exist here）"
            )
    for index, camera in enumerate(c.cameras):
        if camera.resolved_kind == "file":
            path = Path(camera.source)
            if not (path.exists() or (base_dir / path).exists()):
                notes.append(
                    f"警告 warning: {where}cameras[{index}].source: 摄像头 {camera.camera_id} 的视频文件 "
                    f"{camera.source} 不存在（video file not found）"
                )
    for device in c.devices:
        if isinstance(device, ModbusProbeConfig):
            r = device.registers
            kind = "从 0 起（线上地址）0-based wire addresses" if r.base == 0 else "从 1 起 1-based"
            notes.append(
                f"说明 note: {device.id} 寄存器编号{kind}: temperature={r.temperature} humidity={r.humidity}"
                + ("；若设备手册从 1 编号，请设 registers.base = 1" if r.base == 0 else "")
            )
    return notes


@app.command()
def schema(
    output: Path | None = typer.Option(None, "--output", "-o", help="写入文件 (default: print)"),
) -> None:
    """导出站点配置 JSON Schema。Print or write the JSON Schema of site files."""
    text = json.dumps(site_schema(), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command()
def run(
    config: Path = typer.Argument(..., help="站点配置文件 site TOML"),
    log_level: str = typer.Option("INFO", help="DEBUG | INFO | WARNING"),
) -> None:
    """运行边缘代理直到 SIGTERM/Ctrl-C。Run the edge agent until SIGTERM/Ctrl-C."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    from edge.commands import recover_interrupted_trial

    recover_interrupted_trial(config)  # a push whose health trial never finished: back to the previous version
    try:
        site = load_site(config)
    except ConfigError as exc:
        typer.echo(f"配置无效 invalid: {exc}", err=True)
        raise typer.Exit(1) from None
    from edge.agent import run_agent

    asyncio.run(run_agent(site))
