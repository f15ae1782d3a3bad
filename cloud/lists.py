"""Lists that scale (列表、检索、导出、统计): one engine over the clue, task, case, complaint and subject lists.

Each list is described as data (:data:`LISTS`): the table, the columns a person reads (heading, kind of cell), the
fields a keyword searches, the state, date and department columns, and when a row is overdue. The one engine
answers a search (text, status, domain, department, date range) with Chinese display values, writes the same rows
as an XLSX workbook (numbers and dates as real cells, Chinese headings; like the GSP export) and counts the rows by
status, domain, department, category and month with the overdue ones. Jurisdiction: the caller's scope limits every
query.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, or_
from sqlmodel import Session, SQLModel, col, select

from cloud.labels import term
from cloud.security.scoping import Scope

TZ = ZoneInfo("Asia/Shanghai")
CellType = Literal["text", "int", "date", "datetime"]
ListKind = Literal["clues", "tasks", "cases", "complaints", "subjects"]
DOMAINS = {"food": "食品", "drug": "药品", "special_equipment": "特种设备"}


class ListError(ValueError):
    """A refused list request (unknown list, bad filter): ``str()`` is the Chinese message."""


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    type: CellType = "text"
    width: int = 14


@dataclass
class Context:
    """Lookups shared by the rows of one answer (names of departments and sites, each row's clue)."""

    session: Session
    today: dt.date
    departments: dict[int, str]
    site_categories: dict[str, str | None]
    subject_sites: dict[int, list[str]] = field(default_factory=dict)
    clues: dict[int, Any] = field(default_factory=dict)
    _licences: dict[int, list[Any]] | None = None

    def clue(self, clue_id: int | None) -> Any:
        from cloud.workflow.clues import Clue

        if clue_id is None:
            return None
        if clue_id not in self.clues:
            self.clues[clue_id] = self.session.get(Clue, clue_id)
        return self.clues[clue_id]

    def licences(self, subject_id: int | None) -> list[Any]:
        """The subject's licences (one query for the whole answer, on first use)."""
        if self._licences is None:
            from cloud.registry.models import Licence

            self._licences = {}
            for licence in self.session.exec(select(Licence)):
                self._licences.setdefault(licence.subject_id, []).append(licence)
        return self._licences.get(subject_id or -1, [])


@dataclass(frozen=True)
class ListSpec:
    kind: ListKind
    title: str
    model: Callable[[], type[SQLModel]]
    columns: tuple[Column, ...]
    text_fields: tuple[str, ...]
    date_field: str
    state_field: str | None
    state_machine: str | None  # labels of the state column: a workflow machine's name, or a label map (``grades``)
    department: Callable[[Any, Context], int | None]
    category: Callable[[Any, Context], tuple[str | None, str | None]]  # (category, site id)
    overdue: Callable[[Any, Context], bool]
    values: Callable[[Any, Context], dict[str, Any]]
    #: the department column for the jurisdiction filter, or the clue join for lists that have none
    department_column: str | None = "department_id"


def _local(ts: dt.datetime | None) -> dt.datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(TZ)


def domain_of(category: str | None, site_category: str | None) -> str | None:
    from cloud.api.routes.console import domain_of as console_domain

    return console_domain(category, site_category)


# ---------------------------------------------------------------- the lists, as data
def _clue_model() -> type[SQLModel]:
    from cloud.workflow.clues import Clue

    return Clue


def _task_model() -> type[SQLModel]:
    from cloud.workflow.models import InspectionTask

    return InspectionTask


def _case_model() -> type[SQLModel]:
    from cloud.workflow.models import EnforcementCase

    return EnforcementCase


def _order_model() -> type[SQLModel]:
    from cloud.workflow.models import WorkOrder

    return WorkOrder


def _subject_model() -> type[SQLModel]:
    from cloud.registry.models import MarketSubject

    return MarketSubject


def _clue_values(c: Any, ctx: Context) -> dict[str, Any]:
    return {
        "id": c.id,
        "no": c.id,
        "title": c.title,
        "kind": term("kinds", c.kind),
        "channel": term("channels", c.channel),
        "category": term("categories", c.category),
        "severity": term("severities", c.severity),
        "state": term_state("clue", c.state),
        "subject": c.subject_name or "",
        "department": ctx.departments.get(c.department_id or -1, ""),
        "first_seen": _local(c.first_seen_at),
        "last_seen": _local(c.last_seen_at),
        "sources": c.source_count,
    }


def _task_values(t: Any, ctx: Context) -> dict[str, Any]:
    from cloud.workflow.inspection import officers_of

    clue = ctx.clue(t.clue_id)
    names = [a.name for a, _ in officers_of(ctx.session, "task", t.id or 0)]
    return {
        "id": t.id,
        "no": t.task_no,
        "title": clue.title if clue is not None else t.instructions or t.method,
        "method": t.method,
        "state": term_state("task", t.state),
        "assignees": "、".join(names),
        "department": ctx.departments.get(t.department_id or -1, ""),
        "due": t.due_date,
        "created": _local(t.created_at),
        "conclusion": term("conclusions", t.conclusion) if t.conclusion else "",
        "overdue": "是" if _task_overdue(t, ctx) else "否",
    }


def _case_values(c: Any, ctx: Context) -> dict[str, Any]:
    return {
        "id": c.id,
        "no": c.case_no,
        "party": c.party_name or "",
        "summary": c.summary,
        "state": term_state("case", c.state),
        "department": ctx.departments.get(c.department_id or -1, ""),
        "received": _local(c.received_at),
        "verify_due": c.verify_due,
        "decision_due": c.decision_due,
        "amount": float(c.proposed_amount) if c.proposed_amount is not None else None,
        "overdue": "是" if _case_overdue(c, ctx) else "否",
    }


def _order_values(o: Any, ctx: Context) -> dict[str, Any]:
    clue = ctx.clue(o.clue_id)
    acceptance = {"accepted": "已受理", "refused": "不予受理"}.get(o.acceptance or "", "待受理")
    return {
        "id": o.id,
        "no": o.external_no or str(o.id),
        "clue_id": o.clue_id,
        "channel": term("channels", o.channel),
        "kind": term("kinds", o.kind),
        "category": term("categories", o.category),
        "respondent": o.respondent_name or "",
        "request": o.request,
        "acceptance": acceptance,
        "state": term_state("clue", clue.state) if clue is not None else "",
        "department": ctx.departments.get(_order_department(o, ctx) or -1, ""),
        "received": _local(o.received_at),
        "accept_due": o.accept_due,
        "overdue": "是" if _order_overdue(o, ctx) else "否",
    }


def state_labels(machine: str) -> dict[str, str]:
    """code → 中文 of a list's state column: a workflow machine's states, or a label map such as ``grades``."""
    from cloud.labels import vocabulary

    words = vocabulary()
    found = words["states"].get(machine)
    if found is None:
        found = {k: v for k, v in words.get(machine, {}).items() if k != "unknown"}
    return {str(k): str(v) for k, v in found.items()}


def term_state(machine: str, state: Any) -> str:
    value = str(getattr(state, "value", state))
    return state_labels(machine).get(value, value)


def _subject_values(s: Any, ctx: Context) -> dict[str, Any]:
    licences = ctx.licences(s.id)
    ends = sorted(lic.valid_to for lic in licences if lic.valid_to is not None)
    return {
        "id": s.id,
        "name": s.name,
        "uscc": s.uscc,
        "legal_representative": s.legal_representative or "",
        "address": s.address or "",
        "state": term_state("grades", s.risk_grade),
        "department": ctx.departments.get(s.department_id or -1, ""),
        "sites": len(ctx.subject_sites.get(s.id or -1, [])),
        "licences": len(licences),
        "licence_ends": ends[0] if ends else None,
        "created": _local(s.created_at),
        "in_use": "已注销/停用" if getattr(s, "deactivated_at", None) is not None else "在用",
        "overdue": "是" if _licence_expired(s, ctx) else "否",
    }


def _licence_expired(s: Any, ctx: Context) -> bool:
    """许可证过期: a licence of the subject ended before today (the subject list's "overdue")."""
    return any(lic.valid_to is not None and lic.valid_to < ctx.today for lic in ctx.licences(s.id))


def _subject_category(s: Any, ctx: Context) -> tuple[str | None, str | None]:
    sites = ctx.subject_sites.get(s.id or -1, [])
    return None, (sites[0] if sites else None)  # the domain comes from its (first) site


def _task_overdue(t: Any, ctx: Context) -> bool:
    return str(t.state) not in ("closed", "cancelled", "declined") and t.due_date < ctx.today


def _case_overdue(c: Any, ctx: Context) -> bool:
    if str(c.state) in ("closed", "not_opened", "terminated", "paid", "served", "decided"):
        return False
    due = c.decision_due if c.opened_on else c.verify_due
    return due is not None and due < ctx.today


def _order_department(o: Any, ctx: Context) -> int | None:
    clue = ctx.clue(o.clue_id)
    return clue.department_id if clue is not None else None


def _order_overdue(o: Any, ctx: Context) -> bool:
    return o.acceptance is None and o.accept_due is not None and o.accept_due < ctx.today


def _clue_category(c: Any, _: Context) -> tuple[str | None, str | None]:
    return c.category, c.site_id


def _via_clue_category(x: Any, ctx: Context) -> tuple[str | None, str | None]:
    clue = ctx.clue(x.clue_id)
    return (clue.category if clue is not None else None), (
        getattr(x, "site_id", None) or getattr(clue, "site_id", None)
    )


def _order_category(o: Any, _: Context) -> tuple[str | None, str | None]:
    return o.category, o.site_id


LISTS: dict[str, ListSpec] = {
    "clues": ListSpec(
        kind="clues",
        title="线索",
        model=_clue_model,
        columns=(
            Column("no", "线索编号", "int", 10),
            Column("title", "线索", width=48),
            Column("kind", "类型", width=10),
            Column("channel", "来源渠道"),
            Column("category", "类别"),
            Column("severity", "等级", width=8),
            Column("state", "处理状态", width=12),
            Column("subject", "市场主体", width=28),
            Column("department", "承办部门", width=24),
            Column("first_seen", "首次时间", "datetime", 18),
            Column("last_seen", "最近时间", "datetime", 18),
            Column("sources", "来源数", "int", 8),
        ),
        text_fields=("title", "subject_name", "description", "site_id"),
        date_field="first_seen_at",
        state_field="state",
        state_machine="clue",
        department=lambda c, _: c.department_id,
        category=_clue_category,
        overdue=lambda c, ctx: False,
        values=_clue_values,
    ),
    "tasks": ListSpec(
        kind="tasks",
        title="检查任务",
        model=_task_model,
        columns=(
            Column("no", "任务编号", width=16),
            Column("title", "事项", width=48),
            Column("method", "检查方式", width=10),
            Column("state", "状态", width=10),
            Column("assignees", "检查人员", width=16),
            Column("department", "承办部门", width=24),
            Column("created", "派发时间", "datetime", 18),
            Column("due", "办理期限", "date", 12),
            Column("conclusion", "检查结论", width=24),
            Column("overdue", "是否超期", width=8),
        ),
        text_fields=("task_no", "instructions", "method", "findings_summary", "site_id"),
        date_field="created_at",
        state_field="state",
        state_machine="task",
        department=lambda t, _: t.department_id,
        category=_via_clue_category,
        overdue=_task_overdue,
        values=_task_values,
    ),
    "cases": ListSpec(
        kind="cases",
        title="案件",
        model=_case_model,
        columns=(
            Column("no", "案件编号", width=16),
            Column("party", "当事人", width=28),
            Column("summary", "案情", width=40),
            Column("state", "状态", width=12),
            Column("department", "承办部门", width=24),
            Column("received", "案源收到时间", "datetime", 18),
            Column("verify_due", "核查期限", "date", 12),
            Column("decision_due", "作出决定期限", "date", 12),
            Column("amount", "拟罚款（元）", "int", 12),
            Column("overdue", "是否超期", width=8),
        ),
        text_fields=("case_no", "party_name", "summary"),
        date_field="received_at",
        state_field="state",
        state_machine="case",
        department=lambda c, _: c.department_id,
        category=_via_clue_category,
        overdue=_case_overdue,
        values=_case_values,
    ),
    "complaints": ListSpec(
        kind="complaints",
        title="投诉举报",
        model=_order_model,
        columns=(
            Column("no", "工单号", width=16),
            Column("channel", "渠道", width=10),
            Column("kind", "类型", width=8),
            Column("category", "类别", width=12),
            Column("respondent", "被投诉举报人", width=28),
            Column("request", "诉求", width=40),
            Column("acceptance", "受理情况", width=10),
            Column("state", "线索处理状态", width=12),
            Column("department", "承办部门", width=24),
            Column("received", "收到时间", "datetime", 18),
            Column("accept_due", "受理期限", "date", 12),
            Column("overdue", "是否超期", width=8),
        ),
        text_fields=("external_no", "respondent_name", "request", "facts", "respondent_address"),
        date_field="received_at",
        state_field=None,
        state_machine="clue",
        department=_order_department,
        category=_order_category,
        overdue=_order_overdue,
        values=_order_values,
        department_column=None,
    ),
    "subjects": ListSpec(
        kind="subjects",
        title="市场主体",
        model=_subject_model,
        columns=(
            Column("name", "市场主体", width=32),
            Column("uscc", "统一社会信用代码", width=20),
            Column("legal_representative", "法定代表人", width=10),
            Column("address", "住所", width=36),
            Column("state", "信用风险分类", width=14),
            Column("department", "管辖部门", width=24),
            Column("sites", "场所数", "int", 8),
            Column("licences", "许可证数", "int", 8),
            Column("licence_ends", "最近许可到期", "date", 12),
            Column("created", "登记时间", "datetime", 18),
            Column("in_use", "使用状态", width=12),
            Column("overdue", "许可证过期", width=10),
        ),
        text_fields=("name", "uscc", "legal_representative", "address", "business_scope"),
        date_field="created_at",
        state_field="risk_grade",
        state_machine="grades",
        department=lambda s, _: s.department_id,
        category=_subject_category,
        overdue=_licence_expired,
        values=_subject_values,
    ),
}


# ---------------------------------------------------------------- the engine
@dataclass(frozen=True)
class Filters:
    q: str | None = None
    status: str | None = None  # a state of the list's machine
    domain: str | None = None  # food | drug | special_equipment
    department_id: int | None = None
    since: dt.date | None = None  # Beijing dates, inclusive
    until: dt.date | None = None


@dataclass
class Page:
    spec: ListSpec
    rows: list[dict[str, Any]]
    count: int
    overdue: int


def spec_of(kind: str) -> ListSpec:
    try:
        return LISTS[kind]
    except KeyError:
        raise ListError(f"没有“{kind}”列表（可选：{'、'.join(s.title for s in LISTS.values())}）") from None


def _context(session: Session) -> Context:
    from cloud.registry.models import Department, Site

    sites = list(session.exec(select(Site).order_by(col(Site.site_id))))
    subject_sites: dict[int, list[str]] = {}
    for site in sites:
        if site.subject_id is not None:
            subject_sites.setdefault(site.subject_id, []).append(site.site_id)
    return Context(
        session=session,
        today=dt.datetime.now(TZ).date(),
        departments={d.id: d.name for d in session.exec(select(Department)) if d.id is not None},
        site_categories={s.site_id: s.category for s in sites},
        subject_sites=subject_sites,
    )


def _matching(session: Session, spec: ListSpec, filters: Filters, scope: Scope, ctx: Context) -> list[Any]:
    model = spec.model()
    query = select(model)
    if filters.q and filters.q.strip():
        needle = f"%{filters.q.strip()}%"
        query = query.where(or_(*(cast(col(getattr(model, f)), String).ilike(needle) for f in spec.text_fields)))
    if filters.status:
        if spec.state_field is None:
            from cloud.workflow.clues import Clue

            query = query.where(
                col(getattr(model, "clue_id")).in_(  # noqa: B009 (model is the list's table, typed generically)
                    select(Clue.id).where(Clue.state == filters.status)
                )
            )
        else:
            query = query.where(getattr(model, spec.state_field) == filters.status)
    date_column = col(getattr(model, spec.date_field))
    if filters.since:
        query = query.where(date_column >= dt.datetime.combine(filters.since, dt.time(), TZ))
    if filters.until:
        query = query.where(date_column < dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time(), TZ))
    if spec.department_column:
        column = getattr(model, spec.department_column)
        if filters.department_id is not None:
            query = query.where(column == filters.department_id)
        if (in_scope := scope.where(column)) is not None:
            query = query.where(in_scope)
    rows = list(session.exec(query.order_by(col(getattr(model, "id")).desc())))  # noqa: B009
    if spec.department_column is None:  # the department is the row's clue's
        rows = [
            r
            for r in rows
            if scope.allows(spec.department(r, ctx))
            and (filters.department_id is None or spec.department(r, ctx) == filters.department_id)
        ]
    if filters.domain:
        if filters.domain not in DOMAINS:
            raise ListError(f"领域只能是{'、'.join(DOMAINS.values())}（food / drug / special_equipment）")
        rows = [r for r in rows if _domain(spec, r, ctx) == filters.domain]
    return rows


