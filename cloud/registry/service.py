"""Registry operations: keyword-only functions over a SQLModel session.

The caller owns the transaction: functions ``flush`` so that ids are assigned but never ``commit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from cloud.core.models import UpdateRejected, apply_update
from cloud.registry import uscc as uscc_mod
from cloud.registry.models import (
    ApprovalState,
    Department,
    DepartmentCreate,
    Device,
    Licence,
    LicenceCreate,
    LicencePublic,
    MarketSubject,
    MeasuringPoint,
    MeasuringPointCreate,
    PendingDevice,
    RiskGrade,
    Sensor,
    SensorBase,
    SensorCreate,
    SensorUpdate,
    Site,
    SiteBase,
    SiteCreate,
    SiteUpdate,
    SubjectBase,
    SubjectCreate,
    SubjectUpdate,
    utcnow,
)


class RegistryError(Exception):
    """A registry operation that cannot be done; ``message`` is Chinese text for the user."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RegistryError):
    status = 404


class Conflict(RegistryError):
    status = 409


class Invalid(RegistryError):
    """An update a create would refuse (bounds, cross-field rules); answered 422."""

    status = 422


def check_position(longitude: float | None, latitude: float | None) -> None:
    """A stored position must lie inside the county boundary (``SENTINEL_COUNTY_BOUNDARY_FILE``), when one is set."""
    from cloud.geo.boundary import configured_boundary

    if longitude is None or latitude is None:
        return
    boundary = configured_boundary()
    if boundary is not None and not boundary.contains(longitude, latitude):
        raise Invalid(
            f"坐标 {longitude:.6f},{latitude:.6f} 不在辖区（{boundary.county.name}）范围内；"
            "如为高德、腾讯等地图坐标请注明 coord_system=gcj02 / position outside the county boundary"
        )


def _update(row: object, changes: dict[str, object], base: type) -> None:
    changes.pop("coord_system", None)  # input only: the coordinates were converted to WGS-84 on validation
    try:
        apply_update(row, changes, base=base)  # type: ignore[type-var]
    except UpdateRejected as exc:
        raise Invalid(f"修改无效 (invalid update): {exc}") from None


def _check_refs(
    session: Session,
    *,
    subject_id: int | None = None,
    department_id: int | None = None,
    measuring_point_id: int | None = None,
) -> None:
    """Referenced rows must exist (a dangling id would be an IntegrityError, i.e. a 500, on commit)."""
    if subject_id is not None:
        get_subject(session, subject_id=subject_id)
    if department_id is not None and session.get(Department, department_id) is None:
        raise NotFound(f"部门 {department_id} 不存在")
    if measuring_point_id is not None and session.get(MeasuringPoint, measuring_point_id) is None:
        raise NotFound(f"测点 {measuring_point_id} 不存在")


# ---------------------------------------------------------------- departments
def create_department(session: Session, *, data: DepartmentCreate) -> Department:
    if session.exec(select(Department).where(Department.code == data.code)).first():
        raise Conflict(f"部门编码 {data.code} 已存在")
    dep = Department.model_validate(data)
    session.add(dep)
    session.flush()
    return dep


def list_departments(session: Session) -> Sequence[Department]:
    return session.exec(select(Department).order_by(col(Department.code))).all()


# ---------------------------------------------------------------- subjects
def get_subject(session: Session, *, subject_id: int) -> MarketSubject:
    subject = session.get(MarketSubject, subject_id)
    if subject is None:
        raise NotFound(f"市场主体 {subject_id} 不存在")
    return subject


def find_subject_by_uscc(session: Session, *, code: str) -> MarketSubject | None:
    return session.exec(select(MarketSubject).where(MarketSubject.uscc == uscc_mod.normalize(code))).first()


