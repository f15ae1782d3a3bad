"""Ingest counters and dead letters (for operators)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func
from sqlmodel import col, select

from cloud.api.deps import SessionDep, StoreDep, require_roles
from cloud.core.users import Role
from cloud.ingest.models import DeadLetter, DeadLetterPublic, IngestSeq
from cloud.security.scoping import county_wide

router = APIRouter(
    prefix="/ingest",
    tags=["ingest"],
    dependencies=[
        Depends(require_roles(Role.SUPERVISOR, Role.AUDITOR)),
        county_wide("ingest operations: county roles only"),
    ],
)


@router.get("/stats", summary="接入统计 (ingest counters)")
def stats(session: SessionDep, store: StoreDep, request: Request) -> dict[str, Any]:
    service = request.app.state.ingest
    by_reason = dict(session.exec(select(DeadLetter.reason, func.count()).group_by(DeadLetter.reason)).all())
    committed = session.exec(select(func.count()).select_from(IngestSeq)).one()
    return {
        "worker": None if service is None else service.stats.snapshot(),
        "database": {"committed_messages": int(committed), "dead_letters": by_reason},
        "readings_stored": store.count(),
    }


@router.get("/dead-letters", summary="死信列表 (rejected payloads)")
def dead_letters(
    session: SessionDep,
    reason: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterPublic]:
    query = select(DeadLetter).order_by(col(DeadLetter.id).desc()).offset(offset).limit(limit)
    if reason:
        query = query.where(DeadLetter.reason == reason)
    return [
        DeadLetterPublic.model_validate(
            d, update={"size": len(d.payload), "preview": d.payload[:200].decode("utf-8", "replace")}
        )
        for d in session.exec(query)
    ]
