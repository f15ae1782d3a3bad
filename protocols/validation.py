"""Validation errors of our data files (site files, register maps, rule packs, rules files) explained in Chinese.

pydantic says *what* is wrong in English ("Extra inputs are not permitted", "Input should be 0 or 1"); the person
who reads it is an installer or an administrator. :func:`reason_zh` turns one pydantic error into a Chinese
reason with the English kept in brackets (for searching and for the log); :func:`problems` lists every error of a
:class:`~pydantic.ValidationError` as (location, reason) pairs, so a typo repeated in two places is reported twice,
not once with "(+1 more)". The table is data: one entry per pydantic error type, its Chinese template filled from
the error's ``ctx``. Errors our own validators raise (``value_error``, ``assertion_error``) carry their own text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

#: pydantic error type -> Chinese template (``{name}`` from the error's ``ctx``)
TEMPLATES: Mapping[str, str] = {
    "extra_forbidden": "未知的键（拼写错误？此处不允许这个键）",
    "missing": "缺少必填项",
    "less_than_equal": "不能大于 {le}",
    "less_than": "应小于 {lt}",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "应大于 {gt}",
    "multiple_of": "应为 {multiple_of} 的整数倍",
    "finite_number": "应为有限的数",
    "literal_error": "应为以下之一：{expected}",
    "enum": "应为以下之一：{expected}",
    "union_tag_invalid": "{discriminator} 应为以下之一：{expected_tags}",
    "union_tag_not_found": "缺少区分类型的键 {discriminator}",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数（不带小数）",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为字符串（加引号）",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "至多 {max_length} 个字符",
    "string_pattern_mismatch": "格式不符（应匹配 {pattern}）",
    "too_short": "至少 {min_length} 项",
    "too_long": "至多 {max_length} 项",
    "list_type": "应为列表 [ … ]",
    "tuple_type": "应为列表 [ … ]",
    "set_type": "应为列表 [ … ]",
    "dict_type": "应为表（TOML table 或 { … }）",
    "model_type": "应为表（TOML table 或 { … }）",
    "model_attributes_type": "应为表（TOML table 或 { … }）",
    "datetime_parsing": "应为带时区的 ISO 8601 时间，例如 2026-12-01T08:00:00+08:00",
    "datetime_type": "应为带时区的 ISO 8601 时间，例如 2026-12-01T08:00:00+08:00",
    "timezone_aware": "时间须带时区，例如 +08:00",
    "date_parsing": "应为日期，例如 2026-12-01",
    "date_from_datetime_parsing": "应为日期，例如 2026-12-01",
    "url_parsing": "应为网址（URL）",
    "url_scheme": "网址协议应为以下之一：{expected_schemes}",
}

#: error types whose message is our own validator's text (already written for a person)
OWN_TEXT = frozenset({"value_error", "assertion_error"})


def _quote(value: Any) -> str:
    """``"'a', 'b' or 'c'"`` (pydantic's wording of choices) -> ``a、b、c``."""
    text = str(value)
    for sep in (" or ", ", "):
        text = text.replace(sep, "、")
    return text.replace("'", "")


def reason_zh(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a Chinese reason, English in brackets."""
    kind = str(error.get("type", ""))
    message = str(error.get("msg", ""))
    if kind in OWN_TEXT:
        ctx_error = (error.get("ctx") or {}).get("error")
        return str(ctx_error) if ctx_error is not None else message.removeprefix("Value error, ")
    template = TEMPLATES.get(kind)
    if template is None:
        return f"取值无效（{message}）"
    ctx = {k: _quote(v) for k, v in (error.get("ctx") or {}).items()}
    try:
        text = template.format(**ctx)
    except (KeyError, IndexError):
        text = template.split("{")[0].rstrip("：: ") or "取值无效"
    return f"{text}（{message}）"


def dotted(loc: Sequence[int | str]) -> str:
    """``("devices", 0, "address")`` -> ``devices[0].address`` (``<root>`` for the whole file)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "<root>"


def problems(
    error: ValidationError, location: Callable[[tuple[int | str, ...]], str] = dotted, limit: int = 20
) -> list[tuple[str, str]]:
    """Every error as (location, Chinese reason), at most ``limit`` (then one line saying how many more)."""
    items = error.errors(include_url=False)
    found = [(location(tuple(item["loc"])), reason_zh(item)) for item in items[:limit]]
    if len(items) > limit:
        found.append(("…", f"另有 {len(items) - limit} 处错误未列出（{len(items) - limit} more）"))
    return found
