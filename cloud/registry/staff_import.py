"""CSV import of staff: accounts, 执法证号, department and business duties (kind ``staff`` of csv_imports.toml).

A row is matched by its login name: a new one creates the account (with a one-time initial password, shown once in
the answer) and its staff profile; a known one updates name, department, 执法证号 and duties. Duties are checked with
the rules of ``cloud/rules/duties.toml`` (an administrator row with a business duty is refused with the rule's
reason); the importing system administrator may create and set only ordinary account roles, as in ``/users``.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from cloud.core.users import PRIVILEGED_ROLES, ROLE_LABELS, Role, User, UserCreate, create_user
from cloud.registry.csv_engine import ImportOutcome, Row, RowRefused, changed, run_import, validation_reason
from cloud.registry.models import Department
from cloud.security.events import record
from cloud.security.sessions import revoke_all
from cloud.workflow.duties import DutyRuleError, check_grant, default_duties
from cloud.workflow.models import StaffProfile
from cloud.workflow.states import ROLE_LABELS as DUTY_LABELS
from cloud.workflow.states import Role as Duty

_ROLE_BY_TEXT = {**{r.value: r for r in Role}, **{zh: r for r, zh in ROLE_LABELS.items()}}
_DUTY_BY_TEXT = {**{d.value: d for d in Duty}, **{zh: d for d, zh in DUTY_LABELS.items()}}


def initial_password() -> str:
    """A one-time initial password satisfying the complexity policy (four character classes)."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{core}-{secrets.choice(string.ascii_uppercase)}{secrets.choice(string.digits)}"


@dataclass
class StaffApplier:
    actor: str
    passwords: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, session: Session, row: Row) -> dict[str, str]:
        username: str = row.get("username")
        role = self._role(row)
        duties = self._duties(row)
        department = self._department(session, row)
        if duties is None:
            duties = sorted(default_duties(role.value))
        try:
            check_grant(role.value, duties)  # 三员分立 and the grants of duties.toml
        except DutyRuleError as exc:
            raise RowRefused("duties", exc.message) from None
        user = session.exec(select(User).where(User.username == username)).first()
        done: dict[str, str] = {}
        if user is None:
            if role in PRIVILEGED_ROLES:
                raise RowRefused("role", f"不能导入{ROLE_LABELS[role]}账号：特权角色由安全管理员新建和分配（三员分立）")
            password = initial_password()
            try:
                user_in = UserCreate(
                    username=username,
                    full_name=row.get("full_name"),
                    role=role,
                    department=department.code if department else None,
                    password=password,
                )
            except ValidationError as exc:
                key, reason = validation_reason(exc)
                raise RowRefused(key if key in ("username", "full_name") else None, reason) from None
            user = create_user(session, user_create=user_in)
            record(
                session,
                actor=self.actor,
                action="user.created",
                target_type="user",
                target_id=user.id or 0,
                payload={"username": username, "role": role.value, "department": user.department, "via": "csv"},
            )
            self.passwords.append({"username": username, "full_name": user.full_name, "password": password})
            done["user"] = "created"
        else:
            if user.role != role and (user.role in PRIVILEGED_ROLES or role in PRIVILEGED_ROLES):
                raise RowRefused(
                    "role",
                    f"账号 {username} 现为{ROLE_LABELS[user.role]}，"
                    f"改为{ROLE_LABELS[role]}须由安全管理员办理（三员分立）",
                )
            before = user.role
            code = department.code if department else None
            if changed(user, {"full_name": row.get("full_name"), "role": role, "department": code}):
                session.add(user)
                fields = ["full_name", "department"] + (["role"] if before != role else [])
                record(
                    session,
                    actor=self.actor,
                    action="user.updated",
                    target_type="user",
                    target_id=user.id or 0,
                    payload={"username": username, "fields": fields, "via": "csv"},
                )
                if before != role:
                    record(
                        session,
                        actor=self.actor,
                        action="user.role_changed",
                        target_type="user",
                        target_id=user.id or 0,
                        payload={"username": username, "from": before.value, "to": role.value},
                    )
                    revoke_all(session, user.id or 0, reason="account_changed")
                done["user"] = "updated"
            else:
                done["user"] = "unchanged"
        if role in PRIVILEGED_ROLES:  # administrators hold no duties: no staff profile
            return done
        done["staff"] = self._profile(session, user, duties, department, row.get("cert_no"))
        return done

    def _profile(
        self, session: Session, user: User, duties: list[str], department: Department | None, cert_no: str | None
    ) -> str:
        assert user.id is not None
        profile = session.exec(select(StaffProfile).where(StaffProfile.user_id == user.id)).first()
        created = profile is None
        profile = profile or StaffProfile(user_id=user.id)
        values: dict[str, Any] = {
            "duties": sorted(duties),
            "department_id": department.id if department else None,
            "cert_no": cert_no,
        }
        if not created and not changed(profile, values):
            return "unchanged"
        if created:
            changed(profile, values)
        session.add(profile)
        session.flush()
        record(
            session,
            actor=self.actor,
            action="staff.updated",
            target_type="user",
            target_id=user.id,
            payload={**values, "via": "csv"},
        )
        return "created" if created else "updated"

    @staticmethod
    def _role(row: Row) -> Role:
        text = row.get("role")
        if not text:
            return Role.INSPECTOR
        role = _ROLE_BY_TEXT.get(text) or _ROLE_BY_TEXT.get(text.lower())
        if role is None or role is Role.DEVICE:
            names = "、".join(ROLE_LABELS[r] for r in Role if r is not Role.DEVICE)
            raise RowRefused("role", f"未知的账号角色“{text}”（可填：{names}）")
        return role

    @staticmethod
    def _duties(row: Row) -> list[str] | None:
        texts: list[str] = row.get("duties") or []
        if not texts:
            return None
        out: list[str] = []
        for text in texts:
            duty = _DUTY_BY_TEXT.get(text) or _DUTY_BY_TEXT.get(text.lower())
            if duty is None or duty is Duty.SYSTEM:
                names = "、".join(DUTY_LABELS[d] for d in Duty if d is not Duty.SYSTEM)
                raise RowRefused("duties", f"未知的业务职责“{text}”（可填：{names}）")
            out.append(duty.value)
        return out

    @staticmethod
    def _department(session: Session, row: Row) -> Department | None:
        code = row.get("department_code")
        if not code:
            return None
        department = session.exec(select(Department).where(Department.code == code)).first()
        if department is None:
            raise RowRefused("department_code", f"部门编码 {code} 不存在（请先在“部门”页新增）")
        return department


def import_staff(session: Session, data: bytes | str, *, actor: str, dry_run: bool) -> ImportOutcome:
    applier = StaffApplier(actor)
    outcome = run_import(session, "staff", data, applier, dry_run=dry_run)
    if outcome.imported:
        outcome.extra["initial_passwords"] = applier.passwords
    return outcome
