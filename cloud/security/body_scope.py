"""Jurisdiction of the objects a request body names (辖区：请求体中引用的对象).

A POST/PUT/PATCH body that names another department's object (linking a clue to B's subject, dispatching to B's
staff, a case for B's clue, a plan over B's subjects) is refused like a path naming it. The declaration sits on the
model field, once, as an annotation (:mod:`cloud.core.refs`)::

    subject_id: Annotated[int | None, refers_to("subject_id")] = None
    assignees: list[Annotated[int, refers_to("user_id")]] = Field(default_factory=list)
    site_id: Annotated[str, own_id("the new site's own id")]   # an id that references nothing

:func:`body_guard` (mounted on every router next to :func:`~cloud.security.scoping.scope_guard`) finds, per route,
the JSON paths of the declared fields in the route's body model (nested models and lists included), reads their
values from the request's JSON and resolves each through :data:`BODY_RESOLVERS`; for a user who is not
county-wide, a value outside the caller's jurisdiction -- or naming nothing -- answers **422** with a Chinese
reason naming the field (the same answer for "not yours" and "does not exist": nothing leaks). The declaration
also appears in the OpenAPI document (``x-scope``), and ``tests/cloud/security/test_body_scoping.py`` walks the
request bodies of every scoped route and fails on an id-bearing field without one.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlmodel import Session, select

from cloud.core.refs import ScopeRef
from cloud.security.scoping import (
    RESOLVERS,
    Departments,
    _home_department,
    _token_user,
    access_of,
    scope_for,
    site_department,
)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _department(session: Session, value: str) -> Departments:
    from cloud.registry.models import Department

    dept = session.get(Department, int(value))
    return [dept.id] if dept is not None else []


def _user(session: Session, value: str) -> Departments:
    from cloud.core.users import User

    user = session.get(User, int(value))
    if user is None:
        return []
    return [_home_department(session, user)]


def _department_code(session: Session, value: str) -> Departments:
    from cloud.registry.models import Department

    dept = session.exec(select(Department).where(Department.code == value)).first()
    return [dept.id] if dept is not None else []


def _username(session: Session, value: str) -> Departments:
    from cloud.core.users import get_user_by_username

    user = get_user_by_username(session, username=value)
    return [_home_department(session, user)] if user is not None else []


def _measuring_point(session: Session, value: str) -> Departments:
    from cloud.registry.models import MeasuringPoint

    point = session.get(MeasuringPoint, int(value))
    return [site_department(session, point.site_id)] if point is not None else []


#: resolvers of body references: the path/query ones plus departments, people and measuring points
BODY_RESOLVERS: dict[str, Callable[[Session, str], Departments]] = {
    **RESOLVERS,
    "department_id": _department,
    "department_code": _department_code,
    "user_id": _user,
    "username": _username,
    "measuring_point_id": _measuring_point,
}

Path = tuple[str, ...]  # JSON keys; "*" = every item of a list


def _unwrap(annotation: Any) -> Iterator[tuple[Any, list[Any]]]:
    """(type, metadata) of each alternative of ``annotation`` (Optional/Union flattened, Annotated split)."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata += extra
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            for inner, more in _unwrap(arg):
                yield inner, metadata + more
        return
    yield annotation, metadata


def declared_refs(annotation: Any, prefix: Path = (), seen: frozenset[type] = frozenset()) -> list[tuple[Path, str]]:
    """(JSON path, kind) of every field declared with :func:`refers_to` in the body type ``annotation``."""
    out: list[tuple[Path, str]] = []
    for kind_type, metadata in _unwrap(annotation):
        for meta in metadata:
            if isinstance(meta, ScopeRef) and meta.kind is not None:
                out.append((prefix, meta.kind))
        origin = typing.get_origin(kind_type)
        if origin in (list, set, frozenset, tuple):
            for arg in typing.get_args(kind_type):
                if arg is not Ellipsis:
                    out += declared_refs(arg, (*prefix, "*"), seen)
        elif isinstance(kind_type, type) and issubclass(kind_type, BaseModel) and kind_type not in seen:
            for name, field in kind_type.model_fields.items():
                inner: Any = field.annotation
                if field.metadata:
                    inner = typing.Annotated[inner, *field.metadata]
                out += declared_refs(inner, (*prefix, field.alias or name), seen | {kind_type})
    return out


_REFS: dict[int, tuple[Any, tuple[tuple[Path, str], ...]]] = {}


def route_refs(route: Any) -> tuple[tuple[Path, str], ...]:
    """The declared references of ``route``'s body, computed once per route (several body parameters: FastAPI's
    wrapper model, keyed by the parameter names, is walked the same way)."""
    known = _REFS.get(id(route))
    if known is not None and known[0] is route:
        return known[1]
    field = getattr(route, "body_field", None)
    refs = tuple(dict.fromkeys(declared_refs(field.field_info.annotation or field.type_))) if field else ()
    _REFS[id(route)] = (route, refs)
    return refs


def _values(data: Any, path: Path) -> Iterator[Any]:
    if not path:
        if data is not None and not isinstance(data, (dict, list)):
            yield data
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(data, list):
            for item in data:
                yield from _values(item, rest)
    elif isinstance(data, dict) and head in data:
        yield from _values(data[head], rest)


def _check(request: Request, body: Any, refs: tuple[tuple[Path, str], ...]) -> None:
    with Session(request.app.state.engine) as session:
        user = _token_user(request, session)
        if user is None:
            return  # the route's own authentication answers 401
        scope = scope_for(session, user, getattr(request.app.state, "security_settings", None))
        if scope.county:
            return
        for path, kind in refs:
            for value in _values(body, path):
                try:
                    departments = BODY_RESOLVERS[kind](session, str(value))
                except (ValueError, OverflowError):
                    departments = []
                if not any(scope.allows(d) for d in departments):
                    field = ".".join(p for p in path if p != "*")
                    raise HTTPException(
                        status.HTTP_422_UNPROCESSABLE_ENTITY,
                        f"请求中的 {field}={value} 指向的对象不存在或不在您的辖区内，不能引用 "
                        f"({field} names an object outside your jurisdiction)",
                    )


async def body_guard(request: Request) -> None:
    """App-wide dependency: on a scoped route, a JSON body naming another department's object answers 422."""
    if request.method not in BODY_METHODS:
        return
    route = request.scope.get("route")
    if route is None or access_of(route)[0] != "scoped":
        return
    refs = route_refs(route)
    if not refs or "json" not in request.headers.get("content-type", ""):
        return
    raw = await request.body()  # FastAPI has read (and cached) it already
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return  # the route's own validation answers 422
    await run_in_threadpool(_check, request, body, refs)
