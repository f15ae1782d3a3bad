"""Entry point of the ``sentinel`` command.

Sub-command groups live with the package that owns them (``edge/cli.py``, ``cloud/cli.py``,
``simulators/cli.py``, ``sentinel_cli/demo.py``) and are imported only when invoked, so that
``sentinel edge …`` works on an edge-only install and ``sentinel cloud …`` there says which extra
to install instead of failing with a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer.main

# name → (module:attribute of a Typer app, extra that provides its dependencies, help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "sentinel_cli.demo:app",
        "edge,cloud",
        "运行演示县：云端、代理 broker、模拟设备与边缘代理 (run the demo county)",
    ),
    "cloud": ("cloud.cli:app", "cloud", "云端核心：API、接入、存储 (cloud core: API, ingest, storage)"),
    "edge": ("edge.cli:app", "edge", "边缘代理 (site edge agent)"),
    "sim": ("simulators.cli:app", "edge", "设备模拟器 (device and fleet simulators)"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        target, extra, help_text = SUBCOMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or "?"
            if missing.split(".")[0] in {"protocols", "edge", "cloud", "simulators", "sentinel_cli"}:
                raise  # our own code is broken: show the real error

            @click.command(name=cmd_name, help=help_text, context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args: Any) -> None:
                raise click.ClickException(
                    f"'sentinel {cmd_name}' needs the '{missing}' package: pip install 'market-sentinel[{extra}]'"
                )

            return unavailable
        command = typer.main.get_command(getattr(module, attr))
        command.help = command.help or help_text
        return command


@click.group(cls=LazyGroup, help="Market Sentinel 基层市场监管物联网平台 — edge agents, cloud core, simulators.")
@click.version_option(package_name="market-sentinel")
def app() -> None:
    pass


if __name__ == "__main__":
    app()
