"""Tables of the workflow (besides :mod:`cloud.workflow.clues`): work orders, analysis decisions, staff and
recusals, inspection tasks and results, enforcement cases with payments and publications, documents and
signatures, risk assessments and random-inspection plans.

Personal data of complainants and reporters lives only in the dedicated ``complainant_*`` columns of
:class:`WorkOrder` (never copied into clue titles, journal payloads or documents), so that it can be masked on
display and encrypted at rest in one place.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Engine, Float, Text, UniqueConstraint, inspect
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime, utcnow
from cloud.workflow.money import MoneyColumn
from cloud.workflow.states import CaseState, TaskState, state_type


def _json(default: Any = None) -> Any:
    return Field(default_factory=lambda: {} if default is None else default.copy(), sa_column=Column(JSON))


# ---------------------------------------------------------------- work orders (12315 / 12345 / walk-in …)
class WorkOrder(SQLModel, table=True):
    """An intake record from a person: complaint, report, referral, walk-in or letter."""

    __tablename__ = "work_order"
    __table_args__ = (UniqueConstraint("channel", "external_no", name="uq_work_order_external"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, index=True)
    kind: str = Field(max_length=16)
    external_no: str | None = Field(default=None, max_length=64, description="工单号 (12315/12345)")
    received_at: datetime = Field(sa_type=UTCDateTime)
    category: str = Field(max_length=64)
    # personal data: dedicated fields only
    complainant_name: str | None = Field(default=None, max_length=64)
    complainant_phone: str | None = Field(default=None, max_length=32)
    complainant_id_no: str | None = Field(default=None, max_length=32)
    complainant_address: str | None = Field(default=None, max_length=300)
    anonymous: bool = False
    respondent_name: str | None = Field(default=None, max_length=200)
    respondent_uscc: str | None = Field(default=None, max_length=18)
    respondent_address: str | None = Field(default=None, max_length=300)
    request: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    facts: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # the complaint's facts as structured fields (事实经过: when, where, goods or service, amount); facts = what
    incident_at: datetime | None = Field(default=None, sa_type=UTCDateTime, description="事发时间")
    incident_place: str | None = Field(default=None, max_length=300, description="事发地点")
    goods: str | None = Field(default=None, max_length=200, description="涉及商品或服务")
    amount: Decimal | None = Field(default=None, sa_type=MoneyColumn, description="涉及金额（元）")
    subject_id: int | None = Field(default=None, index=True)
    site_id: str | None = Field(default=None, max_length=64)
    subject_match: str | None = Field(default=None, max_length=16, description="uscc | name | address | site")
    clue_id: int | None = Field(default=None, index=True)
    accept_due: date | None = None
    accept_due_warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON))  # calendar not official
    # complaint handling (cloud/workflow/complaints.py)
    acceptance: str | None = Field(default=None, max_length=12, description="accepted | refused")
    decided_on: date | None = None
    refusal_ground: str | None = Field(default=None, max_length=40)
    decision_note: str = Field(default="", max_length=2000)
    decided_by: str | None = Field(default=None, max_length=64)
    mediation_due: date | None = None
    mediation_outcome: str | None = Field(default=None, max_length=16)
    mediation_ended_on: date | None = None
    feedback_due: date | None = None
    feedback_sent_on: date | None = None
    created_by: str = Field(default="system", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ComplainantMessage(SQLModel, table=True):
    """A message to a complainant or named reporter (受理告知、举报反馈), queued for the county's SMS gateway.

    The phone number is copied from the work order's dedicated column (personal data stays in these two tables).
    """

    __tablename__ = "complainant_message"

    id: int | None = Field(default=None, primary_key=True)
    work_order_id: int = Field(index=True)
    channel: str = Field(default="sms", max_length=16)
    to: str = Field(max_length=32)
    text: str = Field(max_length=1000)
    status: str = Field(default="queued", max_length=16, description="queued | sent | failed")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- analysis
class AnalysisDecision(SQLModel, table=True):
    __tablename__ = "analysis_decision"

    id: int | None = Field(default=None, primary_key=True)
    clue_id: int = Field(index=True)
    current: bool = Field(default=True, index=True)
    disposal: str = Field(max_length=20)
    rule_id: str = Field(max_length=32)
    rule_name: str = Field(max_length=100)
    reason: str = Field(max_length=500)
    explanation: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    matched: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    facts: dict[str, Any] = _json()
    pack_version: str = Field(max_length=40)
    deadline_id: str | None = Field(default=None, max_length=40)
    override: bool = False
    supersedes_id: int | None = None
    decided_by: str = Field(max_length=64)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RiskAssessmentRecord(SQLModel, table=True):
    __tablename__ = "risk_assessment"

    id: int | None = Field(default=None, primary_key=True)
    subject_id: int = Field(index=True)
    grade: str = Field(max_length=1)
    previous: str | None = Field(default=None, max_length=1)
    score: int
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    history: dict[str, Any] = _json()
    explanation: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    rules_version: str = Field(max_length=40)
    trigger: str = Field(max_length=16, description="schedule | on_demand")
    computed_by: str = Field(max_length=64)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- staff directory
class StaffProfile(SQLModel, table=True):
    """A user's workflow duties (roles of the state machines), department and enforcement certificate."""

    __tablename__ = "staff_profile"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", unique=True, index=True)
    duties: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    department_id: int | None = Field(default=None, index=True)
    cert_no: str | None = Field(default=None, max_length=40, description="执法证号")
    active: bool = True


