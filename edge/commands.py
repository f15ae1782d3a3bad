"""Commands from the cloud: ping, reload, push_config.

``push_config`` carries the whole site file as TOML text in ``payload.config``. It is validated first (with its
register maps and rule packs); identity fields (site_id, agent_id, data_dir) cannot change remotely. A valid
file is written atomically (temp file + fsync + rename, the old one kept as ``.bak``) and the running pollers
and rules are swapped; if the new configuration cannot start, the old file and runtime are restored and the
result says why.

Signed commands: with ``[agent] command_key`` (the cloud's raw Ed25519 public key, base64) every command must
carry a valid ``signature`` over :func:`protocols.messages.command_signing_bytes`; anything else is refused with
the reason in the result (nothing is applied). A command past its ``expires_at`` is refused too. Each
``command_id`` is applied at most once: its result is kept in ``<data_dir>/commands.json`` and a resend (the
cloud resends what it has no result for when the agent reconnects) gets that result again, unapplied.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.config.loader import LoadedSite, load_site, load_site_text
from edge.errors import ConfigError
from protocols.messages import Command, CommandName, CommandResult, command_signing_bytes

log = logging.getLogger(__name__)

#: how many applied command ids (with their results) the agent remembers
REMEMBERED_COMMANDS = 1000

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
        self,
        site_id: str,
        agent_id: str,
        current: Callable[[], LoadedSite],
        apply: ApplyConfig,
        version: str,
        state_file: Path | None = None,
    ) -> None:
        self.site_id = site_id
        self.agent_id = agent_id
        self.current = current
        self.apply = apply
        self.version = version
        self.state_file = state_file
        self.done: dict[str, dict[str, object]] = self._load_done()

    def _load_done(self) -> dict[str, dict[str, object]]:
        if self.state_file is None or not self.state_file.exists():
            return {}
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.error(
                "cannot read applied commands %s (%s): resent commands may be applied again", self.state_file, exc
            )
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def _remember(self, result: CommandResult) -> None:
        self.done[result.command_id] = {"ok": result.ok, "detail": result.detail}
        while len(self.done) > REMEMBERED_COMMANDS:
            del self.done[next(iter(self.done))]
        if self.state_file is not None:
            write_atomically(self.state_file, json.dumps(self.done, ensure_ascii=False))

    def _refusal(self, command: Command) -> str | None:
        """Why the command must not be applied (signature, expiry), or None."""
        key_b64 = self.current().config.agent.command_key
        if key_b64 is not None:
            if not command.signature:
                return "拒绝执行：命令未签名（本代理配置了 command_key，只接受云端签名的命令）"
            try:
                key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64))
                key.verify(
                    base64.b64decode(command.signature, validate=True),
                    command_signing_bytes(self.site_id, self.agent_id, command),
                )
            except (InvalidSignature, ValueError):
                return "拒绝执行：命令签名无效（不是云端密钥签发，或内容被改动）"
        if command.expires_at is not None and command.expires_at < datetime.now(UTC):
            return f"拒绝执行：命令已于 {command.expires_at.isoformat()} 过期"
        return None

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
        seen = self.done.get(command.command_id)
        if seen is not None:
            log.info("command %s was already handled: result sent again, not applied again", command.command_id)
            return self._result(command, bool(seen.get("ok")), str(seen.get("detail", "")))
        refusal = self._refusal(command)
        if refusal is not None:
            log.warning("command %s refused: %s", command.command_id, refusal)
            return self._result(command, False, refusal)
        result = await self._handle(command)
        self._remember(result)
        return result

    async def _handle(self, command: Command) -> CommandResult:
        if command.name not in (CommandName.PING, CommandName.RELOAD, CommandName.PUSH_CONFIG):
            return self._result(command, False, f"本代理版本不支持命令 {command.name.value}")
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
