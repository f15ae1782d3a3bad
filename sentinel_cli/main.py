"""Entry point of the ``sentinel`` command.

Sub-command groups live with the package that owns them (``edge/cli.py``, ``cloud/cli.py``,
``simulators/cli.py``, ``sentinel_cli/demo.py``) and are imported only when invoked, so that
``sentinel edge …`` works on an edge-only install and ``sentinel cloud …`` there says which extra
to install instead of failing with a traceback.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup

# name → (module:attribute of a Typer app, extra that provides its dependencies, help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "sentinel_cli.demo:app",
        "edge,cloud",
        "运行演示县：云端、broker、模拟设备与边缘代理 (run the demo county)",
    ),
    "cloud": ("cloud.cli:app", "cloud", "云端核心：API、接入、存储 (cloud core: API, ingest, storage)"),
    "edge": ("edge.cli:app", "edge", "边缘代理 (site edge agent)"),
    "sim": ("simulators.cli:app", "edge", "设备模拟器 (device and fleet simulators)"),
    "fleet": (
        "sentinel_cli.fleet:app",
        "cloud",
        "边缘代理运维：远程配置与命令 (fleet operations over the cloud API)",
    ),
    "audit": ("cloud.security.cli:audit_app", "cloud", "审计日志：校验、导出 (audit journal: verify, export)"),
    "device": ("cloud.security.cli:device_app", "cloud", "设备 MQTT 账号与 ACL (device credentials, broker ACL)"),
    "kiosk": ("cloud.security.cli:kiosk_app", "cloud", "自助终端：登记、列表、停用 (self-service kiosk terminals)"),
    "pki": ("cloud.security.cli:pki_app", "cloud", "证书：CA、服务器与代理证书 (TLS certificates)"),
    "backup": ("cloud.security.cli:backup_app", "cloud", "在线一致性备份 (online consistent backup)"),
    "restore": ("cloud.security.cli:restore_app", "cloud", "从备份恢复 (restore a backup)"),
}
OUR_PACKAGES = {"protocols", "edge", "cloud", "simulators", "sentinel_cli"}


def _unavailable(name: str, help_text: str, reason: str) -> Any:
    stub = typer.Typer(add_completion=False)

    @stub.callback(invoke_without_command=True, help=f"{help_text} — {reason}")
    def _explain() -> None:
        typer.echo(f"sentinel {name}: {reason}", err=True)
        raise typer.Exit(2)

    command = typer.main.get_command(stub)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in SUBCOMMANDS:
            return None
        target, extra, help_text = SUBCOMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or "?"
            if missing.split(".")[0] in OUR_PACKAGES:
                if missing != module_name:
                    raise  # our own code is broken: show the real error
                return _unavailable(cmd_name, help_text, "not part of this build")
            reason = f"needs the '{missing}' package: pip install 'market-sentinel[{extra}]'"
            return _unavailable(cmd_name, help_text, reason)
        command = typer.main.get_command(getattr(module, attr))
        command.name = cmd_name
        command.help = command.help or help_text
        return command


app = typer.Typer(
    cls=LazyGroup,
    add_completion=False,
    no_args_is_help=True,
    help="Market Sentinel 基层市场监管物联网平台 — edge agents, cloud core, simulators.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"market-sentinel {metadata.version('market-sentinel')}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="显示版本 (show version)"),
) -> None:
    """Market Sentinel 基层市场监管物联网平台 — edge agents, cloud core, simulators."""


if __name__ == "__main__":
    app()
