"""Account-opening steps against the real database and the real MT5 simulator, faults included."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.account_opening import (
    AccountOpeningRecords,
    Mt5AccountSteps,
    application_marker,
)
from contracts.account_opening import (
    CreateMt5UserInput,
    CreateMt5UserOutcome,
    CreditDemoDepositInput,
    DeleteMt5UserInput,
    RecordMt5AccountInput,
    ReserveLoginInput,
)
from db.models import AccountApplication, AuditEntry, Client, Mt5Account
from db.sealed import SecretBox
from domain.mt5 import NewMt5User
from mt5_adapter.errors import Mt5Error
from mt5_adapter.webapi import WebApiGateway, gateway_for
from settings import Settings
from tests.conftest import mt5_settings_for
from tests.e2e.helpers import simulator_deals, simulator_users
from tests.support.processes import Simulator


@pytest.fixture
async def gateway(mt5_sim: Simulator) -> AsyncIterator[WebApiGateway]:
    mt5 = gateway_for(mt5_settings_for(mt5_sim))
    yield mt5
    await mt5.aclose()


@pytest.fixture
def login_range() -> tuple[int, int]:
    # The simulator outlives each test's database: give every test logins of its own.
    start = random.randrange(6_000_000, 9_000_000, 1000)
    return start, start + 999


@pytest.fixture
def records(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, login_range: tuple[int, int]
) -> AccountOpeningRecords:
    return AccountOpeningRecords(sessions, SecretBox(settings.secrets_key), {"demo": login_range})


@pytest.fixture
def steps(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, gateway: WebApiGateway
) -> Mt5AccountSteps:
    return Mt5AccountSteps(sessions, SecretBox(settings.secrets_key), gateway)


@pytest.fixture
async def application(sessions: async_sessionmaker[AsyncSession]) -> AccountApplication:
    async with sessions.begin() as session:
        client = Client(
            id=uuid.uuid4(),
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            password_hash="x",
            full_name="Jane Roe",
            country="GB",
            date_of_birth=date(1980, 1, 1),
            status="active",
        )
        session.add(client)
        await session.flush()
        application_id = uuid.uuid4()
        row = AccountApplication(
            id=application_id,
            client_id=client.id,
            account_type="standard",
            kind="demo",
            status="pending",
            workflow_id=f"account-opening-{application_id}",
            mt5_server="demo",
        )
        session.add(row)
    return row


def attempt(number: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=number)
    return env


def new_user_request(application: AccountApplication, login: int) -> CreateMt5UserInput:
    return CreateMt5UserInput(
        application_id=application.id, login=login, group="demo\\standard", leverage=100
    )


async def reserve(
    records: AccountOpeningRecords, application: AccountApplication, replacing: int | None = None
) -> int:
    request = ReserveLoginInput(application_id=application.id, replacing=replacing)
    return int(await attempt(1).run(records.reserve_mt5_login, request))


class TestReserveMt5Login:
    async def test_is_stable_across_retries_and_moves_on_when_replacing(
        self,
        records: AccountOpeningRecords,
        application: AccountApplication,
        login_range: tuple[int, int],
    ) -> None:
        first = await reserve(records, application)
        assert first == login_range[0]
        assert await reserve(records, application) == first
        assert await reserve(records, application, replacing=first) == first + 1

    async def test_passwords_are_sealed_not_plain(
        self,
        records: AccountOpeningRecords,
        application: AccountApplication,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await reserve(records, application)
        async with sessions() as session:
            row = await session.get(AccountApplication, application.id)
        assert row is not None and row.mt5_password_main_enc
        password = (
            SecretBox(settings.secrets_key).open(row.mt5_password_main_enc).get_secret_value()
        )
        assert password not in row.mt5_password_main_enc
        assert 8 <= len(password) <= 16


class TestCreateMt5User:
    async def test_a_lost_answer_is_retried_into_exactly_one_user(
        self,
        records: AccountOpeningRecords,
        steps: Mt5AccountSteps,
        application: AccountApplication,
        mt5_sim: Simulator,
    ) -> None:
        login = await reserve(records, application)
        request = new_user_request(application, login)
        mt5_sim.inject_faults({"path": "/api/user/add", "mode": "drop_after_commit", "times": 1})
        try:
            with pytest.raises(Mt5Error) as lost:
                await attempt(1).run(steps.create_mt5_user, request)
            assert lost.value.retryable
        finally:
            mt5_sim.clear_faults()
        assert await attempt(2).run(steps.create_mt5_user, request) is CreateMt5UserOutcome.CREATED
        mine = [
            u
            for u in simulator_users(mt5_sim.base_url)
            if u.get("Comment") == application_marker(application.id)
        ]
        assert [int(u["Login"]) for u in mine] == [login]

    async def test_a_login_someone_else_holds_is_reported_taken(
        self,
        records: AccountOpeningRecords,
        steps: Mt5AccountSteps,
        application: AccountApplication,
        gateway: WebApiGateway,
    ) -> None:
        login = await reserve(records, application)
        await gateway.add_user(
            NewMt5User(
                login=login,
                group="demo\\standard",
                name="Made In The MT5 Admin",
                leverage=100,
                password_main="Other#Pass1",
                password_investor="Other#Pass2",
                comment="manual",
            )
        )
        request = new_user_request(application, login)
        assert (
            await attempt(1).run(steps.create_mt5_user, request) is CreateMt5UserOutcome.LOGIN_TAKEN
        )

    async def test_the_undo_deletes_only_our_own_user(
        self,
        records: AccountOpeningRecords,
        steps: Mt5AccountSteps,
        application: AccountApplication,
        gateway: WebApiGateway,
        mt5_sim: Simulator,
    ) -> None:
        login = await reserve(records, application)
        request = new_user_request(application, login)
        await attempt(1).run(steps.create_mt5_user, request)
        undo = DeleteMt5UserInput(application_id=application.id)
        await attempt(1).run(steps.delete_mt5_user_if_ours, undo)
        await attempt(2).run(steps.delete_mt5_user_if_ours, undo)  # idempotent
        assert all(int(u["Login"]) != login for u in simulator_users(mt5_sim.base_url))


class TestCreditDemoDeposit:
    async def test_a_retry_after_a_lost_answer_finds_the_deal_instead_of_paying_twice(
        self,
        records: AccountOpeningRecords,
        steps: Mt5AccountSteps,
        application: AccountApplication,
        mt5_sim: Simulator,
    ) -> None:
        login = await reserve(records, application)
        await attempt(1).run(
            steps.create_mt5_user,
            new_user_request(application, login),
        )
        request = CreditDemoDepositInput(
            application_id=application.id, login=login, amount=Decimal("10000"), currency="USD"
        )
        mt5_sim.inject_faults(
            {"path": "/api/trade/balance", "mode": "drop_after_commit", "times": 1}
        )
        try:
            with pytest.raises(Mt5Error):
                await attempt(1).run(steps.credit_demo_deposit, request)
        finally:
            mt5_sim.clear_faults()
        ticket = await attempt(2).run(steps.credit_demo_deposit, request)
        deposits = [d for d in simulator_deals(mt5_sim.base_url, login) if int(d["Action"]) == 2]
        assert [int(d["Deal"]) for d in deposits] == [ticket]
        assert Decimal(deposits[0]["Profit"]) == Decimal("10000")


class TestRecordMt5Account:
    async def test_records_once_with_one_audit_entry(
        self,
        records: AccountOpeningRecords,
        application: AccountApplication,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        login = await reserve(records, application)
        request = RecordMt5AccountInput(
            application_id=application.id,
            login=login,
            group="demo\\standard",
            leverage=100,
            currency="USD",
        )
        await attempt(1).run(records.record_mt5_account, request)
        await attempt(2).run(records.record_mt5_account, request)
        async with sessions() as session:
            accounts = await session.scalar(select(func.count()).select_from(Mt5Account))
            audits = await session.scalar(
                select(func.count()).where(AuditEntry.action == "mt5_account.opened")
            )
            row = await session.get(AccountApplication, application.id)
        assert (accounts, audits) == (1, 1)
        assert row is not None and row.status == "completed"


class TestMt5ErrorsLeaveActivitiesByClass:
    async def test_a_refusal_is_final_and_named(
        self,
        records: AccountOpeningRecords,
        steps: Mt5AccountSteps,
        application: AccountApplication,
    ) -> None:
        login = await reserve(records, application)
        request = CreateMt5UserInput(
            application_id=application.id, login=login, group="no\\such-group", leverage=100
        )
        with pytest.raises(ApplicationError) as refused:
            await attempt(1).run(steps.create_mt5_user, request)
        assert refused.value.non_retryable and refused.value.type == "Mt5PermissionDenied"

    async def test_a_throttle_is_left_to_temporal_to_retry(
        self,
        records: AccountOpeningRecords,
        steps: Mt5AccountSteps,
        application: AccountApplication,
        mt5_sim: Simulator,
    ) -> None:
        login = await reserve(records, application)
        request = new_user_request(application, login)
        mt5_sim.inject_faults(
            {"path": "/api/user/add", "mode": "retcode", "retcode": 12, "times": 1}
        )
        try:
            with pytest.raises(Mt5Error) as throttled:
                await attempt(1).run(steps.create_mt5_user, request)
        finally:
            mt5_sim.clear_faults()
        assert throttled.value.retryable and not isinstance(throttled.value, ApplicationError)
        assert await attempt(2).run(steps.create_mt5_user, request) is CreateMt5UserOutcome.CREATED
