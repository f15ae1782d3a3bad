"""Legal documents: metadata, PDF download, additional signatures, verification, the bureau's public key.

``POST /documents/{id}/verify`` takes a PDF file and answers whether it is exactly the signed document
(``valid``; ``reason`` ``hash_mismatch`` when it was changed), checking every stored signature with the bureau's
public key (``GET /documents/public-key``), so a recipient can check a copy they were given.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from cloud.api.deps import SessionDep, SettingsDep, StaffUser
from cloud.api.routes.workflow import ActorDep, WorkflowRoute, dump
from cloud.security.scoping import ScopeDep, document_departments, public
from cloud.workflow import paperwork
from cloud.workflow.models import DocumentRecord
from cloud.workflow.service import Forbidden, NotFound
from cloud.workflow.states import ROLE_LABELS

router = APIRouter(prefix="/documents", tags=["documents"], route_class=WorkflowRoute)


def _doc(session: Any, document_id: int) -> DocumentRecord:
    doc: DocumentRecord | None = session.get(DocumentRecord, document_id)
    if doc is None:
        raise NotFound(f"文书 {document_id} 不存在 / document not found")
    return doc


def _view(session: Any, doc: DocumentRecord) -> dict[str, Any]:
    data = dump(doc)
    data["signatures"] = [s.record for s in paperwork.signatures(session, doc.id or 0)]
    data["pdf_url"] = f"/api/v1/documents/{doc.id}/pdf"
    return data


@router.get("", summary="文书列表")
def get_documents(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    task_id: int | None = None,
    case_id: int | None = None,
    clue_id: int | None = None,
) -> list[dict[str, Any]]:
    query = select(DocumentRecord)
    if task_id is not None:
        query = query.where(DocumentRecord.task_id == task_id)
    if case_id is not None:
        query = query.where(DocumentRecord.case_id == case_id)
    if clue_id is not None:
        query = query.where(DocumentRecord.clue_id == clue_id)
    rows = session.exec(query.order_by(col(DocumentRecord.id)))
    return [_view(session, d) for d in rows if any(scope.allows(dep) for dep in document_departments(session, d))]


@router.get(
    "/public-key", summary="本局电子签名公钥（PEM）", dependencies=[public("the bureau's public key, for recipients")]
)
def get_public_key(settings: SettingsDep) -> Response:
    key = paperwork.bureau_key(settings)
    return Response(key.public_pem(), media_type="application/x-pem-file", headers={"X-Key-Id": key.key_id})


@router.get("/{document_id}", summary="文书信息与签名记录")
def get_document(session: SessionDep, _: StaffUser, document_id: int) -> dict[str, Any]:
    return _view(session, _doc(session, document_id))


@router.get("/{document_id}/pdf", summary="下载文书 PDF")
def get_document_pdf(session: SessionDep, settings: SettingsDep, _: StaffUser, document_id: int) -> Response:
    doc = _doc(session, document_id)
    pdf = paperwork.document_bytes(settings, doc)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{doc.kind}-{doc.id}.pdf"', "ETag": f'"{doc.sha256}"'},
    )


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = Field(default=None, max_length=40, description="签名身份（默认：第一项业务职责）")


@router.post("/{document_id}/sign", summary="电子签名（当前用户）")
def post_sign(
    session: SessionDep, settings: SettingsDep, actor: ActorDep, document_id: int, body: SignIn
) -> dict[str, Any]:
    if not actor.duties:
        raise Forbidden("没有业务职责的用户不能签署文书 / no workflow duty")
    doc = _doc(session, document_id)
    role = body.role or ROLE_LABELS[sorted(actor.duties, key=list(ROLE_LABELS).index)[0]]
    paperwork.sign(session, settings, doc, actor, role)
    session.commit()
    return _view(session, doc)


@router.post("/{document_id}/verify", summary="验证 PDF 是否为签署的原件")
async def post_verify(
    session: SessionDep,
    settings: SettingsDep,
    _: StaffUser,
    document_id: int,
    file: Annotated[UploadFile, File(description="待验证的 PDF")],
) -> dict[str, Any]:
    pdf = await file.read()
    return paperwork.verify(session, settings, _doc(session, document_id), pdf)
