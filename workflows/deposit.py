"""A deposit: the client pays through a processor, the money is checked, then credited once to
the wallet or the MT5 account.

1. ask the processor for a payment page (card) or a transfer reference (bank);
2. wait for its verified webhook (signal `payment_event`; redeliveries count once);
3. book the money into suspense, run the checks (KYC, sanctions, limits, velocity, payer name);
4. a flagged deposit waits for a compliance officer (update `decide`): rejected → returned to
   the payer; approved → on. Undecided after `timers.held_decision_sla`, it is escalated once
   (a `decision_overdue` finance case) and goes on waiting;
5. credit: the wallet, or MT5 `trade/balance` with the reference in the comment then the books.
   If MT5 refuses the credit for good, the money is the client's all the same: whatever MT5
   may hold of the credit is taken back first, then it goes to the wallet.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from contracts import deposit, funds
    from contracts import unmatched_funds as unmatched
    from contracts.deposit import (
        DEPOSIT,
        PAYMENT_SESSION,
        DepositInput,
        InTransit,
        OpenPaymentSession,
        PaymentReceived,
        RecordPaymentSession,
        SessionWanted,
    )
    from contracts.funds import (
        DECIDE,
        PAYMENT_EVENT,
        DecisionOutcome,
        MarkMovement,
        MovementRef,
        MovementResult,
        Notify,
        PaymentRef,
        RecordDecision,
        StaffDecision,
    )
    from domain.funds import accept_in_transit, accept_into_wallet
    from domain.money import Money
    from domain.money_flows import MovementKind
    from domain.payments import (
        FinanceCaseKind,
        PaymentEvent,
        PaymentEventKind,
        PaymentSession,
        PaymentStatus,
        UnmatchedReason,
    )
    from domain.wallets import release_hold

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.funds import (
    PAYMENT_WINDOW,
    Refused,
    Saga,
    book,
    escalate,
    failure_text,
    finish_first,
    hours,
    mark,
    notify,
    show_movement,
    show_status,
    unstoppable,
    wait_or_escalate,
)

FUNDS_ARRIVED = (PaymentEventKind.PAYMENT_SUCCEEDED, PaymentEventKind.TRANSFER_RECEIVED)
# The MT5 credit deal's purpose (its reversal is the saga's "rev").
CREDIT = "dep"
# The saga's step (and entry key suffix) of the money held in transit to MT5.
TRANSIT = "transit"
# `workflow.patched` id: since this change a credit MT5 refused is taken back from MT5 (if it is
# there) before the money goes to the wallet. Deposits that reached that point before it replay
# without the step.
TAKE_BACK_BEFORE_WALLET = "deposit-take-back-mt5-credit-before-wallet"
# Since this change every payment the deposit does not take (a second one on its reference, or
# one arriving after it expired, failed or was cancelled) is queued as unmatched funds.
QUEUE_FUNDS_NOT_TAKEN = "deposit-queue-funds-not-taken"
# Since this change a held deposit nobody decides on within `held_decision_sla` is escalated
# once (a `decision_overdue` case); before, it waited without a timer.
HELD_DECISION_SLA = "deposit-held-decision-sla"
# Since this change a deposit without a webhook asks the processor what it sent (a lost webhook
# loses no payment); before, it waited for the webhook alone until its window closed.
ASK_PROCESSOR_WHEN_SILENT = "deposit-ask-processor-when-silent"
# Since this change the database steps from the money's arrival to the notice (record, assess,
# the bookings, the notice) run as local activities: the same steps with the same arguments,
# without the server's round trips. A deposit that received its money before it replays them
# as activities; the processor's and MT5's steps, and the compensations, stay activities.
LOCAL_DATABASE_STEPS = "deposit-local-database-steps"
# Since this change the processor is asked from the deposit's input (`open_payment_session`) and
# its answer stored next (`record_payment_session`), so the API, which waits for the answer
# (update `payment_session`, sent with the start) before committing the payment's row, can hand
# the page or reference back in the request's answer. Before, one step did both from the row.
SESSION_IN_ANSWER = "deposit-payment-session-in-answer"
# Since this change the money's arrival is recorded and checked in one local step
# (`receive_deposit`: one transaction, so the payment is never seen `received` between them), and
# the client's notice of the credit is written with its last booking: two local steps fewer.
# Deposits that received their money before it replay the separate steps.
FEWER_LOCAL_STEPS = "deposit-fewer-local-steps"
# Since this change a deposit costs fewer of the server's round trips (docs/payments.md, "Cost
# per deposit"):
# - the processor is asked as a local step: its answer reaches the request at the end of the
#   first workflow task. The request stores it on the payment's row when it came in time; a
#   step stores it if the request did not (a slow processor; the client reads the payment until
#   it shows it), once the request has committed: `STORE_SESSION_AFTER` later, or, when the
#   money arrives first (the webhook found the committed row), `receive_deposit` in its own
#   transaction;
# - a cleared deposit bound for MT5 is booked in transit by `receive_deposit` (`InTransit`);
# - the search attributes are set once in the first task (not before the processor and again
#   after it);
# - it is the one patch a new deposit asks for: such a run takes each earlier patch's path
#   without asking (every patch asked writes a marker and a search-attribute update to the
#   history: five per deposit before). Runs started before ask as they did.
FEWER_ROUND_TRIPS = "deposit-fewer-round-trips"
# Later than the request waits for the processor (`api.payments.service.SESSION_WAIT_SECONDS`):
# by then the request has committed, with or without the answer.
STORE_SESSION_AFTER = timedelta(seconds=15)


class _TakeBackFailed(Exception):
    def __init__(self, result: MovementResult) -> None:
        super().__init__(result.reason)
        self.result = result


@workflow.defn(name=DEPOSIT.name)
class DepositWorkflow:
    @workflow.init
    def __init__(self, request: DepositInput) -> None:
        self._request = request
        self._movement = MovementRef(kind=MovementKind.PAYMENT, id=request.payment_id)
        self._events: dict[str, PaymentEvent] = {}
        self._status = PaymentStatus.INITIATED
        self._decision: StaffDecision | None = None
        # Once the run has settled on the processor's outcome: the event it took (None when no
        # money was taken: declined, expired, cancelled), and why other money is not taken.
        self._settled = False
        self._taken: str | None = None
        self._not_taken_because = UnmatchedReason.SECOND_PAYMENT
        self._queued: set[str] = set()
        # The processor's page or reference once it has answered, or why it did not.
        self._session: PaymentSession | None = None
        self._session_refused: str | None = None
        # Whether this run started on `FEWER_ROUND_TRIPS` (set first thing in `run`).
        self._current = False
        # The processor's answer, when the money arrived before a step stored it.
        self._unstored: PaymentSession | None = None

    @workflow.signal(name=PAYMENT_EVENT.name)
    async def payment_event(self, event: PaymentEvent) -> None:
        if event.event_id in self._events:
            return  # a redelivery
        self._events[event.event_id] = event
        if self._settled:
            await self._queue_if_not_taken(event)

    @workflow.update(name=DECIDE.name)
    async def decide(self, decision: StaffDecision) -> DecisionOutcome:
        self._decision = decision
        await finish_first(
            funds.record_decision(
                RecordDecision(
                    payment_id=self._request.payment_id,
                    decision=decision,
                    final=True,
                    new_status=PaymentStatus.CREDITING if decision.approve else None,
                )
            )
        )
        status = PaymentStatus.CREDITING if decision.approve else PaymentStatus.REJECTED
        return DecisionOutcome(status=status, approvals=int(decision.approve))

    @workflow.update(name=PAYMENT_SESSION.name)
    async def payment_session(self, _: SessionWanted) -> PaymentSession:
        """The payment page or transfer reference, once the processor has given it. A wait on
        the workflow's own state: it issues no command."""
        await workflow.wait_condition(
            lambda: self._session is not None or self._session_refused is not None
        )
        if self._session is None:
            raise ApplicationError(
                f"the processor opened no payment: {self._session_refused}",
                type="PaymentSessionRefused",
            )
        return self._session

    @decide.validator
    def _only_a_held_deposit(self, decision: StaffDecision) -> None:
        if self._status is not PaymentStatus.HELD or self._decision is not None:
            raise ValueError(f"the deposit is {self._status.value}: there is nothing to decide")
        if "compliance" not in decision.roles:
            raise ValueError("only a compliance officer decides on a held deposit")

    @workflow.run
    async def run(self, request: DepositInput) -> MovementResult:
        self._current = workflow.patched(FEWER_ROUND_TRIPS)
        if not self._current:  # else shown once the processor has answered (the same task)
            show_movement(request.client_id, request.reference, PaymentStatus.INITIATED)
        try:
            event = await self._funds_or_decline()
        except TimeoutError:
            await self._settle(None, UnmatchedReason.DEPOSIT_EXPIRED)
            return await self._last(self._end(PaymentStatus.EXPIRED, "no payment arrived in time"))
        except BaseException as failure:
            if is_cancelled_exception(failure):
                await unstoppable(self._settle(None, UnmatchedReason.DEPOSIT_CANCELLED))
                return await unstoppable(
                    self._last(self._end(PaymentStatus.CANCELLED, "cancelled by staff"))
                )
            raise
        if event.kind not in FUNDS_ARRIVED:
            await self._settle(None, UnmatchedReason.DEPOSIT_FAILED)
            return await self._last(
                self._end(PaymentStatus.FAILED, "the processor declined the payment")
            )
        # The money has arrived: from here it is credited or returned, whatever else is asked.
        await unstoppable(self._settle(event, UnmatchedReason.SECOND_PAYMENT))
        return await unstoppable(self._last(self._receive(event)))

    def _show_movement(self) -> None:
        """The deposit's search attributes, at its status (`FEWER_ROUND_TRIPS`: once, in the
        task that asks the processor, instead of once before it and again after)."""
        request = self._request
        show_movement(request.client_id, request.reference, self._status, patch=None)

    def _since(self, patch: str) -> bool:
        """Whether the run takes the path of the change behind `patch`: always on
        `FEWER_ROUND_TRIPS`, else as `workflow.patched` says."""
        return self._current or workflow.patched(patch)

    async def _settle(self, taken: PaymentEvent | None, others: UnmatchedReason) -> None:
        """The run has settled on `taken` (or on no money): every other payment that arrived,
        now or later, is queued for finance as unmatched funds, `others` saying why."""
        self._settled = True
        self._taken = taken.event_id if taken is not None else None
        self._not_taken_because = others
        for event in list(self._events.values()):
            await self._queue_if_not_taken(event)

    async def _queue_if_not_taken(self, event: PaymentEvent) -> None:
        if event.kind not in FUNDS_ARRIVED or event.event_id == self._taken:
            return
        if event.event_id in self._queued or not self._since(QUEUE_FUNDS_NOT_TAKEN):
            return
        self._queued.add(event.event_id)
        taken = f"; the deposit took {self._taken}" if self._taken else ""
        await unstoppable(
            finish_first(
                unmatched.queue_unmatched_funds(
                    unmatched.QueueUnmatchedFunds(
                        event=event,
                        reason=self._not_taken_because,
                        payment_id=self._request.payment_id,
                        detail=f"deposit {self._request.reference}{taken}",
                    )
                )
            )
        )

    async def _last(self, steps: Awaitable[MovementResult]) -> MovementResult:
        """The deposit's last steps, then every payment it queued is stored before it ends."""
        result = await steps
        if self._queued:
            await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _funds_or_decline(self) -> PaymentEvent:
        payment = PaymentRef(payment_id=self._request.payment_id)
        try:
            if self._current:
                opening = deposit.open_payment_session.local(self._opening())
                self._session = opened = await finish_first(opening)
            elif self._since(SESSION_IN_ANSWER):
                opened = await finish_first(deposit.open_payment_session(self._opening()))
                # The update answers the request with it; the request stores it on the payment's
                # row and commits. The next step waits for that commit (a database lock the
                # request holds, no retries) and finds it stored, or stores it if the request
                # answered without it (the processor was slow).
                self._session = opened
                await finish_first(
                    deposit.record_payment_session(
                        RecordPaymentSession(payment_id=payment.payment_id, session=opened)
                    )
                )
            else:
                self._session = await finish_first(deposit.start_processor_deposit(payment))
        except ActivityError as failure:
            if self._current:
                self._show_movement()
            self._session_refused = failure_text(failure)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise
        self._status = PaymentStatus.AWAITING_FUNDS
        if self._current:
            self._show_movement()
            awaiting_since = workflow.now()
            await self._store_at_next_wake(
                RecordPaymentSession(payment_id=payment.payment_id, session=opened)
            )
            if self._processor_outcome() is None:
                await self._wait_or_ask_processor(payment, since=awaiting_since)
            return self._outcome()
        show_status(self._status)
        if self._since(ASK_PROCESSOR_WHEN_SILENT):
            await self._wait_or_ask_processor(payment)
        else:
            await workflow.wait_condition(
                lambda: self._processor_outcome() is not None, timeout=PAYMENT_WINDOW
            )
        return self._outcome()

    def _outcome(self) -> PaymentEvent:
        event = self._processor_outcome()
        if event is None:
            raise ApplicationError(
                f"deposit {self._request.reference}: no processor outcome after waiting for one",
                type="DepositOutcomeMissing",
                non_retryable=True,
            )
        return event

    async def _store_at_next_wake(self, answer: RecordPaymentSession) -> None:
        """`FEWER_ROUND_TRIPS`: the processor's answer stored on the payment at the deposit's
        next wake-up: `STORE_SESSION_AFTER` from now (the request has committed by then), its
        first question to the processor if that is sooner (the step waits for the request's
        commit), or when an outcome comes first. Money that arrived first is received by a step
        that stores it too (`_unstored`): one step."""
        wake = min(STORE_SESSION_AFTER, self._request.timers.deposit_poll_after)
        try:
            await workflow.wait_condition(
                lambda: self._processor_outcome() is not None, timeout=wake
            )
        except TimeoutError:
            pass
        outcome = self._processor_outcome()
        if outcome is not None and outcome.kind in FUNDS_ARRIVED:
            self._unstored = answer.session
            return
        await finish_first(deposit.record_payment_session.local(answer))

    def _opening(self) -> OpenPaymentSession:
        request = self._request
        return OpenPaymentSession(
            payment_id=request.payment_id,
            client_id=request.client_id,
            reference=request.reference,
            provider=request.provider,
            amount=request.amount,
        )

    async def _wait_or_ask_processor(
        self, payment: PaymentRef, since: datetime | None = None
    ) -> None:
        """Wait for the processor's outcome. While no webhook brings one, ask the processor what
        it sent `deposit_poll_after` after `since` (now if not given), then at doubling intervals
        up to `deposit_poll_every`, and once more as the payment window closes; its events keep
        their own ids, so one that also comes by webhook counts once. Raises TimeoutError if the
        window closes without."""
        timers = self._request.timers
        started = since or workflow.now()
        closes = started + PAYMENT_WINDOW
        interval = timers.deposit_poll_after
        ask_at = started + interval
        while True:
            wait = min(ask_at, closes) - workflow.now()
            if wait > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._processor_outcome() is not None, timeout=wait
                    )
                    return
                except TimeoutError:
                    pass
            await self._ask_processor(payment)
            if self._processor_outcome() is not None:
                return
            if workflow.now() >= closes:
                raise TimeoutError("no payment arrived in time")
            interval = min(interval * 2, timers.deposit_poll_every)
            ask_at = workflow.now() + interval

    async def _ask_processor(self, payment: PaymentRef) -> None:
        try:
            answer = await deposit.ask_processor_for_payment_events(payment)
        except ActivityError as failure:
            workflow.logger.warning(
                "deposit %s: asking %s what it sent failed (%s); asking again later",
                self._request.reference,
                self._request.provider,
                failure_text(failure),
            )
            return
        for event in answer.events:
            await self.payment_event(event)

    async def _receive(self, event: PaymentEvent) -> MovementResult:
        request = self._request
        payment = PaymentRef(payment_id=request.payment_id)
        local = self._since(LOCAL_DATABASE_STEPS)
        saga = Saga("deposit", request.client_id, request.reference, self._movement, local=local)
        received = PaymentReceived(
            payment_id=request.payment_id,
            event=event,
            session=self._unstored,
            in_transit=self._in_transit(saga),
        )
        fewer = local and self._since(FEWER_LOCAL_STEPS)
        if fewer:
            assessment = await finish_first(deposit.receive_deposit.local(received))
        else:
            await finish_first(deposit.record_payment_received.run(received, local=local))
            show_status(PaymentStatus.RECEIVED)
            assessment = await finish_first(deposit.assess_deposit.run(payment, local=local))
        if assessment.flags:
            self._status = PaymentStatus.HELD
            show_status(self._status)
            if self._since(HELD_DECISION_SLA):
                sla = request.timers.held_decision_sla
                flags = ", ".join(flag.value for flag in assessment.flags)
                await wait_or_escalate(
                    lambda: self._decision is not None,
                    sla,
                    lambda: escalate(
                        self._movement,
                        request.client_id,
                        request.reference,
                        FinanceCaseKind.DECISION_OVERDUE,
                        assessment.amount,
                        f"deposit held ({flags}) for more than {hours(sla)} without a "
                        "compliance decision: compliance must decide",
                    ),
                )
            else:
                await workflow.wait_condition(lambda: self._decision is not None)
            await workflow.wait_condition(workflow.all_handlers_finished)
            decision = self._decision
            if decision is None:
                raise ApplicationError(
                    f"deposit {request.reference}: no decision after waiting for one",
                    type="DepositDecisionMissing",
                    non_retryable=True,
                )
            if not decision.approve:
                await finish_first(deposit.return_payment_to_payer(payment))
                return await self._end(PaymentStatus.REJECTED, decision.reason)

        self._status = PaymentStatus.CREDITING
        show_status(self._status)
        try:
            where = await self._credit(
                saga, assessment.amount, told=fewer, in_transit=assessment.in_transit
            )
        except _TakeBackFailed as failed:
            return failed.result
        credited = assessment.amount
        if not fewer:  # else told with the last booking
            notice = self._credited_notice(credited, where)
            await notify(notice.client_id, notice.key, notice.kind, notice.message, local=local)
        reason = None if where == "as asked" else where
        return MovementResult(status=PaymentStatus.COMPLETED, credited=credited, reason=reason)

    def _credited_notice(self, credited: Money, where: str) -> Notify:
        reference = self._request.reference
        return Notify(
            client_id=self._request.client_id,
            key=f"{reference}:notice",
            kind="deposit_completed",
            message=f"{credited.amount} {credited.currency} from {reference} are credited {where}",
        )

    def _in_transit(self, saga: Saga) -> InTransit | None:
        """`FEWER_ROUND_TRIPS`: a deposit bound for MT5 is booked in transit by the step that
        checks it (when they pass, in the account's currency)."""
        destination = self._request.destination
        if not self._current or destination.mt5 is None:
            return None
        return InTransit(
            key=saga.key(TRANSIT), client_id=saga.client_id, currency=destination.currency
        )

    async def _credit(self, saga: Saga, amount: Money, *, told: bool, in_transit: bool) -> str:
        """Credit the destination; returns where the money went, in the client's words.
        `saga.local`: the bookings run as local activities (`LOCAL_DATABASE_STEPS`); `told`: the
        last booking tells the client (`FEWER_LOCAL_STEPS`); `in_transit`: the checks' step has
        booked it in transit (`FEWER_ROUND_TRIPS`)."""
        local = saga.local
        destination = self._request.destination

        def notice(where: str) -> Notify | None:
            return self._credited_notice(amount, where) if told else None

        if destination.mt5 is None or amount.currency != destination.currency:
            where = "as asked" if destination.mt5 is None else "to the wallet (other currency)"
            await book(
                accept_into_wallet(saga.key("wallet"), saga.client, amount),
                MarkMovement(
                    movement=self._movement, status=PaymentStatus.COMPLETED, credited=amount
                ),
                local=local,
                notice=notice(where),
            )
            return where
        if not in_transit:
            await book(accept_in_transit(saga.key(TRANSIT), saga.client, amount), local=local)
        try:
            await saga.give_to(destination, amount, CREDIT, notice("as asked"))
            return "as asked"
        except Refused as refused:
            # Compensation: MT5 will not take it, but it is the client's money all the same. An
            # attempt may have landed before the refusal: MT5 gives it back first, or the client
            # would have it twice.
            if self._since(TAKE_BACK_BEFORE_WALLET):
                # The credit's own compensation (registered by `give_to`): MT5 gives back what
                # it holds of it. One refused for good (a history from before
                # `COMPENSATIONS_RUN_TO_THEIR_END` fails the workflow here instead) leaves the
                # money in the hold, for finance.
                await saga.compensate()
                if saga.not_undone:
                    raise _TakeBackFailed(
                        await self._take_back_failed(saga, amount, refused.reason)
                    ) from refused
            where = f"to the wallet: MT5 refused the credit ({refused.reason})"
            await book(
                release_hold(saga.key("to-wallet"), saga.client, amount),
                MarkMovement(
                    movement=self._movement,
                    status=PaymentStatus.COMPLETED,
                    credited=amount,
                    reason=where,
                ),
                notice=notice(where),
            )
            return where

    async def _take_back_failed(self, saga: Saga, amount: Money, refusal: str) -> MovementResult:
        """MT5 refused the credit and taking back what it may hold failed for good: the money
        stays in the client's hold (neither wallet nor MT5 is credited by us), a case for
        finance says what is left to do, and the deposit ends needs_attention."""
        transit = saga.key(TRANSIT)
        saga.not_undone = [
            step.model_copy(update={"what": f"{step.what}, then credit the hold {transit}"})
            for step in saga.not_undone
        ]
        reason = f"MT5 refused the credit ({refusal})"
        errors = "; ".join(step.error or "" for step in saga.not_undone)
        return await saga.needs_attention(
            reason,
            f"{reason}; taking it back from MT5 failed: {errors}",
            f"{self._request.reference}: we received {amount.amount} {amount.currency} but could "
            "not credit it yet. "
            "Our finance team has been asked to put it right and will contact you.",
        )

    def _processor_outcome(self) -> PaymentEvent | None:
        """The event that settles the payment: money arrived, else a decline. A late duplicate
        or an out-of-order decline after a success changes nothing."""
        arrived = [e for e in self._events.values() if e.kind in FUNDS_ARRIVED]
        if arrived:
            return arrived[0]
        declined = [e for e in self._events.values() if e.kind is PaymentEventKind.PAYMENT_FAILED]
        return declined[0] if declined else None

    async def _end(self, status: PaymentStatus, reason: str) -> MovementResult:
        await mark(self._movement, status, reason=reason)
        await notify(
            self._request.client_id,
            f"{self._request.reference}:notice",
            f"deposit_{status.value}",
            f"{self._request.reference}: {reason}",
        )
        return MovementResult(status=status, reason=reason)
