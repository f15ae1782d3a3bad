"""Clues (线索): list and detail. The workflow module extends this with transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import func
from sqlmodel import col, select

from cloud.api.deps import SessionDep, StaffUser
from cloud.workflow.clues import Clue, CluePublic, CluesPublic, ClueStatus

router = APIRouter(prefix="/clues", tags=["clues"])


@router.get("", summary="线索列表 (filters: status, site, category, severity, since)")
def get_clues(
    session: SessionDep,
    _: StaffUser,
    status_: Annotated[ClueStatus | None, Query(alias="status")] = None,
    site_id: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    sensor_id: str | None = None,
    since: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CluesPublic:
    conditions = []
    if status_ is not None:
        conditions.append(Clue.status == status_)
    if site_id:
        conditions.append(Clue.site_id == site_id)
    if category:
        conditions.append(Clue.category == category)
    if severity:
        conditions.append(Clue.severity == severity)
    if sensor_id:
        conditions.append(Clue.sensor_id == sensor_id)
    if since is not None:
        conditions.append(col(Clue.last_seen_at) >= since)
    total = session.exec(select(func.count()).select_from(Clue).where(*conditions)).one()
    rows = session.exec(select(Clue).where(*conditions).order_by(col(Clue.id).desc()).offset(offset).limit(limit))
    return CluesPublic(data=[CluePublic.model_validate(c) for c in rows], count=int(total))


@router.get("/{clue_id}", summary="线索详情")
def get_clue(session: SessionDep, _: StaffUser, clue_id: int) -> CluePublic:
    clue = session.get(Clue, clue_id)
    if clue is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "线索不存在")
    return CluePublic.model_validate(clue)
