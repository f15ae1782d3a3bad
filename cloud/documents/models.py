"""Typed inputs of the legal document templates (one model per document, validated before rendering)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CaseApproval",
    "CheckedItem",
    "DocumentData",
    "InspectionRecord",
    "Officer",
    "Party",
    "RectificationOrder",
    "ViolationLine",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Party(_Model):
    """当事人 / 被检查人."""

    name: str = Field(min_length=1, max_length=200)
    uscc: str | None = Field(default=None, max_length=18, description="统一社会信用代码")
    address: str = Field(min_length=1, max_length=300)
    legal_representative: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=30)
    licence_no: str | None = Field(default=None, max_length=60)


class Officer(_Model):
    name: str = Field(min_length=1, max_length=50)
    cert_no: str = Field(min_length=1, max_length=40, description="执法证号")


class DocumentData(_Model):
    template: ClassVar[str]
    title: ClassVar[str]

    doc_no: str = Field(min_length=1, max_length=60, description="文书编号")
    agency: str = Field(min_length=1, max_length=100, description="制作机关")


class CheckedItem(_Model):
    code: str
    title: str
    result: Literal["符合", "不符合", "不适用"]
    note: str = ""


class InspectionRecord(DocumentData):
    """现场检查笔录."""

    template: ClassVar[str] = "inspection_record"
    title: ClassVar[str] = "现场检查笔录"

    party: Party
    place: str = Field(min_length=1, max_length=300)
    started_at: AwareDatetime
    ended_at: AwareDatetime
    officers: list[Officer] = Field(min_length=2, description="≥2 inspectors")
    recorder: str = Field(min_length=1, max_length=50)
    recusal_requested: bool = False
    task_ref: str | None = None
    items: list[CheckedItem] = Field(min_length=1)
    findings: str = Field(min_length=1, max_length=4000, description="现场检查情况")
    party_opinion: str = Field(default="", max_length=2000)
    evidence: list[str] = Field(default_factory=list, description="照片、录像等证据清单")

    @model_validator(mode="after")
    def _times(self) -> InspectionRecord:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at before started_at")
        return self


class ViolationLine(_Model):
    fact: str = Field(min_length=1, max_length=1000)
    violated: list[str] = Field(min_length=1, description="违反的条款（引文）")


class RectificationOrder(DocumentData):
    """责令改正通知书."""

    template: ClassVar[str] = "rectification_order"
    title: ClassVar[str] = "责令改正通知书"

    party: Party
    inspected_on: dt.date
    violations: list[ViolationLine] = Field(min_length=1)
    legal_basis: list[str] = Field(min_length=1, description="责令改正的依据（引文）")
    deadline: dt.date
    requirements: list[str] = Field(min_length=1)
    issued_on: dt.date
    contact: str = Field(min_length=1, max_length=100)
    reconsideration_body: str | None = Field(default=None, max_length=100, description="行政复议机关")
    court: str | None = Field(default=None, max_length=100, description="行政诉讼管辖法院")
    officers: list[Officer] = Field(
        default_factory=list, description="送达通知书的执法人员（姓名、执法证号）; empty only in orders stored before"
    )

    @model_validator(mode="after")
    def _deadline(self) -> RectificationOrder:
        if self.deadline < self.issued_on:
            raise ValueError("deadline before issue date")
        return self


class CaseApproval(DocumentData):
    """立案审批表."""

    template: ClassVar[str] = "case_approval"
    title: ClassVar[str] = "立案审批表"

    source: str = Field(min_length=1, max_length=100, description="案件来源")
    party: Party
    discovered_on: dt.date
    summary: str = Field(min_length=1, max_length=4000, description="案情摘要")
    legal_basis: list[str] = Field(min_length=1, description="涉嫌违反的条款")
    handlers: list[Officer] = Field(min_length=2)
    handler_opinion: str = Field(min_length=1, max_length=1000)
    department_opinion: str = Field(default="", max_length=1000)
    head_opinion: str = Field(default="", max_length=1000)
