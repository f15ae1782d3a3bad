"""Registry API: departments, market subjects (统一社会信用代码), licences, sites, measuring points, devices,
sensors, CSV import, and approval of devices announced by edge agents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from cloud.api.admin_areas import DepartmentsAdmin, SitesAdmin, StaffAdmin, SubjectsAdmin
from cloud.api.deps import CurrentUser, SessionDep, StaffUser, StoreDep, require_roles
from cloud.core.users import Role, User
from cloud.registry import csv_engine, csv_import, quarantine, service
from cloud.registry.models import (
    ApprovalState,
    Decision,
    DepartmentCreate,
    DepartmentPublic,
    Device,
    DeviceCreate,
    DevicePublic,
    LicenceCreate,
    LicencePublic,
    MarketSubject,
    MeasuringPointCreate,
    MeasuringPointPublic,
    PendingDevice,
    PendingDevicePublic,
    ReasonIn,
    RiskGrade,
    SensorCreate,
    SensorPublic,
    SensorUpdate,
    Site,
    SiteCreate,
    SitePublic,
    SiteUpdate,
    SubjectCreate,
    SubjectPublic,
    SubjectUpdate,
)
from cloud.registry.quarantine import Quarantined, QuarantinedPublic
from cloud.registry.uscc import InvalidUSCC
from cloud.security.scoping import Scope, ScopeDep, county_wide, scope_guard, site_department, visible_sites


def _registry_errors() -> Iterator[None]:
    """Every route: a refused registry operation answers with its status and Chinese message (USCC errors 422)."""
    try:
        yield
    except InvalidUSCC as exc:
        raise HTTPException(422, str(exc)) from None
    except service.RegistryError as exc:
        raise HTTPException(exc.status, exc.message) from None


router = APIRouter(
    prefix="/registry",
    tags=["registry 登记"],
    dependencies=[Depends(scope_guard), Depends(_registry_errors)],  # jurisdiction; error mapping
)
EditorUser = Annotated[User, Depends(require_roles(Role.SUPERVISOR))]


# ---------------------------------------------------------------- departments
@router.get(
    "/departments",
    summary="部门/辖区列表 (departments and jurisdictions)",
    dependencies=[county_wide("the list of departments is reference data")],
)
def get_departments(session: SessionDep, _: StaffUser) -> list[DepartmentPublic]:
    return [DepartmentPublic.model_validate(d) for d in service.list_departments(session)]


@router.post("/departments", status_code=201, summary="新增部门 (create department)")
def post_department(session: SessionDep, _: DepartmentsAdmin, data: DepartmentCreate) -> DepartmentPublic:
    dep = service.create_department(session, data=data)
    session.commit()
    return DepartmentPublic.model_validate(dep)


# ---------------------------------------------------------------- subjects
@router.get("/subjects", summary="市场主体列表 (market subjects; q = name part or USCC)")
def get_subjects(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    q: str | None = None,
    risk_grade: RiskGrade | None = None,
    department_id: int | None = None,
    include_deactivated: Annotated[bool, Query(description="含已注销的主体")] = False,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SubjectPublic]:
    rows = service.list_subjects(
        session,
        q=q,
        risk_grade=risk_grade,
        department_id=department_id,
        include_deactivated=include_deactivated,
        offset=offset,
        limit=limit,
    )
    return [SubjectPublic.model_validate(s) for s in rows if scope.allows(s.department_id)]


@router.post("/subjects", status_code=201, summary="登记市场主体 (USCC check character validated)")
def post_subject(session: SessionDep, _: SubjectsAdmin, data: SubjectCreate) -> SubjectPublic:
    subject = service.create_subject(session, data=data)
    session.commit()
    return SubjectPublic.model_validate(subject)


@router.get("/subjects/{subject_id}", summary="市场主体详情")
def get_subject(session: SessionDep, _: StaffUser, subject_id: int) -> SubjectPublic:
    return SubjectPublic.model_validate(service.get_subject(session, subject_id=subject_id))


@router.patch("/subjects/{subject_id}", summary="修改市场主体（含风险等级 A–D）")
def patch_subject(session: SessionDep, _: SubjectsAdmin, subject_id: int, data: SubjectUpdate) -> SubjectPublic:
    subject = service.update_subject(session, subject_id=subject_id, data=data)
    session.commit()
    return SubjectPublic.model_validate(subject)


@router.post("/subjects/{subject_id}/deactivate", summary="注销市场主体（填写理由；保留历史，不再派发新任务）")
def deactivate_subject(session: SessionDep, user: SubjectsAdmin, subject_id: int, body: ReasonIn) -> SubjectPublic:
    subject = service.deactivate_subject(session, subject_id=subject_id, reason=body.reason, actor=user.username)
    session.commit()
    return SubjectPublic.model_validate(subject)


@router.post("/subjects/{subject_id}/reactivate", summary="恢复已注销的市场主体（填写理由）")
def reactivate_subject(session: SessionDep, user: SubjectsAdmin, subject_id: int, body: ReasonIn) -> SubjectPublic:
    subject = service.reactivate_subject(session, subject_id=subject_id, reason=body.reason, actor=user.username)
    session.commit()
    return SubjectPublic.model_validate(subject)


@router.get("/subjects/{subject_id}/licences", summary="市场主体的许可证")
def get_subject_licences(session: SessionDep, _: StaffUser, subject_id: int) -> list[LicencePublic]:
    return service.subject_licences(session, subject_id=subject_id, today=date.today())


class RowErrorPublic(BaseModel):
    line: int
    reason: str
    uscc: str | None = None


class ImportReportPublic(BaseModel):
    rows: int
    accepted: int
    subjects_created: int
    subjects_updated: int
    licences_created: int
    licences_updated: int
    errors: list[RowErrorPublic]


@router.post(
    "/subjects/import",
    summary="批量导入市场主体与许可证 CSV (enterprise-credit publicity export columns; bad rows reported)",
)
async def import_subjects(
    session: SessionDep, _: SubjectsAdmin, file: UploadFile, department_id: int | None = None
) -> ImportReportPublic:
    data = await file.read()
    try:
        report = csv_import.import_csv(session, data, department_id=department_id)
    except csv_import.ImportFormatError as exc:
        raise HTTPException(422, str(exc)) from None
    session.commit()
    return ImportReportPublic(
        rows=report.rows,
        accepted=report.accepted,
        subjects_created=report.subjects_created,
        subjects_updated=report.subjects_updated,
        licences_created=report.licences_created,
        licences_updated=report.licences_updated,
        errors=[RowErrorPublic(line=e.line, reason=e.reason, uscc=e.uscc) for e in report.errors],
    )


@router.post("/sites/positions/import", summary="批量导入场所坐标 CSV（WGS-84 或 GCJ-02；须在辖区内，逐行报错）")
async def import_site_positions(session: SessionDep, _: SitesAdmin, file: UploadFile) -> dict[str, object]:
    from cloud.registry.positions import import_positions

    try:
        report = import_positions(session, await file.read())
    except csv_import.ImportFormatError as exc:
        raise HTTPException(422, str(exc)) from None
    session.commit()
    return report.__dict__


# ---------------------------------------------------------------- all-or-nothing imports (staff, sites)
class CellErrorPublic(BaseModel):
    line: int
    column: str | None = None
    reason: str


class BulkImportPublic(BaseModel):
    """批量导入结果：有任何错误则整个文件不写入（422）；``dry_run`` 只预览。"""

    kind: str
    dry_run: bool
    imported: bool
    rows: int
    summary: str
    counts: dict[str, dict[str, int]]
    actions: list[dict[str, Any]]
    errors: list[CellErrorPublic]
    initial_passwords: list[dict[str, str]] = []


def _bulk_answer(session: Session, outcome: csv_engine.ImportOutcome, actor: str) -> Any:
    from cloud import journal

    body = BulkImportPublic(
        kind=outcome.kind,
        dry_run=outcome.dry_run,
        imported=outcome.imported,
        rows=outcome.rows,
        summary=outcome.summary(),
        counts=outcome.counts,
        actions=outcome.actions,
        errors=[CellErrorPublic(line=e.line, column=e.column, reason=e.reason) for e in outcome.errors],
        initial_passwords=outcome.extra.get("initial_passwords", []),
    )
    if outcome.errors:
        session.rollback()
        return JSONResponse(status_code=422, content={"detail": body.summary, **body.model_dump(mode="json")})
    if outcome.imported:
        journal.append(
            session,
            actor=actor,
            action="registry.imported",
            target_type="import",
            target_id=outcome.kind,
            payload={"kind": outcome.kind, "rows": outcome.rows, "counts": outcome.counts},
        )
        session.commit()
    return body


def _read_or_422(read: Any) -> csv_engine.ImportOutcome:
    try:
        outcome: csv_engine.ImportOutcome = read()
    except csv_import.ImportFormatError as exc:
        raise HTTPException(422, str(exc)) from None
    return outcome


@router.post(
    "/staff/import",
    summary="批量导入人员 CSV（登录名、姓名、账号角色、部门编码、执法证号、业务职责；全部通过才写入；dry_run 预览）",
    dependencies=[county_wide("staff import: the system administrator, county-wide")],
    response_model=BulkImportPublic,
)
async def import_staff(session: SessionDep, user: StaffAdmin, file: UploadFile, dry_run: bool = False) -> Any:
    from cloud.registry.staff_import import import_staff as run

    data = await file.read()
    outcome = _read_or_422(lambda: run(session, data, actor=user.username, dry_run=dry_run))
    return _bulk_answer(session, outcome, user.username)


@router.post(
    "/sites/import",
    summary="批量导入场所、设备、传感器与测点 CSV（全部通过才写入；dry_run 预览；按场所编号等更新）",
    dependencies=[county_wide("site import: county-wide administration")],
    response_model=BulkImportPublic,
)
async def import_sites(session: SessionDep, user: SitesAdmin, file: UploadFile, dry_run: bool = False) -> Any:
    from cloud.registry.site_import import import_sites as run

    data = await file.read()
    outcome = _read_or_422(lambda: run(session, data, dry_run=dry_run))
    return _bulk_answer(session, outcome, user.username)


@router.get(
    "/admin-areas",
    summary="当前用户可以使用的系统管理页面（职责规则 administration）",
    dependencies=[county_wide("the caller's own administration pages")],
)
def get_admin_areas(user: CurrentUser) -> list[dict[str, Any]]:
    from cloud.workflow.duties import duty_rules

    areas = duty_rules().administration
    return [{"area": name, "zh": a.zh, "allowed": user.role in a.roles} for name, a in areas.items()]


# ---------------------------------------------------------------- licences
@router.post("/licences", status_code=201, summary="登记许可证")
def post_licence(session: SessionDep, _: SubjectsAdmin, data: LicenceCreate) -> LicencePublic:
    licence = service.create_licence(session, data=data)
    session.commit()
    return service.licence_public(licence, None, date.today())


@router.get("/licences/expiring", summary="即将到期的许可证 (expiring within N days)")
def get_expiring(
    session: SessionDep, _: StaffUser, scope: ScopeDep, within_days: Annotated[int, Query(ge=0, le=3650)] = 30
) -> list[LicencePublic]:
    return _in_scope(session, scope, service.expiring_licences(session, today=date.today(), within_days=within_days))


def _in_scope(session: Session, scope: Scope, licences: list[LicencePublic]) -> list[LicencePublic]:
    if scope.county:
        return licences
    departments = dict(session.exec(select(MarketSubject.id, MarketSubject.department_id)).all())
    return [lic for lic in licences if scope.allows(departments.get(lic.subject_id))]


@router.get("/licences/expired", summary="已过期的许可证 (expired)")
def get_expired(session: SessionDep, _: StaffUser, scope: ScopeDep) -> list[LicencePublic]:
    rows = service.expiring_licences(session, today=date.today(), within_days=None, include_expired=True)
    return _in_scope(session, scope, rows)


# ---------------------------------------------------------------- sites, points, devices, sensors
@router.get("/sites", summary="场所列表")
def get_sites(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    department_id: int | None = None,
    subject_id: int | None = None,
    include_deactivated: Annotated[bool, Query(description="含已停用的场所")] = False,
) -> list[SitePublic]:
    rows = service.list_sites(
        session, department_id=department_id, subject_id=subject_id, include_deactivated=include_deactivated
    )
    return [SitePublic.model_validate(s) for s in rows if scope.allows(site_department(session, s.site_id))]


@router.post("/sites", status_code=201, summary="登记场所")
def post_site(session: SessionDep, _: SitesAdmin, data: SiteCreate) -> SitePublic:
    site = service.create_site(session, data=data)
    session.commit()
    return SitePublic.model_validate(site)


@router.get("/sites/{site_id}", summary="场所详情")
def get_site(session: SessionDep, _: StaffUser, site_id: str) -> SitePublic:
    return SitePublic.model_validate(service.get_site(session, site_id=site_id))


@router.patch("/sites/{site_id}", summary="修改场所")
def patch_site(session: SessionDep, _: SitesAdmin, site_id: str, data: SiteUpdate) -> SitePublic:
    site = service.update_site(session, site_id=site_id, data=data)
    session.commit()
    return SitePublic.model_validate(site)


@router.post("/sites/{site_id}/deactivate", summary="停用场所（填写理由；保留历史，不再派发新任务）")
def deactivate_site(session: SessionDep, user: SitesAdmin, site_id: str, body: ReasonIn) -> SitePublic:
    site = service.deactivate_site(session, site_id=site_id, reason=body.reason, actor=user.username)
    session.commit()
    return SitePublic.model_validate(site)


@router.post("/sites/{site_id}/reactivate", summary="恢复启用场所（填写理由）")
def reactivate_site(session: SessionDep, user: SitesAdmin, site_id: str, body: ReasonIn) -> SitePublic:
    site = service.reactivate_site(session, site_id=site_id, reason=body.reason, actor=user.username)
    session.commit()
    return SitePublic.model_validate(site)


@router.get("/sites/{site_id}/points", summary="测点列表 (GSP measuring points)")
def get_points(session: SessionDep, _: StaffUser, site_id: str) -> list[MeasuringPointPublic]:
    return [MeasuringPointPublic.model_validate(p) for p in service.list_measuring_points(session, site_id=site_id)]


@router.post("/points", status_code=201, summary="登记测点（位置、库区/车型、仓储/运输、GSP 配置档）")
def post_point(session: SessionDep, _: SitesAdmin, data: MeasuringPointCreate) -> MeasuringPointPublic:
    point = service.create_measuring_point(session, data=data)
    session.commit()
    return MeasuringPointPublic.model_validate(point)


@router.get("/sites/{site_id}/devices", summary="设备列表")
def get_devices(session: SessionDep, _: StaffUser, site_id: str) -> list[DevicePublic]:
    return [DevicePublic.model_validate(d) for d in service.list_devices(session, site_id=site_id)]


@router.post("/devices", status_code=201, summary="登记设备")
def post_device(session: SessionDep, _: SitesAdmin, data: DeviceCreate) -> DevicePublic:
    device = service.create_device(session, data=Device.model_validate(data))
    session.commit()
    return DevicePublic.model_validate(device)


@router.get("/sites/{site_id}/sensors", summary="传感器列表")
def get_sensors(session: SessionDep, _: StaffUser, site_id: str) -> list[SensorPublic]:
    return [SensorPublic.model_validate(s) for s in service.list_sensors(session, site_id=site_id)]


@router.post("/sensors", status_code=201, summary="登记传感器（测点、预期上报间隔）")
def post_sensor(session: SessionDep, _: SitesAdmin, data: SensorCreate) -> SensorPublic:
    sensor = service.create_sensor(session, data=data)
    session.commit()
    return SensorPublic.model_validate(sensor)


@router.patch("/sites/{site_id}/sensors/{sensor_id}", summary="修改传感器")
def patch_sensor(session: SessionDep, _: SitesAdmin, site_id: str, sensor_id: str, data: SensorUpdate) -> SensorPublic:
    sensor = service.update_sensor(session, site_id=site_id, sensor_id=sensor_id, data=data)
    session.commit()
    return SensorPublic.model_validate(sensor)


# ---------------------------------------------------------------- approvals
def _pending_public(item: PendingDevice, held: dict[int, int], session: Session) -> PendingDevicePublic:
    reason = item.reason or "announced"
    public = PendingDevicePublic.model_validate(
        item,
        update={
            "quarantined": held.get(item.id or 0, 0),
            "reason": reason,
            "reason_label": quarantine.reason_label(reason),
            "site_registered": session.get(Site, item.site_id) is not None,
        },
    )
    return public


@router.get("/pending", summary="待审批的设备（边缘上报的未知设备/传感器；含隔离区数据条数）")
def get_pending(
    session: SessionDep, _: StaffUser, scope: ScopeDep, state: ApprovalState | None = ApprovalState.PENDING
) -> list[PendingDevicePublic]:
    sites = visible_sites(session, scope)
    rows = service.list_pending(session, state=state)
    held = quarantine.counts(session)
    return [_pending_public(p, held, session) for p in rows if sites is None or p.site_id in sites]


@router.get("/quarantine", summary="隔离区：未批准设备的读数与告警（批准后按序补入，拒绝后转为死信）")
def get_quarantine(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    pending_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[QuarantinedPublic]:
    sites = visible_sites(session, scope)
    query = select(Quarantined).order_by(col(Quarantined.id))
    if pending_id is not None:
        query = query.where(Quarantined.pending_id == pending_id)
    out: list[QuarantinedPublic] = []
    for row in session.exec(query):
        if sites is not None and row.site_id not in sites:
            continue
        public = QuarantinedPublic.model_validate(row)
        public.readings = len(row.sensors) if row.kind == "telemetry" else 0
        out.append(public)
        if len(out) >= limit:
            break
    return out


@router.post("/pending/{pending_id}/approve", summary="批准接入（隔离区数据按序补入正常流程）")
def approve(
    session: SessionDep, store: StoreDep, user: EditorUser, pending_id: int, decision: Decision | None = None
) -> PendingDevicePublic:
    item = service.approve_pending(
        session, pending_id=pending_id, by=user.username, note=decision.note if decision else None
    )
    quarantine.release(session, store, item, by=user.username)
    session.commit()
    return _pending_public(item, {}, session)


@router.post("/pending/{pending_id}/reject", summary="拒绝接入（隔离区数据转为死信并注明原因）")
def reject(
    session: SessionDep, user: EditorUser, pending_id: int, decision: Decision | None = None
) -> PendingDevicePublic:
    item = service.reject_pending(
        session, pending_id=pending_id, by=user.username, note=decision.note if decision else None
    )
    quarantine.discard(session, item, by=user.username)
    session.commit()
    return _pending_public(item, {}, session)
