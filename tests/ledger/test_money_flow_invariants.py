"""The books as the deposit, withdrawal and transfer sagas drive them, in the domain alone.

A hypothesis state machine replays the sagas of workflows/deposit.py, withdrawal.py and
transfer.py step by step, with the same entry keys, MT5 comments and compensations, against an
in-memory ledger that books each idempotency key once (as db.ledger.post_entry does) and a
simulated MT5 server that applies each balance change once per comment (as apply_balance_once
does). Refusals, breaks and at-least-once retries are drawn at random. A break is a staff
cancellation (it takes effect once the running step has finished, and not at all inside
`unstoppable` steps) or a fault (a step failing for good without a business reason); both are
injected at every point of every saga. After every step: every entry balances, no wallet or hold
is in debit, nothing is left in flight, each MT5 balance is its mirror account's, the processors'
clearing balances and the clients' money add up; a movement that did not complete leaves no
trace, one whose steps ran twice ends exactly as if each had run once, and a break where the
saga may no longer be broken off (after the final booking, in the payout phase, once a deposit's
money has arrived) leaves the books as if it had not happened.

One break is left out of the state machine (see KNOWN_GAPS): a capture booking that fails for
good after the processor paid escalates to operations with the money in the hold, which the
machine's "nothing in flight" check would refuse; a test at the bottom pins that nothing is given
back then.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import BackOfficeError, Conflict
from domain.funds import (
    accept_in_transit,
    accept_into_wallet,
    into_mt5,
    mt5_mirror,
    out_of_mt5,
    psp_clearing,
    receive_payment,
    return_payment,
)
from domain.ledger import JournalEntry, reversal, totals_by_currency
from domain.money import Money
from domain.money_flows import Mt5AccountRef, Pocket, mt5_comment
from domain.payments import PaymentStatus
from domain.wallets import (
    FxRate,
    available,
    capture_hold,
    convert,
    hold_account,
    negated,
    place_hold,
    release_hold,
    wallet,
)
from tests.ledger.test_wallet_invariants import EURUSD

T = TypeVar("T")

SERVER = "live"
SPREAD_BPS = 30
PROVIDERS = ("cardco", "bankco")
CURRENCIES = ("USD", "EUR", "JPY")
CLIENTS = ("c0", "c1", "c2")  # as the sagas name them: str(client_id)
MT5_ACCOUNTS = ("USD", "EUR", "JPY", "USD")  # each client's MT5 accounts, by index: currency
# The stored rates: EUR/USD only, so a conversion to or from JPY is refused for want of a rate.
RATES: dict[frozenset[str], FxRate] = {frozenset({"EUR", "USD"}): EURUSD}


def login(client: str, index: int) -> int:
    return 7_000_000 + 10 * CLIENTS.index(client) + index


def pocket(client: str, choice: str | int) -> Pocket:
    """A currency names the client's wallet in it; a number one of its MT5 accounts."""
    if isinstance(choice, str):
        return Pocket(currency=choice)
    return Pocket(
        currency=MT5_ACCOUNTS[choice],
        mt5=Mt5AccountRef(server=SERVER, login=login(client, choice)),
    )


# -- the world the sagas act on -----------------------------------------------------------------


class Refused(Exception):
    """A business outcome (insufficient funds, a rejection, MT5 or a processor saying no)."""

    def __init__(self, reason: str, status: PaymentStatus = PaymentStatus.REJECTED) -> None:
        super().__init__(reason)
        self.status = status


class Broken(Exception):
    """The saga broken off at a point (see `Break`)."""


class Cancelled(Broken):
    """Staff cancelled the workflow: asyncio.CancelledError once the running step finished."""


class Fault(Broken):
    """A step failed for good without a business reason (a non-retryable error that is not a
    refusal, a bug): Saga.run compensates, marks the movement failed and fails the workflow."""


CANCEL, FAULT = "cancel", "fault"


@dataclass(frozen=True)
class Break:
    """Where a saga is broken off, and how: `kind` CANCEL or FAULT, `at` a named point."""

    kind: str
    at: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.at}"


@dataclass(frozen=True)
class Outcome:
    """How a saga ends: the movement's status as the workflow leaves it, what reached the
    client, and whether the workflow itself failed (or ended cancelled) for operations."""

    status: PaymentStatus
    credited: Money | None = None
    escalated: bool = False
    # the points the saga went through, where it could have been broken off
    passed: tuple[str, ...] = field(default=(), compare=False)


