"""Steps of the account-opening workflow, each idempotent: Temporal may run any of them again."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.credentials import generate_mt5_password
from activities.ib_referral import attribute_referred_login
from activities.mt5_balance import apply_balance_once
from activities.mt5_errors import raise_for_temporal
from contracts import account_opening as opening
from contracts.account_opening import (
    CreateMt5UserInput,
    CreateMt5UserOutcome,
    CreditDemoDepositInput,
    DeleteMt5UserInput,
    MarkApplicationFailedInput,
    RecordMt5AccountInput,
    ReserveLoginInput,
)
from contracts.steps import implements
from db import audit
from db.models import AccountApplication, Mt5Account, Mt5LoginCounter
from db.queries.clients import client_by_id
from db.sealed import SecretBox
from domain.accounts import AccountStatus
from domain.mt5 import BalanceOperation, BalanceType, NewMt5User
from domain.onboarding import ApplicationStatus
from mt5_adapter.errors import Mt5Error, Mt5LoginExists, Mt5NotFound
from mt5_adapter.gateway import Mt5Gateway

# An application row is committed by the API right after the workflow starts; give that commit
# time, but do not wait forever for a request that was rolled back.
MAX_ATTEMPTS_FOR_MISSING_APPLICATION = 20


def application_marker(application_id: UUID) -> str:
    """Written on the MT5 user: a retried `user/add` recognises its own account by it."""
    return f"bf:{application_id.hex[:28]}"


def demo_deposit_comment(application_id: UUID) -> str:
    """The MT5 balance deal's comment, the key that makes the demo deposit idempotent."""
    return f"bf:demo:{application_id.hex[:20]}"


async def load_application(
    session: AsyncSession, application_id: UUID, *, lock: bool = False
) -> AccountApplication:
    application = await session.get(AccountApplication, application_id, with_for_update=lock)
    if application is None:
        raise ApplicationError(
            f"account application {application_id} does not exist",
            type="ApplicationNotFound",
            non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_APPLICATION,
        )
    return application


def move_application(
    session: AsyncSession,
    application: AccountApplication,
    status: ApplicationStatus,
    *,
    action: str,
    details: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Change an application's status with its audit entry, in the caller's transaction."""
    before = {"status": application.status}
    application.status = status
    audit.record(
        session,
        audit.system_actor(on_behalf_of=str(application.client_id)),
        audit.Change(
            action=action,
            entity_type="account_application",
            entity_id=str(application.id),
            before=before,
            after={"status": status.value, **(details or {})},
            reason=reason,
        ),
    )


class AccountOpeningRecords:
    """Database steps, on the main task queue."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret_box: SecretBox,
        login_ranges: dict[str, tuple[int, int]],
    ) -> None:
        self._sessions = sessions
        self._box = secret_box
        self._login_ranges = login_ranges

    @implements(opening.reserve_mt5_login)
    async def reserve_mt5_login(self, request: ReserveLoginInput) -> int:
        async with self._sessions.begin() as session:
            application = await load_application(session, request.application_id, lock=True)
            if application.mt5_login is not None and application.mt5_login != request.replacing:
                return application.mt5_login
            application.mt5_login = await self._next_login(session, application.mt5_server)
            if application.mt5_password_main_enc is None:
                application.mt5_password_main_enc = self._box.seal(generate_mt5_password())
                application.mt5_password_investor_enc = self._box.seal(generate_mt5_password())
            return application.mt5_login

    async def _next_login(self, session: AsyncSession, server: str) -> int:
        first, last = self._login_ranges[server]
        statement = (
            pg_insert(Mt5LoginCounter)
            .values(server=server, next_login=first)
            .on_conflict_do_update(
                index_elements=[Mt5LoginCounter.server],
                set_={"next_login": Mt5LoginCounter.next_login + 1},
            )
            .returning(Mt5LoginCounter.next_login)
        )
        login = (await session.execute(statement)).scalar_one()
        if login > last:
            raise ApplicationError(
                f"MT5 login range {first}-{last} of server {server} is used up",
                type="Mt5LoginRangeExhausted",
                non_retryable=True,
            )
        return login

    @implements(opening.record_mt5_account)
    async def record_mt5_account(self, request: RecordMt5AccountInput) -> None:
        async with self._sessions.begin() as session:
            application = await load_application(session, request.application_id, lock=True)
            if application.status == ApplicationStatus.COMPLETED:
                return
            await session.execute(
                insert(Mt5Account).values(
                    client_id=application.client_id,
                    application_id=application.id,
                    server=application.mt5_server,
                    login=request.login,
                    group=request.group,
                    leverage=request.leverage,
                    currency=request.currency,
                    kind=application.kind,
                    status=AccountStatus.ACTIVE.value,
                    rights=request.rights,
                )
            )
            if application.kind == "live":  # a referred client's live login is its IB's
                await attribute_referred_login(
                    session,
                    client_id=application.client_id,
                    server=application.mt5_server,
                    login=request.login,
                )
            move_application(
                session,
                application,
                ApplicationStatus.COMPLETED,
                action="mt5_account.opened",
                details={
                    "server": application.mt5_server,
                    "login": request.login,
                    "group": request.group,
                    "leverage": request.leverage,
                    "kind": application.kind,
                    "rights": request.rights,
                },
            )

    @implements(opening.mark_application_failed)
    async def mark_application_failed(self, request: MarkApplicationFailedInput) -> None:
        async with self._sessions.begin() as session:
            application = await load_application(session, request.application_id, lock=True)
            if application.status == ApplicationStatus.FAILED:
                return
            application.failure_reason = request.reason[:2000]
            move_application(
                session,
                application,
                ApplicationStatus.FAILED,
                action="account_application.failed",
                reason=application.failure_reason,
            )


