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

MT5 does not simply apply each change once and say so (issue 11): a drawn `Mt5Fault` makes one
balance write of a saga apply and lose its answer (the retry finds the deal by its comment),
apply, lose its answer and then fail the look-up with an error (retried as Mt5OutcomeUnknown
until MT5 answers, never taken as a refusal), apply and answer a refusal, or apply, refuse and
disable the account; or it makes MT5 refuse a reversal (`ret`/`rev`) for good. The sagas end as
the workflows since issue 11 do: a refusal's compensations find and undo what MT5 applied, a
deposit takes back whatever MT5 holds of a refused credit before crediting the wallet, every
compensation runs to its own end, and what cannot be undone leaves the movement
`needs_attention` with a finance case (`Case`) whose amounts are exactly what MT5 and the hold
differ from the books by (the invariants allow nothing else out of line). `PRE_ISSUE_11` is the
rules before that change; tests at the bottom show the machine finds the double credit and the
stuck hold with them.

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
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

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


class UndoFailed(Exception):
    """A compensation failed for good (MT5 will not take a reversal: account disabled, gone)."""


# How MT5 misbehaves on one balance write of a saga (`Mt5Fault.kind`):
LOST_ANSWER = "applied, answer lost"  # the retry finds the deal by its comment
LOOKUP_ERROR = "applied, answer lost, look-up errs"  # e.g. "2 Common error" on deal/get_batch
REFUSED_AFTER_APPLIED = "applied, then refused"  # the step ends with a refusal, the deal stands
REFUSED_FOR_GOOD = "reversal refused for good"  # a `ret`/`rev` write MT5 will never take
# applied, then refused, and the account disabled: MT5 refuses every later write on it for good
APPLIED_THEN_DISABLED = "applied, then refused and the account disabled"
FORWARD_FAULTS = (LOST_ANSWER, LOOKUP_ERROR, REFUSED_AFTER_APPLIED, APPLIED_THEN_DISABLED)
REVERSALS = ("ret", "rev")
REVERSAL_FAULTS = (LOST_ANSWER, LOOKUP_ERROR, REFUSED_FOR_GOOD)


@dataclass(frozen=True)
class Mt5Fault:
    """MT5 misbehaving on the saga's balance writes whose comment has purpose `purpose`."""

    kind: str
    purpose: str  # dep, wd, tro, tri (forward writes), ret, rev (reversals)

    def __str__(self) -> str:
        return f"MT5 {self.kind} on '{self.purpose}'"


@dataclass(frozen=True)
class Rules:
    """What the workflows do about MT5's misbehaviour: since issue 11, and before it."""

    # a look-up failing after a lost answer is retried (Mt5OutcomeUnknown), not a refusal
    lookup_error_is_retried: bool = True
    # a deposit whose MT5 credit is refused takes back what MT5 holds before the wallet
    take_back_before_wallet: bool = True
    # every compensation runs to its own end; what failed leaves a case, needs_attention
    compensations_run_to_their_end: bool = True


CURRENT = Rules()
PRE_ISSUE_11 = Rules(False, False, False)


