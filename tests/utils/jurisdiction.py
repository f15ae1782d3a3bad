"""Two departments with one object of every scoped kind each, and a checker that walks the app's route table.

:func:`seed_two_departments` builds, for department ``a`` (城东所) and ``b`` (城西所): a subject, a site with a
sensor and readings, an alert citing a stored snapshot, the clue it made, a work order, an inspection task with a
photo, an enforcement case, a legal document (PDF), a GSP record, a notification incident, a pending device and a
random plan. Every text field of department b carries :data:`MARK_B` (and its site id ``bsite-mk``), so a leak shows
up as that string in a response.

:func:`route_problems` is the check itself: static rules on every route of ``app.routes`` (guarded, declared or
resolvable), then a visit of every route as an inspector of the other department (must be refused: 404 for objects,
no b data in lists, exports/files refused) and of the owning one (must not be refused by jurisdiction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlmodel import Session

from cloud.alerts import Alert
from cloud.api.deps import API_PREFIX
from cloud.core.config import Settings
from cloud.core.db import utcnow
from cloud.evidence import EvidenceStore
from cloud.notify.models import Incident
from cloud.registry.models import Department, Device, MarketSubject, PendingDevice, Quantity, Sensor, Site
from cloud.registry.uscc import make
from cloud.security.scoping import RESOLVERS, SUB_KEYS, access_of
from cloud.telemetry.gsp import GspRecord
from cloud.telemetry.store import ReadingRow
from cloud.workflow.clues import Clue, ClueSource
from cloud.workflow.models import (
    DocumentRecord,
    EnforcementCase,
    InspectionResult,
    InspectionTask,
    RandomPlan,
    WorkOrder,
)
from cloud.workflow.paperwork import document_store

MARK_A, MARK_B = "MARKA", "MARKB"
SITE = {"a": "asite-mk", "b": "bsite-mk"}
DEPT_CODE = {"a": "sq01", "b": "sq02"}
NOW = utcnow()


@dataclass
class Seeded:
    """Ids of each department's objects by identifier name (``clue_id`` → id, …)."""

    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    department_ids: dict[str, int] = field(default_factory=dict)


def _png(mark: str) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + mark.encode() + b"\x00" * 32


