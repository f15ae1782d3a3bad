"""GSP compliance records API: list, export (CSV/XLSX), verify the hash chain, derive now.

There is deliberately no endpoint that updates or deletes a record (GSP: records cannot be modified or
deleted). Retention purges run from the CLI only and are themselves recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from cloud.api.deps import EngineDep, SessionDep, StaffUser, StoreDep, require_roles
from cloud.core.users import Role, User
from cloud.security.scoping import ScopeDep, county_wide, visible_sites
from cloud.telemetry import gsp, gsp_export
from protocols.topics import ID_PATTERN

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
router = APIRouter(prefix="/gsp", tags=["gsp 温湿度合规记录"])
VerifierUser = Annotated[User, Depends(require_roles(Role.SUPERVISOR, Role.INSPECTOR, Role.AUDITOR))]


class RecordPublic(BaseModel):
    seq: int
    point_id: int
    site_id: str
    recorded_at: datetime
    temperature: float | None
    humidity: float | None
    location: str
    area: str
    kind: str
    status: str
    profile: str
    quality: str | None = Field(description="good | uncertain (the agent's clock was off: time untrusted)")
    quality_label: str
    prev_hash: str
    hash: str


class VerifyPublic(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: str | None
    message: str


class DerivePublic(BaseModel):
    points: int
    records: int
    skipped: list[str]


def _public(r: gsp.GspRecord) -> RecordPublic:
    return RecordPublic(
        seq=r.seq,
        point_id=r.point_id,
        site_id=r.site_id,
        recorded_at=gsp.as_utc(r.recorded_at),
        temperature=r.temperature,
        humidity=r.humidity,
        location=r.location,
        area=r.area,
        kind=r.kind,
        status=str(r.status),
        profile=r.profile,
        quality=r.quality,
        quality_label=gsp.QUALITY_LABELS.get(r.quality or "", "未记录"),
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


@router.get("/records", summary="温湿度记录列表 (GSP records of a site/point over a period)")
def get_records(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    site_id: str | None = None,
    point_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[RecordPublic]:
    rows = gsp.list_records(
        session,
        site_id=site_id,
        point_id=point_id,
        start=start,
        end=end,
        site_ids=visible_sites(session, scope),
        offset=offset,
        limit=limit,
    )
    return [_public(r) for r in rows]


@router.get(
    "/records/export",
    summary="导出温湿度记录 CSV/XLSX (export records of a site for a period)",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}
    },
)
def export_records(
    session: SessionDep,
    _: StaffUser,
    site_id: Annotated[str, Query(pattern=ID_PATTERN)],  # also keeps the file name and worksheet valid
    start: datetime,
    end: datetime,
    format: Literal["csv", "xlsx"] = "xlsx",
) -> Response:
    rows = gsp.list_records(session, site_id=site_id, start=start, end=end, limit=None)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    name = f"gsp-{site_id}-{stamp}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return Response(gsp_export.to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    verification = gsp.verify_chain(session)
    body = gsp_export.to_xlsx(rows, site_id=site_id, start=start, end=end, verification=verification)
    return Response(body, media_type=XLSX_TYPE, headers=headers)


@router.get(
    "/verify",
    summary="校验记录哈希链 (verify the record chain; names the first bad row)",
    dependencies=[county_wide("chain check: counts and hashes, no record content")],
)
def verify(session: SessionDep, _: VerifierUser) -> VerifyPublic:
    result = gsp.verify_chain(session)
    return VerifyPublic(
        ok=result.ok,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
        head_hash=result.head_hash,
        message=result.message(),
    )


@router.post("/derive", summary="立即生成到期的记录 (derive due records now; append only)")
def derive_now(
    session: SessionDep,
    engine: EngineDep,
    store: StoreDep,
    _: Annotated[User, Depends(require_roles(Role.SUPERVISOR))],
) -> DerivePublic:
    session.commit()  # release this request's write lock (SQLite): derivation takes its own, per point
    report = gsp.derive_all(engine, store)
    return DerivePublic(points=report.points, records=report.records, skipped=report.skipped or [])
