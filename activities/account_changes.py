"""Steps of an account change: the database side (the change, the account row, the audit) on
the main task queue, and the MT5 side (`user/get`, `user/update`) on the account's server queue.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kyc_records import staff_actor
from activities.mt5_errors import raise_for_temporal
from contracts import account_change as change_steps
from contracts.account_change import (
    AccountChangeFacts,
    ApplyChangeInput,
    ChangeRef,
    EscalateChangeInput,
    MarkChangeFailedInput,
    Mt5AccountRead,
    ReadMt5AccountInput,
    RecordChangeAppliedInput,
    RecordChangeDecisionInput,
)
from contracts.steps import implements
from db import audit
from db.models import AccountChange, AuditEntry, Mt5Account
from domain.accounts import AccountChangeStatus, AccountStatus
from domain.mt5 import Mt5User, Mt5UserChanges
from mt5_adapter.errors import Mt5Error
from mt5_adapter.gateway import Mt5Gateway

# The API commits the change right after starting its workflow (see account_opening).
MAX_ATTEMPTS_FOR_MISSING_CHANGE = 20
FINISHED = (
    AccountChangeStatus.APPLIED.value,
    AccountChangeStatus.REJECTED.value,
    AccountChangeStatus.FAILED.value,
)


async def load_change(
    session: AsyncSession, change_id: uuid.UUID, *, lock: bool = False
) -> AccountChange:
    change = await session.get(AccountChange, change_id, with_for_update=lock)
    if change is None:
        raise ApplicationError(
            f"account change {change_id} does not exist",
            type="AccountChangeNotFound",
            non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_CHANGE,
        )
    return change


async def load_account(
    session: AsyncSession, account_id: uuid.UUID, *, lock: bool = False
) -> Mt5Account:
    account = await session.get(Mt5Account, account_id, with_for_update=lock)
    if account is None:
        raise ApplicationError(
            f"MT5 account {account_id} does not exist", type="AccountNotFound", non_retryable=True
        )
    return account


def requester(change: AccountChange) -> audit.Actor:
    return audit.Actor(kind=change.requested_by_kind, id=str(change.requested_by_id))


def read_of(user: Mt5User) -> Mt5AccountRead:
    return Mt5AccountRead(
        login=user.login,
        group=user.group,
        leverage=user.leverage,
        rights=user.rights,
        balance=user.balance,
        credit=user.credit,
    )


class AccountChangeRecords:
    """Database steps, on the main task queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @implements(change_steps.load_account_change)
    async def load_account_change(self, request: ChangeRef) -> AccountChangeFacts:
        async with self._sessions() as session:
            change = await load_change(session, request.change_id)
            account = await load_account(session, change.mt5_account_id)
        return AccountChangeFacts(
            change_id=change.id,
            client_id=change.client_id,
            account_id=account.id,
            server=account.server,
            login=account.login,
            currency=account.currency,
            account_status=AccountStatus(account.status),
            status=AccountChangeStatus(change.status),
        )

    @implements(change_steps.record_account_change_decision)
    async def record_account_change_decision(self, request: RecordChangeDecisionInput) -> None:
        """A compliance officer's approval or rejection, with the officer as the audit's actor."""
        async with self._sessions.begin() as session:
            change = await load_change(session, request.change_id, lock=True)
            if change.decided_by is not None:
                return
            before = {"status": change.status}
            status = (
                AccountChangeStatus.APPLYING if request.approve else AccountChangeStatus.REJECTED
            )
            change.status = status.value
            change.decided_by = request.actor.staff_id
            change.decided_at = request.at
            audit.record(
                session,
                staff_actor(request.actor),
                audit.Change(
                    action="account_change.approved"
                    if request.approve
                    else "account_change.rejected",
                    entity_type="account_change",
                    entity_id=str(change.id),
                    before=before,
                    after={"status": status.value, "kind": change.kind, **change.requested},
                    reason=request.reason,
                ),
            )

    @implements(change_steps.escalate_account_change)
    async def escalate_account_change(self, request: EscalateChangeInput) -> None:
        """No decision within the service level: an audit entry the compliance lead's queue
        reads (written once per change)."""
        async with self._sessions.begin() as session:
            change = await load_change(session, request.change_id, lock=True)
            already = await session.scalar(
                select(AuditEntry.id).where(
                    AuditEntry.action == "account_change.escalated",
                    AuditEntry.entity_id == str(change.id),
                )
            )
            if already is not None:
                return
            audit.record(
                session,
                audit.system_actor(on_behalf_of=str(change.client_id)),
                audit.Change(
                    action="account_change.escalated",
                    entity_type="account_change",
                    entity_id=str(change.id),
                    after={"status": change.status, "escalated_at": request.at.isoformat()},
                    reason="no compliance decision within the review service level",
                ),
            )

    @implements(change_steps.record_account_change_applied)
    async def record_account_change_applied(self, request: RecordChangeAppliedInput) -> None:
        """The change applied, the account row as MT5 now has it, and the audit entry with the
        before and after, in one transaction."""
        async with self._sessions.begin() as session:
            change = await load_change(session, request.change_id, lock=True)
            if change.status == AccountChangeStatus.APPLIED:
                return
            account = await load_account(session, change.mt5_account_id, lock=True)
            before = request.before.model_dump(mode="json")
            after = request.after.model_dump(mode="json")
            row_before = _account_row(account)
            change.status = AccountChangeStatus.APPLIED.value
            change.before = before
            account.leverage = request.after.leverage
            account.group = request.after.group
            account.rights = request.after.rights
            account.status = request.account_status.value
            actor = staff_actor(request.actor) if request.actor is not None else requester(change)
            audit.record(
                session,
                actor,
                audit.Change(
                    action=f"mt5_account.{change.kind}",
                    entity_type="mt5_account",
                    entity_id=str(account.id),
                    before={**row_before, "mt5": before},
                    after={**_account_row(account), "mt5": after, "change": str(change.id)},
                    reason=change.reason,
                ),
            )

    @implements(change_steps.mark_account_change_failed)
    async def mark_account_change_failed(self, request: MarkChangeFailedInput) -> None:
        async with self._sessions.begin() as session:
            change = await load_change(session, request.change_id, lock=True)
            if change.status in FINISHED:
                return
            before = {"status": change.status}
            change.status = AccountChangeStatus.FAILED.value
            change.failure_reason = f"{request.error_type}: {request.reason}"[:2000]
            audit.record(
                session,
                audit.system_actor(on_behalf_of=str(change.client_id)),
                audit.Change(
                    action="account_change.failed",
                    entity_type="account_change",
                    entity_id=str(change.id),
                    before=before,
                    after={"status": AccountChangeStatus.FAILED.value, "error": request.error_type},
                    reason=change.failure_reason,
                ),
            )


