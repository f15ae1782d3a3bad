"""Department scoping (辖区): an inspector sees only the subjects, sites, clues and tasks of their jurisdiction.

* :func:`scope_for` resolves a user's :class:`Scope`: supervisors, administrators and auditors see the county;
  an inspector sees their department and its sub-departments (registry ``department.parent_id``). The
  department comes from the staff profile (``StaffProfile.department_id``), else from ``User.department``
  matched against a registry department code or name. An inspector without a department sees the county when
  ``SENTINEL_SCOPE_UNASSIGNED_INSPECTORS`` is true (small bureaus, the default) and nothing otherwise.
* Routers apply it with :data:`ScopeDep` and two helpers: ``scope.where(Model.department_id)`` for lists and
  ``scope.ensure(row.department_id)`` for single rows, which answers **404** (not 403: the row's existence
  is itself information an out-of-scope user must not get).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import ColumnElement, false, or_
from sqlmodel import Session, col, select

from cloud.api.deps import CurrentUser, SessionDep
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


def scope_for(session: Session, user: User, sec: SecuritySettings | None = None) -> Scope:
    sec = sec or get_security_settings()
    if Role(user.role) in COUNTY_ROLES:
        return Scope(user.username, None)
    home = _home_department(session, user)
    if home is None:
        return Scope(user.username, None if sec.scope_unassigned_inspectors else frozenset())
    return Scope(user.username, _with_children(session, home))


def get_scope(request: Request, session: SessionDep, user: CurrentUser) -> Scope:
    """FastAPI dependency: the current user's scope."""
    return scope_for(session, user, getattr(request.app.state, "security_settings", None))


ScopeDep = Annotated[Scope, Depends(get_scope)]


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


def _department_of(session: Session, name: str, value: str) -> tuple[bool, int | None]:
    """(row exists, its department) for a known path parameter; (True, None) when the parameter is not scoped."""
    try:
        if name == "clue_id":
            from cloud.workflow.clues import Clue

            clue = session.get(Clue, int(value))
            return (clue is not None, clue.department_id if clue else None)
        if name == "order_id":
            from cloud.workflow.clues import Clue
            from cloud.workflow.models import WorkOrder

            order = session.get(WorkOrder, int(value))
            if order is None:
                return (False, None)
            clue = session.get(Clue, order.clue_id) if order.clue_id else None
            return (True, clue.department_id if clue else None)
        if name == "task_id":
            from cloud.workflow.models import InspectionTask

            task = session.get(InspectionTask, int(value))
            return (task is not None, task.department_id if task else None)
        if name == "case_id":
            from cloud.workflow.models import EnforcementCase

            case = session.get(EnforcementCase, int(value))
            return (case is not None, getattr(case, "department_id", None) if case else None)
        registry = _registry()
        if registry is not None and name == "subject_id":
            subject = session.get(registry.MarketSubject, int(value))
            return (subject is not None, subject.department_id if subject else None)
        if registry is not None and name == "site_id":
            return (session.get(registry.Site, value) is not None, site_department(session, value))
    except (ValueError, ModuleNotFoundError):
        return (True, None)
    return (True, None)


#: path parameters the guard resolves to a department
SCOPED_PARAMS = ("clue_id", "order_id", "task_id", "case_id", "subject_id", "site_id")


def scope_guard(request: Request, session: SessionDep, scope: Annotated[Scope, Depends(get_scope)]) -> None:
    """Router dependency: a path naming a clue, work order, task, case, subject or site outside the caller's
    jurisdiction answers 404. Add to a router with ``dependencies=[Depends(scope_guard)]``."""
    if scope.county:
        return
    for name in SCOPED_PARAMS:
        value = request.path_params.get(name)
        if value is None:
            continue
        exists, department = _department_of(session, name, str(value))
        if exists:
            scope.ensure(department)
