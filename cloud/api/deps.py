"""Typed FastAPI dependencies shared by every router.

* ``SessionDep``: a SQLModel session on the business DB (SQLite write lock taken at BEGIN for non-GET
  requests); routes call ``session.commit()`` themselves.
* ``CurrentUser``: the authenticated, active user from the bearer token (401 otherwise).
* ``require_roles(Role.SUPERVISOR, ...)``: a dependency that returns the user or answers 403; admins pass
  unless ``admin=False``. Use as ``user: Annotated[User, Depends(require_roles(...))]`` or in
  ``dependencies=[...]`` of a router.
* ``SettingsDep``, ``EngineDep``, ``StoreDep``: the app's settings, engine and telemetry store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session

from cloud.core.config import Settings
from cloud.core.db import writer
from cloud.core.security import TokenError, decode_token
from cloud.core.users import Role, User, get_user_by_username

if TYPE_CHECKING:
    from cloud.telemetry.store import TelemetryStore

API_PREFIX = "/api/v1"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_store(request: Request) -> TelemetryStore:
    store: TelemetryStore = request.app.state.store
    return store


def get_session(request: Request) -> Iterator[Session]:
    engine = get_engine(request)
    bind = engine if request.method in ("GET", "HEAD", "OPTIONS") else writer(engine)
    with Session(bind) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
StoreDep = Annotated["TelemetryStore", Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
TokenDep = Annotated[str, Depends(oauth2_scheme)]

_UNAUTHORIZED = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="未登录或登录已过期 (not authenticated)",
    headers={"WWW-Authenticate": "Bearer"},
)


def check_session(request: Request, claims: dict[str, Any]) -> None:
    from cloud.security.config import get_security_settings
    from cloud.security.sessions import SessionInvalid, check_access

    sec = getattr(request.app.state, "security_settings", None) or get_security_settings()
    try:
        check_access(get_engine(request), claims, sec)
    except SessionInvalid:
        raise _UNAUTHORIZED from None


def get_current_user(request: Request, session: SessionDep, token: TokenDep, settings: SettingsDep) -> User:
    try:
        claims = decode_token(token, key=settings.jwt_key(), algorithm=settings.jwt_algorithm)
    except TokenError:
        raise _UNAUTHORIZED from None
    check_session(request, claims)  # token type, session revoked or idle; before this request's transaction
    user = get_user_by_username(session, username=str(claims["sub"]))
    if user is None or not user.is_active:
        raise _UNAUTHORIZED
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role | str, admin: bool = True) -> Callable[..., Any]:
    """A dependency allowing only users with one of ``roles`` (admins too unless ``admin=False``)."""
    allowed = {Role(r) for r in roles} | ({Role.ADMIN} if admin else set())

    def dependency(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"无权限：需要角色 {', '.join(sorted(allowed))} (forbidden for role {user.role})",
            )
        return user

    dependency.__name__ = f"require_{'_'.join(sorted(allowed))}"
    return dependency


#: Roles that may read operational data (alerts, clues, telemetry).
STAFF_ROLES: tuple[Role, ...] = (Role.SUPERVISOR, Role.INSPECTOR, Role.AUDITOR)
AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
StaffUser = Annotated[User, Depends(require_roles(*STAFF_ROLES))]


def get_stream_user(request: Request, settings: SettingsDep, access_token: str | None = None) -> User:
    """The user of a Server-Sent-Events request: a bearer header, or ``?access_token=`` (browsers' EventSource
    cannot set headers). Same checks as :func:`get_current_user`: access tokens only, session not revoked or idle."""
    from sqlmodel import Session as _Session

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else access_token
    if not token:
        raise _UNAUTHORIZED
    try:
        claims = decode_token(token, key=settings.jwt_key(), algorithm=settings.jwt_algorithm)
    except TokenError:
        raise _UNAUTHORIZED from None
    check_session(request, claims)
    with _Session(request.app.state.engine) as session:
        user = get_user_by_username(session, username=str(claims["sub"]))
    if user is None or not user.is_active:
        raise _UNAUTHORIZED
    return user


StreamUser = Annotated[User, Depends(get_stream_user)]