@dataclass(frozen=True)
class Case:
    """A finance case for a movement that could not be undone (docs/finance-cases.md), with
    what it leaves out of line: MT5 holds `mt5_excess` on `login` beyond the ledger's mirror,
    and the client's hold holds `held` (a deposit whose take-back MT5 refused)."""

    reference: str
    client: str
    login: int
    currency: str
    mt5_excess: Decimal
    held: Decimal = Decimal(0)


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
    # the finance cases opened for movements left needs_attention
    cases: list[Case] = field(default_factory=list)
    rules: Rules = CURRENT

    def fork(self) -> World:
        return World(
            books=self.books.fork(),
            mt5=self.mt5.fork(),
            received=defaultdict(Decimal, self.received),
            returned=defaultdict(Decimal, self.returned),
            paid_out=defaultdict(Decimal, self.paid_out),
            movements=self.movements,
            cases=list(self.cases),
            rules=self.rules,
        )

    def mt5_excess(self, client: str, currency: str) -> Decimal:
        """What the open cases say MT5 holds of the client's beyond the books."""
        return sum(
            (c.mt5_excess for c in self.cases if (c.client, c.currency) == (client, currency)),
            Decimal(0),
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


def held_by_cases(world: World, account: str, currency: str) -> Decimal:
    """The ledger balance the open cases leave on a hold account (a credit: negative)."""
    return -sum(
        (
            c.held
            for c in world.cases
            if c.currency == currency and hold_account(c.client, c.currency) == account
        ),
        Decimal(0),
    )


def check_books(world: World) -> None:
    """What must hold whenever no saga is in flight: the books, MT5 and the processors agree,
    except by exactly what the open finance cases say (a movement left needs_attention)."""
    books = world.books
    # the whole ledger balances in each currency (each entry did when booked)
    per_currency: dict[str, Decimal] = defaultdict(Decimal)
    for (account, currency), value in books.totals.items():
        per_currency[currency] += value
        assert_not_in_debit(account, value)
        # nothing in flight: every hold and the incoming suspense are back to zero, but for
        # the money a case says is left in a hold
        if account.startswith(("hold:", "suspense:incoming:")):
            expected = held_by_cases(world, account, currency)
            assert value == expected, f"{account} holds {value} with no saga running"
    assert all(total == 0 for total in per_currency.values()), per_currency
    # each key booked once
    assert len(books.journal) == len(books.by_key)
    # MT5 holds exactly what the books say BrokerFlow put there, and what the cases say
    for number, on_mt5 in world.mt5.accounts.items():
        mirror = books.balance(mt5_mirror(SERVER, number, on_mt5.currency), on_mt5.currency)
        excess = sum((c.mt5_excess for c in world.cases if c.login == number), Decimal(0))
        assert on_mt5.balance == -mirror + excess, (
            f"MT5 {number} has {on_mt5.balance}, books {-mirror}, cases {excess}"
        )
    # one case per movement (its MT5 deals not undone may cancel out: a transfer from an
    # account to itself, both refused back)
    assert len({c.reference for c in world.cases}) == len(world.cases), world.cases
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
        mt5_fault: Mt5Fault | None = None,
    ) -> None:
        self.world = world
        self.rules = world.rules
        self.mt5_fault = mt5_fault
        self.books = world.books
        self.mt5 = world.mt5
        self.client = client
        self.reference = reference
        self.retried = retried
        self.fault = fault
        self.mt5_refuses_credit = mt5_refuses_credit
        self._undo: list[Callable[[], None]] = []
        # the MT5 reversals that failed for good: (account, the deal they were to undo)
        self.not_undone: list[tuple[int, Decimal]] = []
        self.disabled: set[int] = set()  # MT5 accounts that take no more writes
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
        self.on_failure(lambda: self.reverse_if_applied(account, comment, back))

    def misbehaves(self, comment: str) -> str | None:
        """How MT5 misbehaves on the write with `comment` (its purpose heads it), if it does."""
        fault = self.mt5_fault
        if fault is None or comment.split()[0] != fault.purpose:
            return None
        return fault.kind

    def write(self, account: int, amount: Decimal, comment: str, check_margin: bool) -> None:
        """activities/mt5_balance.py apply_balance_once against a misbehaving MT5: one attempt
        writes; when its answer is lost the next looks the deal up by its comment first."""
        kind = self.misbehaves(comment)
        if kind == REFUSED_FOR_GOOD or account in self.disabled:  # MT5 will not take it at all
            if comment.split()[0] in REVERSALS:
                raise UndoFailed(f"MT5 refused {comment!r} for good")
            raise Refused(f"MT5 refused {comment!r}: account disabled")
        self.mt5.apply_once(account, amount, comment, check_margin)  # a refusal here: not applied
        if kind == APPLIED_THEN_DISABLED:
            self.disabled.add(account)
        if kind in (REFUSED_AFTER_APPLIED, APPLIED_THEN_DISABLED):  # applied, answered "no"
            raise Refused(f"MT5 refused {comment!r} (after applying it)")
        if kind == LOOKUP_ERROR and not self.rules.lookup_error_is_retried:
            # before issue 11: the look-up's "2 Common error" ended the step as a refusal
            raise Refused(f"looking up {comment!r} on {account}: 2 Common error")
        # LOST_ANSWER, or LOOKUP_ERROR retried as Mt5OutcomeUnknown until MT5 answers: the
        # next attempt finds the deal by its comment and the step ends applied

    def reverse_if_applied(self, account: int, comment: str, back: str) -> None:
        """activities/mt5_funds.py mt5_reverse_if_applied: the deal `comment` undone by one
        commented `back`, whatever the margin, if MT5 holds it at all (a failed look-up is
        retried until MT5 answers)."""
        applied = self.mt5.deals.get((account, comment))
        if applied is None:
            return
        try:
            self.write(account, -applied, back, check_margin=False)
        except UndoFailed:
            self.not_undone.append((account, applied))
            raise

    def compensate(self) -> None:
        """Newest first, each to its own end (they are `unstoppable` in the workflow): one MT5
        refuses for good is recorded and the older ones still run (before issue 11 the first
        such failure stopped them all, failing the workflow)."""
        for step in reversed(self._undo):
            try:
                step()
            except UndoFailed:
                if not self.rules.compensations_run_to_their_end:
                    raise

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
            return self.undone(refused.status)
        except Broken as failure:
            if self.finished:
                return self.outcome(PaymentStatus.COMPLETED, self.delivered, escalated=True)
            if isinstance(failure, Cancelled):
                return self.undone(PaymentStatus.CANCELLED)
            return self.undone(PaymentStatus.FAILED, escalated=True)

    def undone(self, status: PaymentStatus, escalated: bool = False) -> Outcome:
        """Saga._undone: compensate; if any compensation failed for good, a case for finance
        and the movement needs_attention (the workflow completes, whatever the reason)."""
        try:
            self.compensate()
        except UndoFailed:  # before issue 11: the workflow fails, the older undos never ran
            return self.outcome(PaymentStatus.FAILED, escalated=True)
        if not self.not_undone:
            return self.outcome(status, escalated=escalated)
        # one misbehaving MT5 account per saga (a transfer may both debit and credit it)
        [account] = {account for account, _ in self.not_undone}
        self.open_case(account, sum((deal for _, deal in self.not_undone), Decimal(0)))
        return self.outcome(PaymentStatus.NEEDS_ATTENTION)

    def open_case(self, account: int, deal: Decimal, held: Decimal = Decimal(0)) -> None:
        """open_finance_case, once per movement: MT5 keeps `deal` on `account`."""
        currency = self.mt5.accounts[account].currency
        case = Case(self.reference, self.client, account, currency, deal, held)
        if case not in self.world.cases:
            self.world.cases.append(case)

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
        self.activity(lambda: self.write(account, -amount.amount, debit, check_margin=True))
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
            self.write(account, amount.amount, credit, check_margin=False)

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
    mt5_fault: Mt5Fault | None = None,
) -> Outcome:
    """workflows/deposit.py: until the money arrives a cancellation ends the deposit with
    nothing booked; from then on the rest is `unstoppable` (no saga compensates a fault there:
    the workflow fails with the money where it is, for operations). When MT5 refuses the credit
    the deposit first takes back whatever MT5 holds of it (`rev`), then credits the wallet; if
    MT5 will not give it back the money stays in the hold, with a case, needs_attention."""
    saga = Saga(
        world,
        client,
        world.reference("BF"),
        retried=retried,
        fault=fault,
        mt5_refuses_credit=outcome == "mt5-refuses",
        mt5_fault=mt5_fault,
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
                if world.rules.take_back_before_wallet:
                    account = destination.mt5.login
                    credit = mt5_comment("dep", saga.reference)
                    back = mt5_comment("rev", saga.reference)
                    try:
                        saga.activity(lambda: saga.reverse_if_applied(account, credit, back))
                    except UndoFailed:  # MT5 keeps the credit: the wallet is not credited
                        saga.open_case(account, amount.amount, held=amount.amount)
                        return saga.outcome(PaymentStatus.NEEDS_ATTENTION)
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
    mt5_fault: Mt5Fault | None = None,
) -> Outcome:
    """workflows/withdrawal.py."""
    saga = Saga(
        world, client, world.reference("BF"), retried=retried, fault=fault, mt5_fault=mt5_fault
    )

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
    mt5_fault: Mt5Fault | None = None,
) -> Outcome:
    """workflows/transfer.py."""
    saga = Saga(
        world,
        client,
        world.reference("TR"),
        retried=retried,
        fault=fault,
        mt5_refuses_credit=mt5_refuses_credit,
        mt5_fault=mt5_fault,
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


def mt5_faults(forward: tuple[str, ...], reversals: tuple[str, ...]) -> st.SearchStrategy:
    """Half the time MT5 behaves; else one of the saga's balance writes misbehaves."""
    faults = [Mt5Fault(kind, purpose) for purpose in forward for kind in FORWARD_FAULTS] + [
        Mt5Fault(kind, purpose) for purpose in reversals for kind in REVERSAL_FAULTS
    ]
    return st.none() | st.sampled_from(faults)


deposit_mt5_faults = mt5_faults(("dep",), ("rev",))
withdrawal_mt5_faults = mt5_faults(("wd",), ("ret",))
transfer_mt5_faults = mt5_faults(("tro", "tri"), ("ret", "rev"))

SagaRun = Callable[[World, bool, Break | None], Outcome]


class MoneyFlows(RuleBasedStateMachine):
    # the workflows' rules the model follows (a test below swaps in PRE_ISSUE_11)
    workflow_rules = CURRENT

    def __init__(self) -> None:
        super().__init__()
        self.world = World(rules=self.workflow_rules)
        self.expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)

    def play(
        self,
        data: st.DataObject,
        saga: SagaRun,
        kind: str,
        breaks: tuple[Break, ...],
        mt5: Mt5Fault | None = None,
    ) -> Outcome:
        """Run a saga once unbroken on a fork of the world, then half the time break it off at
        a point that run went through (none of the KNOWN GAPS), and its steps twice when
        `retried` (at least once, as Temporal does): a retried saga must end exactly as a run
        of each step once does, and a break that may not break it off must leave the books as
        the unbroken run does."""
        before = list(self.world.cases)
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
        cases = [c for c in self.world.cases if c.reference not in {d.reference for d in before}]
        if result.status is PaymentStatus.NEEDS_ATTENTION:
            assert len(cases) == 1, cases  # visible: a case for finance, with its amounts
        else:
            assert not cases, (result, cases)  # no case without needs_attention
        if mt5 is not None:
            event(f"{kind} {mt5}: {result.status.value}")
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
        mt5=deposit_mt5_faults,
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
        mt5: Mt5Fault | None,
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
                world,
                client,
                provider,
                amount,
                destination,
                outcome,
                retried=again,
                fault=broken,
                mt5_fault=mt5,
            )

        result = self.play(data, run, "deposit", DEPOSIT_BREAKS, mt5)
        event(f"deposit {outcome}: {result.status.value}")
        # the money is the client's, in MT5 or the wallet; or needs_attention: in the hold,
        # with MT5 keeping a credit it refused (the case says how much)
        if result.status in (PaymentStatus.COMPLETED, PaymentStatus.NEEDS_ATTENTION):
            self.expected[(client, currency)] += amount.amount
        else:
            assert self.world.snapshot() == before, "a deposit that failed left traces"

    @precondition(lambda self: self.funded())  # money out once some came in
    @rule(
        provider=providers,
        outcome=withdrawal_outcomes,
        mt5=withdrawal_mt5_faults,
        data=st.data(),
    )
    def withdrawal(
        self,
        provider: str,
        outcome: str,
        mt5: Mt5Fault | None,
        data: st.DataObject,
    ) -> None:
        client, take, amount = self.draw_source(data)
        before = self.world.snapshot()

        def run(world: World, again: bool, broken: Break | None) -> Outcome:
            return withdrawal(
                world,
                client,
                provider,
                amount,
                take,
                outcome,
                retried=again,
                fault=broken,
                mt5_fault=mt5,
            )

        result = self.play(data, run, "withdrawal", WITHDRAWAL_BREAKS, mt5)
        event(f"withdrawal from {'MT5' if take.mt5 else 'wallet'}: {result.status.value}")
        if result.status is PaymentStatus.COMPLETED:
            assert result.credited == amount
            self.expected[(client, amount.currency)] -= amount.amount
        elif result.status is not PaymentStatus.NEEDS_ATTENTION:  # that one: see the case
            assert self.world.snapshot() == before, "the compensations did not undo it all"

    @precondition(lambda self: self.funded())
    @rule(
        mt5_refuses_credit=rarely,
        mt5=transfer_mt5_faults,
        data=st.data(),
    )
    def transfer(
        self,
        mt5_refuses_credit: bool,
        mt5: Mt5Fault | None,
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
                mt5_fault=mt5,
            )

        result = self.play(data, run, "transfer", TRANSFER_BREAKS, mt5)
        kind = f"{'MT5' if take.mt5 else 'wallet'} to {'MT5' if give.mt5 else 'wallet'}"
        fx = f", {take.currency} to {give.currency}" if take.currency != give.currency else ""
        event(f"transfer {kind}{fx}: {result.status.value}")
        if result.status is PaymentStatus.COMPLETED:
            credited = result.credited
            assert credited is not None and credited.currency == give.currency
            assert credited.amount > 0
            self.expected[(client, amount.currency)] -= amount.amount
            self.expected[(client, credited.currency)] += credited.amount
        elif result.status is not PaymentStatus.NEEDS_ATTENTION:  # that one: see the case
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
                # what they were given, and what the open cases say they hold beyond it
                owed = self.expected[(client, currency)] + self.world.mt5_excess(client, currency)
                assert self.world.client_money(client, currency) == owed


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