class Mt5AccountSteps:
    """MT5 steps for one server, registered on that server's task queue."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], secret_box: SecretBox, gateway: Mt5Gateway
    ) -> None:
        self._sessions = sessions
        self._box = secret_box
        self._mt5 = gateway

    @implements(opening.create_mt5_user)
    async def create_mt5_user(self, request: CreateMt5UserInput) -> CreateMt5UserOutcome:
        async with self._sessions() as session:
            application = await load_application(session, request.application_id)
            client = await client_by_id(session, application.client_id)
        if application.mt5_login != request.login or client is None:
            raise ApplicationError(
                f"login {request.login} is no longer reserved for application {application.id}",
                type="LoginSuperseded",
                non_retryable=True,
            )
        assert application.mt5_password_main_enc and application.mt5_password_investor_enc
        marker = application_marker(application.id)
        user = NewMt5User(
            login=request.login,
            group=request.group,
            name=client.full_name,
            email=client.email,
            country=client.country,
            leverage=request.leverage,
            password_main=self._box.open(application.mt5_password_main_enc),
            password_investor=self._box.open(application.mt5_password_investor_enc),
            comment=marker,
            rights=request.rights,
        )
        try:
            await self._mt5.add_user(user)
            return CreateMt5UserOutcome.CREATED
        except Mt5LoginExists:
            # Either our own earlier attempt went through and its answer was lost, or the login
            # belongs to an account made outside BrokerFlow: the marker tells which.
            return await self._whose_login(request.login, marker)
        except Mt5Error as error:
            raise_for_temporal(error)

    async def _whose_login(self, login: int, marker: str) -> CreateMt5UserOutcome:
        try:
            existing = await self._mt5.get_user(login)
        except Mt5Error as error:
            raise_for_temporal(error)
        if existing.comment == marker:
            return CreateMt5UserOutcome.CREATED
        return CreateMt5UserOutcome.LOGIN_TAKEN

    @implements(opening.delete_mt5_user_if_ours)
    async def delete_mt5_user_if_ours(self, request: DeleteMt5UserInput) -> None:
        async with self._sessions() as session:
            application = await load_application(session, request.application_id)
        if application.mt5_login is None:
            return
        try:
            existing = await self._mt5.get_user(application.mt5_login)
            if existing.comment == application_marker(application.id):
                await self._mt5.delete_user(application.mt5_login)
        except Mt5NotFound:
            return
        except Mt5Error as error:
            raise_for_temporal(error)

    @implements(opening.credit_demo_deposit)
    async def credit_demo_deposit(self, request: CreditDemoDepositInput) -> int:
        async with self._sessions() as session:
            application = await load_application(session, request.application_id)
        operation = BalanceOperation(
            login=request.login,
            type=BalanceType.BALANCE,
            amount=request.amount,
            comment=demo_deposit_comment(application.id),
            check_margin=False,
        )
        return await apply_balance_once(self._mt5, operation, since=application.created_at)
