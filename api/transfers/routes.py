from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from api.deps import SessionDep, StateDep
from api.idempotency import IdempotencyKey, own_request, requests_of
from api.policy import ClientPrincipal
from api.problems import error_responses
from api.schemas import Limit, Offset
from api.transfers import service
from api.transfers.schemas import TransferRequest, TransferView
from db.models import Transfer

router = APIRouter(prefix="/v1/me/transfers", tags=["client payments"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        {
            404: "no such MT5 account among yours",
            409: "Insufficient funds in the wallet",
            422: "invalid amount, same source and destination, no FX rate, reused key",
            503: "workflow engine down; nothing was recorded",
        }
    ),
)
async def request_transfer(
    body: TransferRequest,
    key: IdempotencyKey,
    me: ClientPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> TransferView:
    """Move money between your wallets and live MT5 accounts."""
    transfer = await service.request_transfer(
        session, state.temporal, state.settings.payments, me, body, key
    )
    response.headers["Location"] = f"/v1/me/transfers/{transfer.id}"
    return TransferView.of(transfer)


@router.get("")
async def my_transfers(
    me: ClientPrincipal, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> list[TransferView]:
    return [TransferView.of(t) for t in await requests_of(session, Transfer, me.id, limit, offset)]


@router.get("/{transfer_id}", responses=error_responses({404: "not one of yours"}))
async def my_transfer(transfer_id: UUID, me: ClientPrincipal, session: SessionDep) -> TransferView:
    return TransferView.of(await own_request(session, Transfer, me.id, transfer_id))
