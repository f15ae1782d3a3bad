"""Bulk import of site positions (场所坐标) from CSV, e.g. a list geocoded in a Chinese map app.

Columns (Chinese or English headers): 场所编号 ``site_id``, 经度 ``longitude``, 纬度 ``latitude``, optional
坐标系 ``coord_system`` (``wgs84``/``WGS-84``/``GPS``, or ``gcj02``/``GCJ-02``/``高德``/``腾讯``; default wgs84).
Each row is validated like ``PATCH /registry/sites/{id}`` (both values, ranges, not 0,0, converted to WGS-84,
inside the county boundary) in a savepoint of its own; every refused row is reported with line, column, reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from cloud.core.csvtext import CsvFormatError, records
from cloud.registry import service
from cloud.registry.csv_import import ImportFormatError
from cloud.registry.models import SiteUpdate

HEADERS: dict[str, tuple[str, ...]] = {
    "site_id": ("场所编号", "场所id", "场所 id", "site_id"),
    "longitude": ("经度", "longitude", "lon", "lng"),
    "latitude": ("纬度", "latitude", "lat"),
    "coord_system": ("坐标系", "coord_system", "crs"),
}
SYSTEMS = {"wgs84": "wgs84", "wgs-84": "wgs84", "gps": "wgs84", "gcj02": "gcj02", "gcj-02": "gcj02"}
SYSTEMS |= {"高德": "gcj02", "腾讯": "gcj02", "火星坐标": "gcj02", "": "wgs84"}


@dataclass
class PositionReport:
    rows: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def import_positions(session: Session, data: bytes) -> PositionReport:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise ImportFormatError("文件编码无法识别（请使用 UTF-8 或 GB18030）") from None
    try:
        rows = list(records(text))  # a malformed file is refused whole, naming line and column (422)
    except CsvFormatError as exc:
        raise ImportFormatError(str(exc)) from None
    if not rows:
        raise ImportFormatError("文件为空 / empty file")
    header = rows[0][1]
    spell = {s.lower(): name for name, names in HEADERS.items() for s in names}
    columns = {spell[h.strip().lower()]: i for i, h in enumerate(header) if h.strip().lower() in spell}
    missing = [HEADERS[n][0] for n in ("site_id", "longitude", "latitude") if n not in columns]
    if missing:
        raise ImportFormatError(f"缺少必需的列：{'、'.join(missing)}")
    report = PositionReport()
    for line, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            continue
        report.rows += 1
        row = {n: (cells[i].strip() if i < len(cells) else "") for n, i in columns.items()}
        system = SYSTEMS.get(row.pop("coord_system", "").lower())
        if system is None:
            report.errors.append({"line": line, "column": header[columns["coord_system"]], "reason": "未知坐标系"})
            continue
        site_id = row.pop("site_id")
        try:
            update = SiteUpdate.model_validate({**row, "coord_system": system})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            name = str(err["loc"][0]) if err["loc"] else ""
            column = header[columns[name]] if name in columns else "经度/纬度"
            report.errors.append({"line": line, "column": column, "reason": f"{column}: {err['msg']}"})
            continue
        try:
            with session.begin_nested():
                service.update_site(session, site_id=site_id, data=update)
        except service.RegistryError as exc:
            report.errors.append(
                {"line": line, "column": "场所编号" if exc.status == 404 else "经度/纬度", "reason": exc.message}
            )
            continue
        report.updated += 1
    return report
