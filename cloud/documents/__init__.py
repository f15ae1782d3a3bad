"""Legal documents (执法文书): Jinja2 templates rendered to PDF with an embedded CJK font.

Public API: the data models (:mod:`cloud.documents.models`), :func:`render_pdf`, :func:`render_markup`,
:func:`document_sha256`; electronic signatures over the PDF live in :mod:`cloud.signing`.
"""

from cloud.documents.fonts import FontUnavailable
from cloud.documents.models import (
    CaseApproval,
    CheckedItem,
    InspectionRecord,
    Officer,
    Party,
    RectificationOrder,
    ViolationLine,
)
from cloud.documents.render import DocumentError, document_sha256, render_markup, render_pdf

__all__ = [
    "CaseApproval",
    "CheckedItem",
    "DocumentError",
    "FontUnavailable",
    "InspectionRecord",
    "Officer",
    "Party",
    "RectificationOrder",
    "ViolationLine",
    "document_sha256",
    "render_markup",
    "render_pdf",
]
