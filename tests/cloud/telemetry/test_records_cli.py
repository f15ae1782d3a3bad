"""`sentinel cloud records verify` names the first bad row; derive and export work from the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from cloud.cli import app
from cloud.core.config import get_settings
from tests.utils.registry_db import make_test_engine
from tests.utils.registry_factories import make_site_with_point, readings, store_for

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def test_cli_derive_verify_export_and_tamper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, engine = make_test_engine(tmp_path)
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SENTINEL_DATABASE_URL", settings.db_url)
    get_settings.cache_clear()
    make_site_with_point(engine)
    store_for(engine).write_readings(list(readings("pharmacy-1", "t1", T0, 300, lambda i: 4.0)))
    runner = CliRunner()
    try:
        derived = runner.invoke(app, ["records", "derive"])
        assert derived.exit_code == 0 and "新增记录 10 条" in derived.output, derived.output
        ok = runner.invoke(app, ["records", "verify"])
        assert ok.exit_code == 0 and "记录链完整：共校验 10 条" in ok.output
        out = tmp_path / "r.xlsx"
        start, end = "2026-11-20T00:00:00", "2026-11-21T00:00:00"  # local time (Asia/Shanghai)
        exported = runner.invoke(
            app, ["records", "export", "--site-id", "pharmacy-1", "--start", start, "--end", end, "--out", str(out)]
        )
        assert exported.exit_code == 0, exported.output
        assert openpyxl.load_workbook(out)["温湿度记录"].max_row == 11
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER gsp_record_no_update")
            conn.exec_driver_sql("UPDATE gsp_record SET humidity = 50 WHERE seq = 6")
        bad = runner.invoke(app, ["records", "verify"])
        assert bad.exit_code == 1 and "seq=6" in bad.output
    finally:
        get_settings.cache_clear()
        engine.dispose()
