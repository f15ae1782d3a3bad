"""Commands from the cloud: ping, reload, push_config.

``push_config`` carries the whole site file as TOML text in ``payload.config``. It is validated first (with its
register maps and rule packs); identity fields (site_id, agent_id, data_dir) cannot change remotely. A valid
file is written atomically (temp file + fsync + rename, the old one kept as ``.bak``) and the running pollers
and rules are swapped; if the new configuration cannot start, the old file and runtime are restored and the
result says why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from edge.config.loader import LoadedSite, load_site, load_site_text
from edge.errors import ConfigError
from protocols.messages import Command, CommandName, CommandResult

log = logging.getLogger(__name__)

ApplyConfig = Callable[[LoadedSite], Awaitable[None]]


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        backup.write_bytes(path.read_bytes())
    os.replace(tmp, path)


class CommandHandler:
    def __init__(
        self, site_id: str, agent_id: str, current: Callable[[], LoadedSite], apply: ApplyConfig, version: str
    ) -> None:
        self.site_id = site_id
        self.agent_id = agent_id
        self.current = current
        self.apply = apply
        self.version = version

    def _result(self, command: Command, ok: bool, detail: str) -> CommandResult:
        return CommandResult(
            site_id=self.site_id,
            agent_id=self.agent_id,
            command_id=command.command_id,
            ok=ok,
            detail=detail[:2000],
            ts=datetime.now(UTC),
        )

    async def __call__(self, command: Command) -> CommandResult:
        log.info("command %s (%s)", command.name.value, command.command_id)
        try:
            if command.name is CommandName.PING:
                return self._result(command, True, f"pong {self.version}")
            if command.name is CommandName.RELOAD:
                site = load_site(self.current().path)
                return await self._swap(command, site, None)
            text = command.payload.get("config")
            if not isinstance(text, str) or not text.strip():
                return self._result(command, False, "push_config 需要 payload.config（站点配置 TOML 文本）")
            old = self.current()
            site = load_site_text(text, f"{old.path.name} (push_config {command.command_id})", old.path.parent)
            return await self._swap(command, site, text)
        except ConfigError as exc:
            log.warning("rejected configuration: %s", exc)
            return self._result(command, False, f"配置无效，继续使用原配置：{exc}")

    async def _swap(self, command: Command, site: LoadedSite, text: str | None) -> CommandResult:
        old = self.current()
        for key in ("site_id", "agent_id", "data_dir"):
            if getattr(site.config.agent, key) != getattr(old.config.agent, key):
                return self._result(command, False, f"配置无效，继续使用原配置：agent.{key} 不能远程修改")
        site = LoadedSite(old.path, site.config, site.register_maps, site.rule_packs, site.text)
        if text is not None:
            write_atomically(old.path, text)
        try:
            await self.apply(site)
        except Exception as exc:
            log.exception("new configuration failed to start; rolling back")
            if text is not None:
                write_atomically(old.path, old.text)
            await self.apply(old)
            return self._result(command, False, f"新配置启动失败，已回滚：{exc}")
        restart = " (MQTT 设置在重启后生效)" if site.config.mqtt != old.config.mqtt else ""
        return self._result(
            command, True, f"配置已应用：{len(site.config.devices)} 台设备，{len(site.config.rules)} 组规则{restart}"
        )
