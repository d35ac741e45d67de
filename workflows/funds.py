"""Steps the deposit, withdrawal and transfer sagas share, each paired with its compensation.

`Saga` keeps the compensations of the steps taken so far; `take_from` and `give_to` move money
between the client's hold and a pocket (wallet or MT5 account), so a withdrawal is `take_from`
+ payout and a transfer is `take_from` + (conversion) + `give_to`.

Compensations run newest first, each to its own end: one that fails for good is recorded and
the older ones still run. When any could not be carried out, the movement ends
`needs_attention` with a finance case saying what was undone and what was not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from contracts import funds
    from contracts.funds import (
        CLIENT_ID,
        MOVEMENT_STATUS,
        PAYMENT_REFERENCE,
        STATUS_SINCE,
        BalanceChange,
        Booking,
        ClientId,
        Compensation,
        ConvertHeld,
        MarkMovement,
        MovementRef,
        MovementResult,
        Notify,
        OpenFinanceCase,
        ReserveFromWallet,
        ReverseBalanceChange,
        ReverseEntry,
    )
    from domain.funds import into_mt5, out_of_mt5
    from domain.ledger import JournalEntry
    from domain.money import Money
    from domain.money_flows import Mt5AccountRef, Pocket, mt5_comment
    from domain.payments import FinanceCaseKind, PaymentStatus
    from domain.wallets import release_hold


T = TypeVar("T")

# Since this change a compensation that fails for good no longer fails the workflow: the older
# ones still run and the movement ends `needs_attention`. A history recorded before it (where
# such a failure failed the workflow at once) replays the old way.
COMPENSATIONS_RUN_TO_THEIR_END = "compensations-run-to-their-end"

# Since this change a deposit, a withdrawal and a transfer carry the search attributes of
# `contracts.funds` (client, reference, status and since when), upserted as the status moves. A
# run that started before it carries none to its end (the first `patched` call decides for the
# whole run, and it is made at the run's start).
SEARCH_ATTRIBUTES_SHOWN = "money-search-attributes"


def show_movement(
    client_id: ClientId | None,
    reference: str,
    status: StrEnum,
    *,
    patch: str | None = SEARCH_ATTRIBUTES_SHOWN,
) -> None:
    """At a run's start: the movement's search attributes, if this run shows them (`patch`: the
    `workflow.patched` id under which this workflow type began to, None when the run knows it
    started after it; the client only when known).
    `status` is the value the row the workflow moves holds (a `PaymentStatus`; an unmatched
    item's or an IB payout's own status)."""
    if patch is not None and not workflow.patched(patch):
        return
    shown: list[SearchAttributeUpdate[Any]] = [
        PAYMENT_REFERENCE.value_set(reference),
        MOVEMENT_STATUS.value_set(status.value),
        STATUS_SINCE.value_set(workflow.now()),
    ]
    if client_id is not None:
        shown.insert(0, CLIENT_ID.value_set(str(client_id)))
    workflow.upsert_search_attributes(shown)


def show_status(status: StrEnum) -> None:
    """The movement's status (and since when) in its search attributes, once it changes; a run
    that does not show them (started before its `show_movement` patch) is left as it is."""
    shown = workflow.info().typed_search_attributes
    if shown.get(PAYMENT_REFERENCE) is None or shown.get(MOVEMENT_STATUS) == status.value:
        return
    workflow.upsert_search_attributes(
        [MOVEMENT_STATUS.value_set(status.value), STATUS_SINCE.value_set(workflow.now())]
    )


class Refused(Exception):
    """A business outcome that ends the saga (insufficient funds, a rejection): compensate,
    record it, and finish normally with that status."""

    def __init__(self, status: PaymentStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def refusal_of(failure: ActivityError) -> str | None:
    """The reason, when a step failed for a business reason (a non-retryable application
    error); None for anything else, which is a fault to escalate, not an outcome."""
    cause = failure.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause.message
    return None


def failure_text(failure: ActivityError) -> str:
    """What a finance case says about a step that failed for good."""
    cause = failure.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}" if cause.type else cause.message
    return str(cause or failure)


async def finish_first(step: Awaitable[T]) -> T:
    """A cancellation asked for while `step` runs takes effect once it has finished: its
    compensation must not race it (it would find nothing to undo, and then the step would land)."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError("cancelled by staff")
    return result


