"""Users and roles (model family: UserBase / UserCreate / UserUpdate / User(table) / UserPublic)."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import Engine, String
from sqlmodel import Field, Session, SQLModel, select

from cloud.core.config import Settings
from cloud.core.db import UTCDateTime
from cloud.core.models import update_model
from cloud.core.security import hash_password, needs_rehash, verify_password

log = logging.getLogger(__name__)


class Role(StrEnum):
    ADMIN = "admin"  # 系统管理员 (accounts, configuration; not roles, not the audit trail)
    SECURITY_ADMIN = "security_admin"  # 安全管理员 (roles, lockouts, device credentials, certificates)
    SUPERVISOR = "supervisor"  # 监管负责人
    INSPECTOR = "inspector"  # 执法检查人员
    AUDITOR = "auditor"  # 审计管理员 (read-only, audit trail: verify, export)
    DEVICE = "device"  # edge agents and integrations


ROLE_LABELS: dict[Role, str] = {
    Role.ADMIN: "系统管理员",
    Role.SECURITY_ADMIN: "安全管理员",
    Role.SUPERVISOR: "监管负责人",
    Role.INSPECTOR: "执法检查人员",
    Role.AUDITOR: "审计管理员",
    Role.DEVICE: "设备账号",
}


def _now() -> datetime:
    return datetime.now(UTC)


class UserBase(SQLModel):
    username: str = Field(
        min_length=2, max_length=64, schema_extra={"pattern": r"^[A-Za-z0-9_.@-]+$"}, index=True, unique=True
    )
    full_name: str = Field(default="", max_length=64, description="姓名")
    role: Role = Field(default=Role.INSPECTOR, sa_type=String(16))
    department: str | None = Field(default=None, max_length=64, description="科室/所")
    is_active: bool = True


class UserCreate(UserBase):
    password: str = Field(min_length=10, max_length=128)

    @field_validator("password")
    @classmethod
    def _complex_enough(cls, value: str) -> str:
        from cloud.security.passwords import check_password

        return check_password(value)


class UserUpdate(update_model(UserBase, exclude={"username"})):  # type: ignore[misc]
    """修改用户：省略的字段不变，边界与新建相同；用户名不可修改；口令复杂度在修改时检查。"""

    password: str | None = Field(default=None, min_length=10, max_length=128)


class User(UserBase, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    password_hash: str
    created_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserPublic(UserBase):
    id: int
    created_at: datetime
    last_login_at: datetime | None = None


def get_user_by_username(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def create_user(session: Session, *, user_create: UserCreate) -> User:
    user = User.model_validate(user_create, update={"password_hash": hash_password(user_create.password)})
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, *, user: User, user_update: UserUpdate) -> User:
    data = user_update.model_dump(exclude_unset=True)
    password = data.pop("password", None)
    if password:
        UserCreate.model_validate({"username": user.username, "password": password})  # complexity check
        user.password_hash = hash_password(password)
    user.sqlmodel_update(data)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    user = get_user_by_username(session, username=username)
    if not verify_password(password, user.password_hash if user else None) or user is None:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = _now()
    session.add(user)
    return user


def ensure_admin(engine: Engine, settings: Settings) -> str | None:
    """Create the bootstrap admin when no admin exists.

    The password comes from ``SENTINEL_ADMIN_PASSWORD``; otherwise one is generated and **returned** so
    the caller prints it once. Returns ``None`` when an admin already existed or the password came from
    the environment.
    """
    from cloud.core.db import writer

    with Session(writer(engine)) as session:
        if session.exec(select(User).where(User.role == Role.ADMIN)).first() is not None:
            return None
        generated = settings.admin_password is None
        password = (
            secrets.token_urlsafe(12) + "-Aa1"
            if settings.admin_password is None
            else settings.admin_password.get_secret_value()
        )
        user = User(
            username=settings.admin_username,
            full_name="系统管理员",
            role=Role.ADMIN,
            password_hash=hash_password(password),
        )
        session.add(user)
        session.commit()
        log.info("bootstrap admin %r created", settings.admin_username)
        return password if generated else None


#: The separated administrator roles (三员分立): no account may hold two of them, and none may grant them itself.
PRIVILEGED_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR})

from cloud.security import models as _security_models  # noqa: E402,F401 - registers the security tables
