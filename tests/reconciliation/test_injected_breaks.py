"""Issue 16's must-show: every break type injected on purpose is found by the scheduled run and
classified, and a clean day gives no break.

Two runs of the real `Reconciliation` workflow (the session's Temporal dev server, its real
steps) over two broker days of a server whose clock runs at UTC+2:

* the **dirty day**: BrokerFlow's own money flows, clean on all three sides, and beside them one
  injection per break type (MT5 side and processor side where the type has both);
* the **clean day**, a week later: the same clean flows only, and zero breaks.

Where each side comes from:

* **MT5**: the module's MT5 simulator (`tests/support/mt5_utc_plus_2.py`), written through
  BrokerFlow's Web API gateway (`trade/balance`), its clock frozen (`/_sim/time`) at the moment
  of the day each deal is made: a dealer's balance and credit deals with no BrokerFlow record, a
  credit written twice, a deal on the cut-off;
* **processors**: a PSP simulator of the module's own, driven as BrokerFlow (the `psp_adapter`
  clients) and the customer (its hosted page, its transfers) drive it; its report day pinned and
  two report faults set with `/_sim/settlement` (docs/psp-simulator.md); the run reads the
  reports through the same adapters;
* **ledger**: journal entries built by `domain.funds` / `domain.wallets` and written as
  `db.ledger.post_entry` writes them, with the booking time of the day under test (a booked
  entry's time cannot be changed afterwards).

Each break is checked for its type, key, reference, deal, login, provider, amount and currency
(and the expected and actual figures of a pair), and nothing else is reported.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.reconciliation import ReconciliationMt5Steps, ReconciliationSteps
from contracts import mt5_task_queue
from contracts.reconciliation import (
    RECONCILIATION,
    ReconciliationInput,
    ReconciliationResult,
    period_bounds,
    server_zone,
)
from contracts.steps import Mt5Step, Step, implementations
from db.ledger import _account_ids  # the ledger's own opening of accounts on first use
from db.models import JournalEntryRow, PostingRow
from db.models.reconciliation import ReconciliationBreak
from domain.funds import into_mt5, out_of_mt5, receive_payment, return_payment
from domain.ledger import JournalEntry
from domain.money import Money
from domain.mt5 import BalanceOperation, BalanceType, NewMt5User
from domain.reconciliation.ledger import ledger_sides
from domain.reconciliation.matching import reconcile
from domain.reconciliation.records import Mt5Deal, Period, Sides
from domain.wallets import capture_hold
from mt5_adapter.webapi import WebApiGateway
from psp_adapter.bankco import BankCo
from psp_adapter.cardco import CardCo
from tests.support.mt5_utc_plus_2 import UTC_PLUS_2, gateway, simulator  # noqa: F401 (fixtures)
from tests.support.processes import PspSimulator, Simulator, start_psp_simulator
from workflows.reconciliation import ReconciliationWorkflow

DAY = date(2026, 3, 4)  # the dirty day: 3rd 22:00 UTC to 4th 22:00 UTC
CLEAN_DAY = DAY + timedelta(days=7)
CLIENT = "00000000-0000-0000-0000-0000000000c1"
LOGINS = count(5_302_000)
REFERENCES = count(1)


def broker_time(day: date, hour: int, minute: int) -> datetime:
    """`hour:minute` of `day` on the server's clock (UTC+2), in UTC."""
    return datetime.combine(day, time(hour, minute), server_zone(UTC_PLUS_2)).astimezone(UTC)


def reference() -> str:
    """A BrokerFlow movement reference (`BF` and 20 hex digits), unique in the module."""
    return f"BF{uuid.uuid4().hex[:12].upper()}{next(REFERENCES):08d}"


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


# -- the ledger ------------------------------------------------------------------------------


def onto_mt5(key: str, server: str, login: int, amount: Money) -> JournalEntry:
    """Held money onto an MT5 account as the ledger books it (`domain.funds.into_mt5`: the
    mirror credited)."""
    return into_mt5(key, CLIENT, server, login, amount)


