"""The error bodies the API really returns, declared in the OpenAPI document for every operation.

Every refusal is ``{"detail": "中文说明 …"}`` (``HTTPException``), or for a request that fails validation
``{"detail": [{"loc": [...], "msg": ..., "type": ...}, ...]}``; some add fields (``code``, ``fields``). One model,
:class:`ErrorPublic`, describes both. :func:`document_errors` adds to each operation the statuses it can answer:

* 401 / 403 where the operation requires a login (it has a ``security`` requirement);
* 404 where the path names an object (a path parameter), a query filter names one (``subject_id=``: an object out
  of the caller's jurisdiction is not found), or a write refers to one from its body;
* 409 on writes (state conflicts, optimistic-lock versions, duplicates, integrity);
* 400 where the operation takes a body (a body that cannot be parsed at all);
* 413 on every operation with a body (request size limit), 429 on rate-limited paths;
* 422 everywhere (the framework's validation list, or a refused value explained in Chinese).

It runs on the generated document, so a new route is documented by construction.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

WRITE_METHODS = {"post", "put", "patch", "delete"}


class ValidationIssue(BaseModel):
    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description="出错位置 (body/query/path … field)")
    msg: str
    type: str


class ErrorPublic(BaseModel):
    """错误应答：``detail`` 为中文说明，或请求校验错误的列表 (error: Chinese message or validation issues)."""

    model_config = ConfigDict(extra="allow")

    detail: str | list[ValidationIssue]


_DESCRIPTIONS = {
    "400": "请求体无法解析 (malformed body)",
    "401": "未登录或会话失效 (not authenticated)",
    "403": "无权限、职责不符或不在辖区 (forbidden)",
    "404": "对象不存在或不在辖区 (not found)",
    "409": "状态冲突、重复或版本已变 (conflict)",
    "413": "请求体过大 (request too large)",
    "422": "请求无效：校验错误列表或中文说明 (invalid request)",
    "429": "请求过于频繁 (rate limited)",
}


def _error(status: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}},
    }


def statuses_for(path: str, method: str, operation: dict[str, Any], rate_limited: set[str]) -> list[str]:
    found = ["422"]
    if "requestBody" in operation:
        found.append("400")
    if operation.get("security"):
        found += ["401", "403"]
    names_object = any(
        p.get("in") == "query" and str(p.get("name", "")).endswith("_id") for p in operation.get("parameters", [])
    )
    if "{" in path or method in WRITE_METHODS or names_object:
        found.append("404")
    if method in WRITE_METHODS:
        found += ["409", "413"]
    if path in rate_limited:
        found.append("429")
    return found


def document_errors(app: FastAPI, *, rate_limited: list[str] | None = None) -> None:
    """Make ``app.openapi()`` declare the error statuses and :class:`ErrorPublic` on every operation."""
    limited = set(rate_limited or [])

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in (
            ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}).items()
        ):
            schemas[name] = schema
        error_schema = ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}")
        error_schema.pop("$defs", None)
        schemas["ErrorPublic"] = error_schema
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                if method not in {"get", "head", "post", "put", "patch", "delete"}:
                    continue
                responses = operation.setdefault("responses", {})
                for status in statuses_for(path, method, operation, limited):
                    responses[status] = _error(status)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
