"""Alerts (read-only: the lifecycle is driven by the edge and by presence)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from cloud.alerts import Alert, AlertPublic, AlertsPublic, AlertStatus, list_alerts
from cloud.api.deps import SessionDep, StaffUser
from cloud.security.scoping import ScopeDep, visible_sites

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", summary="告警列表 (filters: status, site, severity, category, rule, since)")
def get_alerts(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    status_: Annotated[AlertStatus | None, Query(alias="status")] = None,
    site_id: str | None = None,
    severity: str | None = None,
    category: str | None = None,
    rule_id: str | None = None,
    since: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertsPublic:
    rows, total = list_alerts(
        session,
        status=status_,
        site_id=site_id,
        severity=severity,
        category=category,
        rule_id=rule_id,
        since=since,
        site_ids=visible_sites(session, scope),
        offset=offset,
        limit=limit,
    )
    return AlertsPublic(data=[AlertPublic.model_validate(a) for a in rows], count=total)


@router.get("/{alert_id}", summary="告警详情")
def get_alert(session: SessionDep, _: StaffUser, alert_id: int) -> AlertPublic:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "告警不存在")
    return AlertPublic.model_validate(alert)
