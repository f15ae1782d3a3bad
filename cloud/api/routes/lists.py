"""Lists, search, Excel export and statistics (列表检索、导出与统计) of clues, tasks, cases and complaints.

* ``GET /lists/{kind}`` keyword search (``q``), ``status``, ``domain``, ``department_id``, ``since``/``until``
  (Beijing dates, inclusive): Chinese display values, the total and the overdue count.
* ``GET /lists/{kind}/export.xlsx`` the same rows as an XLSX workbook (real number and date cells, Chinese headings).
* ``GET /lists/{kind}/statistics`` counts by status, domain, department, category and month, and the overdue count.

Every query is limited to the caller's jurisdiction (scope). The lists themselves are data (:mod:`cloud.lists`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from cloud import lists
from cloud.api.deps import SessionDep, StaffUser
from cloud.security.scoping import ScopeDep

router = APIRouter(prefix="/lists", tags=["lists 列表与统计"])


def _day(value: str | None, what: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise HTTPException(422, f"{what}应为日期，例如 2026-12-01 / {what} must be a date") from None


def _filters(
    q: Annotated[str | None, Query(max_length=100, description="关键词：编号、标题、主体、当事人、诉求…")] = None,
    status: Annotated[str | None, Query(max_length=32, description="状态（流程状态代码）")] = None,
    domain: Annotated[str | None, Query(max_length=32, description="领域：food / drug / special_equipment")] = None,
    department_id: int | None = None,
    since: Annotated[str | None, Query(max_length=40, description="起始日期（含，北京时间），YYYY-MM-DD")] = None,
    until: Annotated[str | None, Query(max_length=40, description="截止日期（含，北京时间），YYYY-MM-DD")] = None,
) -> lists.Filters:
    first, last = _day(since, "起始日期"), _day(until, "截止日期")
    if first and last and first > last:
        raise HTTPException(422, "起始日期不能晚于截止日期 / since must not be after until")
    return lists.Filters(q=q, status=status, domain=domain, department_id=department_id, since=first, until=last)


FiltersDep = Annotated[lists.Filters, Depends(_filters)]


def _columns(spec: lists.ListSpec) -> list[dict[str, str]]:
    return [{"key": c.key, "heading": c.heading, "type": c.type} for c in spec.columns]


def _routes(kind: str) -> None:
    """The three routes of one list (one per list, not a ``{kind}`` parameter: every path names what it shows)."""
    title = lists.LISTS[kind].title

    def get_list(
        session: SessionDep,
        _: StaffUser,
        scope: ScopeDep,
        filters: FiltersDep,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        try:
            page = lists.search(session, kind, filters, scope, offset=offset, limit=limit)
        except lists.ListError as exc:
            raise HTTPException(422, str(exc)) from None
        return {
            "kind": kind,
            "title": page.spec.title,
            "columns": _columns(page.spec),
            "statuses": lists.status_options(kind),
            "count": page.count,
            "overdue": page.overdue,
            "rows": [{k: lists.display(v) for k, v in row.items()} for row in page.rows],
        }

    def export_list(session: SessionDep, _: StaffUser, scope: ScopeDep, filters: FiltersDep) -> Response:
        try:
            page = lists.search(session, kind, filters, scope, limit=100_000)
        except lists.ListError as exc:
            raise HTTPException(422, str(exc)) from None
        name = f"{kind}-{dt.date.today().isoformat()}.xlsx"
        return Response(
            lists.to_xlsx(page, filters),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def get_statistics(session: SessionDep, _: StaffUser, scope: ScopeDep, filters: FiltersDep) -> dict[str, Any]:
        try:
            stats = lists.statistics(session, kind, filters, scope)
        except lists.ListError as exc:
            raise HTTPException(422, str(exc)) from None
        return dataclasses.asdict(stats)

    router.add_api_route(
        f"/{kind}", get_list, methods=["GET"], summary=f"{title}列表检索：关键词、状态、领域、部门、日期范围"
    )
    router.add_api_route(
        f"/{kind}/export.xlsx",
        export_list,
        methods=["GET"],
        summary=f"导出{title} Excel（XLSX：数字、日期为单元格值，中文表头）",
        response_class=Response,
    )
    router.add_api_route(
        f"/{kind}/statistics",
        get_statistics,
        methods=["GET"],
        summary=f"{title}统计：按状态、领域、部门、类别、月份计数，超期数",
    )


for _kind in lists.LISTS:
    _routes(_kind)
