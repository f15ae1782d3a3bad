"""统一社会信用代码 (Unified Social Credit Code, USCC) per GB 32100-2015.

Eighteen characters from a 31-character alphabet (digits and upper-case letters except I, O, S, V, Z):

====  ==========================================================
pos   meaning
====  ==========================================================
1     registration authority (登记管理部门代码)
2     organisation category (机构类别代码)
3-8   administrative division code (登记管理机关行政区划码), digits
9-17  organisation code (主体标识码)
18    check character (校验码)
====  ==========================================================

The check character: ``c18 = ALPHABET[(31 - Σ value(ci)·Wi mod 31) mod 31]`` with the weights
``Wi = 3^(i-1) mod 31``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH: Final = 18
_VALUE: Final = {ch: i for i, ch in enumerate(ALPHABET)}


class InvalidUSCC(ValueError):
    """A code that is not a valid 统一社会信用代码; ``reason`` is Chinese text for the user."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"统一社会信用代码 {code!r} 无效：{reason}")
        self.code = code
        self.reason = reason


def check_char(body: str) -> str:
    """The check character for the first 17 characters ``body``."""
    if len(body) != LENGTH - 1:
        raise InvalidUSCC(body, f"主体部分应为 {LENGTH - 1} 位，实为 {len(body)} 位")
    total = 0
    for pos, (ch, weight) in enumerate(zip(body, WEIGHTS, strict=True), start=1):
        value = _VALUE.get(ch)
        if value is None:
            raise InvalidUSCC(body, f"第 {pos} 位字符 {ch!r} 不在代码字符集内（不使用 I、O、S、V、Z）")
        total += value * weight
    return ALPHABET[(31 - total % 31) % 31]


def normalize(code: str) -> str:
    """Strip blanks (also full-width) and upper-case; no other repair."""
    return code.replace("\u3000", "").strip().upper()


@dataclass(frozen=True, slots=True)
class USCC:
    code: str

    @property
    def authority(self) -> str:
        return self.code[0]

    @property
    def category(self) -> str:
        return self.code[1]

    @property
    def division(self) -> str:
        """行政区划码 (positions 3-8)."""
        return self.code[2:8]

    @property
    def organisation_code(self) -> str:
        return self.code[8:17]


def validate(code: str) -> USCC:
    """Return the parsed code or raise :class:`InvalidUSCC` with the reason."""
    norm = normalize(code)
    if len(norm) != LENGTH:
        raise InvalidUSCC(code, f"应为 {LENGTH} 位，实为 {len(norm)} 位")
    for pos, ch in enumerate(norm, start=1):
        if ch not in _VALUE:
            raise InvalidUSCC(code, f"第 {pos} 位字符 {ch!r} 不在代码字符集内（不使用 I、O、S、V、Z）")
    if not norm[2:8].isdigit():
        raise InvalidUSCC(code, f"第 3-8 位行政区划码应为数字：{norm[2:8]!r}")
    expected = check_char(norm[:17])
    if norm[17] != expected:
        raise InvalidUSCC(code, f"校验码错误：第 18 位应为 {expected!r}，实为 {norm[17]!r}")
    return USCC(norm)


def is_valid(code: str) -> bool:
    try:
        validate(code)
    except InvalidUSCC:
        return False
    return True


def make(body: str) -> str:
    """Complete a 17-character body with its check character (for tests, fixtures and simulators)."""
    body = normalize(body)
    return body + check_char(body)