class Books:
    """The ledger as db.ledger keeps it: an append-only journal, one entry per key."""

    def __init__(self) -> None:
        self.journal: list[JournalEntry] = []
        self.by_key: dict[str, JournalEntry] = {}
        self.recipes: dict[str, Callable[[], JournalEntry]] = {}
        self.reversed: set[str] = set()
        self.totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)

    def post(self, entry: JournalEntry) -> bool:
        """Book `entry`; True if booked now, False if the same entry was booked already."""
        booked = self.by_key.get(entry.idempotency_key)
        if booked is not None:
            if _postings(booked) != _postings(entry):
                raise Conflict(f"idempotency key {entry.idempotency_key!r} used for other postings")
            return False
        # every entry balances in each currency; a reversal undoes a booked entry, once
        assert all(total == 0 for total in totals_by_currency(entry.postings).values()), entry
        if entry.reverses is not None:
            assert entry.reverses in self.by_key, f"{entry.idempotency_key} reverses nothing"
            assert entry.reverses not in self.reversed, f"{entry.reverses} reversed twice"
            self.reversed.add(entry.reverses)
        self.journal.append(entry)
        self.by_key[entry.idempotency_key] = entry
        for posting in entry.postings:
            self.totals[(posting.account, posting.amount.currency)] += posting.amount.amount
            assert_not_in_debit(
                posting.account, self.totals[(posting.account, posting.amount.currency)]
            )
        return True

    def book(self, recipe: Callable[[], JournalEntry]) -> JournalEntry:
        """Build the entry and book it, keeping how it was built so it can be replayed."""
        entry = recipe()
        if self.post(entry):
            self.recipes[entry.idempotency_key] = recipe
        return self.by_key[entry.idempotency_key]

    def booked(self, key: str) -> JournalEntry | None:
        return self.by_key.get(key)

    def balance(self, account: str, currency: str) -> Decimal:
        return self.totals.get((account, currency), Decimal(0))

    def fork(self) -> Books:
        twin = Books()
        twin.journal, twin.by_key = list(self.journal), dict(self.by_key)
        twin.recipes, twin.reversed = dict(self.recipes), set(self.reversed)
        twin.totals = defaultdict(Decimal, self.totals)
        return twin

    def reverse_if_booked(self, key: str, reason: str) -> None:
        """activities/ledger_steps.py reverse_entry_if_booked."""
        original = self.booked(key)
        if original is not None:
            self.book(lambda: reversal(original, f"{key}:reversal", reason))


def _postings(entry: JournalEntry) -> Counter[tuple[str, int, str]]:
    return Counter(
        (p.account, p.amount.to_minor_units(), p.amount.currency) for p in entry.postings
    )


def assert_not_in_debit(account: str, balance: Decimal) -> None:
    if account.startswith(("wallet:", "hold:")):
        assert balance <= 0, f"{account} is in debit: {balance}"


@dataclass
class Mt5Account:
    client: str
    currency: str
    balance: Decimal = Decimal(0)


class Mt5:
    """An MT5 server without open positions (free margin = balance); a balance change is
    applied once per comment, the comment being its key."""

    def __init__(self) -> None:
        self.accounts = {
            login(client, index): Mt5Account(client, currency)
            for client in CLIENTS
            for index, currency in enumerate(MT5_ACCOUNTS)
        }
        self.deals: dict[tuple[int, str], Decimal] = {}

    def fork(self) -> Mt5:
        twin = Mt5()
        for number, account in self.accounts.items():
            twin.accounts[number].balance = account.balance
        twin.deals = dict(self.deals)
        return twin

    def free_margin(self, account: int) -> Decimal:
        return self.accounts[account].balance

    def apply_once(self, account: int, amount: Decimal, comment: str, check_margin: bool) -> None:
        if (account, comment) in self.deals:
            return
        if check_margin and self.accounts[account].balance + amount < 0:
            raise Refused("10019 No money")
        self.accounts[account].balance += amount
        self.deals[(account, comment)] = amount

    def reverse_if_applied(self, account: int, comment: str, back: str) -> None:
        """activities/mt5_funds.py mt5_reverse_if_applied: the deal `comment` undone by one
        commented `back`, whatever the margin, if MT5 holds it at all."""
        applied = self.deals.get((account, comment))
        if applied is not None:
            self.apply_once(account, -applied, back, check_margin=False)


@dataclass
class World:
    books: Books = field(default_factory=Books)
    mt5: Mt5 = field(default_factory=Mt5)
    # what the processors collected, sent back and paid out, per (provider, currency)
    received: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    returned: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    paid_out: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    movements: int = 0

    def fork(self) -> World:
        return World(
            books=self.books.fork(),
            mt5=self.mt5.fork(),
            received=defaultdict(Decimal, self.received),
            returned=defaultdict(Decimal, self.returned),
            paid_out=defaultdict(Decimal, self.paid_out),
            movements=self.movements,
        )

    def reference(self, prefix: str) -> str:
        self.movements += 1
        return f"{prefix}{self.movements:020X}"

    def client_money(self, client: str, currency: str) -> Decimal:
        """Wallet + hold + MT5 accounts: all the broker owes the client in `currency`."""
        accounts = self.mt5.accounts.values()
        on_mt5 = sum(
            (a.balance for a in accounts if (a.client, a.currency) == (client, currency)),
            Decimal(0),
        )
        in_books = self.books.balance(wallet(client, currency), currency) + self.books.balance(
            hold_account(client, currency), currency
        )
        return on_mt5 - in_books

    def snapshot(self) -> tuple[dict[tuple[str, str], Decimal], dict[int, Decimal]]:
        ledger = {k: v for k, v in self.books.totals.items() if v}
        return ledger, {n: a.balance for n, a in self.mt5.accounts.items()}