def _domain(spec: ListSpec, row: Any, ctx: Context) -> str | None:
    category, site_id = spec.category(row, ctx)
    return domain_of(category, ctx.site_categories.get(site_id or ""))


def search(session: Session, kind: str, filters: Filters, scope: Scope, *, offset: int = 0, limit: int = 100) -> Page:
    spec = spec_of(kind)
    ctx = _context(session)
    rows = _matching(session, spec, filters, scope, ctx)
    overdue = sum(1 for r in rows if spec.overdue(r, ctx))
    return Page(spec, [spec.values(r, ctx) for r in rows[offset : offset + limit]], len(rows), overdue)


def display(value: Any) -> Any:
    """A value as the console shows it (ISO on the wire for dates: the page formats them in Beijing time)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _xlsx_text(value: Any) -> Any:
    """A text cell without the control characters XLSX cannot hold (openpyxl refuses them: a 500 before)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def to_xlsx(page: Page, filters: Filters) -> bytes:
    """The rows as a workbook: Chinese headings, numbers as numbers, dates and times as date cells (Beijing)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = page.spec.title
    readable = _xlsx_text
    ws.append([c.heading for c in page.spec.columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in page.rows:
        values: list[Any] = []
        for c in page.spec.columns:
            v = row.get(c.key)
            if isinstance(v, dt.datetime):
                v = v.replace(tzinfo=None)  # Excel has no time zones: Beijing wall time, said in the notes sheet
            values.append(readable(v))
        ws.append(values)
    for i, c in enumerate(page.spec.columns, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = c.width
        fmt = {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm", "int": "0"}.get(c.type)
        if fmt:
            for cell in ws[letter][1:]:
                if cell.value is not None:
                    cell.number_format = "0.00" if isinstance(cell.value, float) else fmt
    ws.freeze_panes = "A2"
    info = wb.create_sheet("导出说明")
    info.append(("列表", page.spec.title))
    info.append(("记录数", page.count))
    info.append(("其中超期", page.overdue))
    info.append(("关键词", readable(filters.q or "（无）")))
    status_text = term_state(page.spec.state_machine or "", filters.status) if filters.status else "全部"
    info.append(("状态", readable(status_text)))
    info.append(("领域", DOMAINS.get(filters.domain or "", "全部")))
    info.append(("起始日期", filters.since or "（不限）"))
    info.append(("截止日期", filters.until or "（不限）"))
    info.append(("导出时间", dt.datetime.now(TZ).replace(tzinfo=None)))
    info.append(("时区", "北京时间（Asia/Shanghai）"))
    info["B9"].number_format = "yyyy-mm-dd hh:mm"
    for cell in (info["B7"], info["B8"]):
        if isinstance(cell.value, dt.date):
            cell.number_format = "yyyy-mm-dd"
    info.column_dimensions["A"].width = 12
    info.column_dimensions["B"].width = 40
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@dataclass
class Statistics:
    kind: str
    title: str
    total: int
    overdue: int
    by_status: list[tuple[str, int]]
    by_domain: list[tuple[str, int]]
    by_department: list[tuple[str, int]]
    by_category: list[tuple[str, int]]
    by_month: list[tuple[str, int]]


def _counted(counter: Counter[str], order: Sequence[str] | None = None) -> list[tuple[str, int]]:
    if order is not None:
        return [(k, counter[k]) for k in order if counter[k]] + [
            (k, n) for k, n in counter.most_common() if k not in order
        ]
    return counter.most_common()


def statistics(session: Session, kind: str, filters: Filters, scope: Scope) -> Statistics:
    spec = spec_of(kind)
    ctx = _context(session)
    rows = _matching(session, spec, filters, scope, ctx)
    status: Counter[str] = Counter()
    domains: Counter[str] = Counter()
    departments: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    months: Counter[str] = Counter()
    overdue = 0
    for r in rows:
        v = spec.values(r, ctx)
        status[str(v.get("acceptance") if spec.state_field is None else v["state"])] += 1
        domains[DOMAINS.get(_domain(spec, r, ctx) or "", "其他")] += 1
        departments[v.get("department") or "未分配部门"] += 1
        category, _ = spec.category(r, ctx)
        if category:  # lists without a category (subjects) count none
            categories[term("categories", category)] += 1
        when = _local(getattr(r, spec.date_field))
        if when is not None:
            months[f"{when.year}年{when.month:02d}月"] += 1
        overdue += spec.overdue(r, ctx)
    return Statistics(
        kind=spec.kind,
        title=spec.title,
        total=len(rows),
        overdue=overdue,
        by_status=_counted(status),
        by_domain=_counted(domains, [*DOMAINS.values(), "其他"]),
        by_department=_counted(departments),
        by_category=_counted(categories),
        by_month=sorted(months.items()),
    )


def status_options(kind: str) -> dict[str, str]:
    """The statuses a list can be filtered by (code → 中文)."""
    spec = spec_of(kind)
    return state_labels(spec.state_machine or "")
