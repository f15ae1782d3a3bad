"""Request bodies naming other departments' objects (#13): refused like the route is, by one declared check.

Static: the OpenAPI request bodies of every scoped route are walked; an id-bearing property without a declaration
(``refers_to(kind)`` / ``own_id(reason)``, cloud/core/refs.py) fails the test, and adding such a route makes it
fail. Dynamic, derived from the route table too: for every declared reference of every scoped route, a body naming
department b's object is sent by department a's inspector (refused, 422 with the Chinese reason) and by b's own
inspector (not refused by the guard); a supervisor (county) is never refused. Then a few real operations end to
end: a clue linked to b's subject, a case for b's clue, a dispatch to b's inspector, a plan over b's subjects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from cloud.api.deps import API_PREFIX, StaffUser
from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.db import session_scope
from cloud.core.users import Role
from cloud.registry.models import MeasuringPoint
from cloud.security.body_scope import BODY_METHODS, body_guard, route_refs
from cloud.security.scoping import access_of, scope_guard
from tests.cloud.conftest import ADMIN_PASSWORD
from tests.cloud.security.conftest import add_user, bearer, login
from tests.utils.jurisdiction import DEPT_CODE, SITE, Seeded, api_routes, body_problems, seed_two_departments

GUARD_REASON = "不在您的辖区内"

World = tuple[TestClient, Seeded, dict[str, dict[str, str]], dict[str, dict[str, str]]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One seeded app for the module: both departments' objects, an inspector of each, a supervisor."""
    data: Path = tmp_path_factory.mktemp("body-scope")
    settings = Settings(
        data_dir=data / "data",
        jwt_secret="test-secret-" + "x" * 32,
        admin_password=ADMIN_PASSWORD,
        ingest_enabled=False,
        presence_enabled=False,
    )
    app = create_app(settings, run_background=False)
    with TestClient(app) as client:
        seeded = seed_two_departments(settings, app.state.engine, app.state.store)
        users = {
            "a": add_user(client, "insp-a", Role.INSPECTOR, department=DEPT_CODE["a"]),
            "b": add_user(client, "insp-b", Role.INSPECTOR, department=DEPT_CODE["b"]),
        }
        add_user(client, "sup", Role.SUPERVISOR)
        with session_scope(app.state.engine, write=True) as session:
            points = {k: MeasuringPoint(site_id=SITE[k], location=f"{k} 冷库") for k in "ab"}
            session.add_all(points.values())
            session.flush()
            point_ids = {k: str(p.id) for k, p in points.items()}
        ids = {
            k: {
                **seeded.ids[k],
                "department_id": str(seeded.department_ids[k]),
                "department_code": DEPT_CODE[k],
                "user_id": str(users[k]),
                "username": f"insp-{k}",
                "measuring_point_id": point_ids[k],
            }
            for k in "ab"
        }
        headers = {name: bearer(login(client, name)["access_token"]) for name in ("insp-a", "insp-b", "sup")}
        yield client, seeded, headers, ids