class Recusal(SQLModel, table=True):
    """利害关系回避: this user must not inspect or handle this subject."""

    __tablename__ = "recusal"
    __table_args__ = (UniqueConstraint("user_id", "subject_id", name="uq_recusal"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(index=True)
    subject_id: int = Field(index=True)
    reason: str = Field(max_length=300)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WorkAssignment(SQLModel, table=True):
    """A person on a task or case; ``open`` ones are the workload balanced by dispatch."""

    __tablename__ = "work_assignment"

    id: int | None = Field(default=None, primary_key=True)
    target_type: str = Field(max_length=8, index=True, description="task | case")
    target_id: int = Field(index=True)
    user_id: int = Field(index=True)
    lead: bool = False
    open: bool = Field(default=True, index=True)
    assigned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- inspection
class InspectionTask(SQLModel, table=True):
    __tablename__ = "inspection_task"

    id: int | None = Field(default=None, primary_key=True)
    task_no: str = Field(max_length=40, index=True)
    state: TaskState = Field(default=TaskState.ASSIGNED, index=True, sa_type=state_type(TaskState))
    version: int = 0
    clue_id: int | None = Field(default=None, index=True)
    plan_id: int | None = Field(default=None, index=True)
    subject_id: int | None = Field(default=None, index=True)
    site_id: str | None = Field(default=None, max_length=64)
    department_id: int | None = Field(default=None, index=True)
    method: str = Field(default="现场检查", max_length=40)
    items: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    due_date: date
    due_warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    instructions: str = Field(default="", max_length=2000)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    checked_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    check_in: dict[str, Any] = _json()
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    findings_summary: str = Field(default="", max_length=4000)
    party_opinion: str = Field(default="", max_length=2000)
    conclusion: str | None = Field(default=None, max_length=40, description="compliant | on_site | rectify | case")
    case_id: int | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InspectionResult(SQLModel, table=True):
    __tablename__ = "inspection_result"
    __table_args__ = (UniqueConstraint("task_id", "item_code", name="uq_inspection_result"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(index=True)
    item_code: str = Field(max_length=20)
    outcome: str = Field(max_length=16, description="pass | fail | na")
    grade: str | None = Field(default=None, max_length=30)
    note: str = Field(default="", max_length=2000)
    photos: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- enforcement
class EnforcementCase(SQLModel, table=True):
    __tablename__ = "enforcement_case"

    id: int | None = Field(default=None, primary_key=True)
    case_no: str = Field(max_length=40, index=True)
    state: CaseState = Field(default=CaseState.REGISTERED, index=True, sa_type=state_type(CaseState))
    version: int = 0
    source: str = Field(max_length=16, description="clue | inspection | manual")
    clue_id: int | None = Field(default=None, index=True)
    task_id: int | None = Field(default=None, index=True)
    subject_id: int | None = Field(default=None, index=True)
    party_name: str | None = Field(default=None, max_length=200)
    department_id: int | None = Field(default=None, index=True)
    summary: str = Field(default="", max_length=4000)
    legal_basis: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    received_at: datetime = Field(sa_type=UTCDateTime, description="线索收到/发现之日：核查期限起算")
    verify_due: date
    verify_extensions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    verify_pauses: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    opened_on: date | None = None
    decision_due: date | None = None
    decision_extensions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    decision_pauses: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    # procedure (cloud/workflow/procedure.py): general | simplified; the party type decides the amounts that apply
    procedure: str = Field(default="general", max_length=12, description="general | simplified")
    party_type: str | None = Field(default=None, max_length=12, description="individual | organisation")
    proposed_amount: Decimal | None = Field(default=None, sa_type=MoneyColumn, description="告知的拟罚款（元）")
    notified_on: date | None = Field(default=None, description="告知书送达当事人之日：陈述申辩期起算")
    statement_due: date | None = None
    legal_review_due: date | None = None
    steps: dict[str, Any] = _json()  # records of the steps: opinions, notice, statements, hearing, review …
    measures: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))  # 查封扣押、先行登记保存
    decision: str | None = Field(default=None, max_length=4000)
    penalty_amount: Decimal | None = Field(default=None, sa_type=MoneyColumn, description="罚没款（元，精确到分）")
    decided_on: date | None = None
    served_on: date | None = None
    payment_due: date | None = None
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=2000)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CasePayment(SQLModel, table=True):
    __tablename__ = "case_payment"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(index=True)
    amount: Decimal = Field(gt=0, sa_type=MoneyColumn)
    paid_on: date
    receipt_no: str = Field(max_length=64)
    method: str = Field(default="online", max_length=20, description="online | bank | on_site")
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PenaltyPublication(SQLModel, table=True):
    __tablename__ = "penalty_publication"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(index=True)
    platform: str = Field(max_length=100, description="e.g. 国家企业信用信息公示系统")
    url: str | None = Field(default=None, max_length=500)
    published_on: date
    due: date
    on_time: bool
    content: str = Field(default="", max_length=4000, description="公示内容（已去除个人信息）")
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- documents
class DocumentRecord(SQLModel, table=True):
    """A generated legal document (PDF stored content-addressed under ``<data_dir>/documents``)."""

    __tablename__ = "document"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, description="inspection_record | rectification_order | case_approval")
    title: str = Field(max_length=40)
    doc_no: str = Field(max_length=60)
    sha256: str = Field(max_length=64, index=True)
    size: int
    task_id: int | None = Field(default=None, index=True)
    case_id: int | None = Field(default=None, index=True)
    clue_id: int | None = Field(default=None, index=True)
    data: dict[str, Any] = _json()
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DocumentSignature(SQLModel, table=True):
    __tablename__ = "document_signature"

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(index=True)
    record: dict[str, Any] = _json()
    signed_by: str = Field(max_length=64)
    signed_at: datetime = Field(sa_type=UTCDateTime)


