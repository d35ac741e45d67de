from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Request, status

from api.deps import SessionDep, SettingsDep
from api.ib import service
from api.ib.schemas import (
    FraudFlagClear,
    FraudFlagView,
    IbCreate,
    IbTermsChange,
    IbView,
    ParentChange,
    PlanCreate,
    PlanVersionCreate,
    PlanVersionView,
    PlanView,
    ReferralCodeRegenerate,
    ReferredClient,
)
from api.policy import (
    AdminPrincipal,
    FinanceOfficer,
    FinanceReader,
    IbPrincipal,
    IbReader,
)
from api.problems import error_responses
from api.schemas import BIGINT_END
from domain.ib.commissions import PreviewInput

staff_router = APIRouter(prefix="/v1/ibs", tags=["introducing brokers (staff)"])
self_router = APIRouter(prefix="/v1/ib", tags=["IB self-service"])

# What `python -m ib.preview` reads (docs/ib-commissions.md), documented and checked as its own
# model; the calculation reads the raw body again so numbers stay decimal.
PREVIEW_DOCUMENT = Body(
    media_type="application/json",
    description="the what-if document of docs/ib-commissions.md",
)


@staff_router.get("")
async def list_ibs(_: IbReader, session: SessionDep) -> list[IbView]:
    return [IbView.model_validate(i) for i in await service.list_ibs(session)]


@staff_router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses({409: "taken"})
)
async def create_ib(body: IbCreate, admin: AdminPrincipal, session: SessionDep) -> IbView:
    return IbView.model_validate(await service.create_ib(session, body, admin))


# -- plans (fixed paths before /{ib_id}) ---------------------------------------------------------


@staff_router.get("/plans")
async def list_plans(_: IbReader, session: SessionDep) -> list[PlanView]:
    return [
        PlanView(
            id=plan.id,
            name=plan.name,
            created_at=plan.created_at,
            versions=[PlanVersionView.model_validate(v) for v in versions],
        )
        for plan, versions in await service.plans_with_versions(session)
    ]


@staff_router.post(
    "/plans",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        {
            409: "a plan with this id exists",
            422: "terms not valid: beyond the schema, a pool's shares add up to at most 1, a "
            "rule's fields fit its basis, the payout currency is one BrokerFlow books",
        }
    ),
)
async def create_plan(body: PlanCreate, officer: FinanceOfficer, session: SessionDep) -> PlanView:
    plan = await service.create_plan(session, body, officer)
    versions = await service.plan_versions(session, plan.id)
    return PlanView(
        id=plan.id,
        name=plan.name,
        created_at=plan.created_at,
        versions=[PlanVersionView.model_validate(v) for v in versions],
    )


@staff_router.post(
    "/plans/{plan_id}/versions",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        {
            404: "no such plan",
            409: "not after the newest version",
            422: "`from` not in the future, or the terms not valid as for a new plan",
        }
    ),
)
async def add_plan_version(
    plan_id: str,
    body: PlanVersionCreate,
    officer: FinanceOfficer,
    session: SessionDep,
    settings: SettingsDep,
) -> PlanVersionView:
    # "In the future" on every server's clock: the eastmost one's (deals stamped on it are the
    # latest in server-clock seconds).
    eastmost = max(settings.server_clock_offset_of(s.name) for s in settings.mt5_fleet())
    row = await service.add_plan_version(
        session, plan_id, body, officer, server_clock_offset=eastmost
    )
    return PlanVersionView.model_validate(row)


@staff_router.post("/plan-preview", responses=error_responses({422: "document not valid"}))
async def plan_preview(
    request: Request,
    _: FinanceReader,
    document: Annotated[PreviewInput, PREVIEW_DOCUMENT],
) -> dict[str, Any]:
    """`python -m ib.preview` on the posted document: per-beneficiary totals per period and
    the trace rows, computed by the code the payouts use. Nothing is stored.

    Beyond its schema the document must hang together (422 with the reason): each IB's plan
    and parent, each attribution's IB, each deal's symbol and login are in the document, the
    tree has no cycle, attributions of a login do not overlap, a plan's versions differ in
    number and start and one is in force for each deal, a rate exists for each conversion, a
    pool's shares add up to at most 1, a rule's fields fit its basis, a trade deal's volumes
    fit its entry, the period ends after it starts."""
    del document  # checked by FastAPI as the model; read again as decimals below
    return service.plan_preview(await request.body())


# -- fraud flags (finance) -----------------------------------------------------------------------


@staff_router.get("/fraud-flags", responses=error_responses({404: "no such payout"}))
async def list_fraud_flags(
    _: FinanceReader,
    session: SessionDep,
    ib_id: Annotated[UUID | None, Query()] = None,
    payout_id: Annotated[UUID | None, Query(description="the open flags of its IB")] = None,
    include_cleared: bool = False,
) -> list[FraudFlagView]:
    flags = await service.fraud_flags(
        session, ib_id=ib_id, payout_id=payout_id, open_only=not include_cleared
    )
    return [FraudFlagView.model_validate(f) for f in flags]


@staff_router.post(
    "/fraud-flags/{flag_id}/clear",
    responses=error_responses({404: "no such flag", 409: "cleared already"}),
)
async def clear_fraud_flag(
    flag_id: Annotated[int, Path(ge=1, lt=BIGINT_END, description="the flag's id (a bigint)")],
    body: FraudFlagClear,
    officer: FinanceOfficer,
    session: SessionDep,
) -> FraudFlagView:
    flag = await service.clear_fraud_flag(session, flag_id, body.reason, officer)
    return FraudFlagView.model_validate(flag)


# -- one IB's place and terms (admins) -----------------------------------------------------------


@staff_router.put("/{ib_id}/parent", responses=error_responses({404: "no such IB", 409: "a cycle"}))
async def set_parent(
    ib_id: UUID, body: ParentChange, admin: AdminPrincipal, session: SessionDep
) -> IbView:
    return IbView.model_validate(await service.set_parent(session, ib_id, body, admin))


@staff_router.post("/{ib_id}/referral-code", responses=error_responses({404: "no such IB"}))
async def regenerate_referral_code(
    ib_id: UUID, body: ReferralCodeRegenerate, admin: AdminPrincipal, session: SessionDep
) -> IbView:
    """A new generated referral code replaces the IB's (the old one stops working at sign-up;
    clients already referred stay its clients). Audited with the old and new code."""
    ib = await service.regenerate_referral_code(session, ib_id, body.reason, admin)
    return IbView.model_validate(ib)


@staff_router.patch("/{ib_id}", responses=error_responses({404: "no such IB, plan or MT5 account"}))
async def set_terms(
    ib_id: UUID, body: IbTermsChange, admin: AdminPrincipal, session: SessionDep
) -> IbView:
    return IbView.model_validate(await service.set_terms(session, ib_id, body, admin))


# -- the IB itself -------------------------------------------------------------------------------


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
