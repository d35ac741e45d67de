"""Identity and address documents: the upload read within a bound, inspected by its content,
dated, encrypted into the document store and recorded.

Nothing half-written: the file is stored first, under a random key of its own, then its row is
inserted. If the insert (or the request's commit) fails after the file was stored, the file is
deleted when the failure is seen here; when it is not (the commit fails after the route
returned), an orphan remains, which is harmless: it is encrypted, its key is random and recorded
nowhere, so nothing can find, list or serve it, and a later upload of the same file gets a key of
its own. A sweep may delete blobs that no `client_documents` row names.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message, Receive

from api.onboarding.schemas import DocumentForm
from api.policy import Principal
from db import audit
from db.models import ClientDocument
from domain.documents import MAX_BYTES, MIB, DocumentStatus, check_dates, valid_until
from domain.errors import Conflict, InvalidInput, ServiceUnavailable
from storage.documents import DocumentStore, StorageError
from storage.inspection import inspect_upload_async

# The multipart body around the file: boundaries, part headers and the three short fields.
FORM_OVERHEAD = 64 * 1024
MAX_BODY = MAX_BYTES + FORM_OVERHEAD
FORM_FIELDS = ("kind", "issued_on", "expires_on")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Upload:
    form: DocumentForm
    filename: str
    content_type: str | None
    data: bytes


def _too_large(size: str) -> InvalidInput:
    return InvalidInput(
        f"the upload is {size}; at most {MAX_BYTES // MIB} MiB per file is accepted",
        field="file",
    )


async def _bounded_body(request: Request) -> bytes:
    """The request body, refused as soon as it passes MAX_BODY (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("the Content-Length header is not a number", field="file")
        if int(declared) > MAX_BODY:
            raise _too_large(f"{int(declared) / MIB:.1f} MiB")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            raise _too_large(f"more than {MAX_BODY / MIB:.1f} MiB")
    return bytes(body)


def _replay(body: bytes) -> Receive:
    """An ASGI receive that hands the already-read body over once."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def read_upload(request: Request) -> Upload:
    """The multipart form of a document upload: `kind`, `file`, `issued_on`, `expires_on`."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidInput(
            "send the document as multipart/form-data with the fields kind, file, issued_on "
            "and expires_on",
            field="file",
        )
    body = await _bounded_body(request)
    replay = Request(request.scope, receive=_replay(body))
    try:
        form = await replay.form(max_files=1, max_fields=len(FORM_FIELDS), max_part_size=1024)
    except (HTTPException, MultiPartException, ValueError) as exc:
        # ValueError: python-multipart's own parse errors, which Starlette lets through.
        reason = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)
        raise InvalidInput(
            f"the upload is not valid multipart/form-data: {str(reason)[:200]}", field="file"
        ) from None
    try:
        return await _parts(form)
    finally:
        await form.close()


async def _parts(form: FormData) -> Upload:
    fields: dict[str, str] = {}
    file: UploadFile | None = None
    for name, value in form.multi_items():
        if name == "file":
            if not isinstance(value, UploadFile):
                raise InvalidInput("`file` must be a file part (with a filename)", field="file")
            if file is not None:
                raise InvalidInput("send one file per upload", field="file")
            file = value
            continue
        if name not in FORM_FIELDS:
            raise InvalidInput(
                f"unexpected form field {name[:40]!r}; the fields are kind, file, issued_on "
                "and expires_on",
                field=name[:40],
            )
        if not isinstance(value, str) or name in fields:
            raise InvalidInput(f"`{name}` must be given once, as text", field=name)
        if value.strip():
            fields[name] = value.strip()
    try:
        document = DocumentForm.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    if file is None:
        raise InvalidInput("the form has no `file` part", field="file")
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _too_large(f"more than {MAX_BYTES // MIB} MiB")
    return Upload(document, _safe_filename(file.filename), file.content_type, data)


