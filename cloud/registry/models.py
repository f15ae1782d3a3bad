"""Registry tables and API schemas: departments, market subjects, licences, sites, devices, sensors,
measuring points, and announcements waiting for approval.

One model family per resource (``XBase`` / ``XCreate`` / ``XUpdate`` / ``X(table=True)`` / ``XPublic``);
the table model is never returned by the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime
from cloud.core.models import BoundedDate, update_model
from cloud.core.refs import own_id, refers_to
from cloud.geo.coords import CoordSystem, to_wgs84
from cloud.registry import uscc as uscc_mod

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
ID_FORMAT = {"pattern": ID_PATTERN}  # sqlmodel's ``regex=`` is ignored under pydantic 2; ``pattern`` is enforced

# Bounds every reader (presence, GSP records, deadlines) can live with.
MAX_HEARTBEAT_TIMEOUT_S = 7 * 86400
MAX_INTERVAL_S = 86400
TEMP_RANGE = (-100.0, 200.0)  # °C: deep freezers to boilers' surroundings


def utcnow() -> datetime:
    return datetime.now(UTC)


class RiskGrade(StrEnum):
    """信用风险分类：A 低风险, B 一般风险, C 较高风险, D 高风险."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class RecordKind(StrEnum):
    """GSP 记录场景：仓储 (storage) 或运输 (transport)."""

    STORAGE = "storage"
    TRANSPORT = "transport"


class Quantity(StrEnum):
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    OTHER = "other"


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


# ---------------------------------------------------------------- departments / jurisdictions
class DepartmentBase(SQLModel):
    code: str = Field(max_length=32, index=True, unique=True, description="部门编码")
    name: str = Field(max_length=128, description="部门名称，例如 某某市场监督管理所")
    division_code: str | None = Field(default=None, max_length=12, description="辖区行政区划码")
    parent_id: Annotated[int | None, refers_to("department_id")] = Field(default=None, foreign_key="department.id")


class DepartmentCreate(DepartmentBase):
    pass


