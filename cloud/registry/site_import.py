"""CSV import of sites with their devices, sensors and GSP measuring points (kind ``sites`` of csv_imports.toml).

One row per sensor (or per site / device that has none yet). Rows are matched by natural keys: the site by 场所编号,
a device by (场所编号, 设备编号), a sensor by (场所编号, 传感器编号), a measuring point by (场所编号, 测点位置); a
known one is updated, so re-importing a file changes nothing. Every value goes through the same models as the
registry API (bounds, coordinates inside the county, the GSP profile must exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from cloud.registry import service
from cloud.registry import uscc as uscc_mod
from cloud.registry.csv_engine import ImportOutcome, Row, RowRefused, changed, run_import, validation_reason
from cloud.registry.models import (
    Department,
    Device,
    DeviceCreate,
    MeasuringPoint,
    MeasuringPointCreate,
    Quantity,
    Sensor,
    SensorCreate,
    Site,
    SiteCreate,
    SiteUpdate,
)

CATEGORIES = {"药品": "drug", "食品": "food", "特种设备": "special_equipment"}
CATEGORIES |= {v: v for v in list(CATEGORIES.values())}
QUANTITIES = {"温度": Quantity.TEMPERATURE, "湿度": Quantity.HUMIDITY, "其他": Quantity.OTHER}
QUANTITIES |= {q.value: q for q in Quantity}
#: model field -> CSV column key, to name the column of a model's refusal
_SITE_FIELDS = {"site_id": "site_id", "name": "name", "address": "address", "category": "category"}
_SITE_FIELDS |= {"longitude": "longitude", "latitude": "latitude"}
_POINT_FIELDS = {"location": "point_location", "storage_area": "storage_area", "profile": "profile"}
_POINT_FIELDS |= {"temp_min": "temp_min", "temp_max": "temp_max"}
_DEVICE_FIELDS = {"device_id": "device_id", "device_type": "device_type", "model": "device_model"}
_DEVICE_FIELDS |= {"name": "device_name"}
_SENSOR_FIELDS = {"sensor_id": "sensor_id", "quantity": "quantity", "unit": "unit"}
_SENSOR_FIELDS |= {"expected_interval_s": "expected_interval_s"}


def _model(model: type[Any], values: dict[str, Any], fields: dict[str, str], whole: str | None = None) -> Any:
    """Validate with the registry's own model; a refusal names its column (``whole``: a cross-field rule's)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        name, reason = validation_reason(exc)
        raise RowRefused(fields.get(name or "", whole), reason) from None


def _registry(exc: service.RegistryError, key: str | None) -> RowRefused:
    return RowRefused(key, exc.message)


