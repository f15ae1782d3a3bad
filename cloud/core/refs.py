"""Declarations on body-model fields that identify objects (for the jurisdiction check of request bodies).

``subject_id: Annotated[int | None, refers_to("subject_id")]`` says the value identifies a market subject; the app-wide
body guard (:mod:`cloud.security.body_scope`) refuses a value outside the caller's jurisdiction.
``own_id("why")`` marks an id-looking field that references nothing (the new object's own id, or a part of the
object another field names). Both show in the OpenAPI document as ``x-scope``. This module imports nothing of
ours, so models of every package can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


@dataclass(frozen=True, slots=True)
class ScopeRef:
    """``kind`` names the resolver of the object the value identifies (None: references nothing; ``reason`` says
    why)."""

    kind: str | None
    reason: str = ""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema) if "$ref" in schema else schema
        target["x-scope"] = self.kind if self.kind is not None else f"none: {self.reason}"
        return schema


def refers_to(kind: str) -> ScopeRef:
    """A body field identifying an object of ``kind`` (a key of ``cloud.security.body_scope.BODY_RESOLVERS``)."""
    return ScopeRef(kind)


def own_id(reason: str) -> ScopeRef:
    """An id-looking body field that references no object; the reason is required."""
    if not reason.strip():
        raise ValueError("own_id needs a reason")
    return ScopeRef(None, reason)
