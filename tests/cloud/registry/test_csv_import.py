"""Bulk CSV import: good rows imported, every bad row reported with its line and reason."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.registry import csv_import, service
from cloud.registry.models import Licence, MarketSubject
from cloud.registry.uscc import make

SAMPLES = Path(__file__).parents[3] / "firmware-config" / "samples"
GOOD_A = make("91320583MA1Y8K3T0")
GOOD_B = make("91320583MA1Y9C2P4")
BAD_CHECK = GOOD_B[:-1] + ("0" if GOOD_B[-1] != "0" else "1")

CSV = f"""企业名称,统一社会信用代码,法定代表人,住所,经营范围,许可证编号,有效期自,有效期至
康宁大药房,{GOOD_A},张伟,人民路 18 号,药品零售,苏CB5120001,2022-03-01,2027-02-28
错误校验码公司,{BAD_CHECK},李四,某路,食品销售,JY1,2022-01-01,2027-01-01
,{GOOD_B},王五,某路,食品销售,JY2,2022-01-01,2027-01-01
日期错误公司,{GOOD_B},王五,某路,食品销售,JY3,2022-13-01,2027-01-01
倒置日期公司,{GOOD_B},王五,某路,食品销售,JY4,2027-01-01,2022-01-01
"多行
地址公司",{GOOD_B},赵六,"第一行
第二行",餐饮服务,JY5,2023年1月1日,长期
康宁大药房,{GOOD_A},张伟,人民路 18 号,药品零售,JY5,2022-03-01,2027-02-28
短代码公司,91320583MA1Y,钱七,某路,食品销售,,,
"""


def test_bad_rows_reported_good_rows_imported(engine: Engine) -> None:
    with Session(engine) as session:
        report = csv_import.import_csv(session, CSV.encode("utf-8"))
        session.commit()
    reasons = {e.line: e.reason for e in report.errors}
    assert sorted(reasons) == [3, 4, 5, 6, 10, 11]
    assert "校验码错误" in reasons[3]
    assert "企业名称为空" in reasons[4]
    assert "日期不存在" in reasons[5]
    assert "早于" in reasons[6]
    assert "重复" in reasons[10] and "第 7 行" in reasons[10]  # the line where a (multi-line) record starts
    assert "应为 18 位" in reasons[11]
    assert report.rows == 8 and report.accepted == 2
    with Session(engine) as session:
        subjects = {s.uscc: s for s in session.exec(select(MarketSubject)).all()}
        assert set(subjects) == {GOOD_A, GOOD_B}
        assert subjects[GOOD_B].address == "第一行\n第二行"
        lic = session.exec(select(Licence).where(Licence.licence_no == "JY5")).one()
        assert lic.valid_from == date(2023, 1, 1) and lic.valid_to is None  # 长期


def test_reimport_updates_instead_of_duplicating_and_gbk_is_accepted(engine: Engine) -> None:
    data = (SAMPLES / "subjects_licences.csv").read_text(encoding="utf-8")
    with Session(engine) as session:
        first = csv_import.import_csv(session, data.encode("gb18030"))
        session.commit()
    assert first.errors == [] and first.subjects_created == 5 and first.licences_created == 4
    with Session(engine) as session:
        again = csv_import.import_csv(session, ("\ufeff" + data).encode("utf-8"))
        session.commit()
    assert again.subjects_created == 0 and again.subjects_updated == 5 and again.licences_updated == 4
    with Session(engine) as session:
        assert len(session.exec(select(MarketSubject)).all()) == 5


def test_english_headers_and_licence_owned_by_another_subject(engine: Engine) -> None:
    with Session(engine) as session:
        report = csv_import.import_csv(session, (SAMPLES / "subjects_english_headers.csv").read_bytes())
        session.commit()
    assert report.accepted == 1 and [e.line for e in report.errors] == [3]
    other = make("91320583MA1YE0000")
    clash = f"name,uscc,licence_no,valid_from,valid_to\nOther Co.,{other},JY23205830000009,2025-01-01,2026-01-01\n"
    with Session(engine) as session:
        report = csv_import.import_csv(session, clash)
        session.commit()
    assert [e.line for e in report.errors] == [2] and "其他市场主体" in report.errors[0].reason


def test_missing_required_column_rejects_file() -> None:
    with pytest.raises(csv_import.ImportFormatError, match="统一社会信用代码"):
        csv_import.parse("企业名称,住所\n甲,乙\n")


def test_expiring_and_expired_licences(engine: Engine) -> None:
    with Session(engine) as session:
        csv_import.import_csv(session, (SAMPLES / "subjects_licences.csv").read_bytes())
        session.commit()
        today = date(2026, 5, 1)
        expiring = service.expiring_licences(session, today=today, within_days=60)
        assert [lic.licence_no for lic in expiring] == ["JY13205830000001"] and expiring[0].days_left == 30
        expired = service.expiring_licences(session, today=date(2027, 3, 1), within_days=None, include_expired=True)
        assert {lic.licence_no for lic in expired} == {"苏CB5120001", "JY13205830000001"}
        assert all(lic.days_left is not None and lic.days_left < 0 for lic in expired)