def check_books(world: World) -> None:
    """What must hold whenever no saga is in flight."""
    books = world.books
    # the whole ledger balances in each currency (each entry did when booked)
    per_currency: dict[str, Decimal] = defaultdict(Decimal)
    for (account, currency), value in books.totals.items():
        per_currency[currency] += value
        assert_not_in_debit(account, value)
        # nothing in flight: every hold and the incoming suspense are back to zero
        if account.startswith(("hold:", "suspense:incoming:")):
            assert value == 0, f"{account} still holds {value} with no saga running"
    assert all(total == 0 for total in per_currency.values()), per_currency
    # each key booked once
    assert len(books.journal) == len(books.by_key)
    # MT5 holds exactly what the books say BrokerFlow put there
    for number, on_mt5 in world.mt5.accounts.items():
        mirror = books.balance(mt5_mirror(SERVER, number, on_mt5.currency), on_mt5.currency)
        assert on_mt5.balance == -mirror, f"MT5 {number} has {on_mt5.balance}, books {-mirror}"
    # processors hold what came in, less what went back and what was paid out
    for provider in PROVIDERS:
        for currency in CURRENCIES:
            key = (provider, currency)
            expected = world.received[key] - world.returned[key] - world.paid_out[key]
            assert books.balance(psp_clearing(provider, currency), currency) == expected, key


# -- the sagas, step for step as in workflows/ --------------------------------------------------


class Saga:
    """workflows/funds.py Saga against the model: each step is an activity, run twice when
    `retried` (the first answer lost), and `fault` breaks the saga off at one of its points."""

    def __init__(
        self,
        world: World,
        client: str,
        reference: str,
        *,
        retried: bool = False,
        fault: Break | None = None,
        mt5_refuses_credit: bool = False,
    ) -> None:
        self.world = world
        self.books = world.books
        self.mt5 = world.mt5
        self.client = client
        self.reference = reference
        self.retried = retried
        self.fault = fault
        self.mt5_refuses_credit = mt5_refuses_credit
        self._undo: list[Callable[[], None]] = []
        self._unstoppable = 0
        # Set once the movement's last entry is booked: nothing may be undone after that.
        self.finished = False
        self.delivered: Money | None = None
        self.passed: list[str] = []

    def outcome(
        self, status: PaymentStatus, credited: Money | None = None, escalated: bool = False
    ) -> Outcome:
        return Outcome(status, credited, escalated, passed=tuple(self.passed))

    def key(self, step: str) -> str:
        return f"{self.reference}:{step}"

    def at(self, point: str) -> None:
        """A cancellation asked for while the step before `point` ran takes effect here, once
        that step has finished (finish_first), unless the step is `unstoppable`; a fault here
        is the next step failing for good."""
        self.passed.append(point)
        if self.fault is None or self.fault.at != point:
            return
        if self.fault.kind == FAULT:
            raise Fault(point)
        if not self._unstoppable:
            raise Cancelled(point)
        # "cancellation refused: these steps must finish"

    @contextmanager
    def unstoppable(self) -> Iterator[None]:
        """workflows/funds.py unstoppable: steps that run to their end whatever is cancelled."""
        self._unstoppable += 1
        try:
            yield
        finally:
            self._unstoppable -= 1

    def activity(self, step: Callable[[], T]) -> T:
        """At least once: a retried step runs again after it took effect."""
        result = step()
        return step() if self.retried else result

    def refusable(self, step: Callable[[], T]) -> T:
        try:
            return self.activity(step)
        except BackOfficeError as error:  # a refusal of the books is final, not retried
            raise Refused(error.detail) from error

    def book(self, recipe: Callable[[], JournalEntry]) -> JournalEntry:
        return self.activity(lambda: self.books.book(recipe))

    def on_failure(self, compensation: Callable[[], None]) -> None:
        self._undo.append(lambda: self.activity(compensation))

    def undo_entry(self, step: str) -> None:
        key = self.key(step)
        self.on_failure(lambda: self.books.reverse_if_booked(key, "movement did not complete"))

    def undo_balance_change(self, account: int, comment: str, purpose: str) -> None:
        back = mt5_comment(purpose, self.reference)
        self.on_failure(lambda: self.mt5.reverse_if_applied(account, comment, back))

    def compensate(self) -> None:
        """Newest first, to their end (they are `unstoppable` in the workflow)."""
        for step in reversed(self._undo):
            step()

    def complete(self, delivered: Money) -> None:
        """The last entry is booked: from here on the movement is done."""
        self.finished = True
        self._undo.clear()
        self.delivered = delivered

    def run(self, body: Callable[[], Money]) -> Outcome:
        """Saga.run: a refusal compensates and ends with its status; a break compensates and
        ends cancelled (a cancellation) or failed, failing the workflow (a fault); once the
        saga is complete a break undoes nothing (the workflow fails or ends cancelled)."""
        try:
            return self.outcome(PaymentStatus.COMPLETED, body())
        except Refused as refused:
            self.compensate()
            return self.outcome(refused.status)
        except Broken as failure:
            if self.finished:
                return self.outcome(PaymentStatus.COMPLETED, self.delivered, escalated=True)
            self.compensate()
            if isinstance(failure, Cancelled):
                return self.outcome(PaymentStatus.CANCELLED)
            return self.outcome(PaymentStatus.FAILED, escalated=True)

    def take_from(self, source: Pocket, amount: Money, purpose: str) -> None:
        assert source.currency == amount.currency
        client, currency = self.client, amount.currency
        if source.mt5 is None:
            key = self.key("hold")
            self.undo_entry("hold")

            def reserve_from_wallet() -> None:
                if self.books.booked(key) is None:
                    funds = available(
                        Money(
                            amount=self.books.balance(wallet(client, currency), currency),
                            currency=currency,
                        )
                    )
                    self.books.book(lambda: place_hold(key, client, amount, funds))

            self.refusable(reserve_from_wallet)
            return
        account = source.mt5.login
        if self.mt5.free_margin(account) < amount.amount:
            raise Refused(f"free margin on MT5 account {account}")
        debit = mt5_comment(purpose, self.reference)
        self.undo_balance_change(account, debit, "ret")
        self.activity(
            lambda: self.mt5.apply_once(account, -amount.amount, debit, check_margin=True)
        )
        self.at("mt5-debited")
        self.undo_entry("from-mt5")
        self.book(lambda: out_of_mt5(self.key("from-mt5"), client, SERVER, account, amount))

    def convert(self, amount: Money, into: str) -> Money:
        key, client = self.key("fx"), self.client
        self.undo_entry("fx")

        def convert_held() -> Money:
            entry = self.books.booked(key)
            if entry is None:
                rate = RATES.get(frozenset({amount.currency, into}))
                if rate is None:
                    raise Refused(f"no FX rate for {amount.currency}/{into} is stored")
                entry = self.books.book(
                    lambda: convert(
                        key, client, amount, into, rate, SPREAD_BPS, pocket=hold_account
                    )[0]
                )
            [received] = [
                p.amount for p in entry.postings if p.account == hold_account(client, into)
            ]
            return negated(received)

        return self.refusable(convert_held)

    def give_to(self, destination: Pocket, amount: Money, purpose: str) -> Money:
        assert destination.currency == amount.currency
        client = self.client
        if destination.mt5 is None:
            with self.unstoppable():  # the last entry: booked whatever cancellation comes
                self.book(lambda: release_hold(self.key("to-wallet"), client, amount))
                self.at("booked")  # a cancellation asked for while the last entry was booked
            self.complete(amount)
            return amount
        account = destination.mt5.login
        credit = mt5_comment(purpose, self.reference)
        self.undo_balance_change(account, credit, "rev")

        def credit_balance() -> None:
            if self.mt5_refuses_credit:
                raise Refused(f"MT5 refused the credit to {account}")
            self.mt5.apply_once(account, amount.amount, credit, check_margin=False)

        self.activity(credit_balance)
        self.at("mt5-credited")
        with self.unstoppable():  # the last entry: booked whatever cancellation comes
            self.book(lambda: into_mt5(self.key("to-mt5"), client, SERVER, account, amount))
            self.at("booked")  # a cancellation asked for while the last entry was booked
        self.complete(amount)
        return amount