def create_subject(session: Session, *, data: SubjectCreate) -> MarketSubject:
    code = uscc_mod.validate(data.uscc).code
    if find_subject_by_uscc(session, code=code):
        raise Conflict(f"统一社会信用代码 {code} 已登记")
    _check_refs(session, department_id=data.department_id)
    check_position(data.longitude, data.latitude)
    subject = MarketSubject.model_validate(data, update={"uscc": code})
    session.add(subject)
    session.flush()
    return subject


def update_subject(session: Session, *, subject_id: int, data: SubjectUpdate) -> MarketSubject:
    subject = get_subject(session, subject_id=subject_id)
    changes = data.model_dump(exclude_unset=True)
    _check_refs(session, department_id=changes.get("department_id"))
    _update(subject, changes, SubjectBase)
    check_position(subject.longitude, subject.latitude)
    subject.updated_at = utcnow()
    session.add(subject)
    session.flush()
    return subject


def list_subjects(
    session: Session,
    *,
    q: str | None = None,
    risk_grade: RiskGrade | None = None,
    department_id: int | None = None,
    include_deactivated: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> Sequence[MarketSubject]:
    stmt = select(MarketSubject)
    if not include_deactivated:
        stmt = stmt.where(col(MarketSubject.deactivated_at).is_(None))
    if q:
        stmt = stmt.where(col(MarketSubject.name).contains(q) | (MarketSubject.uscc == uscc_mod.normalize(q)))
    if risk_grade:
        stmt = stmt.where(MarketSubject.risk_grade == risk_grade)
    if department_id is not None:
        stmt = stmt.where(MarketSubject.department_id == department_id)
    return session.exec(stmt.order_by(col(MarketSubject.id)).offset(offset).limit(limit)).all()


# ---------------------------------------------------------------- licences
def create_licence(session: Session, *, data: LicenceCreate) -> Licence:
    get_subject(session, subject_id=data.subject_id)
    if data.valid_from and data.valid_to and data.valid_to < data.valid_from:
        raise RegistryError("有效期至早于有效期自")
    if session.exec(select(Licence).where(Licence.licence_no == data.licence_no)).first():
        raise Conflict(f"许可证编号 {data.licence_no} 已存在")
    licence = Licence.model_validate(data)
    session.add(licence)
    session.flush()
    return licence


def licence_public(licence: Licence, subject: MarketSubject | None, today: date) -> LicencePublic:
    days_left = (licence.valid_to - today).days if licence.valid_to else None
    return LicencePublic.model_validate(
        licence, update={"subject_name": subject.name if subject else None, "days_left": days_left}
    )


def expiring_licences(
    session: Session, *, today: date, within_days: int | None = 30, include_expired: bool = False
) -> list[LicencePublic]:
    """Licences expiring in ``[today, today + within_days]``; with ``include_expired`` also those already past.

    ``within_days=None`` with ``include_expired`` lists expired licences only.
    """
    stmt = select(Licence, MarketSubject).join(MarketSubject).where(col(Licence.valid_to).is_not(None))
    conds: list[ColumnElement[bool]] = []
    if within_days is not None:
        conds.append((col(Licence.valid_to) >= today) & (col(Licence.valid_to) <= today + timedelta(days=within_days)))
    if include_expired:
        conds.append(col(Licence.valid_to) < today)
    if not conds:
        return []
    cond = conds[0]
    for extra in conds[1:]:
        cond = cond | extra
    rows = session.exec(stmt.where(cond).order_by(col(Licence.valid_to))).all()
    return [licence_public(lic, subj, today) for lic, subj in rows]


def subject_licences(session: Session, *, subject_id: int, today: date) -> list[LicencePublic]:
    subject = get_subject(session, subject_id=subject_id)
    rows = session.exec(select(Licence).where(Licence.subject_id == subject_id).order_by(col(Licence.id))).all()
    return [licence_public(lic, subject, today) for lic in rows]


# ---------------------------------------------------------------- sites, points, devices, sensors
def get_site(session: Session, *, site_id: str) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"场所 {site_id} 不存在")
    return site