class DocumentCounter(SQLModel, table=True):
    """Per kind and year, the last document number issued (文书编号)."""

    __tablename__ = "document_counter"

    key: str = Field(primary_key=True, max_length=40)
    last: int = 0


# ---------------------------------------------------------------- random inspection (双随机、一公开)
class RandomPlan(SQLModel, table=True):
    __tablename__ = "random_plan"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    state: str = Field(default="draft", max_length=16, description="draft | drawn")
    seed: str = Field(max_length=128)
    seed_recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    department_id: int | None = None
    domain: str | None = Field(default=None, max_length=32)
    items: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    subject_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    inspector_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    due_date: date | None = None
    inputs: dict[str, Any] = _json()
    record: dict[str, Any] = _json()
    drawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    publish_due: date | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- schema upgrades
log = logging.getLogger(__name__)

#: money columns that were float yuan before they became integer fen (#14)
FLOAT_YUAN_COLUMNS = (
    ("enforcement_case", "penalty_amount"),
    ("enforcement_case", "proposed_amount"),
    ("case_payment", "amount"),
)


def upgrade_schema(engine: Engine) -> None:
    """Money columns stored as float yuan by earlier versions become integer fen (rounded half away from zero to
    the fen), in place; runs before the tables are created (:func:`cloud.core.db.init_db`). Without it an old
    amount of 12345.67 would read back as 123.46 yuan."""
    inspector = inspect(engine)
    for table, column in FLOAT_YUAN_COLUMNS:
        if not inspector.has_table(table):
            continue
        found = next((c for c in inspector.get_columns(table) if c["name"] == column), None)
        if found is None or not isinstance(found["type"], Float):
            continue
        log.warning("upgrading %s.%s: float yuan -> integer fen (rows kept)", table, column)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE BIGINT USING round({column} * 100)::bigint"
                )
                continue
            old = f"{column}_yuan_v0"
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {column} TO {old}")
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} BIGINT")
            conn.exec_driver_sql(f"UPDATE {table} SET {column} = CAST(ROUND({old} * 100) AS INTEGER)")
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {old}")


class ClueReferral(SQLModel, table=True):
    """移送: a complaint/report received by one department about a subject under another department's territorial
    jurisdiction, sent there as a new clue of that department (cloud/workflow/referral.py). The receiving
    department keeps this row as its read-only receipt; the clue itself is the other department's."""

    __tablename__ = "clue_referral"

    id: int | None = Field(default=None, primary_key=True)
    work_order_id: int = Field(index=True)
    clue_id: int = Field(index=True)
    from_department_id: int = Field(index=True)
    to_department_id: int = Field(index=True)
    referred_by: str = Field(max_length=64)
    referred_at: datetime = Field(sa_type=UTCDateTime)
    respondent: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=16)