# MT5 misbehaving (issue 11): applied with the answer lost, a look-up that errs, a refusal after
# applying, an account disabled after applying. With the rules since issue 11 the books, MT5 and
# the cases agree; with the rules before it (PRE_ISSUE_11) the client is credited twice or a
# hold stays stuck with nobody told.


def deposit_to_mt5(world: World, mt5_fault: Mt5Fault) -> Outcome:
    return deposit(
        world, "c0", "cardco", usd("10.00"), pocket("c0", 0), "credited", mt5_fault=mt5_fault
    )


@pytest.mark.parametrize("kind", [LOST_ANSWER, LOOKUP_ERROR, REFUSED_AFTER_APPLIED])
def test_a_deposit_mt5_applied_without_saying_so_is_credited_once(kind: str) -> None:
    world = World()
    outcome = deposit_to_mt5(world, Mt5Fault(kind, "dep"))
    assert outcome == Outcome(PaymentStatus.COMPLETED, usd("10.00"))
    check_books(world)
    assert world.client_money("c0", "USD") == Decimal("10.00")
    on_mt5 = world.mt5.accounts[login("c0", 0)].balance
    # a refusal after applying: MT5 gives the credit back ('rev'), the wallet has the money
    assert on_mt5 == (0 if kind == REFUSED_AFTER_APPLIED else Decimal("10.00"))
    assert deals_on(world, "c0", 0) == (
        ["dep", "rev"] if kind == REFUSED_AFTER_APPLIED else ["dep"]
    )


