"""Security administration and the journaled view of personal data.

* ``GET /admin/security/policy`` the effective security settings (system and security admins).
* ``GET /admin/devices``, ``POST /admin/devices/{site_id}/{agent_id}/credentials`` (security admin): per-agent
  MQTT credentials; the password is in the answer once. The broker files are rendered by
  ``sentinel device render`` on the broker host.
* ``GET /admin/kiosks``, ``POST /admin/kiosks``, ``POST /admin/kiosks/{kiosk_id}/revoke`` (security admin):
  registered self-service terminals (:mod:`cloud.security.kiosks`); the credential is in the answer once.
* ``GET /pii/work-orders/{order_id}?reason=…`` the complainant's clear name, phone and ID for roles and duties
  allowed to see them (:data:`cloud.security.masking.REVEAL_ROLES`/``REVEAL_DUTIES``), within the caller's
  jurisdiction; every view journaled as ``pii.revealed`` with the reason. Everywhere else they are masked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from cloud.api.deps import CurrentUser, SessionDep, get_engine, require_roles
from cloud.core.users import Role, User
from cloud.security import kiosks, masking, provisioning
from cloud.security.config import SecuritySettings, get_security_settings
from cloud.security.events import record_now
from cloud.security.scoping import ScopeDep, county_wide

router = APIRouter(tags=["security"])

SecurityAdmin = Annotated[User, Depends(require_roles(Role.SECURITY_ADMIN, admin=False))]
Admins = Annotated[User, Depends(require_roles(Role.SECURITY_ADMIN))]


@router.get(
    "/admin/security/policy",
    summary="安全策略（口令、锁定、会话、限流）",
    dependencies=[county_wide("security policy: administrators only")],
)
def get_policy(request: Request, _: Admins) -> dict[str, Any]:
    sec: SecuritySettings = getattr(request.app.state, "security_settings", None) or get_security_settings()
    return sec.model_dump(mode="json")


@router.get(
    "/admin/devices",
    summary="设备 MQTT 账号列表（安全管理员）",
    dependencies=[county_wide("device accounts: security admin only")],
)
def get_devices(session: SessionDep, _: SecurityAdmin) -> list[dict[str, Any]]:
    return [
        {
            "username": r.username,
            "kind": r.kind,
            "site_id": r.site_id,
            "agent_id": r.agent_id,
            "created_at": r.created_at.isoformat(),
            "created_by": r.created_by,
        }
        for r in provisioning.active(session)
    ]


@router.post(
    "/admin/devices/{site_id}/{agent_id}/credentials",
    status_code=status.HTTP_201_CREATED,
    summary="签发/轮换边缘代理 MQTT 账号（密码只显示一次）",
)
def post_device_credentials(session: SessionDep, user: SecurityAdmin, site_id: str, agent_id: str) -> dict[str, Any]:
    from protocols import ProtocolError

    try:
        issued = provisioning.provision_agent(session, site_id, agent_id, actor=user.username)
    except (ProtocolError, provisioning.UnknownSite) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    return {"username": issued.username, "password": issued.password, "edge_config": issued.edge_snippet()}


KIOSKS = county_wide("kiosk terminal credentials: security admin only")


@router.get("/admin/kiosks", summary="已登记的自助终端（安全管理员）", dependencies=[KIOSKS])
def get_kiosks(session: SessionDep, _: SecurityAdmin) -> list[kiosks.KioskPublic]:
    return [kiosks.public(row) for row in kiosks.listing(session)]


@router.post(
    "/admin/kiosks",
    status_code=status.HTTP_201_CREATED,
    summary="登记自助终端（凭据只显示一次；终端按台限流，未登记的按来源地址从严限流）",
    dependencies=[KIOSKS],
)
def post_kiosk(session: SessionDep, user: SecurityAdmin, body: kiosks.KioskCreate) -> kiosks.KioskIssued:
    try:
        issued = kiosks.register(session, body, actor=user.username)
    except kiosks.KioskError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    session.commit()
    return issued


@router.post("/admin/kiosks/{kiosk_id}/revoke", summary="停用自助终端凭据", dependencies=[KIOSKS])
def revoke_kiosk(session: SessionDep, user: SecurityAdmin, kiosk_id: int) -> kiosks.KioskPublic:
    try:
        row = kiosks.revoke(session, kiosk_id, actor=user.username)
    except kiosks.KioskError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    session.commit()
    return kiosks.public(row)


def _may_reveal(session: Any, user: User) -> bool:
    if str(user.role) in masking.REVEAL_ROLES:
        return True
    try:
        from cloud.workflow.service import actor_for
    except ModuleNotFoundError:  # pragma: no cover
        return False
    duties = {d.value for d in actor_for(session, user).duties}
    return bool(duties & masking.REVEAL_DUTIES)


@router.get("/pii/work-orders/{order_id}", summary="查看投诉/举报人个人信息明文（须说明理由，全程留痕）")
def get_work_order_pii(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: ScopeDep,
    order_id: int,
    reason: Annotated[str, Query(min_length=2, max_length=200, description="查看理由，例如 回访投诉人")],
) -> dict[str, Any]:
    try:
        from cloud.workflow.clues import Clue
        from cloud.workflow.models import WorkOrder
    except ModuleNotFoundError:  # pragma: no cover
        raise HTTPException(status.HTTP_404_NOT_FOUND, "工单不存在") from None
    if not _may_reveal(session, user):
        record_now(
            get_engine(request),
            actor=user.username,
            action="pii.revealed",
            target_type="work_order",
            target_id=order_id,
            outcome="denied",
            payload={"reason": reason},
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, "无权查看个人信息明文 (not allowed to view personal data)")
    order = session.get(WorkOrder, order_id)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "工单不存在")
    clue = session.get(Clue, order.clue_id) if order.clue_id else None
    scope.ensure(clue.department_id if clue else None, "工单")
    fields = ["complainant_name", "complainant_phone", "complainant_id_no", "complainant_address"]
    record_now(
        get_engine(request),
        actor=user.username,
        action="pii.revealed",
        target_type="work_order",
        target_id=order_id,
        payload={"reason": reason, "fields": [f for f in fields if getattr(order, f)]},
    )
    request.state.pii_revealed = True  # the masking middleware leaves this one answer in clear
    return {"work_order_id": order_id, **{f: getattr(order, f) for f in fields}}
