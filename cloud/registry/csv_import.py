"""Bulk import of market subjects and licences from CSV.

Accepts the columns of the national enterprise-credit publicity export (国家企业信用信息公示系统):
企业名称, 统一社会信用代码, 法定代表人, 住所, 经营范围, 许可证编号, 有效期自, 有效期至 — or the English
headers ``name, uscc, legal_representative, address, business_scope, licence_no, valid_from, valid_to``
(``license_no`` also accepted). Encodings: UTF-8 (with or without BOM) and GB18030/GBK.

Good rows are imported (a subject is matched by its USCC and updated; a licence by its number); every bad
row is reported with its line number and the reason, and imports nothing. The file is read by the one CSV engine
(:mod:`cloud.registry.csv_engine`) with the column spec ``kinds.subjects`` of ``cloud/rules/csv_imports.toml``;
columns it does not know (a government export has many) are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session, select

from cloud.registry import uscc as uscc_mod
from cloud.registry.csv_engine import ImportFormatError, decode, import_kinds, read_table
from cloud.registry.models import Licence, MarketSubject, RiskGrade, utcnow

__all__ = ["ImportFormatError", "ImportReport", "RowError", "decode", "import_csv", "parse", "parse_date"]

#: values of 有效期至 meaning "no end date"
OPEN_ENDED = {"长期", "长期有效", "永久", "无固定期限", "permanent", "indefinite"}
_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_COMPACT_DATE_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str
    uscc: str | None = None


@dataclass
class ImportReport:
    rows: int = 0
    subjects_created: int = 0
    subjects_updated: int = 0
    licences_created: int = 0
    licences_updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - len(self.errors)


@dataclass(frozen=True)
class ParsedRow:
    line: int
    name: str
    uscc: str
    legal_representative: str | None
    address: str | None
    business_scope: str | None
    licence_no: str | None
    licence_kind: str | None
    valid_from: date | None
    valid_to: date | None
    risk_grade: RiskGrade | None


def parse_date(text: str) -> date:
    m = _DATE_RE.match(text) or _COMPACT_DATE_RE.match(text)
    if not m:
        raise ValueError(f"日期格式无法识别：{text!r}（应为 2024-01-31、2024/01/31 或 2024年01月31日）")
    y, mo, d = (int(g) for g in m.groups())
    try:
        return date(y, mo, d)
    except ValueError:
        raise ValueError(f"日期不存在：{text!r}") from None


def parse(text: str) -> tuple[list[ParsedRow], list[RowError], int]:
    """Parse CSV text into valid rows and row errors; returns (rows, errors, data-row count)."""
    table = read_table(import_kinds()["subjects"], text)
    errors = [RowError(e.line, e.reason) for e in table.errors]
    bad = {e.line for e in table.errors}
    rows: list[ParsedRow] = []
    seen_uscc: dict[str, tuple[int, str]] = {}
    seen_licence: dict[str, int] = {}
    for record in table.rows:
        if record.line in bad:
            continue
        line = record.line
        get = record.get
        try:
            row = _parse_row(line, get)
        except ValueError as exc:
            errors.append(RowError(line, str(exc), get("uscc")))
            continue
        if row.uscc in seen_uscc and seen_uscc[row.uscc][1] != row.name:
            first_line, first_name = seen_uscc[row.uscc]
            errors.append(
                RowError(line, f"统一社会信用代码与第 {first_line} 行相同但企业名称不同（{first_name}）", row.uscc)
            )
            continue
        if row.licence_no and row.licence_no in seen_licence:
            first = seen_licence[row.licence_no]
            errors.append(RowError(line, f"许可证编号 {row.licence_no} 与第 {first} 行重复", row.uscc))
            continue
        seen_uscc.setdefault(row.uscc, (line, row.name))
        if row.licence_no:
            seen_licence[row.licence_no] = line
        rows.append(row)
    errors.sort(key=lambda e: e.line)
    return rows, errors, len(table.rows)


def _parse_row(line: int, get: Callable[[str], str | None]) -> ParsedRow:
    name = get("name")
    if not name:
        raise ValueError("企业名称为空")
    if len(name) > 200:
        raise ValueError("企业名称超过 200 字")
    raw_code = get("uscc")
    if not raw_code:
        raise ValueError("统一社会信用代码为空")
    try:
        code = uscc_mod.validate(raw_code).code
    except uscc_mod.InvalidUSCC as exc:
        raise ValueError(str(exc)) from None
    licence_no = get("licence_no")
    valid_from_txt, valid_to_txt = get("valid_from"), get("valid_to")
    valid_from = parse_date(valid_from_txt) if valid_from_txt else None
    valid_to = None
    if valid_to_txt and valid_to_txt.lower() not in OPEN_ENDED:
        valid_to = parse_date(valid_to_txt)
    if (valid_from or valid_to) and not licence_no:
        raise ValueError("填写了有效期但许可证编号为空")
    if valid_from and valid_to and valid_to < valid_from:
        raise ValueError(f"有效期至 {valid_to} 早于有效期自 {valid_from}")
    grade_txt = get("risk_grade")
    grade = None
    if grade_txt:
        try:
            grade = RiskGrade(grade_txt.upper()[:1])
        except ValueError:
            raise ValueError(f"风险等级应为 A、B、C、D 之一：{grade_txt!r}") from None
    return ParsedRow(
        line=line,
        name=name,
        uscc=code,
        legal_representative=get("legal_representative"),
        address=get("address"),
        business_scope=get("business_scope"),
        licence_no=licence_no,
        licence_kind=get("licence_kind"),
        valid_from=valid_from,
        valid_to=valid_to,
        risk_grade=grade,
    )


def import_csv(session: Session, data: bytes | str, *, department_id: int | None = None) -> ImportReport:
    """Import the good rows into the caller's transaction and report every bad one (the caller commits)."""
    text = decode(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    rows, errors, count = parse(text)
    report = ImportReport(rows=count, errors=list(errors))
    subjects: dict[str, MarketSubject] = {}
    for row in rows:
        subject = (
            subjects.get(row.uscc) or session.exec(select(MarketSubject).where(MarketSubject.uscc == row.uscc)).first()
        )
        if row.licence_no:
            licence = session.exec(select(Licence).where(Licence.licence_no == row.licence_no)).first()
            if licence is not None and (subject is None or licence.subject_id != subject.id):
                report.errors.append(
                    RowError(row.line, f"许可证编号 {row.licence_no} 已登记在其他市场主体名下", row.uscc)
                )
                continue
        else:
            licence = None
        if subject is None:
            subject = MarketSubject(
                name=row.name,
                uscc=row.uscc,
                legal_representative=row.legal_representative,
                address=row.address,
                business_scope=row.business_scope,
                risk_grade=row.risk_grade or RiskGrade.B,
                department_id=department_id,
            )
            session.add(subject)
            session.flush()
            report.subjects_created += 1
        elif row.uscc not in subjects:
            subject.name = row.name
            for attr in ("legal_representative", "address", "business_scope"):
                value = getattr(row, attr)
                if value is not None:
                    setattr(subject, attr, value)
            if row.risk_grade:
                subject.risk_grade = row.risk_grade
            subject.updated_at = utcnow()
            session.add(subject)
            report.subjects_updated += 1
        subjects[row.uscc] = subject
        if row.licence_no:
            assert subject.id is not None
            if licence is None:
                session.add(
                    Licence(
                        licence_no=row.licence_no,
                        kind=row.licence_kind,
                        valid_from=row.valid_from,
                        valid_to=row.valid_to,
                        subject_id=subject.id,
                    )
                )
                report.licences_created += 1
            else:
                licence.valid_from, licence.valid_to = row.valid_from, row.valid_to
                licence.kind = row.licence_kind or licence.kind
                session.add(licence)
                report.licences_updated += 1
    session.flush()
    report.errors.sort(key=lambda e: e.line)
    return report
