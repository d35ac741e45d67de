"""Unmatched funds (docs/unmatched-funds.md): money a processor collected that no deposit
booked, queued for finance, then credited to a client's wallet or MT5 account, or returned to
the payer."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.movements import MAX_ATTEMPTS_FOR_MISSING_ROW, as_business_failure
from activities.payments import processor_call
from contracts import unmatched_funds as unmatched
from contracts.steps import implements
from contracts.unmatched_funds import (
    FinishUnmatchedCredit,
    QueueUnmatchedFunds,
    ReopenUnmatched,
    ResolveUnmatched,
    UnmatchedInTransit,
    UnmatchedOutcome,
    UnmatchedTakeBackFailed,
)
from db import audit
from db.ledger import post_entry
from db.models import FinanceCase, UnmatchedFunds
from db.unmatched_funds import queue_unmatched
from domain.errors import BackOfficeError
from domain.funds import accept_in_transit, accept_into_wallet, into_mt5, receive_payment
from domain.money import Money
from domain.payments import (
    FinanceCaseKind,
    FinanceCaseStatus,
    UnmatchedAction,
    UnmatchedStatus,
)
from domain.wallets import release_hold
from psp_adapter.gateway import PaymentProvider

log = logging.getLogger("brokerflow.unmatched_funds")


class UnmatchedFundsSteps:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: dict[str, PaymentProvider],
    ) -> None:
        self._sessions = sessions
        self._providers = providers

    @implements(unmatched.queue_unmatched_funds)
    async def queue_unmatched_funds(self, request: QueueUnmatchedFunds) -> None:
        """A payment the deposit does not take, queued for finance once per processor event."""
        async with self._sessions.begin() as session:
            await queue_unmatched(
                session, request.event, request.reason, request.payment_id, request.detail
            )

    @implements(unmatched.resolve_unmatched_funds)
    async def resolve_unmatched_funds(self, request: ResolveUnmatched) -> UnmatchedOutcome:
        """Credit the queued money to a client's wallet (psp → suspense → wallet, two balanced
        entries under the item's reference), or return it to the payer through its processor."""
        async with self._sessions() as session:
            item = await _unmatched(session, request.item_id)
        done = {UnmatchedStatus.CREDITED.value, UnmatchedStatus.RETURNED.value}
        if item.status in done:
            return UnmatchedOutcome(item_id=item.id, status=UnmatchedStatus(item.status))
        _asked(item, request)
        amount = Money.from_minor_units(item.amount_minor, item.currency)
        return_ref = None
        if request.action is UnmatchedAction.RETURN:
            provider = self._providers.get(item.provider)
            if provider is None:
                raise ApplicationError(
                    f"no {item.provider} processor is configured to return {item.reference}",
                    type="ProcessorMissing",
                    non_retryable=True,
                )
            return_ref = await processor_call(
                provider.refund(
                    item.provider_ref,
                    item.reference,
                    amount,
                    item.payer_name or "",
                    f"{item.reference}:return",
                )
            )
        try:
            async with self._sessions.begin() as session:
                item = await _unmatched(session, request.item_id, for_update=True)
                if item.status in done:
                    return UnmatchedOutcome(item_id=item.id, status=UnmatchedStatus(item.status))
                _asked(item, request)
                before = {"status": item.status}
                if request.action is UnmatchedAction.CREDIT:
                    assert request.client_id is not None  # the API requires it
                    await post_entry(
                        session,
                        receive_payment(f"{item.reference}:received", item.provider, amount),
                    )
                    await post_entry(
                        session,
                        accept_into_wallet(
                            f"{item.reference}:wallet", str(request.client_id), amount
                        ),
                    )
                    item.status = UnmatchedStatus.CREDITED.value
                    item.credited_client_id = request.client_id
                else:
                    item.status = UnmatchedStatus.RETURNED.value
                    item.return_ref = return_ref
                item.resolved_at = datetime.now(UTC)
                item.error = None
                audit.record(
                    session,
                    audit.system_actor(
                        on_behalf_of=str(request.client_id) if request.client_id else None
                    ),
                    audit.Change(
                        action=f"unmatched_funds.{item.status}",
                        entity_type="unmatched_funds",
                        entity_id=str(item.id),
                        before=before,
                        after={
                            "status": item.status,
                            "amount": f"{amount.amount} {amount.currency}",
                            "client_id": str(request.client_id) if request.client_id else None,
                            "return_ref": return_ref,
                            "asked_by": str(request.staff_id),
                        },
                        reason=request.note,
                    ),
                )
                return UnmatchedOutcome(item_id=item.id, status=UnmatchedStatus(item.status))
        except BackOfficeError as error:
            raise as_business_failure(error) from error

    @implements(unmatched.unmatched_funds_in_transit)
    async def unmatched_funds_in_transit(self, request: ResolveUnmatched) -> UnmatchedInTransit:
        """A credit to MT5, first step: the item's money from the processor's clearing through
        suspense into the client's hold, two entries in one transaction (keys `<UF…>:received`
        and `<UF…>:transit`; a retry finds them booked). An item already credited answers so."""
        try:
            async with self._sessions.begin() as session:
                item = await _unmatched(session, request.item_id, for_update=True)
                amount = Money.from_minor_units(item.amount_minor, item.currency)
                if item.status == UnmatchedStatus.CREDITED:
                    return UnmatchedInTransit(
                        reference=item.reference, amount=amount, credited=True
                    )
                _asked(item, request)
                client = _client_of(request)
                await post_entry(
                    session, receive_payment(f"{item.reference}:received", item.provider, amount)
                )
                await post_entry(
                    session, accept_in_transit(f"{item.reference}:transit", client, amount)
                )
                return UnmatchedInTransit(reference=item.reference, amount=amount)
        except BackOfficeError as error:
            raise as_business_failure(error) from error

    @implements(unmatched.finish_unmatched_credit)
    async def finish_unmatched_credit(self, request: FinishUnmatchedCredit) -> None:
        """The held money onto the MT5 mirror (`<UF…>:to-mt5`, MT5 has the deal) or, MT5 having
        refused it and given back what it held of it, into the wallet (`<UF…>:to-wallet`); the
        item credited with its audit row, in one transaction."""
        asked = request.request
        account = asked.mt5
        if account is None:
            raise ApplicationError(
                "a credit to MT5 without an account", type="Mt5AccountMissing", non_retryable=True
            )
        client = _client_of(asked)
        try:
            async with self._sessions.begin() as session:
                item = await _unmatched(session, asked.item_id, for_update=True)
                if item.status == UnmatchedStatus.CREDITED:
                    return
                before = {"status": item.status}
                amount = Money.from_minor_units(item.amount_minor, item.currency)
                if request.ticket is not None:
                    entry = into_mt5(
                        f"{item.reference}:to-mt5", client, account.server, account.login, amount
                    )
                    item.error = None
                else:
                    entry = release_hold(f"{item.reference}:to-wallet", client, amount)
                    item.error = (
                        f"MT5 refused the credit ({request.refusal}): credited to the wallet"
                    )
                await post_entry(session, entry)
                item.status = UnmatchedStatus.CREDITED.value
                item.credited_client_id = asked.client_id
                item.resolved_at = datetime.now(UTC)
                audit.record(
                    session,
                    audit.system_actor(on_behalf_of=client),
                    audit.Change(
                        action="unmatched_funds.credited",
                        entity_type="unmatched_funds",
                        entity_id=str(item.id),
                        before=before,
                        after={
                            "status": item.status,
                            "amount": f"{amount.amount} {amount.currency}",
                            "client_id": client,
                            "to": "mt5" if request.ticket is not None else "wallet",
                            "mt5": f"{account.server}/{account.login}",
                            "mt5_ticket": request.ticket,
                            "mt5_refusal": request.refusal,
                            "asked_by": str(asked.staff_id),
                        },
                        reason=asked.note,
                    ),
                )
        except BackOfficeError as error:
            raise as_business_failure(error) from error

    @implements(unmatched.unmatched_take_back_failed)
    async def unmatched_take_back_failed(self, request: UnmatchedTakeBackFailed) -> None:
        """MT5 refused the credit and would not give back what it may hold of it: the money
        stays in the client's hold, the item stays crediting with the error, and a finance case
        (kind `compensation_incomplete`, movement `unmatched_funds`) with its audit row says
        what is left to do; once per item."""
        asked = request.request
        async with self._sessions.begin() as session:
            item = await _unmatched(session, asked.item_id, for_update=True)
            reason = f"MT5 refused the credit ({request.refusal})"
            amount = Money.from_minor_units(item.amount_minor, item.currency)
            held = {"amount": str(amount.amount), "currency": amount.currency}
            case_id = await session.scalar(
                insert(FinanceCase)
                .values(
                    id=uuid.uuid4(),
                    movement_kind="unmatched_funds",
                    movement_id=item.id,
                    reference=item.reference,
                    client_id=asked.client_id,
                    kind=FinanceCaseKind.COMPENSATION_INCOMPLETE.value,
                    status=FinanceCaseStatus.OPEN.value,
                    currency=item.currency,
                    amount_minor=item.amount_minor,
                    reason=reason[:2000],
                    undone=[],
                    not_undone=[
                        {
                            "step": "mt5_reverse_if_applied",
                            "what": f"{request.what}, then credit the hold"
                            f" {item.reference}:transit",
                            **held,
                            "error": request.error[:2000],
                        }
                    ],
                )
                .on_conflict_do_nothing(index_elements=["movement_kind", "movement_id", "kind"])
                .returning(FinanceCase.id)
            )
            if case_id is None:
                return
            item.error = f"{reason}; taking it back from MT5 failed: {request.error}"[:2000]
            audit.record(
                session,
                audit.system_actor(on_behalf_of=str(asked.client_id)),
                audit.Change(
                    action="finance_case.opened",
                    entity_type="finance_case",
                    entity_id=str(case_id),
                    after={
                        "movement": f"unmatched_funds {item.id}",
                        "reference": item.reference,
                        "kind": FinanceCaseKind.COMPENSATION_INCOMPLETE.value,
                        "amount": f"{held['amount']} {item.currency}",
                        "not_undone": [request.what],
                    },
                    reason=reason[:2000],
                ),
            )
        log.error(
            "unmatched funds %s: %s; taking it back failed: %s",
            item.reference,
            reason,
            request.error,
        )

    @implements(unmatched.reopen_unmatched_funds)
    async def reopen_unmatched_funds(self, request: ReopenUnmatched) -> None:
        """The resolution was refused for good: the item is open again, with the error."""
        async with self._sessions.begin() as session:
            item = await _unmatched(session, request.item_id, for_update=True)
            if item.status not in (UnmatchedStatus.CREDITING, UnmatchedStatus.RETURNING):
                return
            before = {"status": item.status}
            item.status = UnmatchedStatus.OPEN.value
            item.error = request.error[:2000]
            audit.record(
                session,
                audit.system_actor(),
                audit.Change(
                    action="unmatched_funds.reopened",
                    entity_type="unmatched_funds",
                    entity_id=str(item.id),
                    before=before,
                    after={"status": item.status, "error": item.error},
                    reason=request.error[:2000],
                ),
            )
        log.error("unmatched funds %s: resolution refused: %s", item.reference, request.error)


def _client_of(request: ResolveUnmatched) -> str:
    if request.client_id is None:
        raise ApplicationError(
            "a credit without a client", type="UnmatchedFundsNoClient", non_retryable=True
        )
    return str(request.client_id)


def _asked(item: UnmatchedFunds, request: ResolveUnmatched) -> None:
    """The API moves the item to crediting/returning in the request that starts this workflow,
    committed just after the start: wait for that commit, but not forever for a request that was
    rolled back."""
    wanted = (
        UnmatchedStatus.CREDITING
        if request.action is UnmatchedAction.CREDIT
        else UnmatchedStatus.RETURNING
    )
    if item.status != wanted:
        raise ApplicationError(
            f"unmatched funds {item.reference} is {item.status}, not {wanted.value}",
            type="UnmatchedFundsNotAsked",
            non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_ROW,
        )


async def _unmatched(
    session: AsyncSession, item_id: uuid.UUID, *, for_update: bool = False
) -> UnmatchedFunds:
    item = await session.get(UnmatchedFunds, item_id, with_for_update=for_update)
    if item is None:
        raise ApplicationError(
            f"no unmatched funds {item_id}", type="UnmatchedFundsNotFound", non_retryable=True
        )
    return item
