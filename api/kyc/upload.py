"""The list upload's multipart form (`source`, `file`), read within a bound.

The body is counted as it arrives and refused as soon as it passes the bound, so an endless or
oversized upload never fills the disk; the file part is spooled to a temporary file by
Starlette's parser (not held twice in memory) and read once it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message, Receive

from domain.errors import InvalidInput
from domain.screening import ListSource

MIB = 1024 * 1024
# Large enough for every published list (OFAC's SDN XML with its advanced fields is ~100 MB).
MAX_LIST_BYTES = 200 * MIB
FORM_OVERHEAD = 64 * 1024
SOURCES = ", ".join(s.value for s in ListSource)


@dataclass(frozen=True)
class ListUpload:
    source: ListSource
    filename: str
    data: bytes


def _too_large(size: str) -> InvalidInput:
    return InvalidInput(
        f"the list file is {size}; at most {MAX_LIST_BYTES // MIB} MiB is accepted", field="file"
    )


def _bounded(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(f"more than {limit / MIB:.0f} MiB")
        return message

    return bounded


async def read_list_upload(request: Request) -> ListUpload:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidInput(
            f"send the list as multipart/form-data with the fields source ({SOURCES}) and file",
            field="file",
        )
    limit = MAX_LIST_BYTES + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{int(declared) / MIB:.1f} MiB")
    bounded = Request(request.scope, receive=_bounded(request.receive, limit))
    try:
        form = await bounded.form(max_files=1, max_fields=1, max_part_size=1024)
    except (HTTPException, MultiPartException, ValueError) as exc:
        # ValueError: python-multipart's own parse errors (a bad part header), which Starlette
        # lets through: a 500 before.
        reason = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)
        raise InvalidInput(
            f"the upload is not valid multipart/form-data: {str(reason)[:200]}", field="file"
        ) from None
    try:
        raw_source = form.get("source")
        file = form.get("file")
        if not isinstance(raw_source, str) or not raw_source.strip():
            raise InvalidInput(
                f"say which list this is: source is one of {SOURCES}", field="source"
            )
        try:
            source = ListSource(raw_source.strip())
        except ValueError:
            raise InvalidInput(
                f"unknown list source {raw_source[:40]!r}; use one of {SOURCES}", field="source"
            ) from None
        if not isinstance(file, UploadFile):
            raise InvalidInput("the form has no `file` part (with a filename)", field="file")
        data = await file.read(MAX_LIST_BYTES + 1)
        if len(data) > MAX_LIST_BYTES:
            raise _too_large(f"more than {MAX_LIST_BYTES // MIB} MiB")
        return ListUpload(source, file.filename or "", data)
    finally:
        await form.close()
