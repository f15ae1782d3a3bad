"""Jurisdiction by construction, checked from the app's own route table (not a hand-written list).

Department b's objects of every kind exist next to department a's. Every route under ``/api/v1`` is visited as an
inspector of department a (object routes: 404, lists: none of b's data, exports and files: refused) and as an
inspector of department b (not refused). A route added without the guard, or a guarded list that forgets to
filter, makes the check report it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from sqlmodel import select

from cloud.alerts import Alert
from cloud.api.deps import API_PREFIX, SessionDep, StaffUser
from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.users import Role
from cloud.security.scoping import access_of, scope_guard
from tests.cloud.security.conftest import add_user, bearer, login
from tests.utils.jurisdiction import (
    DEPT_CODE,
    MARK_B,
    Seeded,
    api_routes,
    dynamic_problems,
    seed_two_departments,
    static_problems,
    visits,
)


@pytest.fixture
def world(cloud_settings: Settings) -> Iterator[tuple[TestClient, Seeded, dict[str, dict[str, str]]]]:
    app = create_app(cloud_settings, run_background=False)
    with TestClient(app) as client:
        seeded = seed_two_departments(cloud_settings, app.state.engine, app.state.store)
        add_user(client, "insp-a", Role.INSPECTOR, department=DEPT_CODE["a"])
        add_user(client, "insp-b", Role.INSPECTOR, department=DEPT_CODE["b"])
        add_user(client, "sup", Role.SUPERVISOR)
        headers = {name: bearer(login(client, name)["access_token"]) for name in ("insp-a", "insp-b", "sup")}
        yield client, seeded, headers


def test_every_route_is_guarded_declared_or_resolvable(cloud_settings: Settings) -> None:
    app = create_app(cloud_settings, run_background=False)
    assert len(api_routes(app)) > 100  # the whole table, not a sample
    assert static_problems(app) == []


def test_no_route_leaks_another_departments_data(world: tuple[TestClient, Seeded, dict[str, dict[str, str]]]) -> None:
    client, seeded, h = world
    problems = dynamic_problems(client, client.app, seeded, h["insp-a"], h["insp-b"], h["sup"])  # type: ignore[arg-type]
    assert problems == []
    assert device_reaches(client, seeded) == []


def device_reaches(client: TestClient, seeded: Seeded) -> list[str]:
    """Session 4 (stranger walk): a device account (an edge box's evidence token, valid for days, stored on a box
    in a pharmacy) has no department, and the scope fell back to "unassigned inspector" = the whole county: with
    it, ``POST /notifications/incidents/{id}/on-site`` acknowledged any department's alarm and every workflow
    write reached its handler. The fallback is for inspectors only; any other non-county role without a
    department sees nothing. (In the same world as the walk above: one seeded world per test is the cost.)"""
    add_user(client, "box-1", Role.DEVICE)
    device = bearer(login(client, "box-1")["access_token"])
    reached = []
    for visit in visits(client.app, seeded.ids["b"]):  # type: ignore[arg-type]
        if not visit.identifiers or access_of(visit.route)[0] != "scoped":
            continue
        body = {"json": {}} if visit.method in ("POST", "PUT", "PATCH") else {}
        answer = client.request(visit.method, visit.path, params=visit.query, headers=device, **body)
        if answer.status_code not in (401, 403, 404):
            reached.append(f"{visit.method} {visit.template}: {answer.status_code}")
    return reached


def test_declared_routes_say_why(cloud_settings: Settings) -> None:
    app = create_app(cloud_settings, run_background=False)
    declared = [(ctx.path, *access_of(ctx)) for ctx in api_routes(app) if access_of(ctx)[0] != "scoped"]
    assert declared and all(reason for _path, _access, reason in declared)
    public = {path for path, access, _ in declared if access == "public"}
    assert f"{API_PREFIX}/auth/token" in public and f"{API_PREFIX}/health" in public


def _leaky_router() -> APIRouter:
    router = APIRouter(prefix="/leaky")

    @router.get("/alerts")  # guarded (mounted like every router) but forgets to filter by scope
    def all_alerts(session: SessionDep, _: StaffUser) -> list[str]:
        return [a.message for a in session.exec(select(Alert))]

    return router


def test_an_unscoped_route_makes_the_check_fail(
    world: tuple[TestClient, Seeded, dict[str, dict[str, str]]],
) -> None:
    client, seeded, h = world
    app: Any = client.app

    @app.get(f"{API_PREFIX}/unguarded/clues/{{clue_id}}")  # added beside the routers: no guard at all
    def unguarded(clue_id: int, _: StaffUser) -> dict[str, int]:
        return {"clue_id": clue_id}

    app.include_router(_leaky_router(), prefix=API_PREFIX, dependencies=[Depends(scope_guard)])
    problems = static_problems(app)
    assert any("/unguarded/clues/{clue_id}: not guarded" in p for p in problems), problems
    assert any("/leaky/alerts: a scoped list must filter" in p for p in problems), problems
    leaks = dynamic_problems(client, app, seeded, h["insp-a"], h["insp-b"], h["sup"])
    assert any("/unguarded/clues/{clue_id}" in p and "expected 404" in p for p in leaks), leaks
    assert any("/leaky/alerts" in p and "department b's data" in p for p in leaks), leaks
    assert MARK_B in client.get(f"{API_PREFIX}/leaky/alerts", headers=h["insp-a"]).text
