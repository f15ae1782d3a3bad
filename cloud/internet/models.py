"""Tables and API model families of internet monitoring (互联网监测).

One family per resource (``XBase`` holds the fields and their bounds once; ``XCreate`` and ``XPublic`` derive
from it; the table model is never returned):

* advertisements :class:`AdObservation` — platform, shop, URL, text, image reference, captured at;
* prices :class:`PriceObservation` — goods, spec, price, marked price (标价), original price (划线价), shop;
* :class:`ScreeningHit` — one rule hit on one observation, with its evidence and the clue it went to;
* :class:`FetchRun` — one run of a fetcher plug-in: what it captured, stored and refused.

Every observation keeps its capture (the page or the submitted record) in the evidence store by SHA-256.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, field_validator
from sqlalchemy import JSON, Column, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime, utcnow
from cloud.core.refs import refers_to
from cloud.internet.rules import GoodsCategory

Money = Decimal


def _blank_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class _Where(SQLModel):
    platform: str = Field(min_length=1, max_length=64, description="平台（网店所在电商平台、网站或公众号）")
    shop: str = Field(min_length=1, max_length=200, description="店铺名称")
    url: str | None = Field(default=None, max_length=1000, description="页面地址")
    subject_uscc: str | None = Field(default=None, max_length=18, description="店铺经营者统一社会信用代码（已知时）")
    site_id: Annotated[str | None, refers_to("site_id")] = Field(
        default=None, max_length=64, description="对应场所（已知时）"
    )
    captured_at: datetime = Field(sa_type=UTCDateTime, description="采集时间（带时区）")


# ---------------------------------------------------------------------------------------------- ads
class AdObservationBase(_Where):
    text: str = Field(min_length=1, max_length=8000, sa_column=Column(Text, nullable=False))
    image_ref: str | None = Field(default=None, max_length=1000, description="图片：证据 SHA-256 或图片地址")
    goods_category: GoodsCategory = Field(default=GoodsCategory.ORDINARY, max_length=20, description="广告商品类别")


class AdObservationCreate(AdObservationBase):
    captured_at: AwareDatetime

    _blank = field_validator("url", "subject_uscc", "site_id", "image_ref", mode="before")(_blank_none)


class AdObservation(AdObservationBase, table=True):
    __tablename__ = "internet_ad"
    __table_args__ = (UniqueConstraint("fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=80, description="api | csv | fetcher:<name>")
    fingerprint: str = Field(max_length=64, description="SHA-256 of platform, shop, URL, category and text")
    capture_sha256: str | None = Field(default=None, max_length=64, description="证据库中的采集快照")
    seen_count: int = Field(default=1)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AdObservationPublic(AdObservationBase):
    id: int
    source: str
    capture_sha256: str | None
    seen_count: int
    last_seen_at: datetime


# ---------------------------------------------------------------------------------------------- prices
class PriceObservationBase(_Where):
    goods: str = Field(min_length=1, max_length=200, description="商品名称")
    spec: str = Field(default="", max_length=100, description="规格（如 5kg/袋）")
    price: Money = Field(
        gt=0,
        max_digits=12,
        decimal_places=2,
        sa_column=Column(Numeric(12, 2), nullable=False),
        description="售价/结算价（元）",
    )
    marked_price: Money | None = Field(
        default=None, gt=0, max_digits=12, decimal_places=2, sa_column=Column(Numeric(12, 2)), description="标价（元）"
    )
    original_price: Money | None = Field(
        default=None,
        gt=0,
        max_digits=12,
        decimal_places=2,
        sa_column=Column(Numeric(12, 2)),
        description="划线价/原价（元）",
    )


class PriceObservationCreate(PriceObservationBase):
    captured_at: AwareDatetime

    _blank = field_validator("url", "subject_uscc", "site_id", "marked_price", "original_price", mode="before")(
        _blank_none
    )


class PriceObservation(PriceObservationBase, table=True):
    __tablename__ = "internet_price"
    __table_args__ = (UniqueConstraint("fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=80)
    fingerprint: str = Field(max_length=64, description="SHA-256 of platform, shop, goods, spec, price, captured_at")
    capture_sha256: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PriceObservationPublic(PriceObservationBase):
    id: int
    source: str
    capture_sha256: str | None


# ---------------------------------------------------------------------------------------------- hits
class ScreeningHitBase(SQLModel):
    observation_kind: str = Field(max_length=8, description="ad | price")
    observation_id: int = Field(index=True)
    rule_id: str = Field(max_length=32, index=True)
    rules_version: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    matched: str = Field(default="", max_length=500, description="命中的文字或价格")
    span_start: int | None = None
    span_end: int | None = None
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    clue_id: int | None = Field(default=None, index=True)


class ScreeningHit(ScreeningHitBase, table=True):
    __tablename__ = "internet_hit"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScreeningHitPublic(ScreeningHitBase):
    id: int
    created_at: datetime


# ---------------------------------------------------------------------------------------------- fetch runs
class FetchRunBase(SQLModel):
    source: str = Field(max_length=80, index=True)
    url: str = Field(max_length=1000)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="running", max_length=16, description="running | ok | partial | failed")
    ads: int = 0
    prices: int = 0
    duplicates: int = 0
    hits: int = 0
    capture_sha256: str | None = Field(default=None, max_length=64)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class FetchRun(FetchRunBase, table=True):
    __tablename__ = "internet_fetch_run"

    id: int | None = Field(default=None, primary_key=True)


class FetchRunPublic(FetchRunBase):
    id: int
