"""One engine for the all-or-nothing CSV imports (staff, sites with devices): column specs as data.

The columns of each kind are in ``cloud/rules/csv_imports.toml``. :func:`read_table` decodes the file (UTF-8 with or
without BOM, GB18030/GBK), reads it with the strict reader of :mod:`cloud.core.csvtext` (a malformed file is refused
whole, naming line and column), matches the header against the spec and converts every cell; :func:`run_import`
applies the rows in one savepoint through a kind's *applier* and keeps them only when no row was refused and it is
not a dry run. Every refusal is a :class:`CellError` naming the line, the column as the file spells it, and a
Chinese reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from sqlmodel import Session

from cloud.core.csvtext import CsvFormatError, records
from cloud.rules.loader import RuleModel, load_model, rules_path

__all__ = [
    "CellError",
    "CsvKind",
    "ImportFormatError",
    "ImportOutcome",
    "Row",
    "RowRefused",
    "decode",
    "import_kinds",
    "read_table",
    "run_import",
]


class ImportFormatError(ValueError):
    """The file as a whole cannot be imported (encoding, malformed CSV, missing or unknown columns)."""


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030/GBK (Excel's Chinese default)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"无法识别文件编码（支持 UTF-8 与 GB18030/GBK）：{exc}") from None


#: separators of a list cell (业务职责: 检查人员、执法办案人员)
LIST_SEPARATORS = ("、", "；", ";", "|", "，", "/")


class CsvColumn(RuleModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    headers: list[str] = Field(min_length=1, description="accepted header spellings; the first is the Chinese name")
    required: bool = False
    type: Literal["text", "int", "float", "list"] = "text"
    max_length: int | None = Field(default=None, ge=1)
    site: bool = Field(default=False, description="sites: a column of the site itself (repeats on its rows)")

    @property
    def zh(self) -> str:
        return self.headers[0]


class CsvKind(RuleModel):
    title: str
    key: str
    columns: list[CsvColumn] = Field(min_length=1)
    unknown_columns: Literal["refuse", "ignore"] = Field(
        default="refuse", description="ignore: extra columns of a government export are skipped"
    )

    def column(self, key: str) -> CsvColumn:
        return next(c for c in self.columns if c.key == key)


class CsvImports(RuleModel):
    version: str
    kinds: dict[str, CsvKind]


@cache
def import_kinds(path: Path | None = None) -> dict[str, CsvKind]:
    kinds = load_model(CsvImports, path or rules_path("csv_imports.toml")).kinds
    for name, kind in kinds.items():
        if kind.key not in {c.key for c in kind.columns}:
            raise ImportFormatError(f"csv_imports.toml: kinds.{name}.key: 没有名为 {kind.key} 的列")
    return kinds


@dataclass(frozen=True)
class CellError:
    line: int
    column: str | None
    reason: str


class RowRefused(ValueError):
    """An applier refuses a row; ``key`` is the column it is about (or ``None`` for the whole row)."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]

    def get(self, key: str) -> Any:
        return self.values.get(key)


@dataclass
class Table:
    kind: CsvKind
    header: dict[str, str]  # column key -> the header as the file spells it
    rows: list[Row] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)

    def name(self, key: str | None) -> str | None:
        if key is None:
            return None
        return self.header.get(key) or next((c.zh for c in self.kind.columns if c.key == key), key)


def _norm(text: str) -> str:
    return text.replace(" ", "").replace("\u3000", "").strip().lower()


def _convert(column: CsvColumn, text: str) -> Any:
    if column.type == "list":
        for sep in LIST_SEPARATORS[1:]:
            text = text.replace(sep, LIST_SEPARATORS[0])
        return [part.strip() for part in text.split(LIST_SEPARATORS[0]) if part.strip()]
    if column.max_length is not None and len(text) > column.max_length:
        raise ValueError(f"超过 {column.max_length} 个字符")
    if column.type == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"应为整数：{text!r}") from None
    if column.type == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"应为数字：{text!r}") from None
    return text