def create_site(session: Session, *, data: SiteCreate) -> Site:
    if session.get(Site, data.site_id):
        raise Conflict(f"场所 {data.site_id} 已存在")
    _check_refs(session, subject_id=data.subject_id, department_id=data.department_id)
    check_position(data.longitude, data.latitude)
    site = Site.model_validate(data)
    session.add(site)
    session.flush()
    return site


def update_site(session: Session, *, site_id: str, data: SiteUpdate) -> Site:
    site = get_site(session, site_id=site_id)
    changes = data.model_dump(exclude_unset=True)
    _check_refs(session, subject_id=changes.get("subject_id"), department_id=changes.get("department_id"))
    _update(site, changes, SiteBase)
    check_position(site.longitude, site.latitude)
    session.add(site)
    session.flush()
    return site


def list_sites(
    session: Session,
    *,
    department_id: int | None = None,
    subject_id: int | None = None,
    include_deactivated: bool = False,
) -> Sequence[Site]:
    stmt = select(Site)
    if not include_deactivated:
        stmt = stmt.where(col(Site.deactivated_at).is_(None))
    if department_id is not None:
        stmt = stmt.where(Site.department_id == department_id)
    if subject_id is not None:
        stmt = stmt.where(Site.subject_id == subject_id)
    return session.exec(stmt.order_by(col(Site.site_id))).all()


def create_measuring_point(session: Session, *, data: MeasuringPointCreate) -> MeasuringPoint:
    get_site(session, site_id=data.site_id)
    from cloud.telemetry.gsp_profiles import load_profiles  # the profile must exist

    if data.profile not in load_profiles():
        raise RegistryError(f"GSP 配置档 {data.profile} 不存在")
    point = MeasuringPoint.model_validate(data)
    session.add(point)
    session.flush()
    return point


def list_measuring_points(session: Session, *, site_id: str | None = None) -> Sequence[MeasuringPoint]:
    stmt = select(MeasuringPoint)
    if site_id:
        stmt = stmt.where(MeasuringPoint.site_id == site_id)
    return session.exec(stmt.order_by(col(MeasuringPoint.id))).all()


def create_device(session: Session, *, data: Device) -> Device:
    get_site(session, site_id=data.site_id)
    if session.get(Device, (data.site_id, data.device_id)):
        raise Conflict(f"设备 {data.site_id}/{data.device_id} 已存在")
    session.add(data)
    session.flush()
    return data


def list_devices(session: Session, *, site_id: str) -> Sequence[Device]:
    return session.exec(select(Device).where(Device.site_id == site_id).order_by(col(Device.device_id))).all()


def create_sensor(session: Session, *, data: SensorCreate) -> Sensor:
    if session.get(Device, (data.site_id, data.device_id)) is None:
        raise NotFound(f"设备 {data.site_id}/{data.device_id} 不存在")
    if session.get(Sensor, (data.site_id, data.sensor_id)):
        raise Conflict(f"传感器 {data.site_id}/{data.sensor_id} 已存在")
    _check_refs(session, measuring_point_id=data.measuring_point_id)
    sensor = Sensor.model_validate(data)
    session.add(sensor)
    session.flush()
    return sensor


def update_sensor(session: Session, *, site_id: str, sensor_id: str, data: SensorUpdate) -> Sensor:
    sensor = session.get(Sensor, (site_id, sensor_id))
    if sensor is None:
        raise NotFound(f"传感器 {site_id}/{sensor_id} 不存在")
    changes = data.model_dump(exclude_unset=True)
    _check_refs(session, measuring_point_id=changes.get("measuring_point_id"))
    _update(sensor, changes, SensorBase)
    session.add(sensor)
    session.flush()
    return sensor


def list_sensors(session: Session, *, site_id: str) -> Sequence[Sensor]:
    return session.exec(select(Sensor).where(Sensor.site_id == site_id).order_by(col(Sensor.sensor_id))).all()


