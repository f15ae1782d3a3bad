"""The fleet view (every edge agent: online, last seen, versions, outbox, clock, resources, open alerts) and
remote commands (signed, journaled, delivered once; creating and cancelling them is for admins only) to one agent
or to a group (fanned out into one tracked command per agent, see cloud/fleet_groups.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field, JsonValue
from sqlmodel import select

from cloud.api.deps import AdminUser, SessionDep, SettingsDep, require_roles
from cloud.core.config import Settings
from cloud.core.users import Role, User
from cloud.fleet import FleetAgent, fleet_view
from cloud.fleet_commands import (
    OPEN_STATES,
    CommandError,
    FleetCommand,
    FleetCommandPublic,
    cancel_command,
    command_key,
    create_command,
    list_commands,
    public_key_b64,
)
from cloud.fleet_groups import (
    FleetCommandGroup,
    GroupProgress,
    GroupTarget,
    create_group,
    group_progress,
    list_groups,
)
from cloud.security.scoping import county_wide
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
    payload: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="push_config {config}; push_rule_pack / push_register_map {name, text}; logs {lines}; "
        "snapshot {camera}",
    )
    why: str = Field(min_length=2, max_length=500, description="reason, journaled with the command")
    ttl_s: float | None = Field(default=None, gt=0, le=30 * 86400, description="default SENTINEL_FLEET_COMMAND_TTL_S")


class GroupCommandRequest(CommandRequest):
    target: GroupTarget


class CancelRequest(BaseModel):
    why: str = Field(min_length=2, max_length=500)


def _spec(body: CommandRequest, settings: Settings, user: User) -> dict[str, Any]:
    """What one command or a group's commands are made of (name, payload, who, why, lifetime)."""
    return {
        "name": body.name,
        "payload": dict(body.payload),
        "actor": user.username,
        "why": body.why,
        "ttl": timedelta(seconds=body.ttl_s or settings.fleet_command_ttl_s),
    }


def _refused(exc: CommandError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


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
        row = create_command(
            session, command_key(settings), site_id=site_id, agent_id=agent_id, **_spec(body, settings, user)
        )
    except CommandError as exc:
        raise _refused(exc) from None
    session.commit()
    return FleetCommandPublic.of(row)


@router.get("/agents/{site_id}/{agent_id}/commands", summary="边缘代理的命令记录")
def get_commands(session: SessionDep, site_id: str, agent_id: str) -> list[FleetCommandPublic]:
    return [FleetCommandPublic.of(r) for r in list_commands(session, site_id, agent_id)]


def _command(session: SessionDep, command_id: str) -> FleetCommand:
    row = session.get(FleetCommand, command_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"命令 {command_id} 不存在")
    return row


@router.get("/commands/{command_id}", summary="一条命令的状态与结果")
def get_command(session: SessionDep, command_id: str) -> FleetCommandPublic:
    return FleetCommandPublic.of(_command(session, command_id))


@router.post("/commands/{command_id}/cancel", summary="取消尚未执行的命令（不再发送）")
def post_cancel(session: SessionDep, user: AdminUser, command_id: str, body: CancelRequest) -> FleetCommandPublic:
    row = _command(session, command_id)
    try:
        cancel_command(session, row, actor=user.username, why=body.why)
    except CommandError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    session.commit()
    return FleetCommandPublic.of(row)


@router.post(
    "/groups",
    status_code=status.HTTP_201_CREATED,
    summary="向一组代理下发命令（场所、领域、部门或指定列表；每台代理一条命令，共用一个组 ID）",
)
def post_group(session: SessionDep, settings: SettingsDep, user: AdminUser, body: GroupCommandRequest) -> GroupProgress:
    try:
        group = create_group(session, command_key(settings), target=body.target, **_spec(body, settings, user))
    except CommandError as exc:
        raise _refused(exc) from None
    session.commit()
    return group_progress(session, group)


@router.get("/groups", summary="最近的组命令")
def get_groups(session: SessionDep) -> list[GroupProgress]:
    return [group_progress(session, g) for g in list_groups(session)]


@router.get("/groups/{group_id}", summary="组命令的进度（每台代理的状态）")
def get_group(session: SessionDep, group_id: str) -> GroupProgress:
    group = session.get(FleetCommandGroup, group_id)
    if group is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"组命令 {group_id} 不存在")
    return group_progress(session, group)


@router.post("/groups/{group_id}/cancel", summary="取消组内尚未执行的命令")
def post_group_cancel(session: SessionDep, user: AdminUser, group_id: str, body: CancelRequest) -> GroupProgress:
    group = session.get(FleetCommandGroup, group_id)
    if group is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"组命令 {group_id} 不存在")
    for row in session.exec(select(FleetCommand).where(FleetCommand.group_id == group_id)):
        if row.state in OPEN_STATES:
            cancel_command(session, row, actor=user.username, why=body.why)
    session.commit()
    return group_progress(session, group)
