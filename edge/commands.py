"""Commands from the cloud: ping, reload, push_config, push_rule_pack, push_register_map, logs, snapshot,
export_range (the last two answer with the evidence they stored, uploaded by the evidence path).

Pushes (``push_config`` carries the whole site file as TOML text in ``payload.config``; ``push_rule_pack`` /
``push_register_map`` carry ``{name, text}``, the file ``<name>.toml``):

1. **validated first**, with the same validators ``sentinel edge validate`` uses (the pushed file alone, then the
   whole site with it: every rule binding, register map and record interval). Identity fields (site_id,
   agent_id, data_dir) cannot change remotely. Invalid: refused, nothing written or applied.
2. **written atomically** (temp file + fsync + rename, the old one kept as ``.bak``) and **applied**: pollers,
   rules and cameras are swapped; the outbox (buffered readings and alerts) is untouched, the staged readings are
   flushed into it first, so nothing buffered is lost.
3. **on trial**: the agent must be healthy on the new version within ``[agent] config_health_deadline_s`` (of the
   new version). Healthy means (:meth:`Operations.await_healthy`, see edge/agent.py): the configuration loaded
   and started; every configured device has been polled successfully at least once since the apply; every
   camera has decoded at least one frame since the apply (a camera whose file or URL cannot be opened fails it,
   like a Modbus device that does not answer); and, when the uplink is connected, the cloud has acknowledged what
   the agent sent since (or nothing was waiting). **Baseline:** a device or camera that was already failing on the
   running version just before the push (:meth:`Operations.failing`: last poll failed / camera down) is not
   judged — a push is rolled back for what it breaks, not for what was broken before (a dead camera must not
   block a threshold change); the result names what was excused.
4. **not healthy by the deadline** (or the new version failed to start): the previous files are restored and the
   previous configuration applied again, by the agent itself; the result is ``ok=false``, ``rolled_back=true``,
   the reason, and ``version`` = the previous version (now in force).

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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.config.loader import LoadedSite, load_site, load_site_text, locate, validate_artifact
from edge.errors import ConfigError
from protocols.messages import (
    COMMAND_OUTPUT_MAX,
    Command,
    CommandName,
    CommandResult,
    EvidenceRef,
    command_signing_bytes,
    content_version,
)

log = logging.getLogger(__name__)

#: how many applied command ids (with their results) the agent remembers
REMEMBERED_COMMANDS = 1000
#: push_rule_pack / push_register_map → search-dir kind
ARTIFACT_OF = {CommandName.PUSH_REGISTER_MAP: "registers", CommandName.PUSH_RULE_PACK: "rulepacks"}


class Operations(Protocol):
    """What the agent offers the command handler (edge/agent.py)."""

    @property
    def site(self) -> LoadedSite: ...

    async def apply(self, site: LoadedSite) -> None:
        """Swap to ``site`` (raises if it cannot start)."""

    def failing(self) -> dict[str, str]:
        """What does not work on the running configuration now (``device:<id>`` / ``camera:<id>`` → label)."""

    async def await_healthy(self, deadline_s: float, tolerated: frozenset[str] = frozenset()) -> str | None:
        """Wait until healthy on the applied configuration (None) or the deadline (the reason, Chinese); what is
        in ``tolerated`` (failing before the push) is not judged."""

    def recent_logs(self, lines: int) -> list[str]: ...

    async def snapshot(self, camera_id: str) -> EvidenceRef:
        """Grab a frame into the evidence store (queued for upload); raises ValueError (Chinese) if it cannot."""

    async def export_range(self, camera_id: str, start: datetime, end: datetime) -> EvidenceRef:
        """Recorded video of the range into the evidence store (queued for upload); ValueError if it cannot."""


def version_of(text: str | None) -> str | None:
    """A file's version as the cloud and the fleet view show it (:func:`protocols.messages.content_version`)."""
    return None if text is None else content_version(text)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        backup.write_bytes(path.read_bytes())
    os.replace(tmp, path)