def _body_with(path: tuple[str, ...], value: Any) -> Any:
    """A JSON body holding ``value`` at ``path`` (``*`` = a one-item list); nothing else (the guard runs first)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    inner = _body_with(rest, value)
    return [inner] if head == "*" else {head: inner}


def _url(path: str, ids: dict[str, str]) -> str:
    return API_PREFIX + re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "1"), path.removeprefix(API_PREFIX))


def _typed(kind: str, raw: str) -> Any:
    return int(raw) if raw.isdigit() and kind not in ("site_id", "department_code", "username") else raw


def test_every_id_in_a_scoped_body_is_declared(world: World) -> None:
    client, *_ = world
    assert body_problems(client.app) == []  # type: ignore[arg-type]


def test_real_operations_naming_b_are_refused_and_own_are_honoured(world: World) -> None:
    client, _seeded, h, ids = world
    a, b = ids["a"], ids["b"]
    clue = {"channel": "walk_in", "kind": "walk_in", "category": "food_safety", "title": "群众来访反映问题"}
    # a clue of a's inspector linked to b's subject: refused with the reason; with a's own subject: created
    refused = client.post(f"{API_PREFIX}/clues", json={**clue, "subject_id": int(b["subject_id"])}, headers=h["insp-a"])
    assert refused.status_code == 422 and GUARD_REASON in refused.text and "subject_id" in refused.text
    own = client.post(f"{API_PREFIX}/clues", json={**clue, "subject_id": int(a["subject_id"])}, headers=h["insp-a"])
    assert own.status_code != 422 or GUARD_REASON not in own.text, own.text
    # dispatching a's clue to b's inspector, a case for b's clue, a plan over b's subjects
    dispatch = client.post(
        f"{API_PREFIX}/clues/{a['clue_id']}/dispatch", json={"assignees": [int(b["user_id"])]}, headers=h["insp-a"]
    )
    assert dispatch.status_code == 422 and GUARD_REASON in dispatch.text
    case = client.post(
        f"{API_PREFIX}/cases", json={"summary": "案源登记", "clue_id": int(b["clue_id"])}, headers=h["insp-a"]
    )
    assert case.status_code == 422 and GUARD_REASON in case.text
    plan = client.post(
        f"{API_PREFIX}/random-plans",
        json={"name": "双随机计划", "subject_ids": [int(a["subject_id"]), int(b["subject_id"])]},
        headers=h["insp-a"],
    )
    assert plan.status_code == 422 and GUARD_REASON in plan.text
    # a reference to nothing is refused the same way (no existence oracle)
    ghost = client.post(f"{API_PREFIX}/clues", json={**clue, "subject_id": 987654}, headers=h["insp-a"])
    assert ghost.status_code == 422 and ghost.json()["detail"].replace("987654", "X") == refused.json()[
        "detail"
    ].replace(b["subject_id"], "X")
    # the county sees both departments: a supervisor's clue linked to b's subject is created
    county = client.post(f"{API_PREFIX}/clues", json={**clue, "subject_id": int(b["subject_id"])}, headers=h["sup"])
    assert county.status_code == 201, county.text


class LinkIn(BaseModel):
    subject_id: int  # names an object, declares nothing


class UnknownKind(BaseModel):
    clue_id: Annotated[int, "not a declaration"]


def test_an_undeclared_body_reference_makes_the_check_fail() -> None:
    """The same walk over a small app holding one careless router (scoped by default, bodies naming objects)."""
    router = APIRouter(prefix="/careless")

    @router.post("/links")
    def link(body: LinkIn, _: StaffUser) -> dict[str, int]:
        return {"subject_id": body.subject_id}

    @router.post("/other")
    def other(body: UnknownKind, _: StaffUser) -> None:
        return None

    app = FastAPI()
    app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(scope_guard), Depends(body_guard)])
    assert body_problems(app) == [
        f"POST {API_PREFIX}/careless/links: body.subject_id names an object but declares no scope",
        f"POST {API_PREFIX}/careless/other: body.clue_id names an object but declares no scope",
    ]


def test_no_body_can_name_another_departments_object(world: World) -> None:
    """Last in the module: the county's accepted writes change the seeded world."""
    client, _seeded, h, ids = world
    checked: list[tuple[str, str, str, tuple[str, ...], str]] = []
    for ctx in api_routes(client.app):  # type: ignore[arg-type]
        if access_of(ctx)[0] != "scoped":
            continue
        for method in sorted(set(ctx.methods) & BODY_METHODS):
            for path, kind in route_refs(ctx.original_route):
                checked.append((f"{method} {ctx.path} {'.'.join(path)} ({kind})", method, ctx.path, path, kind))
    problems: list[str] = []
    # a's inspector first, over the whole table (later callers' accepted writes must not change what a sees)
    for who, refused in (("insp-a", True), ("insp-b", False), ("sup", False)):
        for where, method, route_path, path, kind in checked:
            body = _body_with(path, _typed(kind, ids["b"][kind]))
            url = _url(route_path, ids["b" if who == "insp-b" else "a"])
            r = client.request(method, url, json=body, headers=h[who])
            guard_said = r.status_code == 422 and GUARD_REASON in r.text
            if refused and not guard_said:
                problems.append(f"{where}: {who} naming b's object got {r.status_code} {r.text[:120]}")
            if not refused and guard_said:
                problems.append(f"{where}: {who} was refused naming an object they may see")
    assert len(checked) >= 30, checked  # every declared reference of the route table, not a sample
    assert problems == [], "\n".join(problems)
