"""Evidence blobs: agents upload snapshots by hash, staff download them.

* ``PUT /api/v1/evidence/{sha256}`` — body = the raw bytes; bearer token of a device account (role
  ``device``; admins too). 201 when stored, 200 when it was already there, 422 when the content does
  not hash to the name, 413 when too large.
* ``GET /api/v1/evidence/{sha256}`` — staff (supervisor, inspector, auditor, admin); immutable, so it
  is served with a long cache lifetime and the hash as ETag.
* ``HEAD /api/v1/evidence/{sha256}`` — lets an agent skip an upload the cloud already has.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status

from cloud.api.deps import STAFF_ROLES, SettingsDep, require_roles
from cloud.core.users import Role, User
from cloud.evidence import MAX_EVIDENCE_BYTES, EvidenceError, EvidenceStore, sniff_content_type
from cloud.security.scoping import county_wide

router = APIRouter(prefix="/evidence", tags=["evidence"])

Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the content, lower-case hex")]
DeviceUser = Annotated[User, Depends(require_roles(Role.DEVICE))]
StaffUser = Annotated[User, Depends(require_roles(*STAFF_ROLES))]
#: upload and existence check by content hash: the device names bytes it holds, it reads nothing
DEVICE_ROUTE = county_wide("device upload by content hash")


def get_evidence_store(settings: SettingsDep) -> EvidenceStore:
    return EvidenceStore(settings.data_dir / "evidence")


EvidenceStoreDep = Annotated[EvidenceStore, Depends(get_evidence_store)]


@router.put(
    "/{sha256}",
    summary="上传证据（按哈希）(upload evidence by hash)",
    responses={201: {"description": "stored"}, 200: {"description": "already stored"}},
    dependencies=[DEVICE_ROUTE],
)
async def upload(sha256: Sha256, request: Request, store: EvidenceStoreDep, _: DeviceUser) -> Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_EVIDENCE_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "证据文件过大 (evidence too large)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_EVIDENCE_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "证据文件过大 (evidence too large)")
        chunks.append(chunk)
    try:
        stored = store.put(sha256, b"".join(chunks))
    except EvidenceError as exc:
        code = status.HTTP_413_CONTENT_TOO_LARGE if exc.reason == "too_large" else 422
        raise HTTPException(code, f"证据校验失败 (evidence rejected): {exc}") from None
    body: dict[str, Any] = {"sha256": stored.sha256, "size": stored.size, "content_type": stored.content_type}
    return Response(
        content=json.dumps({**body, "created": stored.created}),
        media_type="application/json",
        status_code=status.HTTP_201_CREATED if stored.created else status.HTTP_200_OK,
    )


@router.get("/{sha256}", summary="下载证据 (download evidence)")
def download(sha256: Sha256, store: EvidenceStoreDep, _: StaffUser) -> Response:
    data = store.get(sha256)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "证据不存在 (no such evidence)")
    return Response(
        content=data,
        media_type=sniff_content_type(data),
        headers={"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable"},
    )


@router.head("/{sha256}", summary="证据是否已存在 (does the cloud have it)", dependencies=[DEVICE_ROUTE])
def exists(sha256: Sha256, store: EvidenceStoreDep, _: DeviceUser) -> Response:
    if not store.exists(sha256):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "证据不存在 (no such evidence)")
    return Response(status_code=status.HTTP_200_OK)