def off_mt5(key: str, server: str, login: int, amount: Money) -> JournalEntry:
    """Money taken off an MT5 account into the hold as the ledger books it
    (`domain.funds.out_of_mt5`: the mirror debited)."""
    return out_of_mt5(key, CLIENT, server, login, amount)


async def book(
    sessions: async_sessionmaker[AsyncSession], at: datetime, *entries: JournalEntry
) -> None:
    """`entries` written as `db.ledger.post_entry` writes them (the entry, then its postings on
    accounts opened on first use), booked at `at`; the database checks each balances."""
    async with sessions.begin() as session:
        for booked in entries:
            accounts = await _account_ids(
                session, [(p.account, p.amount.currency) for p in booked.postings]
            )
            entry_id = uuid.uuid4()
            await session.execute(
                insert(JournalEntryRow).values(
                    id=entry_id,
                    idempotency_key=booked.idempotency_key,
                    description=booked.description,
                    booked_at=at,
                )
            )
            await session.execute(
                insert(PostingRow),
                [
                    {
                        "entry_id": entry_id,
                        "account_id": accounts[p.account],
                        "amount_minor": p.amount.to_minor_units(),
                        "currency": p.amount.currency,
                    }
                    for p in booked.postings
                ],
            )


# -- the processors --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def psp(artifacts_dir: Path) -> Iterator[PspSimulator]:
    """A PSP simulator of the module's own (no webhooks: the ledger side is written here)."""
    child = start_psp_simulator(artifacts_dir / "logs", "")
    yield child
    child.stop()


class Processors(NamedTuple):
    cardco: CardCo
    bankco: BankCo


@pytest.fixture
async def processors(psp: PspSimulator) -> AsyncIterator[Processors]:
    both = Processors(
        CardCo(psp.base_url, SecretStr(psp.card_api_key), SecretStr(psp.card_webhook_secret)),
        BankCo(psp.base_url, SecretStr(psp.bank_api_key), SecretStr(psp.bank_webhook_secret)),
    )
    yield both
    for provider in both:
        await provider.aclose()


def report_settings(psp: PspSimulator, **fields: object) -> dict[str, object]:
    """The simulator's settlement reports: their day and faults (`/_sim/settlement`)."""
    answer = psp.http.post(f"{psp.base_url}/_sim/settlement", json=fields)
    answer.raise_for_status()
    settings: dict[str, object] = answer.json()
    return settings


async def card_payment(psp: PspSimulator, cardco: CardCo, ref: str, amount: Money) -> str:
    """A card payment of `amount` for `ref`, paid by the customer on CardCo's page."""
    opened = await cardco.start_deposit(ref, amount, "Ada Payer", f"pay-{ref}")
    psp.pay(opened.provider_ref)
    return opened.provider_ref


# -- MT5 -------------------------------------------------------------------------------------


def freeze_mt5_clock(simulator: Simulator, at: datetime) -> None:  # noqa: F811
    """The trade server's clock stopped at `at`: the deals written next carry that time."""
    moment = int(at.timestamp() * 1000)
    httpx.post(f"{simulator.base_url}/_sim/time", json={"utc_msc": moment}).raise_for_status()


async def new_account(mt5: WebApiGateway) -> int:
    login = next(LOGINS)
    await mt5.add_user(
        NewMt5User(
            login=login,
            group="demo\\standard",
            name="Reconciled",
            leverage=100,
            password_main="Main#Pass1",
            password_investor="Inv#Pass1",
        )
    )
    return login


async def deal(
    mt5: WebApiGateway,
    login: int,
    amount: str,
    comment: str,
    kind: BalanceType = BalanceType.BALANCE,
) -> int:
    return await mt5.apply_balance(
        BalanceOperation(login=login, type=kind, amount=Decimal(amount), comment=comment)
    )


# -- what the run found ----------------------------------------------------------------------


class Found(NamedTuple):
    type: str
    key: str
    reference: str | None
    deal: int | None
    login: int | None
    provider: str | None
    amount_minor: int
    currency: str
    expected_minor: int | None = None
    actual_minor: int | None = None
    expected_currency: str | None = None


