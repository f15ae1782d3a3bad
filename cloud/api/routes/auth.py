"""OAuth2 password flow: ``POST /api/v1/auth/token`` → JWT bearer token."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlmodel import SQLModel

from cloud.api.deps import CurrentUser, SessionDep, SettingsDep
from cloud.core.security import create_token
from cloud.core.users import Role, UserPublic, authenticate

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(SQLModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


@router.post("/token", summary="登录获取令牌 (login)")
def login(session: SessionDep, settings: SettingsDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    user = authenticate(session, username=form.username, password=form.password)
    if user is None or not user.is_active:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="用户名或密码错误 (incorrect username or password)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session.commit()
    lifetime = (
        timedelta(days=settings.device_token_days)
        if user.role == Role.DEVICE
        else timedelta(minutes=settings.access_token_minutes)
    )
    token = create_token(
        subject=user.username,
        role=str(user.role),
        key=settings.jwt_key(),
        lifetime=lifetime,
        algorithm=settings.jwt_algorithm,
    )
    return Token(access_token=token, expires_in=int(lifetime.total_seconds()), role=str(user.role))


@router.get("/me", summary="当前用户 (current user)")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)
