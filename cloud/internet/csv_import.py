"""CSV import of online observations (ads or prices), e.g. the export of a third-party monitoring service.

Columns (Chinese or English headers, any order; UTF-8 with or without BOM, or GB18030):

* ads:    平台 platform, 店铺 shop, 网址 url, 广告内容 text, 图片 image_ref, 商品类别 goods_category, 采集时间
  captured_at, 统一社会信用代码 subject_uscc, 场所 site_id
* prices: 平台, 店铺, 商品 goods, 规格 spec, 售价 price, 标价 marked_price, 划线价 original_price, 采集时间, …

A time without a zone (``2026-12-01 09:30``, as spreadsheets write it) is read as Asia/Shanghai. Prices may
carry ``¥``/``￥``/``元`` and thousands separators. Rows are independent (one savepoint each): every refused
row is reported with its line, the column and the reason, the others are recorded and screened.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from cloud.evidence import EvidenceStore
from cloud.internet.models import AdObservationCreate, PriceObservationCreate
from cloud.internet.rules import GOODS_LABELS
from cloud.internet.service import record_observation, strip_money
from cloud.workflow.service import Actor

__all__ = ["ImportFormatError", "ImportReport", "import_csv"]

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
Kind = Literal["ads", "prices"]

COMMON: dict[str, tuple[str, ...]] = {
    "platform": ("平台", "电商平台", "platform"),
    "shop": ("店铺", "店铺名称", "网店", "shop"),
    "url": ("网址", "链接", "页面地址", "url"),
    "captured_at": ("采集时间", "抓取时间", "captured_at"),
    "subject_uscc": ("统一社会信用代码", "subject_uscc", "uscc"),
    "site_id": ("场所", "场所编号", "site_id"),
}
HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "ads": {
        **COMMON,
        "text": ("广告内容", "文案", "广告文字", "text"),
        "image_ref": ("图片", "图片地址", "image_ref", "image"),
        "goods_category": ("商品类别", "广告类别", "goods_category"),
    },
    "prices": {
        **COMMON,
        "goods": ("商品", "商品名称", "goods"),
        "spec": ("规格", "spec"),
        "price": ("售价", "价格", "结算价", "price"),
        "marked_price": ("标价", "marked_price"),
        "original_price": ("划线价", "原价", "original_price"),
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "ads": ("platform", "shop", "text", "captured_at"),
    "prices": ("platform", "shop", "goods", "price", "captured_at"),
}
_GOODS_BY_LABEL = {label: key for key, label in GOODS_LABELS.items()}


class ImportFormatError(ValueError):
    """The file as a whole cannot be imported (encoding, missing columns)."""


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    recorded: int = 0
    duplicates: int = 0
    hits: int = 0
    clue_ids: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFormatError("文件编码无法识别（请使用 UTF-8 或 GB18030）/ unknown encoding")


def _columns(header: list[str], kind: Kind) -> dict[str, int]:
    spellings = {s.strip().lower(): name for name, names in HEADERS[kind].items() for s in names}
    found: dict[str, int] = {}
    for i, h in enumerate(header):
        name = spellings.get(h.strip().lower())
        if name is not None and name not in found:
            found[name] = i
    missing = [n for n in REQUIRED[kind] if n not in found]
    if missing:
        labels = "、".join(HEADERS[kind][n][0] for n in missing)
        raise ImportFormatError(f"缺少必需的列：{labels} / missing columns {missing}")
    return found


def _time(value: str) -> datetime | str:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("/", "-"))
    except ValueError:
        return value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_TZ)


def _row(values: dict[str, str], kind: Kind) -> dict[str, Any]:
    out: dict[str, Any] = dict(values)
    if "captured_at" in out:
        out["captured_at"] = _time(out["captured_at"])
    if kind == "prices":
        for key in ("price", "marked_price", "original_price"):
            if key in out:
                out[key] = strip_money(out[key])
    elif out.get("goods_category"):
        out["goods_category"] = _GOODS_BY_LABEL.get(out["goods_category"], out["goods_category"])
    elif "goods_category" in out:
        del out["goods_category"]
    return out


def import_csv(
    session: Session, content: bytes, kind: Kind, *, actor: Actor | str, store: EvidenceStore | None = None
) -> ImportReport:
    reader = csv.reader(io.StringIO(_decode(content)))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFormatError("文件为空 / empty file") from None
    columns = _columns(header, kind)
    model: type[BaseModel] = AdObservationCreate if kind == "ads" else PriceObservationCreate
    report = ImportReport(kind)
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        report.rows += 1
        values = {name: cells[i].strip() if i < len(cells) else "" for name, i in columns.items()}
        try:
            body = model.model_validate(_row(values, kind))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            name = str(err["loc"][0]) if err["loc"] else ""
            column = header[columns[name]] if name in columns else name
            report.errors.append({"line": line, "column": column, "reason": f"{column}: {err['msg']}"})
            continue
        assert isinstance(body, AdObservationCreate | PriceObservationCreate)
        outcome = record_observation(session, body, source="csv", actor=actor, store=store)
        if outcome.duplicate:
            report.duplicates += 1
            continue
        report.recorded += 1
        report.hits += len(outcome.hits)
        report.clue_ids = sorted(set(report.clue_ids) | set(outcome.clue_ids))
    return report