DEPOSIT_OUTCOMES = ("declined", "compliance-rejects", "credited", "mt5-refuses")
WITHDRAWAL_OUTCOMES = ("paid", "finance-rejects", "payout-refused", "payout-failed")


def deposit(
    world: World,
    client: str,
    provider: str,
    amount: Money,
    destination: Pocket,
    outcome: str,
    *,
    retried: bool = False,
    fault: Break | None = None,
) -> Outcome:
    """workflows/deposit.py: until the money arrives a cancellation ends the deposit with
    nothing booked; from then on the rest is `unstoppable` (no saga compensates a fault there:
    the workflow fails with the money where it is, for operations)."""
    saga = Saga(
        world,
        client,
        world.reference("BF"),
        retried=retried,
        fault=fault,
        mt5_refuses_credit=outcome == "mt5-refuses",
    )
    try:
        saga.at("awaiting-funds")  # while the client pays
    except Cancelled:
        return saga.outcome(PaymentStatus.CANCELLED)
    if outcome == "declined":
        return saga.outcome(PaymentStatus.FAILED)
    with saga.unstoppable():  # the money has arrived: credited or returned, whatever is asked
        saga.book(lambda: receive_payment(saga.key("received"), provider, amount))
        world.received[(provider, amount.currency)] += amount.amount
        saga.at("received")  # during the checks, or while compliance decides
        if outcome == "compliance-rejects":
            saga.book(lambda: return_payment(saga.key("returned"), provider, amount))
            world.returned[(provider, amount.currency)] += amount.amount
            return saga.outcome(PaymentStatus.REJECTED)
        if destination.mt5 is None or amount.currency != destination.currency:
            saga.book(lambda: accept_into_wallet(saga.key("wallet"), client, amount))
        else:
            saga.book(lambda: accept_in_transit(saga.key("transit"), client, amount))
            saga.at("in-transit")
            try:
                saga.give_to(destination, amount, "dep")
            except Refused:  # MT5 will not take it: it is the client's money all the same
                saga.book(lambda: release_hold(saga.key("to-wallet"), client, amount))
        saga.at("credited")  # while the client is notified
    return saga.outcome(PaymentStatus.COMPLETED, amount)