def seed_two_departments(settings: Settings, engine: Any, store: Any) -> Seeded:
    seeded = Seeded()
    evidence = EvidenceStore(settings.data_dir / "evidence")
    with Session(engine) as session:
        for key, name in (("a", "城东所"), ("b", "城西所")):
            mark = MARK_A if key == "a" else MARK_B
            site_id = SITE[key]
            dept = Department(code=DEPT_CODE[key], name=name)
            session.add(dept)
            session.flush()
            assert dept.id is not None
            seeded.department_ids[key] = dept.id
            subject = MarketSubject(
                name=f"{mark}药房", uscc=make(f"91320500MA1{key.upper()}XXXX1"), department_id=dept.id
            )
            session.add(subject)
            session.flush()
            session.add(Site(site_id=site_id, name=f"{mark}药房", category="drug", subject_id=subject.id))
            session.flush()
            session.add(Device(site_id=site_id, device_id="probe-1", device_type="probe"))
            session.flush()
            session.add(Sensor(site_id=site_id, sensor_id="t1", device_id="probe-1", quantity=Quantity.TEMPERATURE))
            session.flush()
            photo = _png(mark)
            sha = hashlib.sha256(photo).hexdigest()
            evidence.put(sha, photo)
            alert = Alert(
                site_id=site_id,
                device_id="probe-1",
                sensor_id="t1",
                rule_id="fridge_high",
                severity="major",
                category="drug_storage",
                message=f"{mark} 冷藏柜温度超限",
                started_at=NOW - dt.timedelta(minutes=5),
                updated_at=NOW,
                evidence=[{"sha256": sha, "label": "现场抓拍"}],
            )
            session.add(alert)
            session.flush()
            clue = Clue(
                site_id=site_id,
                subject_id=subject.id,
                category="drug_storage",
                severity="major",
                title=f"{mark} 线索",
                kind="alert",
                channel="sensor",
                first_seen_at=NOW,
                last_seen_at=NOW,
                department_id=dept.id,
            )
            session.add(clue)
            session.flush()
            session.add(ClueSource(clue_id=clue.id or 0, alert_id=alert.id, summary=mark))
            order = WorkOrder(
                channel="hotline_12345",
                kind="complaint",
                received_at=NOW,
                category="drug_storage",
                facts=f"{mark} 投诉事实",
                respondent_name=f"{mark}药房",
                clue_id=clue.id,
            )
            task = InspectionTask(
                task_no=f"JC-{mark}",
                clue_id=clue.id,
                subject_id=subject.id,
                site_id=site_id,
                department_id=dept.id,
                items=["GSP-01"],
                due_date=(NOW + dt.timedelta(days=5)).date(),
                instructions=mark,
                created_by="seed",
            )
            session.add_all([order, task])
            session.flush()
            session.add(
                InspectionResult(
                    task_id=task.id or 0,
                    item_code="GSP-01",
                    outcome="fail",
                    photos=[sha],
                    note=mark,
                    recorded_by="seed",
                )
            )
            case = EnforcementCase(
                case_no=f"AJ-{mark}",
                source="clue",
                clue_id=clue.id,
                subject_id=subject.id,
                party_name=f"{mark}药房",
                department_id=dept.id,
                summary=mark,
                received_at=NOW,
                verify_due=(NOW + dt.timedelta(days=15)).date(),
                created_by="seed",
            )
            session.add(case)
            session.flush()
            pdf = b"%PDF-1.4\n% " + mark.encode() + b"\n%%EOF\n"
            pdf_sha = hashlib.sha256(pdf).hexdigest()
            document_store(settings).put(pdf_sha, pdf)
            doc = DocumentRecord(
                kind="inspection_record",
                title=f"现场检查笔录{mark}",
                doc_no=f"NO-{mark}",
                sha256=pdf_sha,
                size=len(pdf),
                task_id=task.id,
                case_id=case.id,
                data={"mark": mark},
                created_by="seed",
            )
            incident = Incident(
                key=f"clue:{clue.id}",
                kind="clue",
                route_id="default",
                policy="default",
                title=f"{mark} 通知",
                site_id=site_id,
                clue_id=clue.id,
                alert_id=alert.id,
            )
            pending = PendingDevice(
                site_id=site_id, agent_id="edge-1", device_id=f"cam-{mark.lower()}", device_type="camera"
            )
            plan = RandomPlan(name=f"{mark} 抽查计划", seed="s", department_id=dept.id, created_by="seed")
            gsp = GspRecord(
                seq=1 if key == "a" else 2,
                point_id=1 if key == "a" else 2,
                site_id=site_id,
                recorded_at=NOW,
                temperature=5.0,
                humidity=50.0,
                location=f"{mark} 冷藏柜",
                area="冷藏区",
                kind="storage",
                status="normal",
                profile="drug_refrigerated",
                created_at=NOW,
                prev_hash=("0" if key == "a" else "1") * 64,
                hash=("a" if key == "a" else "b") * 64,
            )
            session.add_all([doc, incident, pending, plan, gsp])
            session.flush()
            seeded.ids[key] = {
                "clue_id": str(clue.id),
                "order_id": str(order.id),
                "task_id": str(task.id),
                "case_id": str(case.id),
                "subject_id": str(subject.id),
                "site_id": site_id,
                "alert_id": str(alert.id),
                "document_id": str(doc.id),
                "sha256": sha,
                "incident_id": str(incident.id),
                "plan_id": str(plan.id),
                "pending_id": str(pending.id),
                "sensor_id": "t1",
                "item_code": "GSP-01",
                "pause_id": "1",
            }
        session.commit()
    store.write_readings(
        [
            ReadingRow("edge-1", SITE[k], "t1", NOW - dt.timedelta(minutes=m), 5.0, "°C", "good")
            for k in ("a", "b")
            for m in range(3)
        ]
    )
    return seeded


# ---------------------------------------------------------------- the route table
GUARD = "scope_guard"
AUTH = {"get_current_user", "get_stream_user"}


def api_routes(app: FastAPI) -> list[Any]:
    """Every FastAPI route of the app (included routers flattened), as the router would match them."""
    return [ctx for ctx in iter_route_contexts(app.routes) if isinstance(ctx.original_route, APIRoute)]


def _calls(dependant: Any) -> set[str]:
    names: set[str] = set()
    todo = list(dependant.dependencies)
    while todo:
        dep = todo.pop()
        names.add(getattr(dep.call, "__name__", repr(dep.call)))
        todo.extend(dep.dependencies)
    return names


def _params(dependant: Any, kind: str) -> list[Any]:
    out = list(getattr(dependant, kind))
    for dep in dependant.dependencies:
        out += _params(dep, kind)
    return out


