"""Documents of the penalty and complaint procedures (one model per document, one shared template layout).

Each step of :mod:`cloud.workflow.procedure` that the law requires in writing produces one of these: the
行政处罚告知书 with the party's rights and the statement deadline, the 听证通知书 and 听证笔录, the 法制审核意见书
and 集体讨论记录 carrying the opinions and names actually entered, the 行政处罚决定书 with the amount in yuan and
fen, the 送达回证, the 当场行政处罚决定书, and the complainant's 受理 / 不予受理 notice. The content is data
(``lines`` label/value pairs and ``paragraphs``); the layout is ``templates/_procedure_step.xml.j2``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cloud.documents.models import DocumentData, Party, _Model

__all__ = [
    "PROCEDURE_DOCUMENTS",
    "ComplaintNotice",
    "DiscussionRecord",
    "HearingNotice",
    "HearingRecord",
    "LegalReviewOpinion",
    "Line",
    "OnTheSpotDecision",
    "PenaltyDecision",
    "PenaltyNotice",
    "ProcedureDocument",
    "ServiceReceipt",
]


class Line(_Model):
    label: str = Field(min_length=1, max_length=40)
    value: str = Field(default="", max_length=4000)


class ProcedureDocument(DocumentData):
    case_no: str = Field(default="", max_length=40)
    party: Party
    lines: list[Line] = Field(default_factory=list)
    paragraphs: list[str] = Field(default_factory=list)
    signatures: list[str] = Field(default_factory=list, description="signature boxes (labels)")


class PenaltyNotice(ProcedureDocument):
    template: ClassVar[str] = "penalty_notice"
    title: ClassVar[str] = "行政处罚告知书"


class HearingNotice(ProcedureDocument):
    template: ClassVar[str] = "hearing_notice"
    title: ClassVar[str] = "听证通知书"


class HearingRecord(ProcedureDocument):
    template: ClassVar[str] = "hearing_record"
    title: ClassVar[str] = "听证笔录"


class LegalReviewOpinion(ProcedureDocument):
    template: ClassVar[str] = "legal_review"
    title: ClassVar[str] = "法制审核意见书"


class DiscussionRecord(ProcedureDocument):
    template: ClassVar[str] = "collective_discussion"
    title: ClassVar[str] = "案件集体讨论记录"


class PenaltyDecision(ProcedureDocument):
    template: ClassVar[str] = "penalty_decision"
    title: ClassVar[str] = "行政处罚决定书"


class ServiceReceipt(ProcedureDocument):
    template: ClassVar[str] = "service_receipt"
    title: ClassVar[str] = "送达回证"


class OnTheSpotDecision(ProcedureDocument):
    template: ClassVar[str] = "on_the_spot_decision"
    title: ClassVar[str] = "当场行政处罚决定书"


class ComplaintNotice(ProcedureDocument):
    template: ClassVar[str] = "complaint_notice"
    title: ClassVar[str] = "投诉处理告知书"


PROCEDURE_DOCUMENTS: dict[str, type[ProcedureDocument]] = {
    cls.template: cls
    for cls in (
        PenaltyNotice,
        HearingNotice,
        HearingRecord,
        LegalReviewOpinion,
        DiscussionRecord,
        PenaltyDecision,
        ServiceReceipt,
        OnTheSpotDecision,
        ComplaintNotice,
    )
}