@pytest.mark.parametrize("kind", [LOOKUP_ERROR, REFUSED_AFTER_APPLIED])
def test_before_issue_11_such_a_deposit_was_credited_twice(kind: str) -> None:
    world = World(rules=PRE_ISSUE_11)
    outcome = deposit_to_mt5(world, Mt5Fault(kind, "dep"))
    assert outcome.status is PaymentStatus.COMPLETED
    assert world.client_money("c0", "USD") == Decimal("20.00")  # paid 10, credited 20
    with pytest.raises(AssertionError, match=r"MT5 7000000 has 10\.00, books 0"):
        check_books(world)


def test_a_deposit_whose_credit_mt5_keeps_for_good_needs_attention() -> None:
    world = World()
    outcome = deposit_to_mt5(world, Mt5Fault(APPLIED_THEN_DISABLED, "dep"))
    assert outcome == Outcome(PaymentStatus.NEEDS_ATTENTION)
    check_books(world)  # MT5 and the hold are out of line by exactly the case's amounts
    ten = Decimal("10.00")
    assert world.cases == [
        Case(
            world.books.journal[0].idempotency_key.split(":")[0],
            "c0",
            login("c0", 0),
            "USD",
            mt5_excess=ten,
            held=ten,
        )
    ]
    assert -world.books.balance(wallet("c0", "USD"), "USD") == 0  # the wallet is not credited


