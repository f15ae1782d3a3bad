"""Department scoping (辖区): an inspector sees only the subjects, sites, clues and tasks of their jurisdiction.

* :func:`scope_for` resolves a user's :class:`Scope`: supervisors, administrators and auditors see the county;
  an inspector sees their department and its sub-departments (registry ``department.parent_id``). The
  department comes from the staff profile (``StaffProfile.department_id``), else from ``User.department``
  matched against a registry department code or name. An inspector without a department sees the county when
  ``SENTINEL_SCOPE_UNASSIGNED_INSPECTORS`` is true (small bureaus, the default) and nothing otherwise; a device
  account (or any other role) without a department sees nothing.
* **By construction**: :func:`scope_guard` is a dependency of *every* router the app mounts
  (``cloud.app.create_app``). For each identifier named in the path or the query string that
  :data:`RESOLVERS` knows (``clue_id``, ``site_id``, ``document_id``, ``sha256``, …) it finds the object's
  department(s) and answers **404** (not 403: the row's existence is itself information an out-of-scope user
  must not get) unless one of them is in the caller's scope; an object without a department, or that does not
  exist, is visible to county-wide users only. List routes filter with :data:`ScopeDep`:
  ``scope.where(Model.department_id)``, :func:`visible_sites`, ``scope.allows(...)``.
* A route is **scoped unless declared otherwise** with a marker dependency carrying the reason:
  ``dependencies=[public("...")]`` (no login: health, login, kiosk, signed links) or
  ``dependencies=[county_wide("...")]`` (data of no department, or routes only county roles reach).
  ``tests/cloud/security/test_route_scoping.py`` walks the app's route table: a scoped route must name only
  resolvable identifiers (or sub-keys in :data:`SUB_KEYS`), and a scoped list must depend on :data:`ScopeDep`;
  then it calls every route as an inspector of another department and of the owning one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, params, status
from sqlalchemy import ColumnElement, String, cast, false, or_
from sqlmodel import Session, col, select

from cloud.api.deps import CurrentUser, SessionDep, StreamUser
from cloud.core.users import Role, User
from cloud.security.config import SecuritySettings, get_security_settings

#: roles whose scope is always the whole county
COUNTY_ROLES = frozenset({Role.ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR, Role.SUPERVISOR})


@dataclass(frozen=True)
class Scope:
    """``departments`` is None for county-wide scope, else the set of visible department ids."""

    username: str
    departments: frozenset[int] | None

    @property
    def county(self) -> bool:
        return self.departments is None

    def allows(self, department_id: int | None) -> bool:
        if self.departments is None:
            return True
        return department_id is not None and department_id in self.departments

    def where(self, column: Any) -> ColumnElement[bool] | None:
        """A WHERE condition limiting ``column`` (a department id column) to the scope; None = no limit."""
        if self.departments is None:
            return None
        if not self.departments:
            return false()
        return col(column).in_(sorted(self.departments))

    def where_any(self, *columns: Any) -> ColumnElement[bool] | None:
        """Visible when any of ``columns`` (e.g. subject's or site's department) is in scope."""
        if self.departments is None:
            return None
        if not self.departments:
            return false()
        return or_(*(col(c).in_(sorted(self.departments)) for c in columns))

    def ensure(self, department_id: int | None, what: str = "记录") -> None:
        if not self.allows(department_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what}不存在 (not found)")


def _registry() -> Any | None:
    try:
        return importlib.import_module("cloud.registry.models")
    except ModuleNotFoundError:  # pragma: no cover - registry not part of this build
        return None


def _home_department(session: Session, user: User) -> int | None:
    try:
        from cloud.workflow.models import StaffProfile

        profile = session.exec(select(StaffProfile).where(StaffProfile.user_id == user.id)).first()
        if profile is not None and profile.active and profile.department_id is not None:
            return int(profile.department_id)
    except ModuleNotFoundError:  # pragma: no cover
        pass
    registry = _registry()
    if registry is None or not user.department:
        return None
    dept = registry.Department
    row = session.exec(select(dept.id).where(or_(dept.code == user.department, dept.name == user.department))).first()
    return int(row) if row is not None else None


def _with_children(session: Session, root: int) -> frozenset[int]:
    registry = _registry()
    if registry is None:
        return frozenset({root})
    dept = registry.Department
    pairs = session.exec(select(dept.id, dept.parent_id)).all()
    children: dict[int, list[int]] = {}
    for dept_id, parent in pairs:
        if parent is not None:
            children.setdefault(int(parent), []).append(int(dept_id))
    seen: set[int] = set()
    todo = [root]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(children.get(current, []))
    return frozenset(seen)


def home_department(session: Session, user: User) -> int | None:
    """The department a user belongs to (staff profile, else ``User.department`` by code or name)."""
    return _home_department(session, user)


def scope_for(session: Session, user: User, sec: SecuritySettings | None = None) -> Scope:
    sec = sec or get_security_settings()
    if Role(user.role) in COUNTY_ROLES:
        return Scope(user.username, None)
    home = _home_department(session, user)
    if home is None:
        # the small-bureau fallback is for inspectors; a device account (an edge box's token) or any other role
        # without a department sees no department's objects
        county = sec.scope_unassigned_inspectors and Role(user.role) is Role.INSPECTOR
        return Scope(user.username, None if county else frozenset())
    return Scope(user.username, _with_children(session, home))


def get_scope(request: Request, session: SessionDep, user: CurrentUser) -> Scope:
    """FastAPI dependency: the current user's scope (computed once per request; the guard may have done it)."""
    known: Scope | None = getattr(request.state, "scope", None)
    if known is not None and known.username == user.username:
        return known
    scope = scope_for(session, user, getattr(request.app.state, "security_settings", None))
    request.state.scope = scope
    return scope


