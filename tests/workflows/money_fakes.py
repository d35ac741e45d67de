"""Fakes of the money sagas' steps (deposit, withdrawal, transfer), registered under the real
step names, and the helpers their tests share: the environment, the workers, waiting until a
workflow is blocked, and replaying what it recorded."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from contracts import deposit, funds, mt5_task_queue, withdrawal
from contracts import unmatched_funds as unmatched
from contracts.deposit import (
    DepositAssessment,
    OpenPaymentSession,
    PaymentReceived,
    ProcessorEvents,
    RecordPaymentSession,
)
from contracts.funds import (
    SEARCH_ATTRIBUTES,
    BalanceChange,
    Booking,
    ConvertHeld,
    MarkMovement,
    Notify,
    OpenFinanceCase,
    PaymentRef,
    RecordDecision,
    ReserveFromWallet,
    ReverseBalanceChange,
    ReverseEntry,
)
from contracts.steps import implements
from contracts.unmatched_funds import (
    QueueUnmatchedFunds,
    ReopenUnmatched,
    ResolveUnmatched,
    UnmatchedOutcome,
)
from contracts.withdrawal import PayoutVerdict, WithdrawalAssessment
from domain.money import Money
from domain.money_flows import Mt5AccountRef
from domain.payment_checks import RiskFlag
from domain.payments import (
    PaymentEvent,
    PaymentEventKind,
    PaymentSession,
    PayoutState,
    UnmatchedAction,
    UnmatchedStatus,
)
from tests.support.waiting import eventually

# The temporal-test-server binary sits next to the interpreter (as in tests/conftest.py).
BIN = Path(sys.executable).parent
# The marker a local activity's result is recorded under in the history.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


async def start_environment() -> WorkflowEnvironment:
    """The time-skipping test server, with the money workflows' search attributes registered
    (an upsert of an unregistered one fails the workflow task)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
    return env


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


