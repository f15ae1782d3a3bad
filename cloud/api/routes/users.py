"""User administration with separated administrator roles (三员分立, GB/T 22239).

* system admin (``admin``): creates accounts, edits names/departments, resets passwords, deactivates;
  may assign only ordinary roles (supervisor, inspector, device).
* security admin (``security_admin``): assigns and changes roles (incl. the privileged ones), unlocks accounts,
  revokes sessions. Bootstrap: while no active security admin exists, the system admin may create the first.
* audit admin (``auditor``): reads the account list (and the journal, see ``/audit``); changes nothing.
* Nobody changes their own role. Every change is journaled (``user.created``, ``user.updated``,
  ``user.role_changed``, ``user.unlocked``, ``user.sessions_revoked``); a role change, password reset or
  deactivation ends the user's sessions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.api.deps import SessionDep, require_roles
from cloud.core.users import (
    PRIVILEGED_ROLES,
    Role,
    User,
    UserCreate,
    UserPublic,
    UserUpdate,
    create_user,
    update_user,
)
from cloud.security.events import record
from cloud.security.lockout import active_locks, unlock
from cloud.security.models import AccountSecurity, LoginThrottle
from cloud.security.scoping import county_wide
from cloud.security.sessions import revoke_all

router = APIRouter(
    prefix="/users", tags=["users"], dependencies=[county_wide("user administration: security admin and auditor only")]
)

ReaderUser = Annotated[User, Depends(require_roles(Role.SECURITY_ADMIN, Role.AUDITOR))]
SecurityAdmin = Annotated[User, Depends(require_roles(Role.SECURITY_ADMIN, admin=False))]
Manager = Annotated[User, Depends(require_roles(Role.SECURITY_ADMIN))]


class LoginLockPublic(SQLModel):
    """登录锁定：某用户自某地址连续登录失败后被锁定 (a login lock of one user from one client address)."""

    user_id: int
    username: str | None = None
    client: str
    locked_until: datetime
    last_failed_at: datetime | None = None


class UserSecurityPublic(UserPublic):
    locked: bool = False
    totp_enabled: bool = False
    locks: list[LoginLockPublic] = Field(default_factory=list, description="当前的登录锁定（按客户端地址）")


def _lock_public(row: LoginThrottle, username: str | None) -> LoginLockPublic:
    assert row.locked_until is not None
    return LoginLockPublic(
        user_id=row.user_id,
        username=username,
        client=row.client,
        locked_until=row.locked_until,
        last_failed_at=row.last_failed_at,
    )


class UsersPublic(SQLModel):
    data: list[UserSecurityPublic]
    count: int


def _public(session: Session, user: User) -> UserSecurityPublic:
    from cloud.core.db import utcnow

    state = session.get(AccountSecurity, user.id) if user.id is not None else None
    locks = [_lock_public(t, user.username) for t in active_locks(session, user_id=user.id)] if user.id else []
    locked = bool(state and state.locked_until and state.locked_until > utcnow()) or bool(locks)
    return UserSecurityPublic.model_validate(
        user, update={"locked": locked, "totp_enabled": bool(state and state.totp_enabled), "locks": locks}
    )


def _security_admin_exists(session: Session) -> bool:
    row = session.exec(
        select(User.id).where(User.role == Role.SECURITY_ADMIN, User.is_active == True)  # noqa: E712
    ).first()
    return row is not None


def _may_grant(session: Session, actor: User, role: Role) -> bool:
    if actor.role == Role.SECURITY_ADMIN:
        return True
    if actor.role == Role.ADMIN:
        if role not in PRIVILEGED_ROLES:
            return True
        return role == Role.SECURITY_ADMIN and not _security_admin_exists(session)  # bootstrap
    return False


def _forbid_grant(role: Role) -> HTTPException:
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"无权授予角色 {role.value}：特权角色由安全管理员分配 (privileged roles are granted by the security admin)",
    )


@router.get("/login-locks", summary="当前的登录锁定（安全管理员；按用户与客户端地址）")
def get_login_locks(session: SessionDep, _: SecurityAdmin) -> list[LoginLockPublic]:
    rows = active_locks(session)
    names = {u.id: u.username for u in session.exec(select(User).where(col(User.id).in_({r.user_id for r in rows})))}
    return [_lock_public(r, names.get(r.user_id)) for r in rows]


@router.get("", summary="用户列表")
def list_users(
    session: SessionDep,
    _: ReaderUser,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UsersPublic:
    users = session.exec(select(User).order_by(col(User.id)).offset(offset).limit(limit)).all()
    return UsersPublic(data=[_public(session, u) for u in users], count=len(users))


@router.post("", status_code=status.HTTP_201_CREATED, summary="新建用户")
def post_user(session: SessionDep, actor: Manager, user_in: UserCreate) -> UserPublic:
    if not _may_grant(session, actor, user_in.role):
        raise _forbid_grant(user_in.role)
    try:
        user = create_user(session, user_create=user_in)
        record(
            session,
            actor=actor.username,
            action="user.created",
            target_type="user",
            target_id=user.id or 0,
            payload={"username": user.username, "role": str(user.role), "department": user.department},
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"用户名 {user_in.username} 已存在") from None
    return UserPublic.model_validate(user)


@router.patch("/{user_id}", summary="修改用户（角色由安全管理员修改）")
def patch_user(session: SessionDep, actor: Manager, user_id: int, user_in: UserUpdate) -> UserPublic:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "用户不存在")
    changes = user_in.model_dump(exclude_unset=True)
    before_role = user.role
    if "role" in changes and changes["role"] is not None and Role(changes["role"]) != before_role:
        new_role = Role(changes["role"])
        if user.id == actor.id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "不能修改自己的角色 (cannot change your own role)")
        if actor.role != Role.SECURITY_ADMIN and not (
            _may_grant(session, actor, new_role) and before_role not in PRIVILEGED_ROLES
        ):
            raise _forbid_grant(new_role)
    if actor.role == Role.SECURITY_ADMIN and set(changes) - {"role", "is_active"}:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "安全管理员只能修改角色与启用状态 (security admin: role and is_active only)"
        )
    try:
        update_user(session, user=user, user_update=user_in)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    payload: dict[str, Any] = {"username": user.username, "fields": sorted(k for k in changes if k != "password")}
    if "password" in changes:
        payload["password_reset"] = True
    if user.role != before_role:
        record(
            session,
            actor=actor.username,
            action="user.role_changed",
            target_type="user",
            target_id=user_id,
            payload={"username": user.username, "from": str(before_role), "to": str(user.role)},
        )
    record(session, actor=actor.username, action="user.updated", target_type="user", target_id=user_id, payload=payload)
    if user.role != before_role or "password" in changes or changes.get("is_active") is False:
        revoke_all(session, user_id, reason="account_changed")
    session.commit()
    return UserPublic.model_validate(user)


@router.post("/{user_id}/unlock", summary="解除登录锁定（安全管理员）")
def post_unlock(
    session: SessionDep,
    actor: SecurityAdmin,
    user_id: int,
    client: Annotated[str | None, Query(max_length=64, description="只解除该地址的锁定（默认全部）")] = None,
) -> UserSecurityPublic:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "用户不存在")
    unlock(session, user, actor=actor.username, client=client)
    session.commit()
    return _public(session, user)


@router.post("/{user_id}/revoke-sessions", summary="强制下线（安全管理员）")
def post_revoke_sessions(session: SessionDep, actor: SecurityAdmin, user_id: int) -> dict[str, int]:
    if session.get(User, user_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "用户不存在")
    count = revoke_all(session, user_id, reason="revoked_by_security_admin")
    record(
        session,
        actor=actor.username,
        action="user.sessions_revoked",
        target_type="user",
        target_id=user_id,
        payload={"sessions": count},
    )
    session.commit()
    return {"revoked": count}
