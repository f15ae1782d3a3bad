"""One model family per resource: ``XUpdate`` derived from ``XBase`` so an update validates exactly like a create.

``class XUpdate(update_model(XBase, exclude={...}))`` builds the PATCH body: every field of ``XBase`` (except the
immutable ones) becomes optional -- an omitted field is left unchanged -- with the same bounds, pattern and
description. A field a create requires (its annotation has no ``None``) may be omitted but never set to ``null``.

``apply_update(row, changes, base=XBase)`` then re-validates the merged row through ``XBase`` before anything is
stored, so cross-field rules (min < max) hold after an update as after a create, and a later read can never fail
to serialise what was stored.

Shared bounds for dates and numbers live here too (``DATE_MIN``/``DATE_MAX``, ``BoundedDate``): the rest of the code
(calendars, deadline ranges, ``date.fromordinal`` arithmetic) can live with anything inside them.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, ValidationError, create_model
from pydantic.fields import FieldInfo
from sqlmodel import SQLModel
from sqlmodel.main import FieldInfoMetadata

DATE_MIN = date(1949, 10, 1)
"""Earliest date any date field accepts (licences, documents); older values are typing errors."""
DATE_MAX = date(2099, 12, 31)
"""Latest date any date field accepts; deadline and calendar arithmetic stays well inside ``date.max``."""


def _in_date_range(value: date) -> date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValueError(f"日期须在 {DATE_MIN.isoformat()} 至 {DATE_MAX.isoformat()} 之间 (date out of range)")
    return value


BoundedDate = Annotated[date, AfterValidator(_in_date_range)]
"""A calendar date between ``DATE_MIN`` and ``DATE_MAX`` (both inclusive)."""

MAX_DUE_DAYS = 3 * 366
"""A due date set by a person lies between today and three years ahead (the working-day calendar walks ten)."""


def _due_window(value: date) -> date:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    if not today <= value <= today + timedelta(days=MAX_DUE_DAYS):
        raise ValueError(f"期限须在今天（{today.isoformat()}）至三年内 (due date: today .. 3 years ahead)")
    return value


DueDate = Annotated[date, AfterValidator(_due_window)]
"""A deadline a person sets (task due date, plan due date): not in the past, at most ``MAX_DUE_DAYS`` ahead."""

M = TypeVar("M", bound=SQLModel)


class UpdateRejected(ValueError):
    """An update that would leave the row in a state a create refuses; ``errors`` as pydantic reports them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


def _nullable(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def update_model(base: type[SQLModel], *, exclude: Iterable[str] = (), name: str | None = None) -> type[SQLModel]:
    """The PATCH model of ``base``: every field but ``exclude`` optional, same bounds; see the module docstring.

    Use it as the base of the declared class, ``class XUpdate(update_model(XBase, exclude={"id"})): ...``.
    """
    name = name or base.__name__.removesuffix("Base") + "UpdateFields"
    skip = set(exclude)
    unknown = skip - set(base.model_fields)
    if unknown:
        raise TypeError(f"{name}: exclude names fields {sorted(unknown)} that {base.__name__} does not have")
    validated = {f for dec in base.__pydantic_decorators__.field_validators.values() for f in dec.info.fields} - skip
    if validated:
        # A field validator on a mutable field would have to be copied too; keep such validators in XCreate
        # (immutable fields) or make them a bound/type of the field itself.
        raise TypeError(f"{name}: {base.__name__} has field validators on {sorted(validated)}")
    fields: dict[str, Any] = {}
    for field_name, info in base.model_fields.items():
        if field_name in skip:
            continue
        metadata = [m for m in info.metadata if not isinstance(m, FieldInfoMetadata)]
        nullable = _nullable(info.annotation)
        field = FieldInfo(
            annotation=info.annotation,
            default=None,
            description=info.description,
            json_schema_extra=None if nullable else _drop_default,
        )
        field.metadata = metadata
        fields[field_name] = (info.annotation, field)
    model: type[SQLModel] = create_model(
        name,
        __base__=SQLModel,
        __doc__=f"{base.__name__} 的修改：省略的字段不变；边界与新建相同 (omitted fields stay unchanged)",
        __module__=base.__module__,
        **fields,
    )
    return model


def apply_update(row: M, changes: Mapping[str, Any], *, base: type[SQLModel]) -> M:
    """Apply ``changes`` to ``row`` after validating the merged result through ``base`` (raises ``UpdateRejected``)."""
    merged = {name: getattr(row, name) for name in base.model_fields} | dict(changes)
    try:
        base.model_validate(merged)
    except ValidationError as exc:
        raise UpdateRejected([dict(e) for e in exc.errors(include_url=False)]) from None
    row.sqlmodel_update(dict(changes))
    return row
