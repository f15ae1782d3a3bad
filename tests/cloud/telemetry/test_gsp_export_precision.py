"""GSP export keeps the recorded precision: 4.54 °C is exported as 4.54 (not 4.5) and, in the XLSX an inspector
opens, as a number cell (not text), so it can be sorted, charted and compared with the limits."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import openpyxl

from cloud.telemetry.gsp import GspRecord, RecordStatus
from cloud.telemetry.gsp_export import to_csv, to_xlsx


def _record(seq: int, temperature: float | None, humidity: float | None) -> GspRecord:
    return GspRecord(
        seq=seq,
        point_id=1,
        site_id="pharmacy-1",
        recorded_at=datetime(2026, 11, 20, 0, seq, tzinfo=UTC),
        temperature=temperature,
        humidity=humidity,
        location="冷藏柜1",
        area="冷藏区",
        kind="storage",
        status=RecordStatus.NORMAL,
        profile="refrigerated",
        created_at=datetime(2026, 11, 20, tzinfo=UTC),
        prev_hash=f"p{seq}",
        hash=f"h{seq}",
    )


def test_export_keeps_full_precision_as_numbers() -> None:
    records = [_record(1, 4.54, 61.25), _record(2, -18.05, None)]
    table = list(csv.reader(io.StringIO(to_csv(records).decode("utf-8-sig"))))
    assert table[1][7:9] == ["4.54", "61.25"] and table[2][7:9] == ["-18.05", ""]
    ws = openpyxl.load_workbook(io.BytesIO(to_xlsx(records, site_id=None, start=None, end=None)))["温湿度记录"]
    assert ws["H2"].value == 4.54 and ws["H2"].data_type == "n" and ws["I2"].value == 61.25
    assert ws["H3"].value == -18.05 and ws["I3"].value is None