@dataclass
class SiteApplier:
    first_rows: dict[str, Row] = field(default_factory=dict)  # site id -> the first row naming it
    site_columns: tuple[str, ...] = ()

    def __call__(self, session: Session, row: Row) -> dict[str, str]:
        try:
            return self._apply(session, row)
        except service.RegistryError as exc:
            raise _registry(exc, None) from None

    def _apply(self, session: Session, row: Row) -> dict[str, str]:
        site_id: str = row.get("site_id")
        first = self.first_rows.setdefault(site_id, row)
        done: dict[str, str] = {}
        if first is row:
            done["site"] = self._site(session, row)
        else:
            for key in self.site_columns:
                value = row.get(key)
                if value is not None and value != first.get(key):
                    raise RowRefused(key, f"与第 {first.line} 行（同一场所 {site_id}）的值“{first.get(key)}”不同")
        point = self._point(session, row)
        if point is not None:
            done["point"] = point[1]
        if row.get("device_id"):
            done["device"] = self._device(session, row)
        if row.get("sensor_id"):
            done["sensor"] = self._sensor(session, row, point[0] if point else None)
        return done

    def _site(self, session: Session, row: Row) -> str:
        values: dict[str, Any] = {
            k: row.get(k) for k in ("name", "address", "longitude", "latitude") if row.get(k) is not None
        }
        if row.get("category"):
            category = CATEGORIES.get(row.get("category"))
            if category is None:
                raise RowRefused("category", f"监管领域应为 药品、食品 或 特种设备：{row.get('category')!r}")
            values["category"] = category
        if row.get("subject_uscc"):
            try:
                code = uscc_mod.validate(row.get("subject_uscc")).code
            except uscc_mod.InvalidUSCC as exc:
                raise RowRefused("subject_uscc", str(exc)) from None
            subject = service.find_subject_by_uscc(session, code=code)
            if subject is None:
                raise RowRefused("subject_uscc", f"统一社会信用代码 {code} 的市场主体未登记（请先导入市场主体）")
            values["subject_id"] = subject.id
        if row.get("department_code"):
            code = row.get("department_code")
            department = session.exec(select(Department).where(Department.code == code)).first()
            if department is None:
                raise RowRefused("department_code", f"部门编码 {code} 不存在（请先在“部门”页新增）")
            values["department_id"] = department.id
        existing = session.get(Site, row.get("site_id"))
        try:
            if existing is None:
                if "name" not in values:
                    raise RowRefused("name", "新场所须填写场所名称")
                data = _model(SiteCreate, {"site_id": row.get("site_id"), **values}, _SITE_FIELDS, whole="longitude")
                service.create_site(session, data=data)
                return "created"
            update = _model(SiteUpdate, values, _SITE_FIELDS, whole="longitude")
            before = existing.model_dump()
            service.update_site(session, site_id=existing.site_id, data=update)
            return "unchanged" if existing.model_dump() == before else "updated"
        except service.RegistryError as exc:
            raise _registry(exc, "longitude" if "坐标" in exc.message else None) from None

    def _point(self, session: Session, row: Row) -> tuple[MeasuringPoint, str] | None:
        location = row.get("point_location")
        if not location:
            for key in ("storage_area", "profile", "temp_min", "temp_max"):
                if row.get(key) is not None:
                    raise RowRefused("point_location", "填写了测点信息但测点位置为空")
            return None
        values: dict[str, Any] = {"site_id": row.get("site_id"), "location": location}
        values |= {k: row.get(k) for k in ("storage_area", "profile", "temp_min", "temp_max") if row.get(k) is not None}
        data = _model(MeasuringPointCreate, values, _POINT_FIELDS, whole="temp_min")
        point = session.exec(
            select(MeasuringPoint).where(MeasuringPoint.site_id == data.site_id, MeasuringPoint.location == location)
        ).first()
        try:
            if point is None:
                return service.create_measuring_point(session, data=data), "created"
        except service.RegistryError as exc:
            raise _registry(exc, "profile") from None
        from cloud.telemetry.gsp_profiles import load_profiles

        if data.profile not in load_profiles():
            raise RowRefused("profile", f"GSP 配置档 {data.profile} 不存在")
        explicit = data.model_dump(exclude_unset=True, exclude={"site_id", "location"})
        if changed(point, explicit):
            session.add(point)
            session.flush()
            return point, "updated"
        return point, "unchanged"

    def _device(self, session: Session, row: Row) -> str:
        values: dict[str, Any] = {"site_id": row.get("site_id"), "device_id": row.get("device_id")}
        optional = {"device_type": "device_type", "model": "device_model", "name": "device_name"}
        values |= {f: row.get(k) for f, k in optional.items() if row.get(k) is not None}
        data = _model(DeviceCreate, values, _DEVICE_FIELDS)
        device = session.get(Device, (data.site_id, data.device_id))
        if device is None:
            service.create_device(session, data=Device.model_validate(data))
            return "created"
        if changed(device, data.model_dump(exclude_unset=True, exclude={"site_id", "device_id"})):
            session.add(device)
            return "updated"
        return "unchanged"

    def _sensor(self, session: Session, row: Row, point: MeasuringPoint | None) -> str:
        if not row.get("device_id"):
            raise RowRefused("device_id", "填写了传感器编号但设备编号为空")
        values: dict[str, Any] = {
            "site_id": row.get("site_id"),
            "sensor_id": row.get("sensor_id"),
            "device_id": row.get("device_id"),
        }
        if row.get("quantity"):
            quantity = QUANTITIES.get(row.get("quantity"))
            if quantity is None:
                raise RowRefused("quantity", f"测量量应为 温度、湿度 或 其他：{row.get('quantity')!r}")
            values["quantity"] = quantity
        values |= {k: row.get(k) for k in ("unit", "expected_interval_s") if row.get(k) is not None}
        if point is not None:
            values["measuring_point_id"] = point.id
        data = _model(SensorCreate, values, _SENSOR_FIELDS)
        sensor = session.get(Sensor, (data.site_id, data.sensor_id))
        if sensor is None:
            service.create_sensor(session, data=data)
            return "created"
        if sensor.device_id != data.device_id:
            raise RowRefused("device_id", f"传感器 {data.sensor_id} 已登记在设备 {sensor.device_id} 下")
        if changed(sensor, data.model_dump(exclude_unset=True, exclude={"site_id", "sensor_id", "device_id"})):
            session.add(sensor)
            return "updated"
        return "unchanged"


def import_sites(session: Session, data: bytes | str, *, dry_run: bool) -> ImportOutcome:
    from cloud.registry.csv_engine import import_kinds

    kind = import_kinds()["sites"]
    applier = SiteApplier(site_columns=tuple(c.key for c in kind.columns if c.site))
    return run_import(session, "sites", data, applier, dry_run=dry_run)
