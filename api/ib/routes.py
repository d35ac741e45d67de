from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.deps import SessionDep
from api.ib import service
from api.ib.schemas import IbCreate, IbView, ReferredClient
from api.policy import AdminPrincipal, IbPrincipal, IbReader
from api.problems import error_responses

staff_router = APIRouter(prefix="/v1/ibs", tags=["introducing brokers (staff)"])
self_router = APIRouter(prefix="/v1/ib", tags=["IB self-service"])


@staff_router.get("")
async def list_ibs(_: IbReader, session: SessionDep) -> list[IbView]:
    return [IbView.model_validate(i) for i in await service.list_ibs(session)]


@staff_router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses({409: "taken"})
)
async def create_ib(body: IbCreate, admin: AdminPrincipal, session: SessionDep) -> IbView:
    return IbView.model_validate(await service.create_ib(session, body, admin))


@self_router.get("/me")
async def my_ib_profile(me: IbPrincipal, session: SessionDep) -> IbView:
    return IbView.model_validate(await service.own_profile(session, me.id))


@self_router.get("/clients")
async def my_referred_clients(me: IbPrincipal, session: SessionDep) -> list[ReferredClient]:
    return [
        ReferredClient.model_validate(c) for c in await service.referred_clients(session, me.id)
    ]


@self_router.get("/clients/{client_id}", responses=error_responses({404: "not one of yours"}))
async def my_referred_client(
    client_id: UUID, me: IbPrincipal, session: SessionDep
) -> ReferredClient:
    return ReferredClient.model_validate(await service.referred_client(session, me.id, client_id))
