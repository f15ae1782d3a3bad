"""Documents of the penalty and complaint procedures (one model per document, one shared template layout).

Each step of :mod:`cloud.workflow.procedure` that the law requires in writing produces one of these: the
行政处罚告知书 with the party's rights and the statement deadline, the 听证通知书 and 听证笔录, the 法制审核意见书
and 集体讨论记录 carrying the opinions and names actually entered, the 行政处罚决定书 with the amount in yuan and
fen, the 送达回证, the 当场行政处罚决定书, and the complainant's 受理 / 不予受理 notice. The content is data
(``lines`` label/value pairs and ``paragraphs``); the layout is ``templates/_procedure_step.xml.j2``.
"""

from __future__ import annotations

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


def _kind(name: str, template: str, title: str) -> type[ProcedureDocument]:
    """One document of the procedure: the shared model with its template name and title (the layout is shared)."""
    cls = type(name, (ProcedureDocument,), {"__module__": __name__, "template": template, "title": title})
    return cls


# (class name, template, title): the documents are data; one model and one layout serve them all
_KINDS = (
    ("PenaltyNotice", "penalty_notice", "行政处罚告知书"),
    ("HearingNotice", "hearing_notice", "听证通知书"),
    ("HearingRecord", "hearing_record", "听证笔录"),
    ("LegalReviewOpinion", "legal_review", "法制审核意见书"),
    ("DiscussionRecord", "collective_discussion", "案件集体讨论记录"),
    ("PenaltyDecision", "penalty_decision", "行政处罚决定书"),
    ("ServiceReceipt", "service_receipt", "送达回证"),
    ("OnTheSpotDecision", "on_the_spot_decision", "当场行政处罚决定书"),
    ("ComplaintNotice", "complaint_notice", "投诉处理告知书"),
)
PROCEDURE_DOCUMENTS: dict[str, type[ProcedureDocument]] = {t: _kind(n, t, title) for n, t, title in _KINDS}

PenaltyNotice = PROCEDURE_DOCUMENTS["penalty_notice"]
HearingNotice = PROCEDURE_DOCUMENTS["hearing_notice"]
HearingRecord = PROCEDURE_DOCUMENTS["hearing_record"]
LegalReviewOpinion = PROCEDURE_DOCUMENTS["legal_review"]
DiscussionRecord = PROCEDURE_DOCUMENTS["collective_discussion"]
PenaltyDecision = PROCEDURE_DOCUMENTS["penalty_decision"]
ServiceReceipt = PROCEDURE_DOCUMENTS["service_receipt"]
OnTheSpotDecision = PROCEDURE_DOCUMENTS["on_the_spot_decision"]
ComplaintNotice = PROCEDURE_DOCUMENTS["complaint_notice"]
