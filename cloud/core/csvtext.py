"""Reading uploaded CSV text so that a malformed file is refused with the row and column it breaks at.

``csv`` raises ``_csv.Error`` (a bare carriage return inside an unquoted field, a NUL byte, an unterminated quote, a
field over the size limit) without saying where; :func:`records` turns that into :class:`CsvFormatError` with
the physical line, the column number and, when the header names it, the column's name -- a 422 for the uploader.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator


class CsvFormatError(ValueError):
    """A CSV file that cannot be read; ``line`` and ``column`` are 1-based."""

    def __init__(self, line: int, column: int | None, column_name: str | None, reason: str) -> None:
        where = f"第 {line} 行" + (f"第 {column} 列" if column else "") + (f"（{column_name}）" if column_name else "")
        super().__init__(
            f"CSV 格式错误：{where}：{reason} (CSV error at line {line}"
            + (f", column {column}" if column else "")
            + f": {reason})"
        )
        self.line, self.column, self.column_name, self.reason = line, column, column_name, reason


_CHINESE = {
    "new-line character seen in unquoted field": "未加引号的字段中有换行符（请把含换行的内容加双引号）",
    "line contains NUL": "含有空字符 NUL（文件可能不是文本文件）",
    "unexpected end of data": "引号未闭合",
    "'\"' expected after '\"'": "引号用法错误（字段内的引号须写成两个双引号）",
    "',' expected after '\"'": "引号用法错误（引号结束后应为逗号；字段内的引号须写成两个双引号）",
    "field larger than field limit": "字段过长",
}


def _column_at(physical_line: str, reason: str) -> int:
    """The 1-based column of ``physical_line`` the error is in: the over-long field, else where parsing stopped
    (a stray quote or control character), else the last column."""
    if reason.startswith("field larger"):
        limit = csv.field_size_limit()
        return next((i + 1 for i, f in enumerate(physical_line.split(",")) if len(f) > limit), 1)
    column, quoted, previous = 1, False, ","
    for ch in physical_line:
        if ch in "\r\x00" and not quoted:
            break
        if ch == '"':
            if not quoted and previous != ",":
                break  # a quote inside an unquoted field
            quoted = not quoted
        elif ch == "," and not quoted:
            column += 1
        previous = ch
    return column


def records(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, cells)`` for every record, the header first; raises CsvFormatError."""
    lines = text.split("\n")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] = []
    end_of_previous = 0
    while True:
        start = end_of_previous + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            bad = max(reader.line_num, start)
            physical = lines[bad - 1] if 0 < bad <= len(lines) else ""
            reason = str(exc)
            column = _column_at(physical, reason) if physical else None
            name = header[column - 1].strip() if column and 0 < column <= len(header) else None
            said = next((zh for en, zh in _CHINESE.items() if reason.startswith(en)), None)
            raise CsvFormatError(bad, column, name, f"{said} ({reason})" if said else reason) from None
        end_of_previous = reader.line_num
        if not header:
            header = cells
        yield start, cells
