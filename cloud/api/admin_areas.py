"""The 系统管理 pages as a dependency: ``AreaUser("sites")`` admits only the account roles that
``[administration.sites]`` of ``cloud/rules/duties.toml`` names, and refuses everyone else naming the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status

from cloud.api.deps import CurrentUser
from cloud.core.users import ROLE_LABELS, Role, User


def area_user(area: str) -> Callable[..., Any]:
    def dependency(user: CurrentUser) -> User:
        from cloud.workflow.duties import duty_rules

        rule = duty_rules().administration[area]
        if user.role not in rule.roles:
            who = "、".join(ROLE_LABELS[Role(r)] for r in rule.roles)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"无权限：“{rule.zh}”管理须由{who}办理（职责规则 administration.{area}） / "
                f"the {area} administration is for {[str(r) for r in rule.roles]}",
            )
        return user

    dependency.__name__ = f"administers_{area}"
    return dependency


StaffAdmin = Annotated[User, Depends(area_user("staff"))]
DepartmentsAdmin = Annotated[User, Depends(area_user("departments"))]
SubjectsAdmin = Annotated[User, Depends(area_user("subjects"))]
SitesAdmin = Annotated[User, Depends(area_user("sites"))]