# ---------------------------------------------------------------- deactivation (注销/停用) and reactivation
class RegistryState(StrEnum):
    """What the registry says of a site's incoming data: ``active`` (registered, in use), ``deactivated`` (the site
    or its market subject is deactivated), ``unknown`` (never registered). Read by the ingest/quarantine hook."""

    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    UNKNOWN = "unknown"


def site_state(session: Session, *, site_id: str) -> RegistryState:
    site = session.get(Site, site_id)
    if site is None:
        return RegistryState.UNKNOWN
    if site.deactivated_at is not None:
        return RegistryState.DEACTIVATED
    subject = session.get(MarketSubject, site.subject_id) if site.subject_id is not None else None
    if subject is not None and subject.deactivated_at is not None:
        return RegistryState.DEACTIVATED
    return RegistryState.ACTIVE


class Deactivated(Conflict):
    """New work for a deactivated subject or site is refused (409)."""


def ensure_active(session: Session, *, subject_id: int | None = None, site_id: str | None = None, what: str) -> None:
    """Refuse ``what`` (e.g. 派发检查任务) for a deactivated subject, a deactivated site or a site of one."""
    site = session.get(Site, site_id) if site_id else None
    if site is not None and site.deactivated_at is not None:
        raise Deactivated(
            f"场所“{site.name}”已停用（{site.deactivation_reason}），不能{what}；如需恢复，请在“场所与设备”页恢复启用"
        )
    for sid in {subject_id, site.subject_id if site is not None else None} - {None}:
        subject = session.get(MarketSubject, sid)
        if subject is not None and subject.deactivated_at is not None:
            raise Deactivated(
                f"市场主体“{subject.name}”已注销（{subject.deactivation_reason}），不能{what}；"
                "如需恢复，请在“市场主体”页恢复"
            )


def _journal(session: Session, actor: str, action: str, target_type: str, target_id: str | int, reason: str) -> None:
    from cloud import journal

    journal.append(
        session,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload={"reason": reason},
    )


def deactivate_subject(session: Session, *, subject_id: int, reason: str, actor: str) -> MarketSubject:
    subject = get_subject(session, subject_id=subject_id)
    if subject.deactivated_at is not None:
        raise Conflict(f"市场主体“{subject.name}”已于此前注销")
    subject.deactivated_at, subject.deactivation_reason, subject.updated_at = utcnow(), reason, utcnow()
    session.add(subject)
    _journal(session, actor, "subject.deactivated", "subject", subject_id, reason)
    session.flush()
    return subject


def reactivate_subject(session: Session, *, subject_id: int, reason: str, actor: str) -> MarketSubject:
    subject = get_subject(session, subject_id=subject_id)
    if subject.deactivated_at is None:
        raise Conflict(f"市场主体“{subject.name}”未注销，无需恢复")
    subject.deactivated_at, subject.deactivation_reason, subject.updated_at = None, None, utcnow()
    session.add(subject)
    _journal(session, actor, "subject.reactivated", "subject", subject_id, reason)
    session.flush()
    return subject


def deactivate_site(session: Session, *, site_id: str, reason: str, actor: str) -> Site:
    site = get_site(session, site_id=site_id)
    if site.deactivated_at is not None:
        raise Conflict(f"场所“{site.name}”已于此前停用")
    site.deactivated_at, site.deactivation_reason = utcnow(), reason
    session.add(site)
    _journal(session, actor, "site.deactivated", "site", site_id, reason)
    session.flush()
    return site


def reactivate_site(session: Session, *, site_id: str, reason: str, actor: str) -> Site:
    site = get_site(session, site_id=site_id)
    if site.deactivated_at is None:
        raise Conflict(f"场所“{site.name}”未停用，无需恢复")
    site.deactivated_at, site.deactivation_reason = None, None
    session.add(site)
    _journal(session, actor, "site.reactivated", "site", site_id, reason)
    session.flush()
    return site


