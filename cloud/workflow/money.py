"""Money (罚没款) as :class:`~decimal.Decimal` yuan with fen precision, end to end.

* API: ``Yuan`` fields accept ``"12345.67"`` or ``12345.67`` (at most two decimals, never negative) and are
  written as strings with two decimals, so no float ever carries an amount.
* DB: :class:`MoneyColumn` stores integer fen (exact on SQLite and PostgreSQL) and reads back ``Decimal`` yuan.
* Documents: :func:`format_yuan` prints ``12,345.67 元``-free plain ``12345.67`` (the legal document convention
  writes the figure and the unit, see the templates).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, PlainSerializer
from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["FEN", "MoneyColumn", "Yuan", "format_yuan", "to_yuan"]

FEN = Decimal("0.01")


def to_yuan(value: Decimal | int | str) -> Decimal:
    """``value`` as Decimal yuan with exactly two decimals; more precision than a fen is an error."""
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    if amount != amount.quantize(FEN):
        raise ValueError(f"金额精确到分（两位小数） / amounts have at most two decimals: {value!r}")
    return amount.quantize(FEN)


def round_fen(value: Decimal) -> Decimal:
    """A computed amount (surcharge) rounded half-up to the fen."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def format_yuan(value: Decimal | None) -> str:
    return "" if value is None else f"{to_yuan(value):.2f}"


#: an API amount in yuan: at most two decimals, ≥ 0, serialised as a string ("5000.00")
Yuan = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=2),
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]


class MoneyColumn(TypeDecorator[Decimal]):
    """Decimal yuan stored as integer fen."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, not float / 金额不得使用浮点数")
        return int(to_yuan(value) * 100)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(FEN)
