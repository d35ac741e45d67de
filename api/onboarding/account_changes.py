"""Changes a client asks for on its own live MT5 accounts: a new leverage, or closing the account.

Each request is one `account_changes` row and one `AccountChange` workflow, idempotent by the
request's Idempotency-Key (the same key with the same body is the same change; with another body
it is refused). The API decides only what it can without MT5: whether the leverage may be asked
for at all, and whether it needs a compliance decision; the workflow applies it (and refuses to
close an account that still has positions or money).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.idempotency import KEY_REUSED, request_hash
from api.me import service as me_service
from api.onboarding.schemas import AccountChangeView, CloseRequest, LeverageRequest
from api.onboarding.service import (
    client_risk,
    latest_questionnaire,
    stored_appropriateness,
)
from api.policy import Principal
from api.temporal import TemporalConnector, start_once
from contracts.account_change import (
    ACCOUNT_CHANGE,
    AccountChangeInput,
    account_change_workflow_id,
)
from db import audit
from db.models import AccountApplication, AccountChange, Client, Mt5Account
from db.queries.clients import client_or_not_found
from domain.account_terms import (
    LEVERAGE_LADDER,
    LeverageDecision,
    ProductRefused,
    check_leverage_request,
    regulatory_leverage_cap,
    terms_category,
)
from domain.accounts import AccountChangeKind, AccountChangeStatus, AccountStatus
from domain.appropriateness import Appropriateness, ClientCategory
from domain.countries import region_of
from domain.errors import Conflict, InvalidInput, NotFound
from domain.onboarding import AccountType
from settings import Settings

IN_PROGRESS = (AccountChangeStatus.PENDING_APPROVAL.value, AccountChangeStatus.APPLYING.value)


async def _earlier(
    session: AsyncSession, client_id: uuid.UUID, key: str, digest: str
) -> AccountChange | None:
    """What this client already asked for with `key`; refused if it was another request."""
    earlier: AccountChange | None = await session.scalar(
        select(AccountChange)
        .where(AccountChange.client_id == client_id, AccountChange.idempotency_key == key)
        .order_by(AccountChange.created_at)
        .limit(1)
    )
    if earlier is not None and earlier.request_hash != digest:
        raise InvalidInput(KEY_REUSED, field="Idempotency-Key")
    return earlier


async def _own_live_account(session: AsyncSession, client_id: uuid.UUID, login: int) -> Mt5Account:
    account = await me_service.own_live_account(session, client_id, login, None, "login")
    locked = await session.get(Mt5Account, account.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    return locked


async def _none_in_progress(session: AsyncSession, account: Mt5Account) -> None:
    running = await session.scalar(
        select(AccountChange)
        .where(AccountChange.mt5_account_id == account.id, AccountChange.status.in_(IN_PROGRESS))
        .limit(1)
    )
    if running is not None:
        raise Conflict(
            f"a {running.kind} change ({running.id}) is still {running.status.replace('_', ' ')} "
            f"on account {account.login}; wait for it to finish",
            change_id=str(running.id),
        )


async def request_leverage(
    session: AsyncSession,
    temporal: TemporalConnector,
    settings: Settings,
    me: Principal,
    login: int,
    body: LeverageRequest,
    key: str,
) -> tuple[AccountChange, bool]:
    digest = request_hash(f"leverage:{login}", body)
    earlier = await _earlier(session, me.id, key, digest)
    if earlier is not None:
        return earlier, False
    account = await _own_live_account(session, me.id, login)
    if account.status != AccountStatus.ACTIVE:
        raise Conflict(
            f"account {login} is {account.status.replace('_', ' ')}; its leverage cannot change"
        )
    if body.leverage == account.leverage:
        raise InvalidInput(
            f"account {login} already has leverage 1:{body.leverage}", field="leverage"
        )
    client = await client_or_not_found(session, me.id, missing="client not found")
    decision = await _leverage_decision(session, client, account, body.leverage)
    await _none_in_progress(session, account)
    needs_approval = decision is LeverageDecision.NEEDS_APPROVAL
    change = _change(
        account,
        me,
        AccountChangeKind.LEVERAGE,
        AccountChangeStatus.PENDING_APPROVAL if needs_approval else AccountChangeStatus.APPLYING,
        requested={"leverage": body.leverage},
        before={"leverage": account.leverage},
        key=key,
        digest=digest,
    )
    return await _start(
        session,
        temporal,
        me,
        change,
        AccountChangeInput(
            change_id=change.id,
            account_id=account.id,
            kind=AccountChangeKind.LEVERAGE,
            leverage=body.leverage,
            needs_approval=needs_approval,
            sla=settings.kyc.sla(),
        ),
    )


async def _leverage_decision(
    session: AsyncSession, client: Client, account: Mt5Account, requested: int
) -> LeverageDecision:
    questionnaire = await latest_questionnaire(session, client.id)
    if questionnaire is None:
        raise Conflict("answer the appropriateness questionnaire before changing leverage")
    appropriateness = stored_appropriateness(questionnaire)
    application = await session.get(AccountApplication, account.application_id)
    assert application is not None
    region = region_of(client.country)
    category = ClientCategory(client.category)
    account_type = AccountType(application.account_type)
    try:
        decision = check_leverage_request(
            requested, region, category, account_type, appropriateness, client_risk(client)
        )
        regulatory = regulatory_leverage_cap(region, terms_category(region, category, account_type))
    except ProductRefused as refused:
        raise InvalidInput(refused.detail, field="leverage") from None
    if decision is not LeverageDecision.REFUSED:
        return decision
    if appropriateness.outcome is Appropriateness.NOT_APPROPRIATE:
        raise InvalidInput(
            "leveraged CFDs are not appropriate for you (appropriateness questionnaire); the "
            "leverage cannot be raised",
            field="leverage",
        )
    if requested > regulatory:
        raise InvalidInput(
            f"1:{requested} is above the regulatory cap of 1:{regulatory} for "
            f"{category.value} clients in the {region.value.upper()} region",
            field="leverage",
            regulatory_cap=regulatory,
        )
    offered = ", ".join(str(step) for step in LEVERAGE_LADDER if step <= regulatory)
    raise InvalidInput(
        f"1:{requested} is not a leverage accounts are given; choose one of {offered} "
        f"(the regulatory cap is 1:{regulatory})",
        field="leverage",
        regulatory_cap=regulatory,
    )


async def request_close(
    session: AsyncSession,
    temporal: TemporalConnector,
    settings: Settings,
    me: Principal,
    login: int,
    body: CloseRequest,
    key: str,
) -> tuple[AccountChange, bool]:
    digest = request_hash(f"close:{login}", body)
    earlier = await _earlier(session, me.id, key, digest)
    if earlier is not None:
        return earlier, False
    account = await _own_live_account(session, me.id, login)
    if account.status == AccountStatus.CLOSED:
        raise Conflict(f"account {login} is already closed")
    await _none_in_progress(session, account)
    change = _change(
        account,
        me,
        AccountChangeKind.CLOSE,
        AccountChangeStatus.APPLYING,
        requested={"status": AccountStatus.CLOSED.value},
        before={"status": account.status},
        key=key,
        digest=digest,
    )
    change.reason = body.reason
    return await _start(
        session,
        temporal,
        me,
        change,
        AccountChangeInput(
            change_id=change.id,
            account_id=account.id,
            kind=AccountChangeKind.CLOSE,
            sla=settings.kyc.sla(),
        ),
    )


def _change(
    account: Mt5Account,
    me: Principal,
    kind: AccountChangeKind,
    status: AccountChangeStatus,
    *,
    requested: dict[str, object],
    before: dict[str, object],
    key: str,
    digest: str,
) -> AccountChange:
    change_id = uuid.uuid4()
    return AccountChange(
        id=change_id,
        mt5_account_id=account.id,
        client_id=me.id,
        kind=kind.value,
        status=status.value,
        requested=requested,
        before=before,
        requested_by_kind="client",
        requested_by_id=me.id,
        idempotency_key=key,
        request_hash=digest,
        workflow_id=account_change_workflow_id(change_id),
    )


async def _start(
    session: AsyncSession,
    temporal: TemporalConnector,
    me: Principal,
    change: AccountChange,
    argument: AccountChangeInput,
) -> tuple[AccountChange, bool]:
    try:
        async with session.begin_nested():
            session.add(change)
    except IntegrityError:
        # Two requests with one key at once: the first one's change is the answer.
        winner = await _earlier(session, me.id, change.idempotency_key, change.request_hash)
        if winner is None:
            raise Conflict("the request conflicts with stored data and was not applied") from None
        return winner, False
    audit.record(
        session,
        me.actor(),
        audit.Change(
            action=f"account_change.{change.kind}_requested",
            entity_type="account_change",
            entity_id=str(change.id),
            before=change.before,
            after={
                "mt5_account_id": str(change.mt5_account_id),
                "requested": change.requested,
                "status": change.status,
                "idempotency_key": change.idempotency_key,
            },
            reason=change.reason,
        ),
    )
    await session.flush()
    await start_once(temporal, ACCOUNT_CHANGE, argument, change.workflow_id)
    await session.refresh(change)
    return change, True


async def changes_of(
    session: AsyncSession, client_id: uuid.UUID, limit: int, offset: int
) -> list[AccountChangeView]:
    rows = await session.execute(
        select(AccountChange, Mt5Account.login)
        .join(Mt5Account, Mt5Account.id == AccountChange.mt5_account_id)
        .where(AccountChange.client_id == client_id)
        .order_by(AccountChange.created_at.desc(), AccountChange.id)
        .limit(limit)
        .offset(offset)
    )
    return [AccountChangeView.of(change, login) for change, login in rows.tuples()]


async def view(session: AsyncSession, change: AccountChange) -> AccountChangeView:
    account = await session.get(Mt5Account, change.mt5_account_id)
    if account is None:
        raise NotFound("no such account")
    return AccountChangeView.of(change, account.login)
