"""People helpers: user ids or usernames in event payloads → usernames; a person's department code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, select

from cloud.core.users import User


def usernames(session: Session, values: Iterable[Any] | Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, (str, int)):
        values = [values]
    out: list[str] = []
    for value in values:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            user = session.get(User, int(value))
            if user is not None:
                out.append(user.username)
        elif isinstance(value, str) and value:
            out.append(value)
    return list(dict.fromkeys(out))


def departments(session: Session) -> dict[str, str]:
    """username → department code, from the user accounts, completed by notification contacts."""
    result: dict[str, str] = {}
    try:
        from cloud.notify.models import Contact

        for key, dept in session.exec(select(Contact.key, Contact.department)).all():
            if dept:
                result[key] = dept
    except ModuleNotFoundError:  # pragma: no cover
        pass
    for name, dept in session.exec(select(User.username, User.department)).all():
        if dept:
            result[name] = dept
    return result


def display_names(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """(username → real name, department code → department name) for showing scorecards to people."""
    people = {u: n for u, n in session.exec(select(User.username, User.full_name)).all() if n}
    depts: dict[str, str] = {}
    try:
        from cloud.registry.models import Department

        depts = dict(session.exec(select(Department.code, Department.name)).all())
    except ModuleNotFoundError:  # pragma: no cover - registry not installed
        pass
    return people, depts