async def breaks_of(sessions: async_sessionmaker[AsyncSession], run: uuid.UUID) -> list[Found]:
    async with sessions() as session:
        rows = await session.scalars(
            select(ReconciliationBreak).where(ReconciliationBreak.run_id == run)
        )
        return sorted(
            Found(
                b.type,
                b.key,
                b.reference,
                b.deal,
                b.login,
                b.provider,
                b.amount_minor,
                b.currency,
                b.expected_minor,
                b.actual_minor,
                b.expected_currency,
            )
            for b in rows
        )


class Scene(NamedTuple):
    server: str
    sessions: async_sessionmaker[AsyncSession]
    mt5: WebApiGateway
    simulator: Simulator
    psp: PspSimulator
    processors: Processors


async def clean_flows(scene: Scene, day: date, login: int) -> None:
    """BrokerFlow's own flows of `day`, in step on all three sides: a card deposit credited to
    MT5, a withdrawal from MT5 paid out by BankCo, a card payment refunded."""
    server, sessions, mt5, psp = scene.server, scene.sessions, scene.mt5, scene.psp
    noon = broker_time(day, 12, 0)
    cardco, bankco = scene.processors
    freeze_mt5_clock(scene.simulator, noon)
    report_settings(psp, day=day.isoformat())

    deposit = reference()
    await card_payment(psp, cardco, deposit, usd("100.00"))
    await deal(mt5, login, "100.00", f"dep {deposit}")
    await book(
        sessions,
        noon,
        receive_payment(f"{deposit}:received", "cardco", usd("100.00")),
        onto_mt5(f"{deposit}:to-mt5", server, login, usd("100.00")),
    )

    withdrawal = reference()
    await deal(mt5, login, "-80.00", f"wd {withdrawal}")
    payout = await bankco.payout(withdrawal, usd("80.00"), "Ada Payer", "GB00X", withdrawal)
    psp.settle(payout)
    await book(
        sessions,
        noon,
        off_mt5(f"{withdrawal}:from-mt5", server, login, usd("80.00")),
        capture_hold(f"{withdrawal}:paid-out", CLIENT, "bankco", usd("80.00")),
    )

    refunded = reference()
    paid = await card_payment(psp, cardco, refunded, usd("30.00"))
    await cardco.refund(paid, refunded, usd("30.00"), "Ada Payer", f"refund-{refunded}")
    await book(
        sessions,
        noon,
        receive_payment(f"{refunded}:received", "cardco", usd("30.00")),
        return_payment(f"{refunded}:returned", "cardco", usd("30.00")),
    )