@pytest.mark.parametrize("rules", [CURRENT, PRE_ISSUE_11], ids=["now", "before"])
def test_a_reversal_mt5_refuses_for_good_leaves_a_case_and_undoes_the_rest(rules: Rules) -> None:
    world = world_with("c0", usd("100.00"))
    world.rules = rules
    transfer(world, "c0", usd("100.00"), pocket("c0", "USD"), pocket("c0", 0))
    # MT5 account 0 to account 3, broken off once MT5 credited 3; MT5 refuses to take the
    # credit back ('rev') for good
    outcome = transfer(
        world,
        "c0",
        usd("40.00"),
        pocket("c0", 0),
        pocket("c0", 3),
        fault=Break(FAULT, "mt5-credited"),
        mt5_fault=Mt5Fault(REFUSED_FOR_GOOD, "rev"),
    )
    if rules is PRE_ISSUE_11:  # the first failing undo stopped the rest: the hold is stuck
        assert outcome == Outcome(PaymentStatus.FAILED, escalated=True)
        with pytest.raises(AssertionError, match=r"hold:c0:USD holds -40\.00"):
            check_books(world)
        assert world.mt5.accounts[login("c0", 0)].balance == Decimal("60.00")  # never given back
        return
    assert outcome == Outcome(PaymentStatus.NEEDS_ATTENTION)
    check_books(world)  # the hold released, the debit given back: only the case's credit left
    [case] = world.cases
    assert (case.login, case.mt5_excess) == (login("c0", 3), Decimal("40.00"))
    assert case.held == 0
    assert world.mt5.accounts[login("c0", 0)].balance == Decimal("100.00")
    assert world.client_money("c0", "USD") == Decimal("140.00")  # 100 owed + the case's 40


def test_a_withdrawal_debit_refused_after_applying_is_given_back() -> None:
    world = world_with("c0", usd("100.00"))
    transfer(world, "c0", usd("100.00"), pocket("c0", "USD"), pocket("c0", 0))
    outcome = withdrawal(
        world,
        "c0",
        "bankco",
        usd("30.00"),
        pocket("c0", 0),
        "paid",
        mt5_fault=Mt5Fault(REFUSED_AFTER_APPLIED, "wd"),
    )
    assert outcome == Outcome(PaymentStatus.REJECTED)
    check_books(world)
    assert world.mt5.accounts[login("c0", 0)].balance == Decimal("100.00")
    assert deals_on(world, "c0", 0) == ["ret", "tri", "wd"]


class MoneyFlowsBeforeIssue11(MoneyFlows):
    workflow_rules = PRE_ISSUE_11


def test_the_machine_finds_the_double_credit_with_the_rules_before_issue_11() -> None:
    """The state machine with the workflows' rules before issue 11 fails: its MT5 faults are
    what the old code got wrong (a quick, derandomised search, no shrinking)."""
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            MoneyFlowsBeforeIssue11,
            settings=settings(
                max_examples=50,
                stateful_step_count=10,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            ),
        )