def trial_file(site_path: Path) -> Path:
    return site_path.with_name(site_path.name + ".trial.json")


def recover_interrupted_trial(site_path: Path) -> bool:
    """Before the site is loaded: undo a push whose trial did not finish (restores its previous files; the command
    handler then answers the command as rolled back). Returns whether there was one."""
    path = trial_file(site_path)
    if not path.exists():
        return False
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        previous = {Path(p): t for p, t in record["previous"].items()}
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        log.error("cannot read the interrupted trial %s (%s): the pushed files stay in place", path, exc)
        return False
    if record.get("recovered"):
        return True
    _restore(previous)
    record["recovered"] = True
    write_atomically(path, json.dumps(record, ensure_ascii=False))
    log.error("the agent stopped during the trial of command %s: previous version restored", record.get("command_id"))
    return True


def _restore(previous: dict[Path, str | None]) -> None:
    for path, text in previous.items():
        if text is None:
            path.unlink(missing_ok=True)
        else:
            write_atomically(path, text)


class CommandHandler:
    def __init__(
        self,
        site_id: str,
        agent_id: str,
        ops: Operations,
        version: str,
        state_file: Path | None = None,
    ) -> None:
        self.site_id = site_id
        self.agent_id = agent_id
        self.ops = ops
        self.version = version
        self.state_file = state_file
        self.done: dict[str, dict[str, object]] = self._load_done()
        self._answer_interrupted_trial()
        self._handlers: dict[CommandName, Callable[[Command], Any]] = {
            CommandName.PING: self._ping,
            CommandName.RELOAD: self._reload,
            CommandName.PUSH_CONFIG: self._push_config,
            CommandName.PUSH_RULE_PACK: self._push_artifact,
            CommandName.PUSH_REGISTER_MAP: self._push_artifact,
            CommandName.LOGS: self._logs,
            CommandName.SNAPSHOT: self._snapshot,
            CommandName.EXPORT_RANGE: self._export_range,
        }

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

    def _answer_interrupted_trial(self) -> None:
        """A trial recovered at start (:func:`recover_interrupted_trial`): its command's answer is "rolled back"."""
        path = trial_file(self.ops.site.path)
        try:
            record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        except (OSError, ValueError):
            record = None
        if not record or not record.get("recovered"):
            return
        command_id = str(record.get("command_id"))
        self._keep(
            command_id,
            {
                "ok": False,
                "detail": "代理在新版本试运行期间停止（崩溃、被终止或断电），重启时已自动回滚到原版本 "
                f"{record.get('old_version') or '（无）'}",
                "version": record.get("old_version"),
                "rolled_back": True,
            },
        )
        path.unlink(missing_ok=True)

    def _remember(self, result: CommandResult) -> None:
        self._keep(
            result.command_id,
            result.model_dump(mode="json", include={"ok", "detail", "output", "version", "rolled_back", "evidence"}),
        )

    def _keep(self, command_id: str, answer: dict[str, object]) -> None:
        self.done[command_id] = answer
        while len(self.done) > REMEMBERED_COMMANDS:
            del self.done[next(iter(self.done))]
        if self.state_file is not None:
            write_atomically(self.state_file, json.dumps(self.done, ensure_ascii=False))

    def _refusal(self, command: Command) -> str | None:
        """Why the command must not be applied (signature, expiry), or None."""
        key_b64 = self.ops.site.config.agent.command_key
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

    def _result(self, command: Command, ok: bool, detail: str, **extra: Any) -> CommandResult:
        return CommandResult(
            site_id=self.site_id,
            agent_id=self.agent_id,
            command_id=command.command_id,
            ok=ok,
            detail=detail[:2000],
            ts=datetime.now(UTC),
            **extra,
        )

    async def __call__(self, command: Command) -> CommandResult:
        log.info("command %s (%s)", command.name.value, command.command_id)
        seen = self.done.get(command.command_id)
        if seen is not None:
            log.info("command %s was already handled: result sent again, not applied again", command.command_id)
            kept = {k: seen[k] for k in ("output", "version", "rolled_back", "evidence") if seen.get(k) is not None}
            return self._result(command, bool(seen.get("ok")), str(seen.get("detail", "")), **kept)
        refusal = self._refusal(command)
        if refusal is not None:
            log.warning("command %s refused: %s", command.command_id, refusal)
            return self._result(command, False, refusal)
        handler = self._handlers.get(command.name)
        if handler is None:
            result = self._result(command, False, f"本代理版本不支持命令 {command.name.value}")
        else:
            try:
                result = await handler(command)
            except ConfigError as exc:
                log.warning("rejected configuration: %s", exc)
                result = self._result(command, False, f"配置无效，继续使用原配置：{exc}")
        self._remember(result)
        return result

    # -- simple commands ------------------------------------------------------------------------------
    async def _ping(self, command: Command) -> CommandResult:
        return self._result(command, True, f"pong {self.version}")

    async def _reload(self, command: Command) -> CommandResult:
        site = load_site(self.ops.site.path)
        old = self.ops.site
        try:
            await self.ops.apply(site)
        except Exception as exc:
            log.exception("reloaded configuration failed to start; going back to the running one")
            await self.ops.apply(old)
            return self._result(command, False, f"重新加载的配置启动失败，继续使用原配置：{exc}")
        return self._result(command, True, f"配置已重新加载：{len(site.config.devices)} 台设备")

    async def _logs(self, command: Command) -> CommandResult:
        lines = command.payload.get("lines", 200)
        count = lines if isinstance(lines, int) and 1 <= lines <= 1000 else 200
        text = "\n".join(self.ops.recent_logs(count))
        if len(text) > COMMAND_OUTPUT_MAX:  # keep the newest lines
            text = text[-COMMAND_OUTPUT_MAX:].split("\n", 1)[-1]
        shown = text.count("\n") + 1 if text else 0
        return self._result(command, True, f"最近 {shown} 行日志", output=text)

    async def _snapshot(self, command: Command) -> CommandResult:
        camera = command.payload.get("camera")
        if not isinstance(camera, str) or not camera:
            return self._result(command, False, "snapshot 需要 payload.camera（摄像头 ID）")
        try:
            ref = await self.ops.snapshot(camera)
        except ValueError as exc:
            return self._result(command, False, f"抓拍失败：{exc}")
        return self._evidence(command, f"已抓拍摄像头 {camera}", ref)

    async def _export_range(self, command: Command) -> CommandResult:
        camera, start, end = (command.payload.get(k) for k in ("camera", "start", "end"))
        try:
            if not isinstance(camera, str) or not isinstance(start, str) or not isinstance(end, str):
                raise ValueError("export_range 需要 payload.camera、start、end")
            begin, until = datetime.fromisoformat(start), datetime.fromisoformat(end)
            if begin.tzinfo is None or until.tzinfo is None:
                raise ValueError("start、end 须带时区（ISO 8601）")
            ref = await self.ops.export_range(camera, begin, until)
        except ValueError as exc:
            return self._result(command, False, f"导出录像失败：{exc}")
        return self._evidence(command, f"已导出摄像头 {camera} 的录像", ref)

    def _evidence(self, command: Command, what: str, ref: EvidenceRef) -> CommandResult:
        """A result naming a piece of evidence the agent stored and queued for upload (the cloud links it)."""
        detail = f"{what}：证据 {ref.sha256}（{ref.size} 字节，经证据通道上传）"
        return self._result(command, True, detail, evidence=[ref])

    # -- pushes -----------------------------------------------------------------------------------------
    async def _push_config(self, command: Command) -> CommandResult:
        text = command.payload.get("config")
        if not isinstance(text, str) or not text.strip():
            return self._result(command, False, "push_config 需要 payload.config（站点配置 TOML 文本）")
        old = self.ops.site
        site = load_site_text(text, f"{old.path.name} (push_config {command.command_id})", old.path.parent)
        for key in ("site_id", "agent_id", "data_dir"):
            if getattr(site.config.agent, key) != getattr(old.config.agent, key):
                return self._result(command, False, f"配置无效，继续使用原配置：agent.{key} 不能远程修改")
        return await self._trial(command, {old.path: text}, f"站点配置 {version_of(text)}", version_of(text))

    async def _push_artifact(self, command: Command) -> CommandResult:
        kind = ARTIFACT_OF[command.name]
        name, text = command.payload.get("name"), command.payload.get("text")
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            return self._result(command, False, f"{command.name.value} 需要 payload.name（文件名，不含 .toml）")
        if not isinstance(text, str) or not text.strip():
            return self._result(command, False, f"{command.name.value} 需要 payload.text（TOML 文本）")
        validate_artifact(kind, text, f"{name}.toml ({command.name.value} {command.command_id})")
        path = locate(self.ops.site, kind, name)
        return await self._trial(command, {path: text}, f"{path.name} {version_of(text)}", version_of(text))

    async def _trial(
        self, command: Command, files: dict[Path, str], what: str, new_version: str | None
    ) -> CommandResult:
        """Write ``files``, validate the whole site with them, apply, wait for health; undo all if any step fails."""
        old = self.ops.site
        previous = {path: (path.read_text(encoding="utf-8") if path.exists() else None) for path in files}
        old_version = version_of(next(iter(previous.values())))
        marker = trial_file(old.path)
        record = {"command_id": command.command_id, "old_version": old_version}
        write_atomically(marker, json.dumps({**record, "previous": {str(p): t for p, t in previous.items()}}))
        # not in a finally: a stop or crash during the trial leaves the marker, and the restart rolls back
        result = await self._try(command, files, previous, what, new_version, old_version)
        marker.unlink(missing_ok=True)
        return result

    async def _try(
        self,
        command: Command,
        files: dict[Path, str],
        previous: dict[Path, str | None],
        what: str,
        new_version: str | None,
        old_version: str | None,
    ) -> CommandResult:
        old = self.ops.site
        for path, text in files.items():
            write_atomically(path, text)
        try:
            site = load_site(old.path)  # the site as it will run, validated with the new file in place
        except ConfigError as exc:
            _restore(previous)
            log.warning("pushed %s makes the site invalid: %s", what, exc)
            return self._result(command, False, f"配置无效，继续使用原配置：{exc}", version=old_version)
        rollback_reason: str | None = None
        before = self.ops.failing()  # the baseline: what was broken already is not the new version's fault
        try:
            await self.ops.apply(site)
        except Exception as exc:
            log.exception("new configuration failed to start; rolling back")
            rollback_reason = f"新版本启动失败：{exc}"
        if rollback_reason is None:
            deadline = site.config.agent.config_health_deadline_s
            problem = await self.ops.await_healthy(deadline, frozenset(before))
            if problem is not None:
                rollback_reason = f"新版本在 {deadline:g} 秒内未达到健康：{problem}"
        if rollback_reason is not None:
            log.error("%s: rolling back to the previous version (%s)", rollback_reason, old_version)
            _restore(previous)
            await self.ops.apply(old)
            return self._result(
                command,
                False,
                f"{rollback_reason}；已自动回滚到原版本 {old_version or '（无）'}",
                version=old_version,
                rolled_back=True,
            )
        restart = " (MQTT 设置在重启后生效)" if site.config.mqtt != old.config.mqtt else ""
        excused = f"；推送前已故障、未计入健康判定：{'，'.join(before.values())}" if before else ""
        log.info("%s applied and healthy%s", what, f" (not judged, failing before: {sorted(before)})" if before else "")
        return self._result(
            command,
            True,
            f"{what} 已应用且运行正常：{len(site.config.devices)} 台设备，{len(site.config.cameras)} 路摄像头，"
            f"{len(site.config.rules)} 组规则{restart}{excused}",
            version=new_version,
        )