def static_problems(app: FastAPI) -> list[str]:
    """Structural rules on every route: under the API, guarded; scoped routes authenticate, name only resolvable
    identifiers and (lists) filter by scope; outside the API, no data at all (console files)."""
    problems: list[str] = []
    for ctx in api_routes(app):
        where = f"{sorted(ctx.methods)} {ctx.path}"
        calls = _calls(ctx.dependant)
        path_params = {p.name for p in _params(ctx.dependant, "path_params")}
        if not ctx.path.startswith(API_PREFIX):
            if calls or path_params - {"path"}:
                problems.append(f"{where}: outside {API_PREFIX} but reaches data ({sorted(calls)})")
            continue
        if GUARD not in calls:
            problems.append(f"{where}: not guarded (mount it through create_app's routers)")
        access, _reason = access_of(ctx)
        if access != "scoped":
            continue
        if not calls & AUTH:
            problems.append(f"{where}: scoped but not authenticated (declare public(...) if it is)")
        unknown = path_params - set(RESOLVERS) - SUB_KEYS
        if unknown:
            problems.append(f"{where}: path parameters {sorted(unknown)} are not resolvable to a department")
        if path_params & SUB_KEYS and not path_params & set(RESOLVERS):
            problems.append(f"{where}: sub-key without its parent identifier")
        required = {f.alias or f.name for f in _params(ctx.dependant, "query_params") if f.field_info.is_required()}
        named = (path_params | required) & set(RESOLVERS)
        if "GET" in ctx.methods and not named and not calls & {"get_scope", "get_stream_scope"}:
            problems.append(f"{where}: a scoped list must filter with ScopeDep (or declare county_wide(...))")
    return problems


def _query_value(field_: Any, ids: dict[str, str]) -> str:
    name = field_.alias or field_.name
    if name in ids:
        return ids[name]
    if name in ("start", "since"):
        return (NOW - dt.timedelta(days=1)).isoformat()
    if name in ("end", "until"):
        return (NOW + dt.timedelta(days=1)).isoformat()
    annotation = str(field_.field_info.annotation)
    if "datetime" in annotation:
        return NOW.isoformat()
    if "date" in annotation:
        return NOW.date().isoformat()
    if "int" in annotation or "float" in annotation:
        return "1"
    if "bool" in annotation:
        return "false"
    if name == "department":
        return DEPT_CODE["b"]
    if name == "format":
        return "csv"
    return "x"


@dataclass
class Visit:
    method: str
    path: str
    template: str
    query: dict[str, str]
    identifiers: list[str]  # resolvable identifiers the request names (path or query)
    route: Any = None


def visits(app: FastAPI, ids: dict[str, str]) -> list[Visit]:
    """One request per route naming department b's objects (required parameters filled in), plus one per
    optional identifier in the query string (``?site_id=``, ``?case_id=`` …)."""
    out: list[Visit] = []
    for ctx in api_routes(app):
        if not ctx.path.startswith(API_PREFIX) or ctx.original_route.response_class is StreamingResponse:
            continue  # event streams: covered by their own tests
        path_params = {p.name for p in _params(ctx.dependant, "path_params")}
        path = ctx.path
        for name in path_params:
            path = path.replace("{" + name + "}", ids.get(name, "1"))
        query_fields = _params(ctx.dependant, "query_params")
        required = {(f.alias or f.name): _query_value(f, ids) for f in query_fields if f.field_info.is_required()}
        named = [n for n in path_params if n in RESOLVERS] + [n for n in required if n in RESOLVERS]
        for method in sorted(ctx.methods - {"HEAD"} or ctx.methods):
            if method != "GET" and not named:
                continue  # a write naming no object: nothing to scope here (and logout would end the session)
            out.append(Visit(method, path, ctx.path, required, named, ctx))
            for f in query_fields:
                name = f.alias or f.name
                if name in RESOLVERS and name not in required:
                    query = {**required, name: ids[name]}
                    out.append(Visit(method, path, ctx.path, query, [*named, name], ctx))
    return out


def _call(client: TestClient, visit: Visit, headers: dict[str, str]) -> Any:
    body: dict[str, Any] = {}
    if visit.method in ("POST", "PUT", "PATCH"):
        body = {"json": {}}
    return client.request(visit.method, visit.path, params=visit.query, headers=headers, **body)