def withdrawal(
    world: World,
    client: str,
    provider: str,
    amount: Money,
    source: Pocket,
    outcome: str,
    *,
    retried: bool = False,
    fault: Break | None = None,
) -> Outcome:
    """workflows/withdrawal.py."""
    saga = Saga(world, client, world.reference("BF"), retried=retried, fault=fault)

    def withdraw() -> Money:
        saga.take_from(source, amount, "wd")
        saga.at("taken")  # during the checks, or while finance decides
        if outcome == "finance-rejects":
            raise Refused("rejected by finance")
        with saga.unstoppable():  # the payout phase: a cancellation is refused
            saga.at("approved")  # while the payout is sent
            if outcome == "payout-refused":
                raise Refused("the processor refused the payout")
            if outcome == "paid":
                world.paid_out[(provider, amount.currency)] += amount.amount  # it pays
            saga.at("payout-sent")  # while the processor's verdict is awaited
            if outcome == "payout-failed":
                raise Refused("the processor could not pay it out", PaymentStatus.FAILED)
            saga.complete(amount)  # the processor paid it: nothing is given back from here
            saga.at("settled")  # while the capture is booked
            saga.book(lambda: capture_hold(saga.key("paid-out"), client, provider, amount))
            saga.at("paid-out")  # while the client is notified
        return amount

    return saga.run(withdraw)


def transfer(
    world: World,
    client: str,
    amount: Money,
    source: Pocket,
    destination: Pocket,
    *,
    retried: bool = False,
    fault: Break | None = None,
    mt5_refuses_credit: bool = False,
) -> Outcome:
    """workflows/transfer.py."""
    saga = Saga(
        world,
        client,
        world.reference("TR"),
        retried=retried,
        fault=fault,
        mt5_refuses_credit=mt5_refuses_credit,
    )

    def move() -> Money:
        saga.take_from(source, amount, "tro")
        saga.at("taken")
        moved = amount
        if destination.currency != amount.currency:
            moved = saga.convert(amount, destination.currency)
            saga.at("converted")
        credited = saga.give_to(destination, moved, "tri")
        saga.at("given")  # while the client is notified
        return credited

    return saga.run(move)


# -- where the sagas are broken off -------------------------------------------------------------

KINDS = (CANCEL, FAULT)
# Where each saga can be broken off, and how. A deposit is only ever cancelled (until the money
# arrives that ends it, after that nothing); nothing fails while a withdrawal waits for the
# processor's verdict, nor between a transfer's last booking and its completion, but a
# cancellation asked for meanwhile takes effect there.
DEPOSIT_BREAKS = tuple(
    Break(CANCEL, at)
    for at in ("awaiting-funds", "received", "in-transit", "mt5-credited", "booked", "credited")
)
WITHDRAWAL_BREAKS = (
    *(
        Break(kind, at)
        for kind in KINDS
        for at in ("mt5-debited", "taken", "approved", "settled", "paid-out")
    ),
    Break(CANCEL, "payout-sent"),
)
TRANSFER_BREAKS = (
    *(
        Break(kind, at)
        for kind in KINDS
        for at in ("mt5-debited", "taken", "converted", "mt5-credited", "given")
    ),
    Break(CANCEL, "booked"),
)
# Breaks that may not change a thing: the books end as if the saga had not been broken off.
CANNOT_BREAK_OFF = {
    "deposit": frozenset(b for b in DEPOSIT_BREAKS if b.at != "awaiting-funds"),
    "withdrawal": frozenset(
        {
            *(Break(CANCEL, at) for at in ("approved", "payout-sent", "settled", "paid-out")),
            Break(FAULT, "paid-out"),
        }
    ),
    "transfer": frozenset({Break(CANCEL, "booked"), Break(CANCEL, "given"), Break(FAULT, "given")}),
}
# Breaks left out of the state machine (pinned by a test at the bottom instead):
KNOWN_GAPS = frozenset(
    {
        # a withdrawal's capture booking failing for good after the processor paid it leaves
        # the money in the hold and the workflow failed, for operations: by design nothing is
        # given back, but the books then have money in flight, which the machine's checks refuse
        Break(FAULT, "settled"),
    }
)


# -- the state machine --------------------------------------------------------------------------

clients = st.sampled_from(CLIENTS)
providers = st.sampled_from(PROVIDERS)
POCKETS: tuple[str | int, ...] = (*CURRENCIES, *range(len(MT5_ACCOUNTS)))
pockets = st.sampled_from(POCKETS)
minor_units = st.integers(min_value=1, max_value=1_000_000)
rarely = st.integers(0, 3).map(lambda n: n == 0)
deposit_outcomes = st.just("credited") | st.sampled_from(DEPOSIT_OUTCOMES)
withdrawal_outcomes = st.just("paid") | st.sampled_from(WITHDRAWAL_OUTCOMES)

SagaRun = Callable[[World, bool, Break | None], Outcome]