async def inject_every_break(scene: Scene, client: int, dealer: int) -> list[Found]:
    """Each break type injected on `DAY` beside the clean flows; what the run must find."""
    server, sessions, mt5, psp = scene.server, scene.sessions, scene.mt5, scene.psp
    cardco, bankco = scene.processors
    noon, late = broker_time(DAY, 12, 0), broker_time(DAY, 23, 58)  # late: 2 min to the cut-off
    freeze_mt5_clock(scene.simulator, noon)
    report_settings(psp, day=DAY.isoformat())
    expected: list[Found] = []

    def mt5_key(ref: str) -> str:
        return f"mt5:{client}:{ref}:in"

    # -- MT5 and the ledger -----------------------------------------------------------------
    # In the books, never written on MT5.
    lost = reference()
    await book(sessions, noon, onto_mt5(f"{lost}:to-mt5", server, client, usd("50.00")))
    expected.append(Found("missing_in_mt5", mt5_key(lost), lost, None, client, None, 5000, "USD"))
    # Written on MT5 with BrokerFlow's comment, never booked.
    unbooked = reference()
    ticket = await deal(mt5, client, "75.00", f"dep {unbooked}")
    expected.append(
        Found("missing_in_ledger", mt5_key(unbooked), unbooked, ticket, client, None, 7500, "USD")
    )
    # One credit booked, written twice on MT5 (a retried write).
    twice = reference()
    await book(sessions, noon, onto_mt5(f"{twice}:to-mt5", server, client, usd("100.00")))
    await deal(mt5, client, "100.00", f"dep {twice}")
    second = await deal(mt5, client, "100.00", f"dep {twice}")
    expected.append(
        Found(
            "duplicate",
            f"{mt5_key(twice)}:deal:{second}",
            twice,
            second,
            client,
            None,
            10000,
            "USD",
        )
    )
    # 200.00 booked, 210.00 credited.
    more = reference()
    await book(sessions, noon, onto_mt5(f"{more}:to-mt5", server, client, usd("200.00")))
    ticket = await deal(mt5, client, "210.00", f"dep {more}")
    expected.append(
        Found(
            "amount_mismatch", mt5_key(more), more, ticket, client, None, 1000, "USD", 20000, 21000
        )
    )
    # Booked in EUR, credited in the account's USD.
    euros = reference()
    eur = Money.of("100.00", "EUR")
    await book(sessions, noon, onto_mt5(f"{euros}:to-mt5", server, client, eur))
    ticket = await deal(mt5, client, "100.00", f"dep {euros}")
    expected.append(
        Found(
            "fx_difference",
            mt5_key(euros),
            euros,
            ticket,
            client,
            None,
            10000,
            "USD",
            10000,
            10000,
            "EUR",
        )
    )
    # A dealer's balance deal and credit by hand: no BrokerFlow record.
    for amount, kind, comment in (
        ("25.00", BalanceType.BALANCE, "goodwill"),
        ("40.00", BalanceType.CREDIT, "credit line"),
    ):
        ticket = await deal(mt5, dealer, amount, comment, kind)
        minor = int(Decimal(amount) * 100)
        expected.append(
            Found(
                "manual_adjustment",
                f"mt5-deal:{dealer}:{ticket}",
                None,
                ticket,
                dealer,
                None,
                minor,
                "USD",
            )
        )

    # -- the processors and the ledger ------------------------------------------------------
    def psp_key(provider: str, ref: str, flow: str = "collection") -> str:
        return f"psp:{provider}:{ref}:{flow}"

    # Booked as received; the processor's report leaves its row out.
    unreported = reference()
    omitted = await card_payment(psp, cardco, unreported, usd("60.00"))
    await book(sessions, noon, receive_payment(f"{unreported}:received", "cardco", usd("60.00")))
    expected.append(
        Found(
            "missing_at_psp",
            psp_key("cardco", unreported),
            unreported,
            None,
            None,
            "cardco",
            6000,
            "USD",
        )
    )
    # A bank transfer BrokerFlow never booked (its webhook lost).
    opened = await bankco.start_deposit(reference(), usd("40.00"), "Ada Payer", reference())
    transfer = opened.transfer_reference or ""
    psp.incoming(transfer, "40.00", "USD", "Ada Payer")
    expected.append(
        Found(
            "missing_in_ledger",
            psp_key("bankco", transfer),
            transfer,
            None,
            None,
            "bankco",
            4000,
            "USD",
        )
    )
    # Booked once; the report lists the charge twice.
    listed_twice = reference()
    doubled = await card_payment(psp, cardco, listed_twice, usd("70.00"))
    await book(sessions, noon, receive_payment(f"{listed_twice}:received", "cardco", usd("70.00")))
    expected.append(
        Found(
            "duplicate",
            f"{psp_key('cardco', listed_twice)}:row:{doubled}",
            listed_twice,
            None,
            None,
            "cardco",
            7000,
            "USD",
        )
    )
    report_settings(psp, omit=[omitted], duplicate=[doubled])
    # 100.00 charged, 110.00 booked.
    overbooked = reference()
    await card_payment(psp, cardco, overbooked, usd("100.00"))
    await book(sessions, noon, receive_payment(f"{overbooked}:received", "cardco", usd("110.00")))
    expected.append(
        Found(
            "amount_mismatch",
            psp_key("cardco", overbooked),
            overbooked,
            None,
            None,
            "cardco",
            -1000,
            "USD",
            11000,
            10000,
        )
    )
    # 100.00 charged (fee 3.20), the net 96.80 booked: the fee is not in the books.
    net = reference()
    await card_payment(psp, cardco, net, usd("100.00"))
    await book(sessions, noon, receive_payment(f"{net}:received", "cardco", usd("96.80")))
    expected.append(
        Found(
            "fee_difference",
            psp_key("cardco", net),
            net,
            None,
            None,
            "cardco",
            320,
            "USD",
            9680,
            10000,
        )
    )
    # Charged in EUR, booked in USD.
    in_euros = reference()
    await card_payment(psp, cardco, in_euros, Money.of("100.00", "EUR"))
    await book(sessions, noon, receive_payment(f"{in_euros}:received", "cardco", usd("100.00")))
    expected.append(
        Found(
            "fx_difference",
            psp_key("cardco", in_euros),
            in_euros,
            None,
            None,
            "cardco",
            10000,
            "EUR",
            10000,
            10000,
            "USD",
        )
    )
    # Paid and booked; then the cardholder disputes it, which the books do not know.
    disputed = reference()
    intent = await card_payment(psp, cardco, disputed, usd("50.00"))
    await book(sessions, noon, receive_payment(f"{disputed}:received", "cardco", usd("50.00")))
    psp.http.post(
        f"{psp.base_url}/_sim/cardco/chargeback", json={"payment_intent": intent}
    ).raise_for_status()
    expected.append(
        Found(
            "chargeback",
            psp_key("cardco", disputed, "chargeback"),
            disputed,
            None,
            None,
            "cardco",
            -5000,
            "USD",
        )
    )

    # -- at the cut-off ---------------------------------------------------------------------
    # Credited on MT5 two minutes before the cut-off; the books have it the next day.
    freeze_mt5_clock(scene.simulator, late)
    at_cut_off = reference()
    ticket = await deal(mt5, client, "30.00", f"dep {at_cut_off}")
    expected.append(
        Found("cut_off_timing", mt5_key(at_cut_off), at_cut_off, ticket, client, None, 3000, "USD")
    )
    # Booked two minutes before the cut-off; CardCo settles it on its next day.
    settled_tomorrow = reference()
    await book(
        sessions, late, receive_payment(f"{settled_tomorrow}:received", "cardco", usd("45.00"))
    )
    report_settings(psp, day=(DAY + timedelta(days=1)).isoformat())
    await card_payment(psp, cardco, settled_tomorrow, usd("45.00"))
    expected.append(
        Found(
            "cut_off_timing",
            psp_key("cardco", settled_tomorrow),
            settled_tomorrow,
            None,
            None,
            "cardco",
            4500,
            "USD",
        )
    )
    return sorted(expected)


