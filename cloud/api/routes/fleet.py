"""The fleet view (every edge agent: online, last seen, versions, outbox, clock, resources, open alerts)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cloud.api.deps import SessionDep, SettingsDep, require_roles
from cloud.core.users import Role
from cloud.fleet import FleetAgent, fleet_view
from cloud.security.scoping import county_wide

router = APIRouter(
    prefix="/fleet",
    tags=["fleet"],
    dependencies=[
        Depends(require_roles(Role.SUPERVISOR, Role.AUDITOR)),
        county_wide("fleet operations: county roles only"),
    ],
)


@router.get("/agents", summary="边缘代理一览 (fleet view)")
def get_agents(session: SessionDep, settings: SettingsDep) -> list[FleetAgent]:
    return fleet_view(session, settings)