ScopeDep = Annotated[Scope, Depends(get_scope)]


def get_stream_scope(request: Request, user: StreamUser) -> Scope:
    """The scope of a Server-Sent-Events user (token in the header or ``?access_token=``)."""
    with Session(request.app.state.engine) as session:
        return scope_for(session, user, getattr(request.app.state, "security_settings", None))


StreamScopeDep = Annotated[Scope, Depends(get_stream_scope)]


def site_department(session: Session, site_id: str | None) -> int | None:
    """The department of a site: its own, else its subject's (registry)."""
    registry = _registry()
    if registry is None or not site_id:
        return None
    site = session.get(registry.Site, site_id)
    if site is None:
        return None
    if site.department_id is not None:
        return int(site.department_id)
    if site.subject_id is not None:
        subject = session.get(registry.MarketSubject, site.subject_id)
        if subject is not None and subject.department_id is not None:
            return int(subject.department_id)
    return None


def visible_sites(session: Session, scope: Scope) -> set[str] | None:
    """Site ids in the scope (the site's own department, else its subject's); None = every site."""
    if scope.county:
        return None
    registry = _registry()
    if registry is None:
        return set()
    site, subject = registry.Site, registry.MarketSubject
    rows = session.exec(
        select(site.site_id, site.department_id, subject.department_id).outerjoin(
            subject, col(subject.id) == col(site.subject_id)
        )
    ).all()
    return {sid for sid, own, via in rows if scope.allows(own if own is not None else via)}


# ---------------------------------------------------------------- route declarations
Access = Literal["scoped", "public", "county"]
_MARK = "__jurisdiction__"


def _marker(access: Access, reason: str) -> params.Depends:
    def declared() -> None:
        """Marker dependency: declares the route's jurisdiction (see :func:`access_of`)."""

    declared.__name__ = f"{access}_route"
    setattr(declared, _MARK, (access, reason))
    marker: params.Depends = Depends(declared)
    return marker


def public(reason: str) -> params.Depends:
    """Declare a route public (no login): ``@router.get(..., dependencies=[public("why")])``."""
    return _marker("public", reason)


def county_wide(reason: str) -> params.Depends:
    """Declare a route county-wide: its data belongs to no department, or only county roles reach it."""
    return _marker("county", reason)


def access_of(route: Any) -> tuple[Access, str]:
    """A route's declared jurisdiction (``scoped`` unless a :func:`public`/:func:`county_wide` marker is among
    its dependencies, router-level ones included)."""
    todo = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while todo:
        dep = todo.pop()
        mark = getattr(dep.call, _MARK, None)
        if mark is not None:
            access, reason = mark
            return access, reason
        todo.extend(dep.dependencies)
    return "scoped", ""


# ---------------------------------------------------------------- resolvers: identifier -> departments
Departments = list[int | None]


def _clue(session: Session, value: str) -> Departments:
    from cloud.workflow.clues import Clue

    clue = session.get(Clue, int(value))
    return [clue.department_id] if clue else []


def _order(session: Session, value: str) -> Departments:
    from cloud.workflow.models import WorkOrder

    order = session.get(WorkOrder, int(value))
    if order is None:
        return []
    return _clue(session, str(order.clue_id)) if order.clue_id else [None]


def _task(session: Session, value: str) -> Departments:
    from cloud.workflow.models import InspectionTask

    task = session.get(InspectionTask, int(value))
    return [task.department_id] if task else []


def _case(session: Session, value: str) -> Departments:
    from cloud.workflow.models import EnforcementCase

    case = session.get(EnforcementCase, int(value))
    return [case.department_id] if case else []


def _subject(session: Session, value: str) -> Departments:
    registry = _registry()
    subject = session.get(registry.MarketSubject, int(value)) if registry else None
    return [subject.department_id] if subject else []


def _site(session: Session, value: str) -> Departments:
    return [site_department(session, value)]


def _alert(session: Session, value: str) -> Departments:
    from cloud.alerts import Alert

    alert = session.get(Alert, int(value))
    return [site_department(session, alert.site_id)] if alert else []


def _document(session: Session, value: str) -> Departments:
    from cloud.workflow.models import DocumentRecord

    doc = session.get(DocumentRecord, int(value))
    return document_departments(session, doc) if doc else []


