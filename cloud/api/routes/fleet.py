"""The fleet view (every edge agent: online, last seen, versions, outbox, clock, resources, open alerts) and
remote commands to one agent (push_config / reload / ping: signed, journaled, delivered once; admins only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field, JsonValue

from cloud.api.deps import AdminUser, SessionDep, SettingsDep, require_roles
from cloud.core.users import Role
from cloud.fleet import FleetAgent, fleet_view
from cloud.fleet_commands import FleetCommandPublic, command_key, create_command, list_commands, public_key_b64
from cloud.security.scoping import county_wide
from protocols import Channel, ProtocolError, topic_for
from protocols.messages import CommandName

router = APIRouter(
    prefix="/fleet",
    tags=["fleet"],
    dependencies=[
        Depends(require_roles(Role.SUPERVISOR, Role.AUDITOR)),
        county_wide("fleet operations: county roles only"),
    ],
)


class CommandRequest(BaseModel):
    name: CommandName
    payload: dict[str, JsonValue] = Field(default_factory=dict, description="push_config: {'config': '<TOML>'}")
    why: str = Field(min_length=2, max_length=500, description="reason, journaled with the command")
    ttl_s: float | None = Field(default=None, gt=0, le=30 * 86400, description="default SENTINEL_FLEET_COMMAND_TTL_S")


@router.get("/agents", summary="边缘代理一览 (fleet view)")
def get_agents(session: SessionDep, settings: SettingsDep) -> list[FleetAgent]:
    return fleet_view(session, settings)


@router.get("/command-key", summary="云端命令签名公钥（写入站点配置 [agent] command_key）")
def get_command_key(settings: SettingsDep) -> dict[str, str]:
    key = command_key(settings)
    return {"command_key": public_key_b64(key), "key_id": key.key_id}


@router.post(
    "/agents/{site_id}/{agent_id}/commands",
    status_code=status.HTTP_201_CREATED,
    summary="向边缘代理下发命令（签名、记入日志；代理离线时上线后送达）",
)
def post_command(
    session: SessionDep, settings: SettingsDep, user: AdminUser, site_id: str, agent_id: str, body: CommandRequest
) -> FleetCommandPublic:
    try:
        topic_for(site_id, agent_id, Channel.COMMAND)
    except ProtocolError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    text: Any = body.payload.get("config")
    if body.name is CommandName.PUSH_CONFIG and (not isinstance(text, str) or not text.strip()):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "push_config 需要 payload.config（站点配置 TOML 文本）"
        )
    row = create_command(
        session,
        command_key(settings),
        site_id=site_id,
        agent_id=agent_id,
        name=body.name,
        payload=dict(body.payload),
        actor=user.username,
        why=body.why,
        ttl=timedelta(seconds=body.ttl_s or settings.fleet_command_ttl_s),
    )
    session.commit()
    return FleetCommandPublic.of(row)


@router.get("/agents/{site_id}/{agent_id}/commands", summary="边缘代理的命令记录")
def get_commands(session: SessionDep, site_id: str, agent_id: str) -> list[FleetCommandPublic]:
    return [FleetCommandPublic.of(r) for r in list_commands(session, site_id, agent_id)]