def _safe_filename(name: str | None) -> str:
    """The client's file name as metadata only: its last path segment, printable, bounded."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = _UNSAFE_NAME.sub("", base).strip()
    return cleaned[:255] or "upload"


async def documents_of(session: AsyncSession, client_id: uuid.UUID) -> list[ClientDocument]:
    rows = await session.scalars(
        select(ClientDocument)
        .where(ClientDocument.client_id == client_id)
        .order_by(ClientDocument.created_at.desc(), ClientDocument.id)
    )
    return list(rows)


async def _same_file(
    session: AsyncSession, client_id: uuid.UUID, sha256: str
) -> ClientDocument | None:
    row: ClientDocument | None = await session.scalar(
        select(ClientDocument).where(
            ClientDocument.client_id == client_id, ClientDocument.sha256 == sha256
        )
    )
    return row


def _already_uploaded(row: ClientDocument, upload: Upload) -> ClientDocument:
    if row.kind != upload.form.kind.value:
        raise Conflict(
            f"this file was already uploaded as a {row.kind.replace('_', ' ')} (document "
            f"{row.id}); upload the {upload.form.kind.label} itself",
            document_id=str(row.id),
        )
    return row


async def upload_document(
    session: AsyncSession, store: DocumentStore, me: Principal, upload: Upload
) -> tuple[ClientDocument, bool]:
    """The stored document (True), or the same file uploaded before (False)."""
    kind = upload.form.kind
    check_dates(kind, upload.form.issued_on, upload.form.expires_on, datetime.now(UTC).date())
    inspected = await inspect_upload_async(
        upload.data,
        filename=upload.filename,
        declared_content_type=upload.content_type,
        kind=kind,
    )
    earlier = await _same_file(session, me.id, inspected.sha256)
    if earlier is not None:
        return _already_uploaded(earlier, upload), False

    document_id = uuid.uuid4()
    # Random, never the content hash: a key must not tell which document it holds.
    key = f"clients/{me.id}/documents/{uuid.uuid4().hex}"
    try:
        await store.put(key, upload.data)
    except (StorageError, OSError) as exc:
        raise ServiceUnavailable("the document store is not available; try again shortly") from exc
    row = ClientDocument(
        id=document_id,
        client_id=me.id,
        kind=kind.value,
        status=DocumentStatus.UPLOADED.value,
        filename=upload.filename,
        content_type=inspected.content_type,
        size_bytes=inspected.size,
        pages=inspected.pages,
        sha256=inspected.sha256,
        storage_key=key,
        issued_on=upload.form.issued_on,
        expires_on=upload.form.expires_on,
        valid_until=valid_until(kind, upload.form.issued_on, upload.form.expires_on),
    )
    try:
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # The same file, uploaded at the same moment by another request of this client.
            await _forget(store, key)
            winner = await _same_file(session, me.id, inspected.sha256)
            if winner is None:
                raise Conflict("the upload conflicts with stored data; try again") from None
            return _already_uploaded(winner, upload), False
        audit.record(
            session,
            me.actor(),
            audit.Change(
                action="client_document.uploaded",
                entity_type="client_document",
                entity_id=str(row.id),
                after={
                    "kind": row.kind,
                    "content_type": row.content_type,
                    "size_bytes": row.size_bytes,
                    "pages": row.pages,
                    "sha256": row.sha256,
                    "issued_on": row.issued_on.isoformat() if row.issued_on else None,
                    "expires_on": row.expires_on.isoformat() if row.expires_on else None,
                    "valid_until": row.valid_until.isoformat(),
                },
            ),
        )
        await session.flush()
        await session.refresh(row)
    except BaseException:
        await _forget(store, key)
        raise
    return row, True


async def _forget(store: DocumentStore, key: str) -> None:
    """Best effort: a blob left behind is harmless (see the module docstring)."""
    try:
        await store.delete(key)
    except (StorageError, OSError):
        pass