def _account_row(account: Mt5Account) -> dict[str, Any]:
    return {
        "leverage": account.leverage,
        "group": account.group,
        "rights": account.rights,
        "status": account.status,
    }


class Mt5AccountChangeSteps:
    """MT5 steps of an account change, for one server, registered on that server's queue."""

    def __init__(self, gateway: Mt5Gateway) -> None:
        self._mt5 = gateway

    @implements(change_steps.read_mt5_account)
    async def read_mt5_account(self, request: ReadMt5AccountInput) -> Mt5AccountRead:
        try:
            return read_of(await self._mt5.get_user(request.login))
        except Mt5Error as error:
            raise_for_temporal(error)

    @implements(change_steps.apply_account_change)
    async def apply_account_change(self, request: ApplyChangeInput) -> Mt5AccountRead:
        """`user/update` with absolute values (sending them again sets the same thing). A
        closure is refused while positions are open or money (balance or credit) is on it."""
        try:
            if request.require_empty:
                positions = await self._mt5.get_open_position_count(request.login)
                user = await self._mt5.get_user(request.login)
                if positions or user.balance or user.credit:
                    raise ApplicationError(
                        f"account {request.login} cannot be closed: {positions} open "
                        f"position(s), balance {user.balance}, credit {user.credit}",
                        type="AccountNotEmpty",
                        non_retryable=True,
                    )
            updated = await self._mt5.update_user(
                request.login,
                Mt5UserChanges(
                    leverage=request.leverage, group=request.group, rights=request.rights
                ),
            )
        except Mt5Error as error:
            raise_for_temporal(error)
        return read_of(updated)