def read_table(kind: CsvKind, data: bytes | str) -> Table:
    """Decode, read strictly and convert; raises :class:`ImportFormatError` for a file that cannot be read at all."""
    text = decode(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    try:
        parsed = list(records(text))
    except CsvFormatError as exc:
        raise ImportFormatError(str(exc)) from None
    if not parsed:
        raise ImportFormatError("文件为空")
    _, header = parsed[0]
    lookup = {_norm(alias): c for c in kind.columns for alias in c.headers}
    index: dict[str, int] = {}
    spelled: dict[str, str] = {}
    unknown: list[str] = []
    for i, raw in enumerate(header):
        column = lookup.get(_norm(raw))
        if column is None:
            if raw.strip():
                unknown.append(raw.strip())
            continue
        if column.key in index:
            if kind.unknown_columns == "ignore":
                continue  # the first of two spellings wins
            raise ImportFormatError(f"列“{raw.strip()}”与“{spelled[column.key]}”重复")
        index[column.key], spelled[column.key] = i, raw.strip()
    missing = [c.zh for c in kind.columns if c.required and c.key not in index]
    if missing:
        raise ImportFormatError(f"缺少必需的列：{'、'.join(missing)}（表头：{', '.join(header)}）")
    if unknown and kind.unknown_columns == "refuse":
        known = "、".join(c.zh for c in kind.columns)
        raise ImportFormatError(f"无法识别的列：{'、'.join(unknown)}（可用的列：{known}）")
    table = Table(kind, spelled)
    for line, cells in parsed[1:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header) and kind.unknown_columns == "refuse":
            table.errors.append(CellError(line, None, f"有 {len(cells)} 列，多于表头的 {len(header)} 列"))
            continue
        values: dict[str, Any] = {}
        for column in kind.columns:
            at = index.get(column.key)
            raw = cells[at].replace("\u3000", " ").strip() if at is not None and at < len(cells) else ""
            if not raw:
                if column.required:
                    table.errors.append(CellError(line, spelled.get(column.key, column.zh), f"{column.zh}为空"))
                values[column.key] = [] if column.type == "list" else None
                continue
            try:
                values[column.key] = _convert(column, raw)
            except ValueError as exc:
                table.errors.append(CellError(line, spelled.get(column.key, column.zh), str(exc)))
        table.rows.append(Row(line, values))
    return table


#: an applier writes one row into the session and says what it did per entity, e.g. {"site": "created"}
Applier = Callable[[Session, Row], dict[str, str]]


@dataclass
class ImportOutcome:
    kind: str
    dry_run: bool
    rows: int = 0
    imported: bool = False
    errors: list[CellError] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> created/updated/unchanged -> n
    actions: list[dict[str, Any]] = field(default_factory=list)  # per row: line, key, what was done
    extra: dict[str, Any] = field(default_factory=dict)  # an applier's output (e.g. one-time passwords)

    def summary(self) -> str:
        if self.errors:
            first = self.errors[0]
            where = f"第 {first.line} 行" + (f"（{first.column}）" if first.column else "")
            return f"导入被拒绝，未写入任何数据：共 {len(self.errors)} 处错误，第一处 {where}：{first.reason}"
        verb = "预览（未写入）" if self.dry_run else "已导入"
        return f"{verb}：共 {self.rows} 行"


def validation_reason(exc: ValidationError) -> tuple[str | None, str]:
    """The first error of a model's validation: (field name, Chinese-first reason)."""
    err = exc.errors(include_url=False)[0]
    loc = str(err["loc"][0]) if err["loc"] else None
    msg = str(err["msg"]).removeprefix("Value error, ")
    return loc, msg


def run_import(session: Session, kind_name: str, data: bytes | str, apply: Applier, *, dry_run: bool) -> ImportOutcome:
    """Apply every row (each in a savepoint of its own, inside one for the file); keep the file's changes only when
    no row was refused and this is not a dry run. The caller commits."""
    kind = import_kinds()[kind_name]
    table = read_table(kind, data)
    outcome = ImportOutcome(kind_name, dry_run, rows=len(table.rows), errors=list(table.errors))
    bad_lines = {e.line for e in table.errors}
    whole = session.begin_nested()
    for row in table.rows:
        if row.line in bad_lines:
            continue
        try:
            with session.begin_nested():
                done = apply(session, row)
        except RowRefused as exc:
            outcome.errors.append(CellError(row.line, table.name(exc.key), exc.reason))
            continue
        for entity, what in done.items():
            per = outcome.counts.setdefault(entity, {"created": 0, "updated": 0, "unchanged": 0})
            per[what] = per.get(what, 0) + 1
        outcome.actions.append({"line": row.line, "key": row.get(kind.key), **done})
    outcome.errors.sort(key=lambda e: (e.line, e.column or ""))
    if outcome.errors or dry_run:
        whole.rollback()
    else:
        whole.commit()
        outcome.imported = True
    return outcome


def changed(obj: object, values: dict[str, Any]) -> bool:
    """Set ``values`` on ``obj``; True when any differed."""
    diff = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            diff = True
    return diff