@dataclass
class MoneyFakes:
    """The saga steps, faked. Every call is recorded in `calls` as (step, key argument) and its
    input in `inputs[step]`; `booked` is a tiny ledger of the entry keys booked so far, and
    `deals` the comments of the balance deals MT5 holds (a refused change leaves none).

    A booking that carries the client's notice is recorded as the booking, then the notice
    (`notify_client`): what the client is told, and when, is the same.

    `refuse` maps a step name (or, for `book_entry`, an entry key) to the type of a
    non-retryable ApplicationError that call raises: a business refusal. `fail_for_good` does
    the same for a compensation, keyed by what it would write (`<entry key>:reversal` for
    `reverse_entry_if_booked`, the new deal's comment for `mt5_reverse_if_applied`): the undo
    fails after its retries and leaves things as they were. `paused` steps wait until their
    event is set. `payout_states` are the processor's answers to `poll_payout_status`, one per
    poll, in order (pending once they run out); `processor_events` are the processor's answers
    to `ask_processor_for_payment_events`, one per question (nothing once they run out).
    """

    server: str = field(default_factory=lambda: f"mt5{uuid.uuid4().hex[:8]}")
    deposit_flags: tuple[RiskFlag, ...] = ()
    withdrawal_flags: tuple[RiskFlag, ...] = ()
    free_margin: Decimal = Decimal("1000000")
    eur_per_usd: Decimal = Decimal("0.90")
    ticket: int = 4242
    refuse: dict[str, str] = field(default_factory=dict)
    fail_for_good: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    inputs: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    booked: set[str] = field(default_factory=set)
    deals: set[str] = field(default_factory=set)
    paused: dict[str, asyncio.Event] = field(default_factory=dict)
    payout_states: list[PayoutState] = field(default_factory=list)
    processor_events: list[tuple[PaymentEvent, ...]] = field(default_factory=list)
    _received: Money | None = None

    def account(self, login: int = 7001) -> Mt5AccountRef:
        return Mt5AccountRef(server=self.server, login=login)

    def pause(self, step: str) -> asyncio.Event:
        """Make `step` wait until the returned event is set."""
        self.paused[step] = asyncio.Event()
        return self.paused[step]

    async def called(self, step: str) -> None:
        """Wait until `step` has been called (a paused step is then in flight)."""
        await eventually(lambda: step in self.steps(), f"{step} called", timeout=10)

    async def landed(self, comment: str) -> None:
        """Wait until MT5 holds the balance deal `comment` (a paused change, once released)."""
        await eventually(lambda: comment in self.deals, f"MT5 applied {comment}", timeout=10)

    def steps(self) -> list[str]:
        return [name for name, _ in self.calls]

    def received(self) -> PaymentReceived:
        """What `receive_deposit` was given. A local step runs again when its workflow task is
        retried before the task recorded it (the time-skipping server can time a task out while
        the step runs): the same step with the same argument, idempotent; never another one."""
        first, *again = self.inputs[deposit.receive_deposit.name]
        assert all(call == first for call in again), again
        return first  # type: ignore[no-any-return]

    def bookings(self) -> dict[str, Booking]:
        return {b.entry.idempotency_key: b for b in self.inputs[funds.book_entry.name]}

    def after(self, step: str) -> list[tuple[str, Any]]:
        """The calls after the first call of `step`."""
        return self.calls[self.steps().index(step) + 1 :]

    async def _call(
        self, step: str, detail: Any, argument: Any, refusal_key: str | None = None
    ) -> None:
        self.calls.append((step, detail))
        self.inputs[step].append(argument)
        if step in self.paused:
            await self.paused[step].wait()
        kind = self.refuse.get(refusal_key or step)
        if kind is not None:
            raise ApplicationError(f"{kind} (fake)", type=kind, non_retryable=True)

    async def _undo(self, step: str, detail: Any, argument: Any, writes: str) -> None:
        """A compensation's call: fails for good when `fail_for_good` names what it writes."""
        await self._call(step, detail, argument)
        kind = self.fail_for_good.get(writes)
        if kind is not None:
            raise ApplicationError(f"{kind} (fake)", type=kind, non_retryable=True)

    def activities(self) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
        """(the main task queue's steps, the MT5 server's queue's steps)."""

        @implements(deposit.start_processor_deposit)
        async def start_processor_deposit(request: PaymentRef) -> PaymentSession:
            await self._call(deposit.start_processor_deposit.name, None, request)
            return PaymentSession(provider="cardco", provider_ref="pay_1", redirect_url="https://x")

        @implements(deposit.open_payment_session)
        async def open_payment_session(request: OpenPaymentSession) -> PaymentSession:
            await self._call(deposit.open_payment_session.name, None, request)
            return PaymentSession(provider="cardco", provider_ref="pay_1", redirect_url="https://x")

        @implements(deposit.record_payment_session)
        async def record_payment_session(request: RecordPaymentSession) -> PaymentSession:
            await self._call(deposit.record_payment_session.name, None, request)
            return request.session

        @implements(deposit.record_payment_received)
        async def record_payment_received(request: PaymentReceived) -> None:
            await self._call(deposit.record_payment_received.name, request.event.event_id, request)
            self._received = request.event.amount

        @implements(deposit.assess_deposit)
        async def assess_deposit(request: PaymentRef) -> DepositAssessment:
            await self._call(deposit.assess_deposit.name, None, request)
            assert self._received is not None
            return DepositAssessment(flags=self.deposit_flags, amount=self._received)

        @implements(deposit.receive_deposit)
        async def receive_deposit(request: PaymentReceived) -> DepositAssessment:
            await self._call(deposit.receive_deposit.name, request.event.event_id, request)
            self._received = received = request.event.amount
            transit = request.in_transit
            if transit is None or self.deposit_flags or received.currency != transit.currency:
                return DepositAssessment(flags=self.deposit_flags, amount=received)
            self.booked.add(transit.key)  # in the step's own transaction, as the real one does
            return DepositAssessment(flags=(), amount=received, in_transit=True)

        @implements(funds.record_decision)
        async def record_decision(request: RecordDecision) -> None:
            await self._call(funds.record_decision.name, request.decision.approve, request)

        @implements(withdrawal.assess_withdrawal)
        async def assess_withdrawal(request: PaymentRef) -> WithdrawalAssessment:
            await self._call(withdrawal.assess_withdrawal.name, None, request)
            return WithdrawalAssessment(flags=self.withdrawal_flags)

        @implements(withdrawal.send_payout)
        async def send_payout(request: PaymentRef) -> str:
            await self._call(withdrawal.send_payout.name, None, request)
            return "payout_1"

        @implements(deposit.ask_processor_for_payment_events)
        async def ask_processor_for_payment_events(request: PaymentRef) -> ProcessorEvents:
            events = self.processor_events.pop(0) if self.processor_events else ()
            await self._call(
                deposit.ask_processor_for_payment_events.name,
                tuple(e.event_id for e in events),
                request,
            )
            return ProcessorEvents(events=events)

        @implements(withdrawal.poll_payout_status)
        async def poll_payout_status(request: PaymentRef) -> PayoutVerdict:
            state = self.payout_states.pop(0) if self.payout_states else PayoutState.PENDING
            await self._call(withdrawal.poll_payout_status.name, state, request)
            kinds = {
                PayoutState.SETTLED: PaymentEventKind.PAYOUT_SETTLED,
                PayoutState.FAILED: PaymentEventKind.PAYOUT_FAILED,
            }
            if state not in kinds:
                return PayoutVerdict()
            return PayoutVerdict(
                event=PaymentEvent(
                    provider="bankco",
                    event_id=f"bankco:poll:payout_1:{state.value}",
                    kind=kinds[state],
                    provider_ref="payout_1",
                    reference="",
                    amount=Money(amount=Decimal("0.01"), currency="USD"),
                    sent_at=datetime.now(UTC),
                )
            )

        @implements(deposit.return_payment_to_payer)
        async def return_payment_to_payer(request: PaymentRef) -> None:
            await self._call(deposit.return_payment_to_payer.name, None, request)

        @implements(funds.mark_movement)
        async def mark_movement(request: MarkMovement) -> None:
            await self._call(funds.mark_movement.name, request.status, request)

        @implements(funds.notify_client)
        async def notify_client(request: Notify) -> None:
            await self._call(funds.notify_client.name, request.kind, request)

        @implements(funds.book_entry)
        async def book_entry(request: Booking) -> None:
            key = request.entry.idempotency_key
            await self._call(funds.book_entry.name, key, request, refusal_key=key)
            self.booked.add(key)
            if request.notice is not None:  # the client told in the booking's transaction
                self.calls.append((funds.notify_client.name, request.notice.kind))
                self.inputs[funds.notify_client.name].append(request.notice)

        @implements(funds.reverse_entry_if_booked)
        async def reverse_entry_if_booked(request: ReverseEntry) -> None:
            was_booked = request.key in self.booked
            reversal = f"{request.key}:reversal"
            await self._undo(
                funds.reverse_entry_if_booked.name, (request.key, was_booked), request, reversal
            )
            if was_booked:
                self.booked.add(reversal)

        @implements(unmatched.queue_unmatched_funds)
        async def queue_unmatched_funds(request: QueueUnmatchedFunds) -> None:
            await self._call(
                unmatched.queue_unmatched_funds.name,
                (request.event.event_id, request.reason),
                request,
            )

        @implements(unmatched.resolve_unmatched_funds)
        async def resolve_unmatched_funds(request: ResolveUnmatched) -> UnmatchedOutcome:
            await self._call(unmatched.resolve_unmatched_funds.name, request.action, request)
            done = (
                UnmatchedStatus.CREDITED
                if request.action is UnmatchedAction.CREDIT
                else UnmatchedStatus.RETURNED
            )
            return UnmatchedOutcome(item_id=request.item_id, status=done)

        @implements(unmatched.reopen_unmatched_funds)
        async def reopen_unmatched_funds(request: ReopenUnmatched) -> None:
            await self._call(unmatched.reopen_unmatched_funds.name, request.error, request)

        @implements(funds.open_finance_case)
        async def open_finance_case(request: OpenFinanceCase) -> None:
            await self._call(funds.open_finance_case.name, request.kind, request)

        @implements(funds.reserve_from_wallet)
        async def reserve_from_wallet(request: ReserveFromWallet) -> None:
            await self._call(funds.reserve_from_wallet.name, request.key, request)
            self.booked.add(request.key)

        @implements(funds.convert_held)
        async def convert_held(request: ConvertHeld) -> Money:
            await self._call(funds.convert_held.name, request.key, request)
            self.booked.add(request.key)
            rate = self.eur_per_usd if request.into == "EUR" else 1 / self.eur_per_usd
            return Money(amount=request.sell.amount * rate, currency=request.into).rounded()

        @implements(funds.mt5_free_margin)
        async def mt5_free_margin(account: Mt5AccountRef) -> Decimal:
            await self._call(funds.mt5_free_margin.name, account.login, account)
            return self.free_margin

        @implements(funds.mt5_credit_balance)
        async def mt5_credit_balance(change: BalanceChange) -> int:
            await self._call(funds.mt5_credit_balance.name, change.comment, change)
            self.deals.add(change.comment)
            return self.ticket

        @implements(funds.mt5_debit_balance)
        async def mt5_debit_balance(change: BalanceChange) -> int:
            await self._call(funds.mt5_debit_balance.name, change.comment, change)
            self.deals.add(change.comment)
            return self.ticket + 1

        @implements(funds.mt5_reverse_if_applied)
        async def mt5_reverse_if_applied(request: ReverseBalanceChange) -> None:
            applied = request.change.comment in self.deals
            await self._undo(
                funds.mt5_reverse_if_applied.name,
                (request.comment, applied),
                request,
                request.comment,
            )
            if applied:
                self.deals.add(request.comment)

        main: list[Callable[..., Any]] = [
            start_processor_deposit,
            open_payment_session,
            record_payment_session,
            record_payment_received,
            assess_deposit,
            receive_deposit,
            record_decision,
            assess_withdrawal,
            send_payout,
            poll_payout_status,
            ask_processor_for_payment_events,
            return_payment_to_payer,
            mark_movement,
            notify_client,
            book_entry,
            reverse_entry_if_booked,
            open_finance_case,
            queue_unmatched_funds,
            resolve_unmatched_funds,
            reopen_unmatched_funds,
            reserve_from_wallet,
            convert_held,
        ]
        mt5: list[Callable[..., Any]] = [
            mt5_free_margin,
            mt5_credit_balance,
            mt5_debit_balance,
            mt5_reverse_if_applied,
        ]
        return main, mt5