class Department(DepartmentBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class DepartmentPublic(DepartmentBase):
    id: int


# ---------------------------------------------------------------- coordinates (GIS, 一张图)
class Located(SQLModel):
    """A WGS-84 position: both or neither, never 0,0. Inside-the-county is checked by the registry service."""

    longitude: float | None = Field(default=None, ge=-180, le=180, description="经度（WGS-84）")
    latitude: float | None = Field(default=None, ge=-90, le=90, description="纬度（WGS-84）")

    @model_validator(mode="after")
    def _pair(self) -> Located:
        if (self.longitude is None) != (self.latitude is None):
            raise ValueError("经度和纬度须同时填写 (longitude and latitude go together)")
        if self.longitude == 0 and self.latitude == 0:
            raise ValueError("坐标 0,0 无效（未定位）/ 0,0 is not a position")
        return self


class CoordinatesIn(SQLModel):
    """Input only: the datum of the given coordinates; GCJ-02 (Chinese map apps) is converted to WGS-84."""

    coord_system: CoordSystem = Field(default="wgs84", description="wgs84 | gcj02（高德、腾讯等地图坐标）")

    @model_validator(mode="after")
    def _to_wgs84(self) -> CoordinatesIn:
        lon, lat = getattr(self, "longitude", None), getattr(self, "latitude", None)
        if self.coord_system == "gcj02" and (lon is None) != (lat is None):
            raise ValueError("换算 GCJ-02 坐标须同时提供经度和纬度 (gcj02 needs both longitude and latitude)")
        if self.coord_system == "gcj02" and lon is not None and lat is not None:
            wlon, wlat = to_wgs84(lon, lat, "gcj02")
            object.__setattr__(self, "longitude", round(wlon, 7))
            object.__setattr__(self, "latitude", round(wlat, 7))
            object.__setattr__(self, "coord_system", "wgs84")
        return self


# ---------------------------------------------------------------- market subjects
class SubjectBase(Located):
    name: str = Field(min_length=1, max_length=200, description="企业名称")
    uscc: str = Field(max_length=18, index=True, unique=True, description="统一社会信用代码 (GB 32100)")
    legal_representative: str | None = Field(default=None, max_length=64, description="法定代表人")
    address: str | None = Field(default=None, max_length=300, description="住所")
    business_scope: str | None = Field(default=None, max_length=4000, description="经营范围")
    risk_grade: RiskGrade = Field(default=RiskGrade.B, description="信用风险分类 A–D")
    department_id: Annotated[int | None, refers_to("department_id")] = Field(
        default=None, ge=1, foreign_key="department.id"
    )


class SubjectCreate(CoordinatesIn, SubjectBase):
    @field_validator("uscc")
    @classmethod
    def _valid_uscc(cls, v: str) -> str:
        return uscc_mod.validate(v).code


class SubjectUpdate(CoordinatesIn, update_model(SubjectBase, exclude={"uscc"})):  # type: ignore[misc]
    """修改市场主体：省略的字段不变，边界与登记相同；统一社会信用代码不可修改。"""


class Deactivation(SQLModel):
    """注销/停用: set by the deactivate action only (never by create or update); ``None`` = in use."""

    deactivated_at: datetime | None = Field(default=None, sa_type=UTCDateTime, description="注销/停用时间")
    deactivation_reason: str | None = Field(default=None, max_length=300, description="注销/停用理由")


class MarketSubject(Deactivation, SubjectBase, table=True):
    __tablename__ = "market_subject"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SubjectPublic(Deactivation, SubjectBase):
    id: int
    created_at: datetime
    updated_at: datetime


class ReasonIn(SQLModel):
    reason: str = Field(min_length=2, max_length=300, description="理由（记入日志）")


# ---------------------------------------------------------------- licences
class LicenceBase(SQLModel):
    licence_no: str = Field(min_length=1, max_length=64, index=True, unique=True, description="许可证编号")
    kind: str | None = Field(default=None, max_length=64, description="许可证种类，例如 药品经营许可证")
    valid_from: BoundedDate | None = Field(default=None, description="有效期自")
    valid_to: BoundedDate | None = Field(default=None, index=True, description="有效期至；空 = 长期")


class LicenceCreate(LicenceBase):
    subject_id: Annotated[int, refers_to("subject_id")] = Field(ge=1)


class Licence(LicenceBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject_id: int = Field(foreign_key="market_subject.id", index=True)


class LicencePublic(LicenceBase):
    id: int
    subject_id: int
    subject_name: str | None = None
    days_left: int | None = Field(default=None, description="距到期天数（负数 = 已过期）")


# ---------------------------------------------------------------- sites
class SiteBase(Located):
    site_id: Annotated[str, own_id("the new site's own id")] = Field(
        primary_key=True, schema_extra=ID_FORMAT, max_length=64, description="场所 ID（与 MQTT 主题一致）"
    )
    name: str = Field(min_length=1, max_length=200, description="场所名称")
    address: str | None = Field(default=None, max_length=300)
    category: str | None = Field(default=None, max_length=32, description="drug | food | special_equipment")
    subject_id: Annotated[int | None, refers_to("subject_id")] = Field(
        default=None, ge=1, foreign_key="market_subject.id", index=True
    )
    department_id: Annotated[int | None, refers_to("department_id")] = Field(
        default=None, ge=1, foreign_key="department.id", index=True
    )
    heartbeat_timeout_s: int | None = Field(
        default=None, ge=10, le=MAX_HEARTBEAT_TIMEOUT_S, description="超过此时长无心跳视为离线（10 秒至 7 天）"
    )


class SiteCreate(CoordinatesIn, SiteBase):
    pass


class SiteUpdate(CoordinatesIn, update_model(SiteBase, exclude={"site_id"})):  # type: ignore[misc]
    """修改场所：省略的字段不变，边界与登记相同；场所 ID 不可修改。"""


class Site(Deactivation, SiteBase, table=True):
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SitePublic(Deactivation, SiteBase):
    created_at: datetime


# ---------------------------------------------------------------- measuring points (GSP 测点)
class MeasuringPointBase(SQLModel):
    site_id: Annotated[str, refers_to("site_id")] = Field(foreign_key="site.site_id", index=True)
    location: str = Field(max_length=200, description="测点位置，例如 阴凉库 A 区 3 号货架上层")
    storage_area: str | None = Field(default=None, max_length=100, description="库区（仓储）")
    vehicle_type: str | None = Field(default=None, max_length=100, description="车型（运输），例如 冷藏车 粤B12345")
    kind: RecordKind = Field(default=RecordKind.STORAGE, description="storage 仓储 | transport 运输")
    profile: str = Field(default="drug_normal", max_length=64, description="GSP 配置档 (gsp_profiles.toml)")
    record_interval_s: int | None = Field(
        default=None, ge=10, le=MAX_INTERVAL_S, description="覆盖配置档的正常记录间隔"
    )
    excursion_interval_s: int | None = Field(
        default=None, ge=10, le=MAX_INTERVAL_S, description="覆盖配置档的超限记录间隔"
    )
    temp_min: float | None = Field(
        default=None, ge=TEMP_RANGE[0], le=TEMP_RANGE[1], description="覆盖配置档的温度下限 °C"
    )
    temp_max: float | None = Field(
        default=None, ge=TEMP_RANGE[0], le=TEMP_RANGE[1], description="覆盖配置档的温度上限 °C"
    )
    humidity_min: float | None = Field(default=None, ge=0, le=100, description="覆盖配置档的湿度下限 %RH")
    humidity_max: float | None = Field(default=None, ge=0, le=100, description="覆盖配置档的湿度上限 %RH")
    temperature_sensor_id: Annotated[str | None, own_id("a sensor of the site named by site_id")] = Field(
        default=None, max_length=64
    )
    humidity_sensor_id: Annotated[str | None, own_id("a sensor of the site named by site_id")] = Field(
        default=None, max_length=64
    )
    active: bool = True

    @model_validator(mode="after")
    def _limits_ordered(self) -> MeasuringPointBase:
        for low, high, what in (
            (self.temp_min, self.temp_max, "温度"),
            (self.humidity_min, self.humidity_max, "湿度"),
        ):
            if low is not None and high is not None and low > high:
                raise ValueError(f"{what}下限高于上限 (lower limit above upper limit)")
        return self


class MeasuringPointCreate(MeasuringPointBase):
    pass


class MeasuringPoint(MeasuringPointBase, table=True):
    __tablename__ = "measuring_point"

    id: int | None = Field(default=None, primary_key=True)


class MeasuringPointPublic(MeasuringPointBase):
    id: int


# ---------------------------------------------------------------- devices and sensors
class DeviceBase(SQLModel):
    site_id: Annotated[str, refers_to("site_id")] = Field(foreign_key="site.site_id", primary_key=True)
    device_id: Annotated[str, own_id("the new device's own id within its site")] = Field(
        primary_key=True, schema_extra=ID_FORMAT, max_length=64
    )
    device_type: str = Field(default="probe", max_length=64)
    model: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=200)


class DeviceCreate(DeviceBase):
    pass


class Device(DeviceBase, table=True):
    agent_id: str | None = Field(default=None, max_length=64)
    agent_version: str | None = Field(default=None, max_length=32)
    last_announced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DevicePublic(DeviceBase):
    agent_id: str | None
    agent_version: str | None
    last_announced_at: datetime | None
    created_at: datetime


class SensorBase(SQLModel):
    site_id: Annotated[str, refers_to("site_id")] = Field(foreign_key="site.site_id", primary_key=True)
    sensor_id: Annotated[str, own_id("the new sensor's own id within its site")] = Field(
        primary_key=True, schema_extra=ID_FORMAT, max_length=64
    )
    device_id: Annotated[str, own_id("a device of the site named by site_id")] = Field(
        schema_extra=ID_FORMAT, max_length=64, index=True
    )
    quantity: Quantity = Field(default=Quantity.OTHER)
    unit: str | None = Field(default=None, max_length=16)
    measuring_point_id: Annotated[int | None, refers_to("measuring_point_id")] = Field(
        default=None, ge=1, foreign_key="measuring_point.id", index=True
    )
    expected_interval_s: int | None = Field(
        default=None, ge=1, le=MAX_INTERVAL_S, description="预期上报间隔；超时视为数据中断（1 秒至 1 天）"
    )


class SensorCreate(SensorBase):
    pass


class SensorUpdate(update_model(SensorBase, exclude={"site_id", "sensor_id", "device_id"})):  # type: ignore[misc]
    """修改传感器：省略的字段不变，边界与登记相同。"""


class Sensor(SensorBase, table=True):
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SensorPublic(SensorBase):
    created_at: datetime


# ---------------------------------------------------------------- announcements held for approval
class PendingDevice(SQLModel, table=True):
    """A device (or new sensors of a known device) an agent announced that nobody has approved yet."""

    __tablename__ = "pending_device"
    __table_args__ = (UniqueConstraint("site_id", "device_id", name="uq_pending_device"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: str = Field(max_length=64, index=True)
    agent_id: str = Field(max_length=64)
    device_id: str = Field(max_length=64)
    device_type: str = Field(max_length=64)
    model: str | None = Field(default=None, max_length=128)
    device_known: bool = False
    sensors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: ApprovalState = Field(default=ApprovalState.PENDING, index=True)
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    note: str | None = Field(default=None, max_length=500)
    #: why it waits: None = announced by its agent; site_unregistered / device_unannounced = opened by the ingest
    #: for data nobody announced (cloud.registry.quarantine)
    reason: str | None = Field(default=None, max_length=32)


class PendingDevicePublic(SQLModel):
    id: int
    site_id: str
    agent_id: str
    device_id: str
    device_type: str
    model: str | None
    device_known: bool
    sensors: list[str]
    state: ApprovalState
    first_seen: datetime
    last_seen: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    quarantined: int = Field(default=0, description="隔离区中等待批准的数据条数（读数批次与告警）")
    reason: str = Field(
        default="announced", description="announced 边缘申报 | site_unregistered 场所未登记 | device_unannounced 未申报"
    )
    reason_label: str = Field(default="", description="待审批原因（中文）")
    site_registered: bool = Field(default=True, description="场所是否已登记（未登记的须先登记场所才能批准）")


class Decision(SQLModel):
    note: str | None = Field(default=None, max_length=500, description="审批意见")
