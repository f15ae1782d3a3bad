"""Intake of work orders (12315 / 12345 hotlines, walk-ins, letters, superiors) and of manual clues.

A work order is validated (mandatory fields by kind, configured in ``workflow.toml [intake]``; a complaint needs
complainant name, phone and address, the respondent's name and address, the request and the facts), stored with
the complainant's personal data in dedicated columns only, and handed to clue collection, which resolves the
subject and folds or creates the clue. Bulk import reads the documented CSV or JSON format (docs/workflow.md,
``firmware-config/samples/work_orders_12345.csv``); rows are independent (one savepoint each) and the report
lists every rejected line with its reason. ``(channel, external_no)`` is unique, so re-importing a file is safe.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from cloud.core.csvtext import CsvFormatError, records
from cloud.core.db import utcnow
from cloud.core.refs import refers_to
from cloud.registry import uscc as uscc_mod
from cloud.workflow.clues import CATEGORY_LABELS, KIND_LABELS, Clue
from cloud.workflow.config import workflow_rules
from cloud.workflow.deadlines import compute_deadline
from cloud.workflow.grouping import Incoming, collect
from cloud.workflow.models import ClueReferral, WorkOrder
from cloud.workflow.money import Yuan
from cloud.workflow.service import Actor, Conflict, Invalid, record

WorkOrderChannel = Literal["hotline_12315", "hotline_12345", "walk_in", "letter", "superior", "internet"]
WorkOrderKind = Literal["complaint", "report", "referral", "walk_in"]
CHANNEL_LABELS = {
    "hotline_12315": "12315",
    "hotline_12345": "12345",
    "walk_in": "来访",
    "letter": "来信",
    "superior": "上级交办",
    "internet": "互联网",
    "internet_monitoring": "互联网监测",
    "analysis": "研判发现",
    "inspection": "检查发现",
    "enforcement": "执法发现",
    "assessment": "考核发现",
}
FIELD_LABELS = {
    "complainant_name": "投诉人姓名",
    "complainant_phone": "投诉人电话",
    "complainant_address": "投诉人地址",
    "complainant_id_no": "投诉人证件号码",
    "respondent_name": "被投诉（举报）人名称",
    "respondent_address": "被投诉（举报）人地址",
    "respondent_uscc": "被投诉（举报）人统一社会信用代码",
    "request": "诉求",
    "facts": "事实与理由",
}
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")


class WorkOrderIn(BaseModel):
    """One work order as received (API body, one CSV row, one JSON object)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: WorkOrderChannel
    kind: WorkOrderKind = "complaint"
    external_no: str | None = Field(default=None, max_length=64, description="工单号")
    received_at: AwareDatetime | None = Field(default=None, description="收到时间（默认：现在）")
    category: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9_]+$")
    complainant_name: str | None = Field(default=None, max_length=64)
    complainant_phone: str | None = Field(default=None, max_length=32)
    complainant_id_no: str | None = Field(default=None, max_length=32)
    complainant_address: str | None = Field(default=None, max_length=300)
    anonymous: bool = False
    respondent_name: str | None = Field(default=None, max_length=200)
    respondent_uscc: str | None = Field(default=None, max_length=18)
    respondent_address: str | None = Field(default=None, max_length=300)
    request: str = Field(default="", max_length=4000, description="诉求")
    facts: str = Field(default="", max_length=8000, description="事实经过（发生了什么）")
    incident_at: AwareDatetime | None = Field(default=None, description="事发时间")
    incident_place: str | None = Field(default=None, max_length=300, description="事发地点")
    goods: str | None = Field(default=None, max_length=200, description="涉及商品或服务")
    amount: Yuan | None = Field(default=None, description="涉及金额（元）")
    site_id: Annotated[str | None, refers_to("site_id")] = Field(default=None, max_length=64)
    severity: Literal["critical", "major", "minor", "warning"] | None = None

    @field_validator("complainant_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value and not _PHONE.match(value):
            raise ValueError("电话号码格式不正确 (phone number: digits, spaces, '-', optional '+')")
        return value

    @field_validator("respondent_uscc")
    @classmethod
    def _uscc(cls, value: str | None) -> str | None:
        if value:
            return uscc_mod.validate(value).code
        return value

    @field_validator(
        "external_no",
        "received_at",
        "category",
        "complainant_name",
        "complainant_phone",
        "complainant_id_no",
        "complainant_address",
        "respondent_name",
        "respondent_uscc",
        "respondent_address",
        "site_id",
        "severity",
        "incident_at",
        "incident_place",
        "goods",
        "amount",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ClueIn(BaseModel):
    """A clue entered by staff: walk-in or letter without a work order, superior referral, or produced by analysis,
    inspection, enforcement or assessment (kind ``feedback``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["walk_in", "referral", "feedback"] = "feedback"
    channel: Literal["walk_in", "letter", "superior", "internet", "analysis", "inspection", "enforcement", "assessment"]
    category: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    severity: Literal["critical", "major", "minor", "warning", "indeterminate"] = "minor"
    title: str = Field(min_length=2, max_length=300)
    description: str = Field(default="", max_length=8000)
    subject_id: Annotated[int | None, refers_to("subject_id")] = None
    respondent_uscc: str | None = None
    respondent_name: str | None = None
    respondent_address: str | None = None
    site_id: Annotated[str | None, refers_to("site_id")] = None
    parent_clue_id: Annotated[int | None, refers_to("clue_id")] = None
    ref: str | None = Field(default=None, max_length=64, description="task / case / plan reference")


def missing_fields(order: WorkOrderIn) -> list[str]:
    rules = workflow_rules().intake
    required = {
        "complaint": rules.complaint_required,
        "report": rules.report_required,
        "referral": rules.referral_required,
        "walk_in": rules.report_required,
    }[order.kind]
    if order.kind == "report" and order.anonymous:
        required = [f for f in required if not f.startswith("complainant_")]
    missing: list[str] = [f for f in required if not getattr(order, f)]
    if not (order.respondent_name or order.respondent_uscc or order.site_id) and "respondent_name" not in missing:
        missing.append("respondent_name")
    return missing


def validate_order(order: WorkOrderIn) -> None:
    missing = missing_fields(order)
    if missing:
        kind = KIND_LABELS.get(order.kind, order.kind)
        raise Invalid(
            f"{kind}缺少必填项：{'、'.join(FIELD_LABELS[f] for f in missing)} / missing mandatory fields {missing}",
            code="missing_fields",
            extra={"fields": missing},
        )


@dataclass(frozen=True, slots=True)
class IntakeResult:
    order: WorkOrder
    clue: Clue
    created: bool
    referral: ClueReferral | None = None  # 移送 to the subject's department (cloud/workflow/referral.py)


def intake(session: Session, order_in: WorkOrderIn, actor: Actor) -> IntakeResult:
    """Validate and store one work order and collect it into a clue (flushes, never commits)."""
    validate_order(order_in)
    if (
        order_in.external_no
        and session.exec(
            select(WorkOrder).where(
                WorkOrder.channel == order_in.channel, WorkOrder.external_no == order_in.external_no
            )
        ).first()
    ):
        raise Conflict(f"工单 {order_in.external_no} 已导入 / work order already received", code="duplicate")
    received = order_in.received_at or utcnow()
    category = order_in.category or workflow_rules().intake.default_category
    accept = compute_deadline("complaint_accept", received) if order_in.kind == "complaint" else None
    accept_due = accept.due if accept else None
    order = WorkOrder(
        channel=order_in.channel,
        kind=order_in.kind,
        external_no=order_in.external_no,
        received_at=received,
        category=category,
        complainant_name=None if order_in.anonymous else order_in.complainant_name,
        complainant_phone=None if order_in.anonymous else order_in.complainant_phone,
        complainant_id_no=None if order_in.anonymous else order_in.complainant_id_no,
        complainant_address=None if order_in.anonymous else order_in.complainant_address,
        anonymous=order_in.anonymous,
        respondent_name=order_in.respondent_name,
        respondent_uscc=order_in.respondent_uscc,
        respondent_address=order_in.respondent_address,
        request=order_in.request,
        facts=order_in.facts,
        incident_at=order_in.incident_at,
        incident_place=order_in.incident_place,
        goods=order_in.goods,
        amount=order_in.amount,
        site_id=order_in.site_id,
        accept_due=accept_due,
        accept_due_warnings=list(accept.warnings) if accept else [],
        created_by=actor.username,
    )
    session.add(order)
    session.flush()
    # journal without personal data: the complainant is referred to by the work order id only
    record(
        session,
        actor,
        "work_order.received",
        "work_order",
        order.id or 0,
        {
            "channel": order.channel,
            "kind": order.kind,
            "external_no": order.external_no,
            "category": category,
            "respondent": order.respondent_name,
            "accept_due": accept_due.isoformat() if accept_due else None,
            "accept_due_certainty": due_certainty(accept.warnings if accept else ()),
        },
    )
    kind_label = KIND_LABELS.get(order.kind, order.kind)
    who = order.respondent_name or order.respondent_uscc or order.site_id or ""
    what = (order.request or order.facts).replace("\n", " ")[:80]
    title = f"【{kind_label}·{CHANNEL_LABELS[order.channel]}】{CATEGORY_LABELS.get(category, category)} {who}：{what}"
    clue_kind = "referral" if order.kind == "referral" else ("walk_in" if order.kind == "walk_in" else order.kind)
    from cloud.workflow.grouping import resolve_subject
    from cloud.workflow.referral import refer, referral_target

    resolution = resolve_subject(
        session,
        uscc=order.respondent_uscc,
        name=order.respondent_name,
        address=order.respondent_address,
        site_id=order.site_id,
    )
    refer_to = referral_target(session, actor, resolution.department_id)
    result = collect(
        session,
        Incoming(
            kind=clue_kind,
            channel=order.channel,
            category=category,
            severity=order_in.severity or workflow_rules().intake.default_severity,
            title=title,
            at=received,
            site_id=order.site_id,
            summary=title,
            description=f"诉求：{order.request}\n事实与理由：{order.facts}".strip(),
            work_order_id=order.id,
            ref=order.external_no,
            respondent_uscc=order.respondent_uscc,
            respondent_name=order.respondent_name,
            respondent_address=order.respondent_address,
            fold=refer_to is None,  # 移送: a new clue of the competent department, never folded invisibly
        ),
        actor=actor,
    )
    order.subject_match = resolution.match
    res = session.get(Clue, result.clue.id)
    assert res is not None
    order.clue_id = res.id
    order.subject_id = res.subject_id
    order.site_id = order.site_id or res.site_id
    session.add(order)
    session.flush()
    referral = None
    if refer_to is not None:
        referral = refer(session, order, res, actor=actor, from_department_id=refer_to[0], to_department_id=refer_to[1])
    return IntakeResult(order, res, result.created, referral)


def due_certainty(warnings: tuple[str, ...] | list[str]) -> str:
    """``official`` (every day on the official calendar) or ``provisional`` (a fallback year was used)."""
    return "provisional" if warnings else "official"


def accept_due_view(order: WorkOrder) -> dict[str, object]:
    """The acceptance due date as shown to people: the date, its certainty and the calendar warnings."""
    return {
        "accept_due": order.accept_due.isoformat() if order.accept_due else None,
        "accept_due_certainty": due_certainty(order.accept_due_warnings) if order.accept_due else None,
        "accept_due_warnings": list(order.accept_due_warnings),
    }


def create_manual_clue(session: Session, body: ClueIn, actor: Actor) -> tuple[Clue, bool]:
    result = collect(
        session,
        Incoming(
            kind=body.kind,
            channel=body.channel,
            category=body.category,
            severity=body.severity,
            title=body.title,
            at=utcnow(),
            site_id=body.site_id,
            summary=body.title,
            description=body.description,
            subject_id=body.subject_id,
            respondent_uscc=body.respondent_uscc,
            respondent_name=body.respondent_name,
            respondent_address=body.respondent_address,
            parent_clue_id=body.parent_clue_id,
            ref=body.ref,
        ),
        actor=actor,
    )
    return result.clue, result.created


# ---------------------------------------------------------------------------------------------------------
# bulk import
# ---------------------------------------------------------------------------------------------------------
#: Chinese column names of common 12345 / 12315 exports, mapped to our field names
HEADER_ALIASES = {
    "渠道": "channel",
    "工单类型": "kind",
    "工单编号": "external_no",
    "工单号": "external_no",
    "受理时间": "received_at",
    "来电时间": "received_at",
    "类别": "category",
    "诉求人": "complainant_name",
    "投诉人": "complainant_name",
    "联系电话": "complainant_phone",
    "证件号码": "complainant_id_no",
    "诉求人地址": "complainant_address",
    "投诉人地址": "complainant_address",
    "匿名": "anonymous",
    "被反映对象": "respondent_name",
    "被投诉人": "respondent_name",
    "统一社会信用代码": "respondent_uscc",
    "被反映地址": "respondent_address",
    "被投诉人地址": "respondent_address",
    "诉求内容": "request",
    "诉求": "request",
    "事实与理由": "facts",
    "场所": "site_id",
}
VALUE_ALIASES = {
    "kind": {"投诉": "complaint", "举报": "report", "交办": "referral", "移送": "referral", "来访": "walk_in"},
    "channel": {
        "12315": "hotline_12315",
        "12345": "hotline_12345",
        "来访": "walk_in",
        "来信": "letter",
        "上级交办": "superior",
        "互联网": "internet",
    },
    "anonymous": {"是": "true", "否": "false", "": "false"},
}


@dataclass
class ImportReport:
    received: int = 0
    accepted: int = 0
    created_clues: int = 0
    folded: int = 0
    referred: int = 0  # 移送 to another department as its new clue (cloud/workflow/referral.py)
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    work_order_ids: list[int] = field(default_factory=list)


def _normalise(row: dict[str, Any], default_channel: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            continue
        name = HEADER_ALIASES.get(key.strip(), key.strip())
        if isinstance(value, str):
            value = value.strip()
            value = VALUE_ALIASES.get(name, {}).get(value, value)
        out[name] = value
    if default_channel and not out.get("channel"):
        out["channel"] = default_channel
    return out


def parse_rows(content: bytes, filename: str) -> list[tuple[int, dict[str, Any]]]:
    """(line or index, row) pairs from a CSV (UTF-8, optional BOM, header row) or JSON file."""
    text = content.decode("utf-8-sig")
    if filename.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        data = json.loads(text)
        rows = data.get("work_orders", []) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise Invalid('JSON 须为工单数组或 {"work_orders": [...]} / expected a list of work orders')
        return [(i + 1, r) for i, r in enumerate(rows)]
    try:
        parsed = list(records(text))  # CsvFormatError names the line and column of a malformed file
    except CsvFormatError as exc:
        raise Invalid(str(exc)) from None
    if not parsed:
        return []
    header = parsed[0][1]
    return [(line, dict(zip(header, cells, strict=False))) for line, cells in parsed[1:] if any(cells)]


def import_orders(
    session: Session, content: bytes, filename: str, actor: Actor, *, default_channel: str | None = None
) -> ImportReport:
    report = ImportReport()
    try:
        rows = parse_rows(content, filename)
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise Invalid(f"文件无法解析：{exc} / cannot parse the file") from None
    for line, raw in rows:
        report.received += 1
        try:
            if not isinstance(raw, dict):
                raise Invalid("不是对象 / not an object")
            order_in = WorkOrderIn.model_validate(_normalise(raw, default_channel))
            with session.begin_nested():
                result = intake(session, order_in, actor)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            report.errors.append({"line": line, "field": where, "reason": f"{where}: {err['msg']}"})
            continue
        except Conflict as exc:
            if exc.code == "duplicate":
                report.duplicates += 1
                continue
            report.errors.append({"line": line, "reason": exc.message})
            continue
        except Invalid as exc:
            report.errors.append({"line": line, "reason": exc.message, **exc.extra})
            continue
        report.accepted += 1
        report.work_order_ids.append(result.order.id or 0)
        if result.referral is not None:
            report.referred += 1
        elif result.created:
            report.created_clues += 1
        else:
            report.folded += 1
    return report


def received_at_or_now(value: datetime | None) -> datetime:
    return value or utcnow()