# ---------------------------------------------------------------- approvals
def list_pending(session: Session, *, state: ApprovalState | None = ApprovalState.PENDING) -> Sequence[PendingDevice]:
    stmt = select(PendingDevice)
    if state is not None:
        stmt = stmt.where(PendingDevice.state == state)
    return session.exec(stmt.order_by(col(PendingDevice.id))).all()


def _pending(session: Session, pending_id: int) -> PendingDevice:
    item = session.get(PendingDevice, pending_id)
    if item is None:
        raise NotFound(f"待审批设备 {pending_id} 不存在")
    if item.state is not ApprovalState.PENDING:
        raise Conflict(f"待审批设备 {pending_id} 已处理（{item.state.value}）")
    return item


def approve_pending(session: Session, *, pending_id: int, by: str, note: str | None = None) -> PendingDevice:
    """Accept an announced device: create the device (if new) and its announced sensors."""
    item = _pending(session, pending_id)
    if session.get(Site, item.site_id) is None:
        raise Conflict(f"场所 {item.site_id} 尚未登记，请先登记场所再审批设备")
    device = session.get(Device, (item.site_id, item.device_id))
    now = utcnow()
    if device is None:
        device = Device(
            site_id=item.site_id,
            device_id=item.device_id,
            device_type=item.device_type,
            model=item.model,
            agent_id=item.agent_id,
            last_announced_at=item.last_seen,
        )
        session.add(device)
        session.flush()
    for sensor_id in item.sensors:
        if session.get(Sensor, (item.site_id, sensor_id)) is None:
            session.add(Sensor(site_id=item.site_id, sensor_id=sensor_id, device_id=item.device_id))
    item.state = ApprovalState.APPROVED
    item.decided_by, item.decided_at, item.note = by, now, note
    session.add(item)
    session.flush()
    return item


def reject_pending(session: Session, *, pending_id: int, by: str, note: str | None = None) -> PendingDevice:
    item = _pending(session, pending_id)
    item.state = ApprovalState.REJECTED
    item.decided_by, item.decided_at, item.note = by, utcnow(), note
    session.add(item)
    session.flush()
    return item


def is_sensor_registered(session: Session, *, site_id: str, sensor_id: str) -> bool:
    return session.get(Sensor, (site_id, sensor_id)) is not None


# ---------------------------------------------------------------- installation
def register_installation(
    session: Session,
    *,
    site_id: str,
    devices: Mapping[str, Iterable[str]],
    name: str | None = None,
    category: str | None = None,
    department_id: int | None = None,
    device_type: str = "probe",
) -> Site:
    """What an installer registers for a box before it reports (as the registry API does, in one go): the site,
    its devices (``device id → sensor ids``) and their sensors. Idempotent: what is registered already is kept
    as it is; only what is missing is added. The caller commits.

    Data of a site, device or sensor not registered (nor approved after an announcement) is held in the quarantine
    (:mod:`cloud.registry.quarantine`)."""
    site = session.get(Site, site_id)
    if site is None:
        site = create_site(
            session,
            data=SiteCreate(site_id=site_id, name=name or site_id, category=category, department_id=department_id),
        )
    for device_id, sensors in devices.items():
        if session.get(Device, (site_id, device_id)) is None:
            create_device(session, data=Device(site_id=site_id, device_id=device_id, device_type=device_type))
        for sensor_id in sensors:
            if session.get(Sensor, (site_id, sensor_id)) is None:
                create_sensor(session, data=SensorCreate(site_id=site_id, sensor_id=sensor_id, device_id=device_id))
    session.flush()
    return site


def devices_of(sensor_ids: Iterable[str]) -> dict[str, list[str]]:
    """Sensor ids grouped by their device by the edge agent's naming (``<device>.<point>``; see
    :func:`cloud.registry.quarantine.device_of`)."""
    from cloud.registry.quarantine import device_of

    out: dict[str, list[str]] = {}
    for sensor_id in sensor_ids:
        out.setdefault(device_of(sensor_id), []).append(sensor_id)
    return out