async def reconcile_days(
    env: WorkflowEnvironment, scene: Scene, *days: date
) -> list[ReconciliationResult]:
    """The `Reconciliation` workflow run for each day in turn, on workers of the test's own (the
    main queue and the server's MT5 queue) with the real steps and processor adapters."""
    queue = f"reconciliation-{uuid.uuid4()}"
    steps = ReconciliationSteps(scene.sessions, {p.name: p for p in scene.processors})
    # No trade ingestion here: the balance check (not this test's) is left unchecked at once.
    mt5_steps = ReconciliationMt5Steps(
        scene.server, scene.sessions, scene.mt5, ingestion_wait=timedelta(0)
    )
    async with (
        Worker(
            env.client,
            task_queue=queue,
            workflows=[ReconciliationWorkflow],
            activities=list(implementations(Step, steps).values()),
        ),
        Worker(
            env.client,
            task_queue=mt5_task_queue(scene.server),
            activities=list(implementations(Mt5Step, mt5_steps).values()),
        ),
    ):
        return [
            await env.client.execute_workflow(
                RECONCILIATION.name,
                # The default windows: 5 minutes at the cut-off, an hour for a hand-typed deal.
                ReconciliationInput(server=scene.server, day=day, server_clock_offset=UTC_PLUS_2),
                id=f"reconciliation-test-{uuid.uuid4()}",
                task_queue=queue,
                result_type=ReconciliationResult,
                execution_timeout=timedelta(seconds=60),
            )
            for day in days
        ]