async def unstoppable(steps: Awaitable[T]) -> T:
    """Run `steps` to their end whatever cancellation is asked for meanwhile."""
    task = asyncio.ensure_future(steps)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            workflow.logger.warning("cancellation refused: these steps must finish")


async def book(
    entry: JournalEntry,
    then: MarkMovement | None = None,
    *,
    local: bool = False,
    notice: Notify | None = None,
) -> None:
    """Book `entry` (and move the movement to `then`, and tell the client `notice`, all in one
    transaction); `local`: as a local activity (see `contracts.steps.Step.local`: only a
    workflow that chose it under `workflow.patched`)."""
    booking = Booking(entry=entry, then=then, notice=notice)
    await finish_first(funds.book_entry.run(booking, local=local))
    if then is not None:
        show_status(then.status)


async def mark(movement: MovementRef, status: PaymentStatus, *, reason: str | None = None) -> None:
    await finish_first(
        funds.mark_movement(MarkMovement(movement=movement, status=status, reason=reason))
    )
    show_status(status)


async def notify(
    client_id: ClientId, key: str, kind: str, message: str, *, local: bool = False
) -> None:
    await finish_first(
        funds.notify_client.run(
            Notify(client_id=client_id, key=key, kind=kind, message=message), local=local
        )
    )


async def escalate(
    movement: MovementRef,
    client_id: ClientId,
    reference: str,
    kind: FinanceCaseKind,
    amount: Money | None,
    reason: str,
) -> None:
    """A movement waiting past its service level: a finance case (once per movement and kind,
    with its audit row and an alert from the step), and a warning in the workflow's log. The
    movement's status does not change: it keeps waiting."""
    workflow.logger.warning("escalated %s (%s): %s", reference, kind.value, reason)
    await finish_first(
        funds.open_finance_case(
            OpenFinanceCase(
                movement=movement,
                client_id=client_id,
                reference=reference,
                kind=kind,
                amount=amount,
                reason=reason,
            )
        )
    )


async def wait_or_escalate(
    done: Callable[[], bool], sla: timedelta, escalation: Callable[[], Awaitable[None]]
) -> None:
    """Wait until `done`; if that takes longer than `sla`, run `escalation` once and go on
    waiting (a decision is still someone's to take: the case makes it visible)."""
    try:
        await workflow.wait_condition(done, timeout=sla)
        return
    except TimeoutError:
        pass
    if not done():
        await escalation()
    await workflow.wait_condition(done)


def hours(span: timedelta) -> str:
    """A service level as the cases word it: `24 h`, `0.5 h`."""
    return f"{span.total_seconds() / 3600:g} h"


