"""Login, refresh, logout and the TOTP second factor.

* ``POST /auth/token`` (OAuth2 password form, optional ``totp`` field): access token (≤ 15 min) + refresh token;
  401 bad credentials, 401 ``totp_required``, 423 locked after repeated failures. Every outcome is journaled.
* ``POST /auth/refresh`` with ``Authorization: Bearer <refresh token>``: a new pair; the old refresh token is
  spent (re-use revokes the session).
* ``POST /auth/logout`` ends the session; ``GET /auth/me``; ``POST /auth/totp/setup|enable|disable``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlmodel import SQLModel

from cloud.api.deps import CurrentUser, SessionDep, SettingsDep, TokenDep
from cloud.core.security import TokenError, decode_token, verify_password
from cloud.core.users import UserPublic
from cloud.security import totp
from cloud.security.config import SecuritySettings, get_security_settings
from cloud.security.events import record
from cloud.security.lockout import LoginRefused, attempt_login, security_state
from cloud.security.scoping import county_wide, public
from cloud.security.sessions import SessionInvalid, open_session, refresh, revoke_in

router = APIRouter(prefix="/auth", tags=["auth"])


def security_settings(request: Request) -> SecuritySettings:
    sec: SecuritySettings | None = getattr(request.app.state, "security_settings", None)
    return sec or get_security_settings()


SecurityDep = Annotated[SecuritySettings, Depends(security_settings)]


class Token(SQLModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


class LoginForm(OAuth2PasswordRequestForm):
    """The OAuth2 password form plus an optional ``totp`` field (动态口令)."""

    def __init__(
        self,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
        totp: Annotated[str | None, Form(max_length=16, description="动态口令（已绑定时必填）")] = None,
        scope: Annotated[str, Form()] = "",
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
    ) -> None:
        super().__init__(
            username=username,
            password=password,
            scope=scope,
            grant_type=grant_type,
            client_id=client_id,
            client_secret=client_secret,
        )
        self.totp = totp


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/token", summary="登录获取令牌 (login)", dependencies=[public("login")])
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    sec: SecurityDep,
    form: Annotated[LoginForm, Depends()],
) -> Token:
    try:
        ok = attempt_login(
            session, username=form.username, password=form.password, code=form.totp, sec=sec, client=_client(request)
        )
    except LoginRefused as exc:
        session.commit()  # the failure, the counter and a lockout are kept
        raise HTTPException(
            status_code=exc.status,
            detail={"message": exc.message, "code": exc.code} if exc.code != "bad_credentials" else exc.message,
            headers={"WWW-Authenticate": "Bearer"},
        ) from None
    pair = open_session(session, ok.user, settings, sec, client=_client(request))
    session.commit()
    return Token(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        role=str(ok.user.role),
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
    )


@router.post(
    "/refresh",
    summary="刷新令牌（Authorization: Bearer <refresh_token>）",
    dependencies=[public("token refresh: the refresh token is the credential")],
)
def post_refresh(session: SessionDep, settings: SettingsDep, sec: SecurityDep, token: TokenDep) -> Token:
    try:
        user, pair = refresh(session, token, settings, sec)
    except SessionInvalid:
        session.commit()  # a detected re-use revokes the session
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "会话已失效，请重新登录 (session expired)",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None
    session.commit()
    return Token(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        role=str(user.role),
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="退出登录（结束会话）")
def logout(session: SessionDep, user: CurrentUser, settings: SettingsDep, token: TokenDep) -> None:
    try:
        claims = decode_token(token, key=settings.jwt_key(), algorithm=settings.jwt_algorithm)
    except TokenError:  # pragma: no cover - CurrentUser already checked it
        return
    if claims.get("sid"):
        revoke_in(session, str(claims["sid"]), reason="logout", actor=user.username)
        session.commit()


@router.get("/me", summary="当前用户 (current user)", dependencies=[county_wide("the caller's own account")])
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


class TotpSetup(BaseModel):
    secret: str
    otpauth_uri: str


class TotpCode(BaseModel):
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")


class PasswordConfirm(BaseModel):
    password: str = Field(min_length=1, max_length=256)


@router.post("/totp/setup", summary="绑定动态口令：生成密钥（需再调用 enable 确认）")
def totp_setup(session: SessionDep, user: CurrentUser, sec: SecurityDep, body: PasswordConfirm) -> TotpSetup:
    if not verify_password(body.password, user.password_hash):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "密码错误 (password check failed)")
    state = security_state(session, user)
    if state.totp_enabled:
        raise HTTPException(status.HTTP_409_CONFLICT, "已绑定动态口令，请先解绑 (TOTP already enabled)")
    state.totp_secret = totp.new_secret()
    session.add(state)
    session.commit()
    return TotpSetup(
        secret=state.totp_secret,
        otpauth_uri=totp.provisioning_uri(state.totp_secret, username=user.username, issuer=sec.totp_issuer),
    )


@router.post("/totp/enable", summary="绑定动态口令：输入当前口令确认")
def totp_enable(session: SessionDep, user: CurrentUser, body: TotpCode) -> dict[str, bool]:
    state = security_state(session, user)
    if not state.totp_secret:
        raise HTTPException(status.HTTP_409_CONFLICT, "请先调用 /auth/totp/setup (no pending secret)")
    step = totp.accepted_step(state.totp_secret, body.code, last_step=state.totp_last_step)
    if step is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "动态口令不正确 (wrong code)")
    state.totp_enabled, state.totp_last_step = True, step
    session.add(state)
    record(session, actor=user.username, action="auth.totp_enabled", target_type="user", target_id=user.id or 0)
    session.commit()
    return {"totp_enabled": True}


@router.post("/totp/disable", summary="解绑动态口令（需当前口令）")
def totp_disable(session: SessionDep, user: CurrentUser, body: TotpCode) -> dict[str, bool]:
    state = security_state(session, user)
    if not state.totp_enabled or not state.totp_secret:
        raise HTTPException(status.HTTP_409_CONFLICT, "未绑定动态口令 (TOTP not enabled)")
    if totp.accepted_step(state.totp_secret, body.code, last_step=state.totp_last_step) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "动态口令不正确 (wrong code)")
    state.totp_enabled, state.totp_secret, state.totp_last_step = False, None, None
    session.add(state)
    record(session, actor=user.username, action="auth.totp_disabled", target_type="user", target_id=user.id or 0)
    session.commit()
    return {"totp_enabled": False}
