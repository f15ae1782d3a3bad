"""Audit API for the audit administrator (审计管理员) only: browse, verify and export THE journal.

* ``GET /audit/events`` filters: since, until, actor, action (``auth.*`` prefix), target, outcome.
* ``GET /audit/verify`` the hash-chain verdict naming the first bad row (``audit.verified`` journaled).
* ``GET /audit/export?format=csv|jsonl`` a download with the hashes (``audit.exported`` journaled first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from cloud.api.deps import SessionDep, get_engine, require_roles
from cloud.core.users import Role, User
from cloud.security import audit
from cloud.security.events import record_now
from cloud.security.scoping import county_wide

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[county_wide("audit log: audit administrator only")])

Auditor = Annotated[User, Depends(require_roles(Role.AUDITOR, admin=False))]


@router.get("/events", summary="审计日志查询（审计管理员）")
def get_events(
    session: SessionDep,
    _: Auditor,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64, description="动作，可用前缀 auth.*")] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    rows = audit.query(
        session,
        offset=offset,
        limit=limit,
        since=since,
        until=until,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
    )
    return [audit.row_dict(r) for r in rows]


@router.get("/verify", summary="校验审计日志哈希链（指出被篡改的行）")
def get_verify(request: Request, session: SessionDep, user: Auditor) -> dict[str, Any]:
    verdict = audit.verify(session)
    record_now(
        get_engine(request),
        actor=user.username,
        action="audit.verified",
        target_type="journal",
        target_id=verdict.head_id or 0,
        outcome="ok" if verdict.ok else "failed",
        payload={"checked": verdict.checked, "bad_row": verdict.bad_row},
    )
    return verdict.as_dict()


@router.get("/export", summary="导出审计日志（CSV / JSON Lines，含哈希）", response_class=StreamingResponse)
def get_export(
    request: Request,
    user: Auditor,
    format: Annotated[audit.ExportFormat, Query()] = "csv",
    since: datetime | None = None,
    until: datetime | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    engine = get_engine(request)
    record_now(
        engine,
        actor=user.username,
        action="audit.exported",
        target_type="journal",
        target_id="export",
        payload={
            "format": format,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "action": action,
        },
    )

    def lines() -> Any:
        with Session(engine) as session:
            yield from audit.export_lines(session, format, since=since, until=until, action=action)

    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    filename = f"audit-journal.{format}"
    return StreamingResponse(
        lines(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
