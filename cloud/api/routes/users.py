"""User administration (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select

from cloud.api.deps import AdminUser, SessionDep
from cloud.core.users import User, UserCreate, UserPublic, UserUpdate, create_user, update_user

router = APIRouter(prefix="/users", tags=["users"])


class UsersPublic(SQLModel):
    data: list[UserPublic]
    count: int


@router.get("", summary="用户列表")
def list_users(session: SessionDep, _: AdminUser, offset: int = 0, limit: int = 100) -> UsersPublic:
    users = session.exec(select(User).order_by(col(User.id)).offset(offset).limit(limit)).all()
    return UsersPublic(data=[UserPublic.model_validate(u) for u in users], count=len(users))


@router.post("", status_code=status.HTTP_201_CREATED, summary="新建用户")
def post_user(session: SessionDep, _: AdminUser, user_in: UserCreate) -> UserPublic:
    try:
        user = create_user(session, user_create=user_in)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"用户名 {user_in.username} 已存在") from None
    return UserPublic.model_validate(user)


@router.patch("/{user_id}", summary="修改用户")
def patch_user(session: SessionDep, _: AdminUser, user_id: int, user_in: UserUpdate) -> UserPublic:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "用户不存在")
    try:
        update_user(session, user=user, user_update=user_in)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    return UserPublic.model_validate(user)
