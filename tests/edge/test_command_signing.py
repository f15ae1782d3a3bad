"""Signed commands on the edge (issue 15, remote configuration): with ``[agent] command_key`` an unsigned, badly
signed or expired command is refused with the reason and nothing is applied; a command id is applied at most
once, also across a restart (the ids are kept in the data dir)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.commands import CommandHandler
from edge.config.loader import LoadedSite, load_site
from protocols.messages import Command, CommandName, EvidenceRef, command_signing_bytes
from tests.edge.test_delivery import write_site

KEY = Ed25519PrivateKey.generate()
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
).decode()


def site_with_key(tmp_path: Path) -> LoadedSite:
    _port, _data, config = write_site(tmp_path, 1883)
    text = config.read_text(encoding="utf-8").replace(
        'agent_id = "edge-1"\n', f'agent_id = "edge-1"\ncommand_key = "{PUBLIC}"\n'
    )
    config.write_text(text, encoding="utf-8")
    return load_site(config)


def signed(command: Command, key: Ed25519PrivateKey = KEY) -> Command:
    signature = base64.b64encode(key.sign(command_signing_bytes("pharmacy-01", "edge-1", command))).decode()
    return command.model_copy(update={"signature": signature})


def ping(command_id: str, **kw: object) -> Command:
    return Command(command_id=command_id, name=CommandName.PING, issued_at=datetime.now(UTC), **kw)  # type: ignore[arg-type]


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.site = site_with_key(tmp_path)
        self.applied: list[LoadedSite] = []
        self.state = tmp_path / "edge" / "commands.json"
        self.state.parent.mkdir(parents=True, exist_ok=True)

        self.unhealthy: str | None = None  # what await_healthy answers (None: healthy)
        self.log_lines = [f"line {i}" for i in range(1, 2001)]

    async def apply(self, site: LoadedSite) -> None:
        self.applied.append(site)
        self.site = site

    def failing(self) -> dict[str, str]:
        return {}

    async def await_healthy(self, deadline_s: float, tolerated: frozenset[str] = frozenset()) -> str | None:
        return self.unhealthy

    def recent_logs(self, lines: int) -> list[str]:
        return self.log_lines[-lines:]

    async def snapshot(self, camera_id: str) -> EvidenceRef:
        raise ValueError(f"没有摄像头 {camera_id}")

    async def export_range(self, camera_id: str, start: datetime, end: datetime) -> EvidenceRef:
        return EvidenceRef(sha256="e" * 64, content_type="video/webm", size=int((end - start).total_seconds()))

    def handler(self) -> CommandHandler:
        return CommandHandler("pharmacy-01", "edge-1", self, "t", state_file=self.state)


async def test_unsigned_badly_signed_and_expired_commands_are_refused(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    handler = rig.handler()
    unsigned = await handler(Command(command_id="c1", name=CommandName.RELOAD, issued_at=datetime.now(UTC)))
    assert not unsigned.ok and "未签名" in unsigned.detail
    other_key = Ed25519PrivateKey.generate()
    forged = await handler(
        signed(Command(command_id="c2", name=CommandName.RELOAD, issued_at=datetime.now(UTC)), other_key)
    )
    assert not forged.ok and "签名无效" in forged.detail
    tampered = signed(ping("c3")).model_copy(update={"payload": {"x": 1}})
    assert "签名无效" in (await handler(tampered)).detail
    expired = await handler(signed(ping("c4", expires_at=datetime.now(UTC) - timedelta(seconds=1))))
    assert not expired.ok and "过期" in expired.detail
    assert rig.applied == [], "nothing refused is applied"
    good = await handler(signed(Command(command_id="c5", name=CommandName.RELOAD, issued_at=datetime.now(UTC))))
    assert good.ok, good.detail
    assert len(rig.applied) == 1


async def test_a_resent_command_is_applied_once_even_after_a_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    command = signed(Command(command_id="push-1", name=CommandName.RELOAD, issued_at=datetime.now(UTC)))
    first = await rig.handler()(command)
    again = await rig.handler()(command)  # a new handler: as after an agent restart, from commands.json
    assert first.ok and (again.ok, again.detail) == (True, first.detail)
    assert len(rig.applied) == 1
