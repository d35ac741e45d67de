"""What a client may see of itself. Every query is scoped to the caller's own client id."""

from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from api.me.schemas import Mt5AccountView, Mt5Credentials, TradingSnapshot
from api.policy import Principal
from db import audit
from db.models import AccountApplication, AccountStateRow, Client, Mt5Account, Notification
from db.queries.clients import client_or_not_found
from db.sealed import SecretBox
from domain.errors import Gone, InvalidInput, NotFound


async def profile(session: AsyncSession, client_id: uuid.UUID) -> Client:
    return await client_or_not_found(session, client_id, missing="client not found")


async def accounts(session: AsyncSession, client_id: uuid.UUID) -> list[Mt5Account]:
    rows = await session.scalars(
        select(Mt5Account).where(Mt5Account.client_id == client_id).order_by(Mt5Account.created_at)
    )
    return list(rows)


async def account_views(session: AsyncSession, accounts: list[Mt5Account]) -> list[Mt5AccountView]:
    """The accounts with their last synced MT5 balance, equity and margin, so a client sees a
    deposit land without the API calling MT5."""
    keys = [(account.server, account.login) for account in accounts]
    states = (
        {
            (state.server, state.login): state
            for state in await session.scalars(
                select(AccountStateRow).where(
                    tuple_(AccountStateRow.server, AccountStateRow.login).in_(keys)
                )
            )
        }
        if keys
        else {}
    )
    views = []
    for account in accounts:
        view = Mt5AccountView.model_validate(account)
        state = states.get((account.server, account.login))
        if state is not None:
            view.trading = TradingSnapshot(
                currency=account.currency,
                balance=state.balance,
                credit=state.credit,
                equity=state.equity,
                margin=state.margin,
                margin_free=state.margin_free,
                margin_level=state.margin_level,
                as_of=state.taken_at,
            )
        views.append(view)
    return views


async def own_account(session: AsyncSession, client_id: uuid.UUID, login: int) -> Mt5Account:
    account = await session.scalar(
        select(Mt5Account).where(Mt5Account.client_id == client_id, Mt5Account.login == login)
    )
    if account is None:
        # Same answer whether the login exists for someone else or not at all.
        raise NotFound(f"you have no MT5 account {login}")
    return account


async def own_live_account(
    session: AsyncSession, client_id: uuid.UUID, login: int, currency: str | None, field: str
) -> Mt5Account:
    """One of the client's own live accounts, for real money; in `currency` when given."""
    account = await own_account(session, client_id, login)
    if account.kind != "live":
        raise InvalidInput(
            f"MT5 account {login} is a demo account: demo accounts take no real money",
            field=field,
        )
    if currency is not None and account.currency != currency:
        raise InvalidInput(
            f"MT5 account {login} is held in {account.currency}, not {currency}", field="currency"
        )
    return account


async def notifications(
    session: AsyncSession, client_id: uuid.UUID, limit: int, offset: int
) -> list[Notification]:
    rows = await session.scalars(
        select(Notification)
        .where(Notification.client_id == client_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def applications(session: AsyncSession, client_id: uuid.UUID) -> list[AccountApplication]:
    rows = await session.scalars(
        select(AccountApplication)
        .where(AccountApplication.client_id == client_id)
        .order_by(AccountApplication.created_at)
    )
    return list(rows)


async def own_application(
    session: AsyncSession, client_id: uuid.UUID, application_id: uuid.UUID
) -> AccountApplication:
    application = await session.get(AccountApplication, application_id)
    if application is None or application.client_id != client_id:
        raise NotFound(f"you have no application {application_id}")
    return application


async def reveal_credentials_once(
    session: AsyncSession, principal: Principal, login: int, box: SecretBox
) -> Mt5Credentials:
    """Hand over the MT5 passwords once, then forget them: BrokerFlow keeps no copy."""
    account = await own_account(session, principal.id, login)
    application = await session.get(
        AccountApplication, account.application_id, with_for_update=True
    )
    assert application is not None
    if application.mt5_password_main_enc is None or application.mt5_password_investor_enc is None:
        raise Gone("the MT5 passwords were already handed over; change them in the terminal")
    credentials = Mt5Credentials(
        login=account.login,
        server=account.server,
        password=box.open(application.mt5_password_main_enc).get_secret_value(),
        investor_password=box.open(application.mt5_password_investor_enc).get_secret_value(),
    )
    application.mt5_password_main_enc = None
    application.mt5_password_investor_enc = None
    audit.record(
        session,
        principal.actor(),
        audit.Change(
            action="mt5_account.credentials_revealed",
            entity_type="mt5_account",
            entity_id=str(account.id),
            before={"credentials_held": True},
            after={"credentials_held": False},
        ),
    )
    return credentials