async def test_every_injected_break_is_found_and_a_clean_day_has_none(
    temporal_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    simulator: Simulator,  # noqa: F811
    gateway: WebApiGateway,  # noqa: F811
    psp: PspSimulator,
    processors: Processors,
) -> None:
    server = f"inject{uuid.uuid4().hex[:6]}"  # a task queue of this test's own
    scene = Scene(server, sessions, gateway, simulator, psp, processors)
    client, dealer = await new_account(gateway), await new_account(gateway)
    try:
        await clean_flows(scene, DAY, client)
        expected = await inject_every_break(scene, client, dealer)
        await clean_flows(scene, CLEAN_DAY, client)
    finally:
        httpx.delete(f"{simulator.base_url}/_sim/time").raise_for_status()
    dirty, clean = await reconcile_days(temporal_env, scene, DAY, CLEAN_DAY)

    assert await breaks_of(sessions, dirty.run_id) == expected
    assert {found.type for found in expected} == {
        "missing_in_mt5",
        "missing_in_ledger",
        "missing_at_psp",
        "duplicate",
        "amount_mismatch",
        "fee_difference",
        "fx_difference",
        "cut_off_timing",
        "chargeback",
        "manual_adjustment",
    }
    # The clean flows (2 on MT5, 4 at the processors), a credit's first deal, a charge's first
    # row, the disputed payment's charge.
    assert (dirty.breaks, dirty.cases_opened, dirty.matched) == (len(expected), len(expected), 9)
    # 10 deals of the day (the one at the cut-off included), 12 rows (one left out, one twice).
    assert (dirty.deals, dirty.settlement_rows) == (10, 12)

    assert await breaks_of(sessions, clean.run_id) == []
    assert (clean.breaks, clean.cases_opened, clean.matched) == (0, 0, 6)
    assert (clean.deals, clean.settlement_rows) == (2, 4)


def test_a_deposit_to_mt5_booked_by_the_ledgers_own_entry_is_clean() -> None:
    """The ledger's own entries (`into_mt5` credits the mirror, `out_of_mt5` debits it) read as
    money onto and off MT5: a deposit and a withdrawal with their deals are clean."""
    ref, back, login, at = reference(), reference(), 5_000_001, broker_time(DAY, 12, 0)
    start, end = period_bounds(DAY, time(0), UTC_PLUS_2)
    booked = [
        into_mt5(f"{ref}:to-mt5", CLIENT, "live-1", login, usd("100.00")),
        out_of_mt5(f"{back}:from-mt5", CLIENT, "live-1", login, usd("40.00")),
    ]
    postings = [
        (e.idempotency_key, at, p.account, p.amount.to_minor_units(), p.amount.currency)
        for e in booked
        for p in e.postings
    ]
    on_mirror, _ = ledger_sides(postings, "live-1")
    assert sorted(m.amount_minor for m in on_mirror) == [-4000, 10000]
    deals = [
        Mt5Deal(1, login, at, 2, 10000, "USD", f"dep {ref}"),
        Mt5Deal(2, login, at, 2, -4000, "USD", f"wd {back}"),
    ]
    period = Period(DAY, start, end, timedelta(minutes=5), timedelta(hours=1))
    result = reconcile(period, Sides(deals, on_mirror, [], []))
    assert (result.breaks, result.matched) == ([], 2)


def test_the_settlement_hook_refuses_what_it_cannot_apply(psp: PspSimulator) -> None:
    before = report_settings(psp)
    for body in ({"day": "tomorrow"}, {"omit": "pi_1"}, {"duplicate": [1]}, {"late": True}):
        answer = psp.http.post(f"{psp.base_url}/_sim/settlement", json=body)
        assert answer.status_code == 400, body
    assert report_settings(psp) == before
