"""`Idempotency-Key` on client money requests: the same key with the same body is the same request
(answered with what it created), the same key with another body is refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import Header
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.temporal import TemporalConnector, start_once
from contracts.process import Process
from db.models.payments import ClientRequest
from domain.errors import Conflict, InvalidInput, NotFound

# Visible ASCII, spaces allowed inside: what survives every HTTP stack unchanged.
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,198}[\x21-\x7e])?$"

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=KEY_PATTERN,
        description="1-200 printable ASCII characters chosen by the client, e.g. a UUID; "
        "repeating a request with the same key returns what the first one created",
    ),
]

KEY_REUSED = "this Idempotency-Key was used for a different request"
RequestT = TypeVar("RequestT", bound=ClientRequest)
ArgumentT = TypeVar("ArgumentT")


def _canonical(value: object) -> str:
    if isinstance(value, Decimal):
        # "10", "10.0" and "10.00" are the same amount, hence the same request.
        return format(value.normalize(), "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


def request_hash(kind: str, body: BaseModel) -> str:
    """sha256 of the canonical JSON of a validated request body and what kind of request it is."""
    canonical = json.dumps(
        {"request": kind, "body": body.model_dump()},
        default=_canonical,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def earlier_request(
    session: AsyncSession, model: type[RequestT], client_id: uuid.UUID, key: str, digest: str
) -> RequestT | None:
    """What this client already created with `key`; refused if it was asked with another body."""
    earlier = await session.scalar(
        select(model).where(model.client_id == client_id, model.idempotency_key == key)
    )
    if earlier is not None and earlier.request_hash != digest:
        raise InvalidInput(KEY_REUSED, field="Idempotency-Key")
    return earlier


async def first_request(
    session: AsyncSession, model: type[RequestT], row: RequestT
) -> tuple[RequestT, bool]:
    """`row` inserted (True), or the request that got there first with the same key (False):
    two requests racing with one key are told apart by the unique (client_id, idempotency_key)
    constraint, inside a savepoint so the loser's transaction goes on."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        pass
    else:
        return row, True
    winner = await earlier_request(
        session, model, row.client_id, row.idempotency_key, row.request_hash
    )
    if winner is None:
        raise Conflict("the request conflicts with stored data and was not applied")
    return winner, False


async def requests_of(
    session: AsyncSession, model: type[RequestT], client_id: uuid.UUID, limit: int, offset: int
) -> list[RequestT]:
    """A client's payments or transfers, newest first."""
    rows = await session.scalars(
        select(model)
        .where(model.client_id == client_id)
        .order_by(model.created_at.desc(), model.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def own_request(
    session: AsyncSession, model: type[RequestT], client_id: uuid.UUID, request_id: uuid.UUID
) -> RequestT:
    """One of the client's own requests; anybody else's is as good as absent."""
    row = await session.get(model, request_id)
    if row is None or row.client_id != client_id:
        raise NotFound(f"you have no {model.__tablename__.rstrip('s')} {request_id}")
    return row


async def start_request(
    session: AsyncSession,
    temporal: TemporalConnector,
    row: RequestT,
    process: Process[ArgumentT, Any],
    argument: ArgumentT,
) -> RequestT:
    """Start the request's workflow (`process`) under its business-key id, after its row is
    flushed and before the commit (a refused start rolls the request back); the row as stored."""
    await session.flush()
    await start_once(temporal, process, argument, row.workflow_id)
    await session.refresh(row)
    return row