class MoneyFlows(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)

    def play(
        self, data: st.DataObject, saga: SagaRun, kind: str, breaks: tuple[Break, ...]
    ) -> Outcome:
        """Run a saga once unbroken on a fork of the world, then half the time break it off at
        a point that run went through (none of the KNOWN GAPS), and its steps twice when
        `retried` (at least once, as Temporal does): a retried saga must end exactly as a run
        of each step once does, and a break that may not break it off must leave the books as
        the unbroken run does."""
        calm_world = self.world.fork()
        calm = saga(calm_world, False, None)
        reached = [b for b in breaks if b.at in calm.passed and b not in KNOWN_GAPS]
        fault = data.draw(st.none() | st.sampled_from(reached), label="fault") if reached else None
        retried = data.draw(st.booleans(), label="retried")
        if fault is None and not retried:
            result, self.world = calm, calm_world  # that run was the run
        elif not retried:
            result = saga(self.world, False, fault)
        else:
            twin = self.world.fork()
            once = saga(twin, False, fault)
            result = saga(self.world, True, fault)
            assert result == once, "a retried step changed the outcome"
            assert self.world.books.journal == twin.books.journal, "a retried step booked more"
            assert self.world.snapshot() == twin.snapshot()
        if fault in CANNOT_BREAK_OFF[kind]:
            assert (result.status, result.credited) == (calm.status, calm.credited), fault
            assert self.world.books.journal == calm_world.books.journal, f"{fault} undid steps"
            assert self.world.snapshot() == calm_world.snapshot()
            assert self.world.paid_out == calm_world.paid_out
        if result.status is PaymentStatus.CANCELLED:
            assert fault is not None and fault.kind == CANCEL, result
        if result.escalated:  # only a fault, or a cancellation once the saga is complete
            assert fault is not None, result
            assert fault.kind == FAULT or result.status is PaymentStatus.COMPLETED, result
        if fault is not None:
            event(f"{kind} {fault}: {result.status.value}")
        return result

    def holds(self, client: str, choice: str | int) -> Money:
        source = pocket(client, choice)
        if source.mt5 is None:
            held = -self.world.books.balance(wallet(client, source.currency), source.currency)
        else:
            held = self.world.mt5.accounts[source.mt5.login].balance
        return Money(amount=held, currency=source.currency)

    def funded(self) -> list[tuple[str, str | int]]:
        return [
            (client, choice)
            for client in CLIENTS
            for choice in POCKETS
            if self.holds(client, choice).amount > 0
        ]

    def draw_source(self, data: st.DataObject) -> tuple[str, Pocket, Money]:
        """A client's pocket, mostly one with money in it, and a share of what it holds (at
        least one minor unit; above 100% is more than there is)."""
        anywhere = st.tuples(clients, pockets)
        mostly = st.sampled_from(self.funded())
        client, choice = data.draw(st.one_of(mostly, mostly, mostly, anywhere), label="source")
        held = self.holds(client, choice)
        share = data.draw(st.integers(min_value=1, max_value=120), label="percent")
        units = max(1, held.to_minor_units() * share // 100)
        return client, pocket(client, choice), Money.from_minor_units(units, held.currency)

    @rule(
        client=clients,
        provider=providers,
        to=pockets,
        units=minor_units,
        other_currency=rarely,
        outcome=deposit_outcomes,
        data=st.data(),
    )
    def deposit(
        self,
        client: str,
        provider: str,
        to: str | int,
        units: int,
        other_currency: bool,
        outcome: str,
        data: st.DataObject,
    ) -> None:
        """Paid in the destination's currency, or rarely in another (then into the wallet)."""
        destination = pocket(client, to)
        currency = destination.currency
        if other_currency:
            currency = CURRENCIES[(CURRENCIES.index(currency) + 1) % len(CURRENCIES)]
        amount = Money.from_minor_units(units, currency)
        before = self.world.snapshot()

        def run(world: World, again: bool, broken: Break | None) -> Outcome:
            return deposit(
                world, client, provider, amount, destination, outcome, retried=again, fault=broken
            )

        result = self.play(data, run, "deposit", DEPOSIT_BREAKS)
        event(f"deposit {outcome}: {result.status.value}")
        if result.status is PaymentStatus.COMPLETED:
            self.expected[(client, currency)] += amount.amount
        else:
            assert self.world.snapshot() == before, "a deposit that failed left traces"

    @precondition(lambda self: self.funded())  # money out once some came in
    @rule(
        provider=providers,
        outcome=withdrawal_outcomes,
        data=st.data(),
    )
    def withdrawal(
        self,
        provider: str,
        outcome: str,
        data: st.DataObject,
    ) -> None:
        client, take, amount = self.draw_source(data)
        before = self.world.snapshot()

        def run(world: World, again: bool, broken: Break | None) -> Outcome:
            return withdrawal(
                world, client, provider, amount, take, outcome, retried=again, fault=broken
            )

        result = self.play(data, run, "withdrawal", WITHDRAWAL_BREAKS)
        event(f"withdrawal from {'MT5' if take.mt5 else 'wallet'}: {result.status.value}")
        if result.status is PaymentStatus.COMPLETED:
            assert result.credited == amount
            self.expected[(client, amount.currency)] -= amount.amount
        else:
            assert self.world.snapshot() == before, "the compensations did not undo it all"

    @precondition(lambda self: self.funded())
    @rule(
        mt5_refuses_credit=rarely,
        data=st.data(),
    )
    def transfer(
        self,
        mt5_refuses_credit: bool,
        data: st.DataObject,
    ) -> None:
        """Mostly to a pocket the money can reach (same currency, or a stored rate)."""
        client, take, amount = self.draw_source(data)
        reachable = st.sampled_from(
            [
                choice
                for choice in POCKETS
                if pocket(client, choice).currency == take.currency
                or frozenset({take.currency, pocket(client, choice).currency}) in RATES
            ]
        )
        destination = data.draw(st.one_of(reachable, reachable, reachable, pockets), label="to")
        give = pocket(client, destination)
        before = self.world.snapshot()

        def run(world: World, again: bool, broken: Break | None) -> Outcome:
            return transfer(
                world,
                client,
                amount,
                take,
                give,
                retried=again,
                fault=broken,
                mt5_refuses_credit=mt5_refuses_credit,
            )

        result = self.play(data, run, "transfer", TRANSFER_BREAKS)
        kind = f"{'MT5' if take.mt5 else 'wallet'} to {'MT5' if give.mt5 else 'wallet'}"
        fx = f", {take.currency} to {give.currency}" if take.currency != give.currency else ""
        event(f"transfer {kind}{fx}: {result.status.value}")
        if result.status is PaymentStatus.COMPLETED:
            credited = result.credited
            assert credited is not None and credited.currency == give.currency
            assert credited.amount > 0
            self.expected[(client, amount.currency)] -= amount.amount
            self.expected[(client, credited.currency)] += credited.amount
        else:
            assert self.world.snapshot() == before, "the compensations did not undo it all"

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """A step retried long after: booking the same key again changes nothing."""
        books = self.world.books
        if not books.recipes:
            return
        key = data.draw(st.sampled_from(sorted(books.recipes)), label="key")
        before = self.world.snapshot()
        assert books.post(books.recipes[key]()) is False
        assert self.world.snapshot() == before

    @invariant()
    def books_hold_together(self) -> None:
        check_books(self.world)

    @invariant()
    def clients_have_what_they_were_given(self) -> None:
        for client in CLIENTS:
            for currency in CURRENCIES:
                assert (
                    self.world.client_money(client, currency) == self.expected[(client, currency)]
                )


MoneyFlows.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestMoneyFlows = MoneyFlows.TestCase


# -- examples -----------------------------------------------------------------------------------


def world_with(client: str, amount: Money) -> World:
    """A world where `client` has deposited `amount` into the wallet."""
    world = World()
    deposit(world, client, "cardco", amount, Pocket(currency=amount.currency), "credited")
    return world


def usd(text: str) -> Money:
    return Money(amount=Decimal(text), currency="USD")


def deals_on(world: World, client: str, index: int) -> list[str]:
    """The purposes of the balance deals MT5 holds on the client's account `index`."""
    account = login(client, index)
    return sorted(comment.split()[0] for number, comment in world.mt5.deals if number == account)


def test_a_transfer_to_a_refusing_mt5_account_converts_and_comes_back() -> None:
    world = world_with("c0", usd("100.00"))
    outcome = transfer(
        world, "c0", usd("40.00"), pocket("c0", "USD"), pocket("c0", 1), mt5_refuses_credit=True
    )
    assert outcome == Outcome(PaymentStatus.REJECTED)
    check_books(world)
    assert world.client_money("c0", "USD") == Decimal("100.00")
    assert [e.idempotency_key.split(":", 1)[1] for e in world.books.journal[-4:]] == [
        "hold",
        "fx",
        "fx:reversal",
        "hold:reversal",
    ]
    assert deals_on(world, "c0", 1) == []  # 'rev' found no credit to take back


def test_a_conversion_without_a_stored_rate_is_refused_and_undone() -> None:
    world = world_with("c1", usd("5.00"))
    outcome = transfer(world, "c1", usd("5.00"), pocket("c1", "USD"), pocket("c1", "JPY"))
    assert outcome.status is PaymentStatus.REJECTED
    check_books(world)
    assert world.client_money("c1", "USD") == Decimal("5.00")


# The breaks the sagas once got wrong; each now ends with the books intact and nothing paid twice.


@pytest.mark.parametrize(
    ("kind", "status"), [(CANCEL, PaymentStatus.CANCELLED), (FAULT, PaymentStatus.FAILED)]
)
def test_a_transfer_broken_off_after_mt5_credited_is_not_paid_twice(
    kind: str, status: PaymentStatus
) -> None:
    world = world_with("c0", usd("100.00"))
    # broken off between MT5's credit and its booking: 'rev' takes the credit back (MT5
    # holds it), then the hold goes back to the wallet
    outcome = transfer(
        world,
        "c0",
        usd("40.00"),
        pocket("c0", "USD"),
        pocket("c0", 0),
        fault=Break(kind, "mt5-credited"),
    )
    assert outcome == Outcome(status, escalated=kind == FAULT)
    check_books(world)
    assert world.client_money("c0", "USD") == Decimal("100.00")
    assert world.mt5.accounts[login("c0", 0)].balance == 0
    assert deals_on(world, "c0", 0) == ["rev", "tri"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_transfer_broken_off_after_it_arrived_stays_done(kind: str) -> None:
    world = world_with("c0", usd("100.00"))
    # broken off while notifying: the saga is complete, so nothing is undone; the workflow
    # fails (or ends cancelled) with the transfer completed
    outcome = transfer(
        world,
        "c0",
        usd("100.00"),
        pocket("c0", "USD"),
        pocket("c0", "EUR"),
        fault=Break(kind, "given"),
    )
    assert outcome.status is PaymentStatus.COMPLETED and outcome.escalated
    assert outcome.credited is not None and outcome.credited.currency == "EUR"
    check_books(world)
    assert world.client_money("c0", "USD") == 0
    assert world.client_money("c0", "EUR") == outcome.credited.amount > 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_withdrawal_broken_off_after_the_payout_is_booked_stays_paid(kind: str) -> None:
    world = world_with("c0", usd("100.00"))
    # broken off while notifying: a cancellation is refused (payout phase), a fault fails the
    # workflow; either way the saga is complete and the payout stands
    outcome = withdrawal(
        world,
        "c0",
        "cardco",
        usd("100.00"),
        pocket("c0", "USD"),
        "paid",
        fault=Break(kind, "paid-out"),
    )
    assert outcome == Outcome(PaymentStatus.COMPLETED, usd("100.00"), escalated=kind == FAULT)
    check_books(world)
    assert world.client_money("c0", "USD") == 0
    assert world.paid_out[("cardco", "USD")] == Decimal("100.00")


@pytest.mark.parametrize("at", ["approved", "payout-sent", "settled"])
@pytest.mark.parametrize("source", ["USD", 0])
def test_a_withdrawal_cancelled_while_its_payout_is_under_way_is_not_paid_twice(
    at: str, source: str | int
) -> None:
    world = world_with("c0", usd("100.00"))
    if source == 0:  # the money on MT5 first
        transfer(world, "c0", usd("100.00"), pocket("c0", "USD"), pocket("c0", 0))
    # cancelled while the payout is sent, its verdict awaited or its capture booked: refused,
    # it is paid out
    outcome = withdrawal(
        world, "c0", "cardco", usd("100.00"), pocket("c0", source), "paid", fault=Break(CANCEL, at)
    )
    assert outcome == Outcome(PaymentStatus.COMPLETED, usd("100.00"))
    check_books(world)
    assert world.client_money("c0", "USD") == 0
    assert world.paid_out[("cardco", "USD")] == Decimal("100.00")


def test_a_failed_payout_after_a_refused_cancellation_still_undoes_every_step() -> None:
    world = world_with("c0", usd("100.00"))
    transfer(world, "c0", usd("100.00"), pocket("c0", "USD"), pocket("c0", 0))
    outcome = withdrawal(
        world,
        "c0",
        "cardco",
        usd("100.00"),
        pocket("c0", 0),
        "payout-failed",
        fault=Break(CANCEL, "payout-sent"),
    )
    assert outcome == Outcome(PaymentStatus.FAILED)
    check_books(world)
    assert world.mt5.accounts[login("c0", 0)].balance == Decimal("100.00")
    assert deals_on(world, "c0", 0) == ["ret", "tri", "wd"]


@pytest.mark.parametrize("at", ["received", "in-transit", "mt5-credited", "booked", "credited"])
@pytest.mark.parametrize("outcome", ["credited", "mt5-refuses"])
def test_a_deposit_cancelled_once_the_money_arrived_reaches_the_client(
    at: str, outcome: str
) -> None:
    world = World()
    # the money has arrived: a cancellation is refused, it is credited (MT5, or the wallet
    # when MT5 refuses the credit)
    result = deposit(
        world, "c0", "cardco", usd("10.00"), pocket("c0", 0), outcome, fault=Break(CANCEL, at)
    )
    assert result == Outcome(PaymentStatus.COMPLETED, usd("10.00"))
    check_books(world)
    assert world.client_money("c0", "USD") == Decimal("10.00")
    on_mt5 = world.mt5.accounts[login("c0", 0)].balance
    assert on_mt5 == (Decimal("10.00") if outcome == "credited" else 0)


def test_a_deposit_cancelled_before_the_money_arrived_books_nothing() -> None:
    world = World()
    result = deposit(
        world,
        "c0",
        "cardco",
        usd("10.00"),
        pocket("c0", 0),
        "credited",
        fault=Break(CANCEL, "awaiting-funds"),
    )
    assert result == Outcome(PaymentStatus.CANCELLED)
    assert world.books.journal == []
    check_books(world)


# Breaks at the last moment: the final booking of a transfer, and the capture of a paid-out
# withdrawal (workflows/funds.py give_to, workflows/withdrawal.py _pay_out).


@pytest.mark.parametrize("destination", ["EUR", 0])
def test_a_transfer_cancelled_while_its_last_entry_is_booked_stays_done(
    destination: str | int,
) -> None:
    world = world_with("c0", usd("100.00"))
    # the cancellation is refused while the last entry is booked: nothing is undone
    outcome = transfer(
        world,
        "c0",
        usd("40.00"),
        pocket("c0", "USD"),
        pocket("c0", destination),
        fault=Break(CANCEL, "booked"),
    )
    assert outcome.status is PaymentStatus.COMPLETED
    check_books(world)
    assert -world.books.balance(wallet("c0", "USD"), "USD") == Decimal("60.00")


@pytest.mark.parametrize("source", ["USD", 0])
def test_a_withdrawal_whose_capture_fails_after_the_payout_is_not_paid_twice(
    source: str | int,
) -> None:
    world = world_with("c0", usd("100.00"))
    if source == 0:
        transfer(world, "c0", usd("100.00"), pocket("c0", "USD"), pocket("c0", 0))
    withdrawal(
        world,
        "c0",
        "cardco",
        usd("100.00"),
        pocket("c0", source),
        "paid",
        fault=Break(FAULT, "settled"),
    )
    assert world.paid_out[("cardco", "USD")] == Decimal("100.00")
    # the processor paid it: the wallet or MT5 account must not have it back
    mt5_balance = world.mt5.accounts[login("c0", 0)].balance
    in_wallet = -world.books.balance(wallet("c0", "USD"), "USD")
    assert (in_wallet, mt5_balance) == (Decimal(0), Decimal(0))