def document_departments(session: Session, doc: Any) -> Departments:
    """A legal document belongs to the department(s) of its task, case and clue."""
    out: Departments = []
    if doc.task_id is not None:
        out += _task(session, str(doc.task_id))
    if doc.case_id is not None:
        out += _case(session, str(doc.case_id))
    if doc.clue_id is not None:
        out += _clue(session, str(doc.clue_id))
    return out or [None]


def _evidence(session: Session, value: str) -> Departments:
    """Evidence (by SHA-256) belongs to the alerts, clue sources and inspection results that cite it."""
    from cloud.alerts import Alert
    from cloud.workflow.clues import ClueSource
    from cloud.workflow.models import InspectionResult

    if len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        return []
    like = f"%{value}%"
    out: Departments = []
    for site_id in session.exec(select(Alert.site_id).where(cast(col(Alert.evidence), String).like(like))):
        out.append(site_department(session, site_id))
    for clue_id in session.exec(select(ClueSource.clue_id).where(cast(col(ClueSource.extra), String).like(like))):
        out += _clue(session, str(clue_id))
    for task_id in session.exec(
        select(InspectionResult.task_id).where(cast(col(InspectionResult.photos), String).like(like))
    ):
        out += _task(session, str(task_id))
    return out


def _incident(session: Session, value: str) -> Departments:
    from cloud.notify.models import Incident

    incident = session.get(Incident, int(value))
    if incident is None:
        return []
    return incident_departments(session, incident)


def incident_departments(session: Session, incident: Any) -> Departments:
    out: Departments = []
    if incident.site_id:
        out.append(site_department(session, incident.site_id))
    if incident.clue_id is not None:
        out += _clue(session, str(incident.clue_id))
    return out or [None]


def _plan(session: Session, value: str) -> Departments:
    from cloud.workflow.models import RandomPlan

    plan = session.get(RandomPlan, int(value))
    return [plan.department_id] if plan else []


def _pending(session: Session, value: str) -> Departments:
    registry = _registry()
    pending = session.get(registry.PendingDevice, int(value)) if registry else None
    return [site_department(session, pending.site_id)] if pending else []


#: identifiers (path or query parameters) the guard resolves to the departments of their object
RESOLVERS: dict[str, Callable[[Session, str], Departments]] = {
    "clue_id": _clue,
    "order_id": _order,
    "task_id": _task,
    "case_id": _case,
    "subject_id": _subject,
    "site_id": _site,
    "alert_id": _alert,
    "document_id": _document,
    "sha256": _evidence,
    "incident_id": _incident,
    "plan_id": _plan,
    "pending_id": _pending,
}
#: path parameters that only select a part of an object already resolved by another parameter of the path
SUB_KEYS = frozenset({"sensor_id", "agent_id", "item_code", "pause_id", "measure_id", "follow_up_id"})
#: kept for callers of the first version
SCOPED_PARAMS = tuple(RESOLVERS)


def departments_of(session: Session, name: str, value: str) -> Departments | None:
    """The departments of the object ``name=value``; None when ``name`` is not an identifier. A value the
    resolver cannot read (``2.0``, which the route's own int parameter may still accept) resolves to no
    department, so the guard fails closed: 404 for everyone but county-wide users."""
    resolver = RESOLVERS.get(name)
    if resolver is None:
        return None
    try:
        return resolver(session, value)
    except (ValueError, OverflowError):
        return []
    except ModuleNotFoundError:  # pragma: no cover - registry not part of this build
        return None


def _identifiers(request: Request) -> Iterable[tuple[str, str]]:
    for name in RESOLVERS:
        value = request.path_params.get(name)
        if value is None:
            value = request.query_params.get(name)
        if value is not None and str(value) != "":
            yield name, str(value)


def _token_user(request: Request, session: Session) -> User | None:
    from cloud.core.security import TokenError, decode_token
    from cloud.core.users import get_user_by_username

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.query_params.get("access_token")
    if not token:
        return None
    settings = request.app.state.settings
    try:
        claims = decode_token(token, key=settings.jwt_key(), algorithm=settings.jwt_algorithm)
    except TokenError:
        return None
    user = get_user_by_username(session, username=str(claims.get("sub")))
    return user if user is not None and user.is_active else None


def scope_guard(request: Request) -> None:
    """App-wide dependency (every router): on a scoped route, an identifier in the path or query naming an
    object outside the caller's jurisdiction answers 404. Without a valid token it does nothing: the route's
    own authentication answers 401."""
    route = request.scope.get("route")
    if route is None or access_of(route)[0] != "scoped":
        return
    names = list(_identifiers(request))
    if not names:
        return
    with Session(request.app.state.engine) as session:
        user = _token_user(request, session)
        if user is None:
            return
        scope = scope_for(session, user, getattr(request.app.state, "security_settings", None))
        request.state.scope = scope
        if scope.county:
            return
        for name, value in names:
            departments = departments_of(session, name, value)
            if departments is not None and not any(scope.allows(d) for d in departments):
                raise HTTPException(status.HTTP_404_NOT_FOUND, "记录不存在 (not found)")