@asynccontextmanager
async def workers(
    env: WorkflowEnvironment, fakes: MoneyFakes, workflow: type
) -> AsyncIterator[str]:
    """A worker for the workflow and the database steps on a fresh main queue, and one for the
    MT5 steps on the fakes' server's queue; yields the main queue."""
    queue = f"test-{uuid.uuid4()}"
    main, mt5 = fakes.activities()
    async with (
        Worker(env.client, task_queue=queue, workflows=[workflow], activities=main),
        Worker(env.client, task_queue=mt5_task_queue(fakes.server), activities=mt5),
    ):
        yield queue


async def replay(handle: WorkflowHandle[Any, Any], workflow: type) -> None:
    """The recorded history replays without a non-determinism error."""
    history = await handle.fetch_history()
    await Replayer(workflows=[workflow], data_converter=pydantic_data_converter).replay_workflow(
        history
    )


async def blocked_after(handle: WorkflowHandle[Any, Any], step: str) -> None:
    """Wait until `step` has completed and the workflow has processed it and is waiting (for
    a signal or an update): its last event is a completed workflow task."""
    for _ in range(400):
        events = list((await handle.fetch_history()).events)
        scheduled = {
            e.event_id
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == step
        }
        completed = any(
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled
            for e in events
        ) or any(local_step(e) == step for e in events)
        # A timer or a patch (marker, search attribute) the task started, a timer it cancelled
        # or an update it accepted and answered is written after it.
        while events and events[-1].event_type in (
            EventType.EVENT_TYPE_TIMER_STARTED,
            EventType.EVENT_TYPE_TIMER_CANCELED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
            EventType.EVENT_TYPE_MARKER_RECORDED,
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        ):
            events.pop()
        if completed and events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"the workflow never settled after {step}")


def local_step(event: HistoryEvent) -> str | None:
    """The step a local activity's marker records (it is written once the step has completed),
    or None for any other event."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attributes.details:
        return None
    [payload] = attributes.details["data"].payloads
    name = json.loads(payload.data).get("activity_type")
    return str(name) if name is not None else None


async def cancel(handle: WorkflowHandle[Any, Any]) -> None:
    """Ask the workflow to cancel and wait until a workflow task has handled the request."""
    await handle.cancel()
    requested = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    for _ in range(400):
        types = [e.event_type for e in (await handle.fetch_history()).events]
        if requested in types and any(
            t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            for t in types[types.index(requested) :]
        ):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the workflow never handled its cancellation")


def payment_event(
    kind: PaymentEventKind, reference: str, amount: Money, event_id: str | None = None
) -> PaymentEvent:
    return PaymentEvent(
        provider="cardco",
        event_id=event_id or f"evt_{uuid.uuid4().hex[:12]}",
        kind=kind,
        provider_ref="pay_1",
        reference=reference,
        amount=amount,
        payer_name="Jane Doe",
        sent_at=datetime.now(UTC),
    )