def dynamic_problems(
    client: TestClient,
    app: FastAPI,
    seeded: Seeded,
    outsider: dict[str, str],
    owner: dict[str, str],
    county: dict[str, str],
) -> list[str]:
    """Department b's objects visited by ``outsider`` (an inspector of a): refused; by ``owner`` (an inspector
    of b): not refused by jurisdiction; lists: the outsider never sees b's data, the owner sees what the county
    sees of it."""
    problems: list[str] = []
    b_marks = (MARK_B, SITE["b"])
    for visit in visits(app, seeded.ids["b"]):
        where = f"{visit.method} {visit.template} {visit.query or ''}"
        answer = _call(client, visit, outsider)
        text = answer.text
        if answer.status_code == 401 and access_of(visit.route)[0] != "public":
            problems.append(f"{where}: outsider not authenticated (the check lost its session)")
        elif visit.identifiers and access_of(visit.route)[0] == "scoped":
            if answer.status_code not in (403, 404):
                problems.append(f"{where}: outsider got {answer.status_code} for b's object (expected 404)")
        elif answer.status_code < 300 and any(m in text for m in b_marks):
            problems.append(f"{where}: outsider's answer contains department b's data")
        if visit.method != "GET":
            continue
        mine = _call(client, visit, owner)
        if visit.identifiers and access_of(visit.route)[0] == "scoped" and mine.status_code == 404:
            problems.append(f"{where}: owner refused (404) for their own department's object")
        if not visit.identifiers and mine.status_code < 300:
            everyone = _call(client, visit, county)
            if any(m in everyone.text for m in b_marks) and not any(m in mine.text for m in b_marks):
                problems.append(f"{where}: owner does not see their own department's rows")
    return problems


# ---------------------------------------------------------------- request bodies naming objects
#: property names that carry an object's identity (ids of clues, cases, subjects, sites, devices, users, departments)
ID_BEARING = re.compile(r"(_id|_ids)$|^(assignees|officers|inspectors|department|departments|parent_id)$")


def _scope_marks(schema: dict[str, Any], components: dict[str, Any], seen: frozenset[str]) -> bool:
    """Whether ``schema`` (a property's, with its anyOf / array items) carries an ``x-scope`` declaration."""
    if "x-scope" in schema:
        return True
    subs = [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]
    if isinstance(schema.get("items"), dict):
        subs.append(schema["items"])
    return any(_scope_marks(s, components, seen) for s in subs)


def _body_fields(
    schema: dict[str, Any], components: dict[str, Any], where: str, seen: frozenset[str]
) -> list[tuple[str, dict[str, Any]]]:
    """(dotted name, property schema) of every property in a request-body schema, nested models included."""
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _body_fields(components[name], components, where, seen | {name})
    out: list[tuple[str, dict[str, Any]]] = []
    for sub in [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]:
        out += _body_fields(sub, components, where, seen)
    if isinstance(schema.get("items"), dict):
        out += _body_fields(schema["items"], components, where + "[]", seen)
    for prop, sub in (schema.get("properties") or {}).items():
        out.append((f"{where}.{prop}", sub))
        out += _body_fields(sub, components, f"{where}.{prop}", seen)
    return out


def body_problems(app: FastAPI) -> list[str]:
    """Walk the OpenAPI request bodies of every scoped route: an id-bearing property without an ``x-scope``
    declaration (``refers_to(kind)`` or ``own_id(reason)`` on the model field, cloud/security/body_scope.py) is a
    problem; so is a declared kind the guard cannot resolve."""
    from cloud.security.body_scope import BODY_RESOLVERS

    spec = app.openapi()
    components = spec.get("components", {}).get("schemas", {})
    scoped = {(ctx.path, m.lower()) for ctx in api_routes(app) for m in ctx.methods if access_of(ctx)[0] == "scoped"}
    problems: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if (path, method) not in scoped or "requestBody" not in operation:
                continue
            for media in operation["requestBody"].get("content", {}).values():
                for name, prop in _body_fields(media.get("schema", {}), components, "body", frozenset()):
                    leaf = name.rsplit(".", 1)[-1]
                    if ID_BEARING.search(leaf) and not _scope_marks(prop, components, frozenset()):
                        problems.append(f"{method.upper()} {path}: {name} names an object but declares no scope")
                    kind = prop.get("x-scope") or (prop.get("items") or {}).get("x-scope")
                    if isinstance(kind, str) and not kind.startswith("none: ") and kind not in BODY_RESOLVERS:
                        problems.append(f"{method.upper()} {path}: {name} declares unknown kind {kind}")
    return sorted(set(problems))
