"""Account-change steps: the database side against the real database, the MT5 side against a
gateway fake that answers as MT5 does (3010 for a group of another currency)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.account_changes import AccountChangeRecords, Mt5AccountChangeSteps
from contracts.account_change import (
    ApplyChangeInput,
    ChangeRef,
    EscalateChangeInput,
    MarkChangeFailedInput,
    Mt5AccountRead,
    RecordChangeAppliedInput,
    RecordChangeDecisionInput,
    account_change_workflow_id,
)
from contracts.kyc import StaffActor
from db.models import AccountChange, AuditEntry, Mt5Account
from domain.accounts import AccountChangeKind, AccountChangeStatus, AccountStatus
from domain.mt5 import Mt5User, Mt5UserChanges, with_trading_disabled
from mt5_adapter.errors import Mt5GroupCurrencyMismatch, Mt5TransientError
from tests.activities.kyc_rows import add_client, add_live_account, add_staff

Sessions = async_sessionmaker[AsyncSession]
GROUP_CURRENCY = {"real\\eu\\standard": "EUR", "real\\eu\\pro": "EUR", "real\\uk\\standard": "GBP"}


class FakeMt5:
    """`user/get`, `user/update` and `position/get_total` of one account, as MT5 answers them."""

    def __init__(self, login: int = 7001, positions: int = 0, balance: str = "0") -> None:
        self.user = Mt5User(
            login=login,
            group="real\\eu\\standard",
            name="Jane Roe",
            email="jane@example.com",
            country="DE",
            leverage=30,
            rights=0x163,
            comment="",
            balance=Decimal(balance),
            credit=Decimal(0),
            registration=datetime(2026, 1, 1, tzinfo=UTC),
        )
        self.positions = positions
        self.updates: list[Mt5UserChanges] = []
        self.busy = 0

    async def get_user(self, login: int) -> Mt5User:
        return self.user

    async def get_open_position_count(self, login: int) -> int:
        return self.positions

    async def update_user(self, login: int, changes: Mt5UserChanges) -> Mt5User:
        if self.busy:
            self.busy -= 1
            raise Mt5TransientError(10004, "Requote", "user/update")
        if changes.group and GROUP_CURRENCY[changes.group] != GROUP_CURRENCY[self.user.group]:
            raise Mt5GroupCurrencyMismatch(3010, "Invalid group currency", "user/update")
        self.updates.append(changes)
        fields = {k: v for k, v in changes.model_dump().items() if v is not None}
        self.user = self.user.model_copy(update=fields)
        return self.user


def run() -> ActivityEnvironment:
    return ActivityEnvironment()


async def add_change(
    sessions: Sessions,
    account: Mt5Account,
    kind: AccountChangeKind,
    requested: dict[str, Any],
    *,
    by_kind: str = "client",
    by_id: uuid.UUID | None = None,
    status: AccountChangeStatus = AccountChangeStatus.APPLYING,
) -> AccountChange:
    change_id = uuid.uuid4()
    async with sessions.begin() as session:
        change = AccountChange(
            id=change_id,
            mt5_account_id=account.id,
            client_id=account.client_id,
            kind=kind.value,
            status=status.value,
            requested=requested,
            requested_by_kind=by_kind,
            requested_by_id=by_id or account.client_id,
            idempotency_key=f"key-{change_id}",
            request_hash=hashlib.sha256(str(requested).encode()).hexdigest(),
            workflow_id=account_change_workflow_id(change_id),
            reason="asked by the client",
        )
        session.add(change)
    return change


@pytest.fixture
def records(sessions: Sessions) -> AccountChangeRecords:
    return AccountChangeRecords(sessions)


async def audit_entries(sessions: Sessions, entity_id: object) -> list[AuditEntry]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == str(entity_id)).order_by(AuditEntry.id)
        )
        return list(rows)


class TestMt5Steps:
    async def test_a_change_sends_absolute_values_and_answers_the_account_after_it(self) -> None:
        mt5 = FakeMt5()
        steps = Mt5AccountChangeSteps(mt5)  # type: ignore[arg-type]
        change = ApplyChangeInput(change_id=uuid.uuid4(), login=7001, leverage=100)
        after = await run().run(steps.apply_account_change, change)
        again = await run().run(steps.apply_account_change, change)  # a retry sets the same
        assert after == again
        assert after.leverage == 100
        assert mt5.updates == [Mt5UserChanges(leverage=100)] * 2

    async def test_closing_an_account_with_positions_is_refused_for_good(self) -> None:
        mt5 = FakeMt5(positions=1)
        steps = Mt5AccountChangeSteps(mt5)  # type: ignore[arg-type]
        rights = int(with_trading_disabled(0x163)) & ~1
        closing = ApplyChangeInput(
            change_id=uuid.uuid4(), login=7001, rights=rights, require_empty=True
        )
        with pytest.raises(ApplicationError) as refused:
            await run().run(steps.apply_account_change, closing)
        assert (refused.value.type, refused.value.non_retryable) == ("AccountNotEmpty", True)
        assert mt5.updates == []

    async def test_closing_an_account_with_money_is_refused(self) -> None:
        steps = Mt5AccountChangeSteps(FakeMt5(balance="0.01"))  # type: ignore[arg-type]
        closing = ApplyChangeInput(change_id=uuid.uuid4(), login=7001, rights=0, require_empty=True)
        with pytest.raises(ApplicationError, match=r"balance 0\.01"):
            await run().run(steps.apply_account_change, closing)

    async def test_a_group_of_another_currency_is_a_final_failure(self) -> None:
        steps = Mt5AccountChangeSteps(FakeMt5())  # type: ignore[arg-type]
        moving = ApplyChangeInput(change_id=uuid.uuid4(), login=7001, group="real\\uk\\standard")
        with pytest.raises(ApplicationError) as refused:
            await run().run(steps.apply_account_change, moving)
        assert (refused.value.type, refused.value.non_retryable) == (
            "Mt5GroupCurrencyMismatch",
            True,
        )

    async def test_a_transient_mt5_error_is_left_to_the_retry_policy(self) -> None:
        mt5 = FakeMt5()
        mt5.busy = 1
        steps = Mt5AccountChangeSteps(mt5)  # type: ignore[arg-type]
        with pytest.raises(Mt5TransientError):
            await run().run(
                steps.apply_account_change,
                ApplyChangeInput(change_id=uuid.uuid4(), login=7001, leverage=20),
            )


class TestRecords:
    async def test_an_applied_change_updates_the_account_and_is_audited_once(
        self, records: AccountChangeRecords, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, kyc_status="approved")
        account = await add_live_account(sessions, client.id)
        change = await add_change(sessions, account, AccountChangeKind.LEVERAGE, {"leverage": 20})
        facts = await run().run(records.load_account_change, ChangeRef(change_id=change.id))
        assert (facts.server, facts.login, facts.account_status) == (
            "live-1",
            7001,
            AccountStatus.ACTIVE,
        )
        before = Mt5AccountRead(login=7001, group="real\\eu\\standard", leverage=30, rights=0x163)
        applied = RecordChangeAppliedInput(
            change_id=change.id,
            before=before,
            after=before.model_copy(update={"leverage": 20}),
            account_status=AccountStatus.ACTIVE,
        )
        await run().run(records.record_account_change_applied, applied)
        await run().run(records.record_account_change_applied, applied)

        async with sessions() as session:
            row = await session.get(AccountChange, change.id)
            stored = await session.get(Mt5Account, account.id)
        assert row is not None and row.status == "applied"
        assert row.before is not None and row.before["leverage"] == 30
        assert stored is not None and stored.leverage == 20
        [entry] = await audit_entries(sessions, account.id)
        assert (entry.action, entry.actor_kind, entry.actor_id) == (
            "mt5_account.leverage",
            "client",
            str(client.id),
        )
        assert entry.before is not None and entry.after is not None
        assert (entry.before["leverage"], entry.after["leverage"]) == (30, 20)

    async def test_a_closure_by_staff_is_audited_with_the_staff_member(
        self, records: AccountChangeRecords, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, kyc_status="approved")
        account = await add_live_account(sessions, client.id)
        staff = await add_staff(sessions)
        change = await add_change(
            sessions, account, AccountChangeKind.CLOSE, {}, by_kind="staff", by_id=staff.id
        )
        before = Mt5AccountRead(login=7001, group="real\\eu\\standard", leverage=30, rights=0x163)
        closed_rights = int(with_trading_disabled(0x163)) & ~1
        actor = StaffActor(staff_id=staff.id, roles=("support",), ip="10.9.9.9")
        await run().run(
            records.record_account_change_applied,
            RecordChangeAppliedInput(
                change_id=change.id,
                actor=actor,
                before=before,
                after=before.model_copy(update={"rights": closed_rights}),
                account_status=AccountStatus.CLOSED,
            ),
        )
        async with sessions() as session:
            stored = await session.get(Mt5Account, account.id)
        assert stored is not None
        assert (stored.status, stored.rights) == ("closed", closed_rights)
        [entry] = await audit_entries(sessions, account.id)
        assert (entry.action, entry.actor_kind, entry.actor_id, entry.ip) == (
            "mt5_account.close",
            "staff",
            str(staff.id),
            "10.9.9.9",
        )

    async def test_a_decision_is_recorded_once_with_the_approver(
        self, records: AccountChangeRecords, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, kyc_status="approved")
        account = await add_live_account(sessions, client.id)
        staff = await add_staff(sessions)
        change = await add_change(
            sessions,
            account,
            AccountChangeKind.LEVERAGE,
            {"leverage": 100},
            status=AccountChangeStatus.PENDING_APPROVAL,
        )
        decision = RecordChangeDecisionInput(
            change_id=change.id,
            actor=StaffActor(staff_id=staff.id, roles=("compliance",)),
            approve=False,
            reason="risk too high",
            at=datetime.now(UTC),
        )
        await run().run(records.record_account_change_decision, decision)
        await run().run(records.record_account_change_decision, decision)
        async with sessions() as session:
            row = await session.get(AccountChange, change.id)
        assert row is not None
        assert (row.status, row.decided_by) == ("rejected", staff.id)
        [entry] = await audit_entries(sessions, change.id)
        assert (entry.action, entry.actor_id, entry.reason) == (
            "account_change.rejected",
            str(staff.id),
            "risk too high",
        )

    async def test_failure_and_escalation_are_written_once(
        self, records: AccountChangeRecords, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, kyc_status="approved")
        account = await add_live_account(sessions, client.id)
        change = await add_change(sessions, account, AccountChangeKind.CLOSE, {})
        escalate = EscalateChangeInput(change_id=change.id, at=datetime.now(UTC))
        await run().run(records.escalate_account_change, escalate)
        await run().run(records.escalate_account_change, escalate)
        failed = MarkChangeFailedInput(
            change_id=change.id, reason="1 open position(s)", error_type="AccountNotEmpty"
        )
        await run().run(records.mark_account_change_failed, failed)
        await run().run(records.mark_account_change_failed, failed)
        async with sessions() as session:
            row = await session.get(AccountChange, change.id)
        assert row is not None and row.status == "failed"
        assert row.failure_reason == "AccountNotEmpty: 1 open position(s)"
        actions = [entry.action for entry in await audit_entries(sessions, change.id)]
        assert actions == ["account_change.escalated", "account_change.failed"]
