"""Export of GSP records for a period and site as CSV (UTF-8 with BOM, opens in Excel) or XLSX (openpyxl).

Dates and times are shown in the profile file's time zone (``gsp_profiles.toml`` ``defaults.timezone``).
Each row carries its chain position and hash, so an exported file can be checked against the database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cloud.telemetry.gsp import QUALITY_LABELS, STATUS_LABELS, GspRecord, RecordStatus, VerifyResult, as_utc
from cloud.telemetry.gsp_profiles import load_file

HEADER = (
    "序号",
    "场所",
    "测点位置",
    "库区/车型",
    "场景",
    "日期",
    "时间",
    "温度(°C)",
    "湿度(%RH)",
    "状态",
    "读数质量",
    "链序号",
    "记录哈希",
)
KIND_LABELS = {"storage": "仓储", "transport": "运输"}


def _rows(records: Sequence[GspRecord], tz: ZoneInfo) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for i, r in enumerate(records, start=1):
        local = as_utc(r.recorded_at).astimezone(tz)
        out.append(
            (
                i,
                r.site_id,
                r.location,
                r.area,
                KIND_LABELS.get(r.kind, r.kind),
                local.strftime("%Y-%m-%d"),
                local.strftime("%H:%M:%S"),
                r.temperature,  # full stored precision (4.54 stays 4.54); a number cell in XLSX
                r.humidity,
                STATUS_LABELS.get(RecordStatus(r.status), str(r.status)),
                QUALITY_LABELS.get(r.quality or "", "未记录"),
                r.seq,
                r.hash,
            )
        )
    return out


def _tz() -> ZoneInfo:
    return ZoneInfo(load_file().defaults.timezone)


def to_csv(records: Sequence[GspRecord]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(_rows(records, _tz()))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(
    records: Sequence[GspRecord],
    *,
    site_id: str | None,
    start: datetime | None,
    end: datetime | None,
    verification: VerifyResult | None = None,
) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    tz = _tz()
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "温湿度记录"
    ws.append(HEADER)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in _rows(records, tz):
        ws.append(row)
    for column in ("H", "I"):  # temperature, humidity: numeric cells, shown with the stored two decimals
        for cell in ws[column][1:]:
            cell.number_format = "0.00"
    for col, width in zip("ABCDEFGHIJKLM", (6, 16, 28, 16, 6, 12, 10, 10, 10, 6, 16, 8, 66), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    info = wb.create_sheet("导出说明")

    def fmt(ts: datetime | None) -> str:
        return "" if ts is None else as_utc(ts).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    info.append(("场所", site_id or "全部"))
    info.append(("时段起", fmt(start)))
    info.append(("时段止", fmt(end)))
    info.append(("记录数", len(records)))
    info.append(("导出时间", fmt(datetime.now(UTC))))
    info.append(("时区", str(tz)))
    if verification is not None:
        info.append(("记录链校验", verification.message()))
    info.column_dimensions["A"].width = 14
    info.column_dimensions["B"].width = 90
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
