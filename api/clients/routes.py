from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.clients import service
from api.clients.schemas import ClientDetail, ClientPage, ClientStatusChange, ClientSummary
from api.deps import SessionDep
from api.me import service as me_service
from api.me.schemas import ApplicationView
from api.policy import ClientManager, ClientReviewer
from api.problems import error_responses
from api.schemas import Instant

router = APIRouter(prefix="/v1/clients", tags=["clients (staff)"])
NO_CLIENT = error_responses({404: "no such client"})


@router.get("")
async def list_clients(
    _: ClientReviewer,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Instant | None = None,
    email: Annotated[str | None, Query(max_length=254, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
) -> ClientPage:
    """Newest first; pass the last item's `created_at` as `before` for the next page."""
    clients = await service.list_clients(session, limit, before, email)
    return ClientPage(
        items=[ClientSummary.model_validate(c) for c in clients],
        next_before=clients[-1].created_at if len(clients) == limit else None,
    )


@router.get("/{client_id}", responses=NO_CLIENT)
async def get_client(client_id: UUID, _: ClientReviewer, session: SessionDep) -> ClientDetail:
    client = await service.get_client(session, client_id)
    return ClientDetail(
        client=ClientSummary.model_validate(client),
        accounts=await me_service.account_views(
            session, await me_service.accounts(session, client_id)
        ),
        applications=[
            ApplicationView.model_validate(a)
            for a in await me_service.applications(session, client_id)
        ],
    )


@router.post("/{client_id}/status", responses=NO_CLIENT)
async def change_client_status(
    client_id: UUID, body: ClientStatusChange, staff: ClientManager, session: SessionDep
) -> ClientSummary:
    """Block or unblock a client's access to BrokerFlow (MT5 rights are a later workflow)."""
    return ClientSummary.model_validate(
        await service.change_status(session, client_id, body, staff)
    )