class Saga:
    """The compensations of the steps taken so far, run newest first when the saga fails."""

    def __init__(
        self,
        label: str,
        client_id: ClientId,
        reference: str,
        movement: MovementRef,
        *,
        local: bool = False,
    ) -> None:
        self.label = label  # "withdrawal", "transfer": what the client's notices call it
        # Whether the forward database steps (the bookings of `give_to`) run as local
        # activities: only a workflow that chose it under `workflow.patched` says so.
        self.local = local
        self.client_id = client_id
        self.reference = reference
        self.movement = movement
        self._undo: list[tuple[Callable[[], Awaitable[object]], Compensation]] = []
        # What the compensations did and, with their errors, what they could not do.
        self.undone: list[Compensation] = []
        self.not_undone: list[Compensation] = []
        # What the movement moves, once a step has named it (for a finance case).
        self.amount: Money | None = None
        # Set once the movement's last entry is booked: nothing may be undone after that.
        self.finished = False

    @property
    def client(self) -> str:
        """The client as ledger account codes name it."""
        return str(self.client_id)

    def on_failure(
        self,
        compensation: Callable[[], Awaitable[object]],
        *,
        step: str = "compensation",
        what: str | None = None,
        amount: Money | None = None,
    ) -> None:
        """Register `compensation`; `step`, `what` and `amount` name it in a finance case."""
        self._undo.append((compensation, Compensation(step=step, what=what or step, amount=amount)))

    async def compensate(self) -> None:
        """The compensations, newest first, each to its own end: a cancelled workflow still
        puts the money back, and one that fails for good (after its retries, or refused as
        non-retryable) is recorded in `not_undone` while the older ones still run."""

        async def run_all() -> None:
            for undo, described in reversed(self._undo):
                try:
                    await undo()
                except ActivityError as failure:
                    if not workflow.patched(COMPENSATIONS_RUN_TO_THEIR_END):
                        raise
                    error = failure_text(failure)
                    workflow.logger.error(
                        "%s %s: compensation %r failed for good: %s",
                        self.label,
                        self.reference,
                        described.what,
                        error,
                    )
                    self.not_undone.append(described.model_copy(update={"error": error}))
                    continue
                self.undone.append(described)

        await unstoppable(run_all())

    async def run(self, body: Callable[[], Awaitable[MovementResult]]) -> MovementResult:
        """Run the saga's steps; on a refusal compensate and finish with its status. A
        cancellation compensates and ends as cancelled; any other failure (a fault nobody
        expected) compensates, marks the movement failed and fails the workflow, for
        operations to look at."""
        try:
            return await body()
        except Refused as refused:
            return await unstoppable(self._undone(refused.status, refused.reason))
        except BaseException as failure:
            if self.finished:
                raise  # the money has arrived: nothing that fails after that is undone
            if is_cancelled_exception(failure):
                return await unstoppable(
                    self._undone(PaymentStatus.CANCELLED, "cancelled by staff")
                )
            result = await unstoppable(
                self._undone(PaymentStatus.FAILED, f"undone after a fault: {failure}")
            )
            if result.status is PaymentStatus.NEEDS_ATTENTION:
                return result  # visible as such, with a finance case: not a failed workflow
            raise

    def complete(self) -> None:
        """The last entry is booked: from here on the movement is done."""
        self.finished = True
        self._undo.clear()

    async def _undone(self, status: PaymentStatus, reason: str) -> MovementResult:
        await self.compensate()
        if self.not_undone:
            failed = "; ".join(f"{c.what} ({c.error})" for c in self.not_undone)
            return await self.needs_attention(
                f"{status.value}: {reason}",
                f"{status.value}: {reason}; not undone: {failed}",
                f"{self.reference} was not carried out ({reason}) and could not yet be fully "
                "undone: part of the money is not back where it came from. Our finance team has "
                "been asked to put it right and will contact you.",
            )
        await mark(self.movement, status, reason=reason)
        await notify(
            self.client_id,
            self.key("notice"),
            f"{self.label}_{status.value}",
            f"{self.reference} was not carried out: {reason}",
        )
        return MovementResult(status=status, reason=reason)

    async def needs_attention(self, case_reason: str, summary: str, notice: str) -> MovementResult:
        """Some compensation failed for good: a case for finance (what was undone, what was
        not, the amounts) and the movement `needs_attention` with `summary` in one step; the
        client is told `notice`, which says the money is not back yet, never that it is."""
        await finish_first(
            funds.open_finance_case(
                OpenFinanceCase(
                    movement=self.movement,
                    client_id=self.client_id,
                    reference=self.reference,
                    amount=self.amount,
                    reason=case_reason,
                    undone=tuple(self.undone),
                    not_undone=tuple(self.not_undone),
                    then=MarkMovement(
                        movement=self.movement,
                        status=PaymentStatus.NEEDS_ATTENTION,
                        reason=summary,
                    ),
                )
            )
        )
        show_status(PaymentStatus.NEEDS_ATTENTION)
        await notify(
            self.client_id,
            self.key("notice"),
            f"{self.label}_{PaymentStatus.NEEDS_ATTENTION.value}",
            notice,
        )
        return MovementResult(status=PaymentStatus.NEEDS_ATTENTION, reason=summary)

    def key(self, step: str) -> str:
        return f"{self.reference}:{step}"

    def undo_entry(self, step: str, reason: str, amount: Money | None = None) -> None:
        key = self.key(step)
        self.on_failure(
            lambda: funds.reverse_entry_if_booked(ReverseEntry(key=key, reason=reason)),
            step=funds.reverse_entry_if_booked.name,
            what=f"reverse the entry {key}",
            amount=amount,
        )

    def undo_balance_change(
        self, change: BalanceChange, purpose: str, amount: Money | None = None
    ) -> None:
        comment = mt5_comment(purpose, self.reference)
        account = change.account
        self.on_failure(
            lambda: funds.mt5_reverse_if_applied(
                account.server, ReverseBalanceChange(change=change, comment=comment)
            ),
            step=funds.mt5_reverse_if_applied.name,
            what=f"undo {change.comment!r} on MT5 {account.server} {account.login} "
            f"with {comment!r}",
            amount=amount,
        )

    def balance_change(
        self, account: Mt5AccountRef, amount: Decimal, purpose: str
    ) -> BalanceChange:
        return BalanceChange(
            account=account,
            amount=amount,
            comment=mt5_comment(purpose, self.reference),
            requested_at=workflow.info().workflow_start_time,
        )

    # -- money out of a pocket into the hold ---------------------------------------------------

    async def take_from(
        self, pocket: Pocket, amount: Money, then: PaymentStatus, purpose: str
    ) -> None:
        """Move `amount` from the wallet or the MT5 account into the client's hold; `purpose`
        heads the MT5 deal's comment."""
        reached = MarkMovement(movement=self.movement, status=then)
        if self.amount is None:
            self.amount = amount
        if pocket.mt5 is None:
            self.undo_entry("hold", "movement did not complete", amount)
            await self.refusable(
                funds.reserve_from_wallet(
                    ReserveFromWallet(
                        key=self.key("hold"), client_id=self.client_id, amount=amount, then=reached
                    ),
                )
            )
            show_status(then)
            return
        account = pocket.mt5
        free_margin = await finish_first(funds.mt5_free_margin(account.server, account))
        if free_margin < amount.amount:
            raise Refused(
                PaymentStatus.REJECTED,
                f"free margin on MT5 account {account.login} is {free_margin} {amount.currency}",
            )
        debit = self.balance_change(account, -amount.amount, purpose)
        self.undo_balance_change(debit, "ret", amount)
        await self.refusable(funds.mt5_debit_balance(account.server, debit))
        self.undo_entry("from-mt5", "movement did not complete", amount)
        await book(
            out_of_mt5(self.key("from-mt5"), self.client, account.server, account.login, amount),
            reached,
        )

    # -- money out of the hold into a pocket ---------------------------------------------------

    async def give_to(
        self, pocket: Pocket, amount: Money, purpose: str, notice: Notify | None = None
    ) -> Money:
        """Move held `amount` to the wallet or the MT5 account; the movement completes (and the
        client is told `notice` with its last booking)."""
        if pocket.mt5 is None:
            # The last entry: once asked for, it is booked whatever cancellation comes.
            await unstoppable(
                book(
                    release_hold(self.key("to-wallet"), self.client, amount),
                    MarkMovement(
                        movement=self.movement, status=PaymentStatus.COMPLETED, credited=amount
                    ),
                    local=self.local,
                    notice=notice,
                )
            )
            self.complete()
            return amount
        if self.amount is None:
            self.amount = amount
        account = pocket.mt5
        credit = self.balance_change(account, amount.amount, purpose)
        self.undo_balance_change(credit, "rev", amount)
        ticket = await self.refusable(funds.mt5_credit_balance(account.server, credit))
        await unstoppable(
            book(
                into_mt5(self.key("to-mt5"), self.client, account.server, account.login, amount),
                MarkMovement(
                    movement=self.movement,
                    status=PaymentStatus.COMPLETED,
                    credited=amount,
                    mt5_ticket=ticket,
                ),
                local=self.local,
                notice=notice,
            )
        )
        self.complete()
        return amount

    async def convert(self, amount: Money, into: str) -> Money:
        """Held money into another currency at the stored rate; undone by its reversal."""
        self.undo_entry("fx", "movement did not complete", amount)
        return await self.refusable(
            funds.convert_held(
                ConvertHeld(key=self.key("fx"), client_id=self.client_id, sell=amount, into=into)
            )
        )

    @staticmethod
    async def refusable(step: Awaitable[T]) -> T:
        """`step` to its end (see `finish_first`); a business refusal of it ends the saga."""
        try:
            return await finish_first(step)
        except ActivityError as failure:
            reason = refusal_of(failure)
            if reason is None:
                raise
            raise Refused(PaymentStatus.REJECTED, reason) from failure


# A client's payment page or bank transfer must arrive within this; then the deposit expires.
PAYMENT_WINDOW = timedelta(days=7)
