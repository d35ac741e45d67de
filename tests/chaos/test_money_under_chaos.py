"""Deposits, withdrawals and transfers while the worker is SIGKILLed again and again, MT5 drops
`trade/balance` answers (some after committing them), answers some for good (10017, nothing
applied) and fails look-ups with a permanent code (2), the PSP sends webhooks twice and out of
order, some webhooks are lost on their way, and some deposits are paid twice on one reference.

Afterwards, the issue's words: 0 lost and 0 duplicated credits, every MT5 balance equals its
ledger mirror, every PSP payment is accounted for. Reconciled three ways, per movement: the MT5
simulator's deals (ground truth of MT5), the PSP simulator's state (ground truth of the
processors), and BrokerFlow's payments, transfers and ledger (its entries by reference). A
movement either agrees three ways, or is visibly elsewhere with the amounts that make the three
agree: `needs_attention` with a finance case naming what MT5 kept, the unmatched-funds queue
holding the second payment on a reference, or (a lost webhook) the deposit still awaiting its
funds / the withdrawal still awaiting its payout verdict with the money in the hold.

`make test` runs 60 deposits, 25 withdrawals and 16 transfers; `--chaos-full` 500, 200, 120.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.funds import mt5_mirror, psp_clearing
from domain.wallets import hold_account, wallet
from tests.chaos.money_driver import (
    CURRENCY,
    NAMES,
    SERVER,
    TERMINAL,
    UNDONE,
    WAITING_FOR_PROCESSOR,
    WAITS_FOR_STAFF,
    Books,
    ClientApi,
    Customer,
    MoneyDriver,
    Mt5Budget,
    Outcome,
    PocketKey,
    WebhookProxy,
    WorkerKiller,
    cents,
    percentile,
    plan_deposits,
    plan_transfers,
    plan_withdrawals,
    prepare_accounts,
    read_books,
    webhook_flusher,
)
from tests.conftest import CHAOS_NAMESPACE
from tests.e2e.helpers import simulator_deals, simulator_users
from tests.support import database
from tests.support.processes import (
    PspSimulator,
    Simulator,
    free_port,
    start_psp_simulator,
    start_simulator,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.chaos
SEED = 20260611
BALANCE_DEAL = 2  # MT5 deal action: a balance operation
MT5_FAULTS: list[dict[str, object]] = [
    # The run's first balance write (a deposit's credit: nothing else has money to move yet) is
    # applied and its answer lost, and the first three look-ups answer "2 Common error": the
    # retry must keep asking until MT5 answers (before issue 11 the deposit took the failed
    # look-up for a refusal and credited the wallet as well: paid once, credited twice).
    {"path": "/api/trade/balance", "mode": "drop_after_commit", "times": 1},
    {"path": "/api/trade/balance", "mode": "drop_after_commit", "probability": 0.05},
    {"path": "/api/trade/balance", "mode": "drop_before_commit", "probability": 0.02},
    {"path": "/api/trade/balance", "mode": "retcode", "retcode": 12, "probability": 0.02},
    {"path": "/api/trade/balance", "mode": "latency", "latency_ms": 300, "probability": 0.2},
    # Permanent answers: trade disabled (nothing applied; a refusal, or an undo that fails for
    # good), and a look-up answered "2 Common error" (after a lost answer: retried, never final).
    {"path": "/api/trade/balance", "mode": "retcode", "retcode": 10017, "probability": 0.05},
    {"path": "/api/deal/get_batch", "mode": "retcode", "retcode": 2, "times": 3},
    {"path": "/api/deal/get_batch", "mode": "retcode", "retcode": 2, "probability": 0.1},
]


@dataclass(frozen=True)
class Size:
    deposits: int
    withdrawals: int
    customers: int
    deposit_threads: int
    withdrawal_threads: int
    kills: int
    load_seconds: float  # bounds the requests, payments and their completion
    settle_seconds: float  # bounds the wait for the stragglers after that
    transfers: int = 0
    lost_deposit_webhooks: int = 0
    lost_payout_webhooks: int = 0
    paid_twice: int = 0  # BankCo deposits paid with a second transfer on the same reference


DEFAULT = Size(
    60,
    25,
    6,
    16,
    6,
    kills=4,
    load_seconds=360,
    settle_seconds=90,
    transfers=16,
    lost_deposit_webhooks=3,
    lost_payout_webhooks=2,
    paid_twice=3,
)
FULL = Size(
    500,
    200,
    16,
    24,
    8,
    kills=20,
    load_seconds=2400,
    settle_seconds=300,
    transfers=120,
    lost_deposit_webhooks=15,
    lost_payout_webhooks=10,
    paid_twice=15,
)


MoneyStack = tuple[Stack, Simulator, PspSimulator, WebhookProxy]


@pytest.fixture
def money_stack(
    pg_cluster_url: str, temporal_env: WorkflowEnvironment, artifacts_dir: Path
) -> Iterator[MoneyStack]:
    logs = artifacts_dir / "logs" / f"money-chaos-{time.strftime('%Y%m%dT%H%M%S')}"
    db = database.create_database(pg_cluster_url, prefix="chaos")
    simulator = start_simulator(logs)
    api_port = free_port()
    # The processors' webhooks pass a path that loses the events it is told to lose.
    proxy = WebhookProxy(f"http://127.0.0.1:{api_port}/v1/webhooks")
    psp = start_psp_simulator(logs, proxy.url)
    stack = Stack(
        owner_url=db.owner_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        simulator=simulator,
        log_dir=logs,
        api_port=api_port,
        psp=psp,
        extra_env={
            "BROKERFLOW_TEMPORAL_NAMESPACE": CHAOS_NAMESPACE,
            # The checks must pass by themselves: no staff decides anything in this run.
            "BROKERFLOW_PAYMENTS__MAX_DEPOSITS_PER_HOUR": "1000000",
            "BROKERFLOW_PAYMENTS__DAILY_DEPOSIT_LIMIT": "1000000000",
            "BROKERFLOW_PAYMENTS__AUTO_APPROVE_WITHDRAWAL_UP_TO": "5000",
        },
    )
    try:
        # As `start_worker` waits for a worker: a busy machine can take longer than a minute.
        stack.start(worker_timeout=300)
        yield stack, simulator, psp, proxy
    finally:
        stack.stop()
        psp.stop()
        proxy.stop()
        simulator.child.stop()
        database.drop_database(pg_cluster_url, db)


@pytest.mark.timeout(3600)  # bounded inside by the size's own deadlines
def test_no_credit_is_lost_or_doubled_under_worker_kills_and_faults(
    money_stack: MoneyStack, request: pytest.FixtureRequest
) -> None:
    stack, simulator, psp, proxy = money_stack
    size = FULL if request.config.getoption("--chaos-full") else DEFAULT
    rng = random.Random(SEED)
    api = ClientApi(stack.api_url)
    try:
        customers = [api.sign_up(NAMES[n % len(NAMES)]) for n in range(size.customers)]
        asyncio.run(prepare_accounts(stack.owner_url, simulator, customers, rng))

        simulator.inject_faults(*MT5_FAULTS, seed=SEED)
        psp.webhook_faults(duplicate_probability=0.3, reorder_window=4)
        psp.auto_settle(after_ms=200)

        started = time.monotonic()
        outcomes, killer, load_seconds = run_load(stack, api, psp, proxy, customers, size, rng)
        lost = {o.payment_id for o in outcomes if o.lost_webhook and o.payment_id}
        settled_in = wait_until_settled(api, psp, customers, size.settle_seconds, lost)
        duration = time.monotonic() - started
    finally:
        api.close()

    books = asyncio.run(read_books(stack.owner_url, customers))
    processors = psp.state()
    problems = reconcile(outcomes, books, customers, simulator, processors, size)

    fault_rules = httpx.get(f"{simulator.base_url}/_sim/faults", verify=False).json()["rules"]
    hits: Counter[str] = Counter()
    for rule in fault_rules:
        retcode = f" {rule['retcode']}" if rule["mode"] == "retcode" else ""
        hits[f"{str(rule['path']).rsplit('/', 1)[-1]} {rule['mode']}{retcode}"] += int(rule["hits"])
    deliveries = psp.deliveries()
    copies = Counter(d["body"] for d in deliveries)
    duplicated = sum(1 for n in copies.values() if n > 1)
    if len(killer.kills) < 3:
        problems.append(f"the worker was killed only {len(killer.kills)} times")
    if any(status != -9 for status in killer.kills):
        problems.append(f"a kill was not a SIGKILL: exit statuses {killer.kills}")
    must_fire = ("balance drop_after_commit", "balance retcode 10017", "get_batch retcode 2")
    if simulator.fault_hits() == 0 or not all(hits.get(fault, 0) for fault in must_fire):
        problems.append(f"the MT5 faults did not fire: {hits}")
    if duplicated == 0:
        problems.append("no webhook was delivered twice")
    # Every event that was not lost is stored once; only a second payment on a reference may
    # be stored as other than accepted (queued as unmatched funds once its deposit finished).
    lost_events = {body for bodies in proxy.lost.values() for body in bodies}
    arrived = len(set(copies) - lost_events)
    stored = {outcome: n for outcome, n in books.webhook_outcomes.items() if outcome != "accepted"}
    if sum(books.webhook_outcomes.values()) != arrived or sum(stored.values()) > size.paid_twice:
        problems.append(
            f"{arrived} distinct webhook events arrived ({len(lost_events)} lost), stored as "
            f"{books.webhook_outcomes}"
        )
    # Every movement told to lose its webhook loses at least one event, once the processor sent
    # one: each deposit is paid; a withdrawal refused before its payout (MT5 refusing the debit,
    # say) has no payout event to lose.
    paid_out = {p["reference"] for p in processors["bankco"]["payouts"]}
    losing = [
        o for o in outcomes if o.lost_webhook and (o.kind == "deposit" or o.reference in paid_out)
    ]
    if len(lost_events) < len(losing) or len(losing) < size.lost_deposit_webhooks:
        problems.append(
            f"only {len(lost_events)} webhook events were lost for {len(losing)} movements "
            f"that sent one: {sorted(proxy.lost)}"
        )
    undelivered = [d for d in deliveries if d["outcome"] != "delivered"]
    if undelivered:
        problems.append(f"{len(undelivered)} webhook copies were not delivered: {undelivered[:3]}")

    latencies = [o.seconds for o in outcomes if o.seconds is not None]
    completed = Counter((p.direction, p.status) for p in books.payments)
    moved = Counter(t.status for t in books.transfers)
    print(
        f"\nmoney chaos: {size.deposits} deposits ({dict(_only(completed, 'deposit'))}), "
        f"{size.withdrawals} withdrawals ({dict(_only(completed, 'withdrawal'))}), "
        f"{size.transfers} transfers ({dict(moved)}), {len(books.cases)} finance cases, "
        f"{len(books.unmatched)} unmatched funds, {len(lost_events)} webhooks lost, "
        f"{len(customers)} clients, {sum(len(c.logins) for c in customers)} MT5 accounts; "
        f"worker SIGKILLed {len(killer.kills)}x (restarts took "
        f"{', '.join(f'{t:.0f}' for t in killer.restart_seconds)}s); "
        f"MT5 faults fired {dict(hits)}; webhooks {len(deliveries)} copies, "
        f"{duplicated} duplicated, "
        f"stored as {books.webhook_outcomes}; request-to-terminal p50 "
        f"{percentile(latencies, 0.5):.1f}s p99 {percentile(latencies, 0.99):.1f}s; "
        f"load {load_seconds:.0f}s, stragglers {settled_in:.0f}s, {duration:.0f}s in all; "
        f"{len(problems)} problems"
    )
    assert not problems, "\n".join(problems[:60])


def _only(counts: Counter[tuple[str, str]], direction: str) -> Counter[str]:
    return Counter({status: n for (d, status), n in counts.items() if d == direction})


def run_load(
    stack: Stack,
    api: ClientApi,
    psp: PspSimulator,
    proxy: WebhookProxy,
    customers: list[Customer],
    size: Size,
    rng: random.Random,
) -> tuple[list[Outcome], WorkerKiller, float]:
    """Deposits, withdrawals and transfers from many threads while the worker is SIGKILLed
    `size.kills` times, spread over the run; returns the outcomes, the killer, and how long it
    all took."""
    deposits = plan_deposits(
        customers, size.deposits, rng, lost=size.lost_deposit_webhooks, twice=size.paid_twice
    )
    withdrawals = plan_withdrawals(size.withdrawals, rng, lost=size.lost_payout_webhooks)
    transfers = plan_transfers(size.transfers, rng)
    owners: dict[PocketKey, Customer] = {login: c for c in customers for login in c.logins}
    owners |= {c.client_id: c for c in customers}
    budget = Mt5Budget(owners, random.Random(rng.random()))
    started = time.monotonic()
    total = 2 * (len(deposits) + len(withdrawals) + len(transfers))
    driver = MoneyDriver(api, psp, budget, started + size.load_seconds, total, proxy)
    killer = WorkerKiller(stack, driver, random.Random(rng.random()), size.kills)
    with (
        webhook_flusher(driver, every=3.0),
        ThreadPoolExecutor(size.deposit_threads, "deposit") as deposit_pool,
        ThreadPoolExecutor(size.withdrawal_threads, "withdrawal") as withdrawal_pool,
    ):
        killer.start()
        deposit_jobs = [deposit_pool.submit(driver.deposit, plan) for plan in deposits]
        withdrawal_jobs = [withdrawal_pool.submit(driver.withdrawal, plan) for plan in withdrawals]
        withdrawal_jobs += [withdrawal_pool.submit(driver.transfer, plan) for plan in transfers]
        report_at = started
        while driver.progress < total and killer.error is None:
            if time.monotonic() > driver.deadline + 10:
                break  # the jobs have given up by now: reported with their outcomes
            if all(job.done() for job in deposit_jobs):
                budget.close()  # no more credit comes: waiting withdrawals give up
            if time.monotonic() >= report_at:
                report_at += 15
                print(
                    f"  {time.monotonic() - started:4.0f}s: {driver.paid}/{len(deposits)} "
                    f"deposits paid, {driver.progress}/{total} steps, {len(killer.kills)} kills",
                    flush=True,
                )
            time.sleep(0.2)
        try:
            killer.stop()
        finally:
            if killer.error is not None:
                driver.deadline = time.monotonic()  # no worker: the jobs stop waiting
            budget.close()
            outcomes = [job.result() for job in deposit_jobs + withdrawal_jobs]
    return outcomes, killer, time.monotonic() - started


def wait_until_settled(
    api: ClientApi, psp: PspSimulator, customers: list[Customer], seconds: float, lost: set[str]
) -> float:
    """Until every payment and transfer is terminal (or waits for staff, or for the webhook
    that was lost) and no webhook is still on its way; returns how long that took. Bounded:
    what is still open then is reported by the checks."""
    started = time.monotonic()
    while time.monotonic() < started + seconds:
        psp.flush_webhooks()
        open_payments = [
            p
            for customer in customers
            for path in ("/v1/me/payments", "/v1/me/transfers")
            for p in all_of(api, customer, path)
            if p["status"] not in TERMINAL | WAITS_FOR_STAFF and p["id"] not in lost
        ]
        in_flight = [d for d in psp.deliveries() if d["outcome"] == "pending"]
        if not open_payments and not in_flight:
            break
        time.sleep(1)
    return time.monotonic() - started


def all_of(api: ClientApi, customer: Customer, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = api.call(customer, "GET", path, params={"limit": 200, "offset": len(found)})
        found += page
        if len(page) < 200:
            return found


# -- the three-way reconciliation, per movement ---------------------------------------------------


@dataclass
class Movement:
    """One deposit, withdrawal or transfer as the three sources see it."""

    kind: str  # deposit | withdrawal | transfer
    reference: str
    status: str
    amount: Decimal
    client: str
    provider: str | None = None
    transfer_reference: str | None = None
    lost_webhook: bool = False
    # MT5 (its deals with the reference) by login, and the ledger's entries with the reference
    on_mt5: dict[int, Decimal] = field(default_factory=dict)
    ledger: dict[str, Decimal] = field(default_factory=dict)

    def net(self, account: str) -> Decimal:
        return self.ledger.get(account, Decimal(0))

    @property
    def wallet(self) -> Decimal:
        """What the client's wallet got from it (a credit in the books: negated)."""
        return -self.net(wallet(self.client, CURRENCY))

    @property
    def held(self) -> Decimal:
        return -self.net(hold_account(self.client, CURRENCY))

    def mt5_gap(self) -> dict[int, Decimal]:
        """Per MT5 account, what MT5 holds of it beyond the ledger's mirror."""
        logins = set(self.on_mt5) | {
            int(code.rsplit("-", 1)[1].split(":")[0])
            for code in self.ledger
            if code.startswith(f"mt5:{SERVER}-")
        }
        gaps = {
            login: self.on_mt5.get(login, Decimal(0))
            - -self.net(mt5_mirror(SERVER, login, CURRENCY))
            for login in logins
        }
        return {login: gap for login, gap in gaps.items() if gap}

    def __str__(self) -> str:
        where = f", transfer ref {self.transfer_reference}" if self.transfer_reference else ""
        return (
            f"{self.kind} {self.reference} ({self.provider or '-'}, {self.amount}{where}, "
            f"{self.status}{', webhook lost' if self.lost_webhook else ''})"
        )


def _money(value: object) -> Decimal:
    if isinstance(value, dict):
        return Decimal(str(value["amount"]))
    return Decimal(str(value))


def reconcile(
    outcomes: list[Outcome],
    books: Books,
    customers: list[Customer],
    simulator: Simulator,
    state: dict[str, Any],
    size: Size,
) -> list[str]:
    problems = [
        f"{o.kind} #{o.index} ({o.provider}, {o.amount}, MT5 {o.login}, id {o.payment_id}): "
        f"{o.error}"
        for o in outcomes
        if o.error
    ]
    known = {p.id for p in books.payments} | {t.id for t in books.transfers}
    problems += [
        f"{o.kind} {o.payment_id} the client was given is not recorded"
        for o in outcomes
        if o.payment_id is not None and o.payment_id not in known
    ]
    deposits = [p for p in books.payments if p.direction == "deposit"]
    withdrawals = [p for p in books.payments if p.direction == "withdrawal"]
    asked = (size.deposits, size.withdrawals, size.transfers)
    if (len(deposits), len(withdrawals), len(books.transfers)) != asked:
        problems.append(
            f"{len(deposits)} deposits, {len(withdrawals)} withdrawals and "
            f"{len(books.transfers)} transfers recorded, {asked} asked for"
        )
    lost = {o.payment_id for o in outcomes if o.lost_webhook}
    movements = [
        Movement(
            p.direction,
            p.reference,
            p.status,
            p.amount,
            str(p.client_id),
            p.provider,
            p.transfer_reference,
            lost_webhook=p.id in lost,
        )
        for p in books.payments
    ] + [
        Movement("transfer", t.reference, t.status, t.amount, str(t.client_id))
        for t in books.transfers
    ]
    by_reference = {m.reference: m for m in movements}
    logins = [login for customer in customers for login in customer.logins]
    for movement in movements:
        movement.ledger = books.by_reference.get(movement.reference, {})
    problems += mt5_problems(by_reference, books, logins, simulator)
    strays = sorted(
        ref
        for ref, accounts in books.by_reference.items()
        if ref not in by_reference
        and any(accounts.values())
        and not ref.startswith("UF")  # an unmatched item finance credited: none in this run
    )
    if strays:
        problems.append(f"ledger entries of no movement: {strays[:10]}")
    cases = {c.reference: c for c in books.cases}
    for movement in movements:
        problems += movement_problems(movement, cases.get(movement.reference))
    problems += processor_problems(movements, books, state)
    if books.suspense != 0:
        problems.append(f"incoming suspense holds {-books.suspense}")
    if books.unbalanced_entries:
        problems.append(f"{books.unbalanced_entries} journal entries do not balance")
    return problems


def mt5_problems(
    movements: dict[str, Movement], books: Books, logins: list[int], simulator: Simulator
) -> list[str]:
    """MT5's deals, each one balance deal per comment (never twice), each of a movement, and
    every MT5 balance = its deals = minus the ledger's mirror of the account, but for what the
    finance cases of needs_attention movements say MT5 kept."""
    problems = []
    users = {int(u["Login"]): u for u in simulator_users(simulator.base_url)}
    balances: dict[int, tuple[Decimal, list[dict[str, Any]]]] = {}
    for login in logins:
        deals = [
            d
            for d in simulator_deals(simulator.base_url, login)
            if int(d["Action"]) == BALANCE_DEAL
        ]
        twice = [c for c, n in Counter(d["Comment"] for d in deals).items() if n > 1]
        if twice:
            problems.append(f"MT5 {login}: balance deals made twice: {twice}")
        for deal in deals:
            purpose, _, reference = str(deal["Comment"]).partition(" ")
            movement = movements.get(reference)
            if movement is None or purpose not in PURPOSES[movement.kind]:
                problems.append(f"MT5 {login}: deal {deal['Comment']!r} of no movement")
                continue
            movement.on_mt5[login] = movement.on_mt5.get(login, Decimal(0)) + Decimal(
                deal["Profit"]
            )
        balances[login] = (Decimal(users[login]["Balance"]), deals)
    for login, (balance, deals) in balances.items():
        total = sum((Decimal(d["Profit"]) for d in deals), Decimal(0))
        mirror = -books.mirrors[login]
        if balance != total:
            problems.append(f"MT5 {login}: balance {balance}, its balance deals add to {total}")
        kept = sum(
            (
                m.mt5_gap().get(login, Decimal(0))
                for m in movements.values()
                if m.status == "needs_attention"
            ),
            Decimal(0),
        )
        if balance != mirror + kept:
            problems.append(
                f"MT5 {login}: balance {balance}, ledger mirror {mirror}, what finance cases "
                f"say MT5 kept {kept}"
            )
    return problems


# The MT5 deal purposes each kind of movement may leave (the credit or debit, and its undo).
PURPOSES = {
    "deposit": {"dep", "rev"},
    "withdrawal": {"wd", "ret"},
    "transfer": {"tro", "tri", "ret", "rev"},
}


def movement_problems(m: Movement, case: Any) -> list[str]:
    """Where one movement's money is: MT5 and the ledger agree on it (or its case says by how
    much not), and the client got exactly what its status says."""
    problems = []
    gaps = m.mt5_gap()
    on_mt5 = sum(m.on_mt5.values(), Decimal(0))
    if m.status == "needs_attention":
        if case is None:
            return [f"{m}: needs_attention without a finance case"]
        # the case names what MT5 kept (each MT5 undo that failed, with its amount)
        named = sum(
            (_money(c["amount"]) for c in case.not_undone if str(c["what"]).startswith("undo ")),
            Decimal(0),
        )
        if sum((abs(g) for g in gaps.values()), Decimal(0)) != named:
            problems.append(f"{m}: MT5 differs from the ledger by {gaps}, the case says {named}")
        return problems
    if case is not None:
        problems.append(f"{m}: a finance case for a movement that is {m.status}")
    if gaps:
        problems.append(f"{m}: MT5 holds {m.on_mt5}, the ledger's mirror differs by {gaps}")
    settled = m.status == "completed"
    if m.kind == "deposit":
        if m.lost_webhook and m.status == WAITING_FOR_PROCESSOR["deposit"]:
            settled = False  # nothing may be booked: the money waits at the processor
        elif m.status != "completed":
            return [*problems, f"{m}: a deposit that is not completed"]
        credited = m.wallet + on_mt5
        if credited != (m.amount if settled else 0) or m.held:
            problems.append(
                f"{m}: credited {credited} (wallet {m.wallet}, MT5 {on_mt5}), held {m.held}"
            )
    elif m.kind == "withdrawal":
        waiting = m.lost_webhook and m.status == WAITING_FOR_PROCESSOR["withdrawal"]
        taken = -(m.wallet + on_mt5)
        if settled or waiting:
            # the money left its pocket; paid out, or in the hold while the verdict is awaited
            expected_held = m.amount if waiting else Decimal(0)
            if taken != m.amount or m.held != expected_held:
                problems.append(f"{m}: taken {taken}, held {m.held}")
        elif m.status in UNDONE:
            if taken or m.held:
                problems.append(f"{m}: undone, but {taken} taken and {m.held} held")
        else:
            problems.append(f"{m}: a withdrawal left {m.status}")
    else:
        moved = on_mt5 + m.wallet
        if m.status not in UNDONE | {"completed"}:
            problems.append(f"{m}: a transfer left {m.status}")
        elif moved or m.held:  # from one pocket to the other, or back where it was
            problems.append(f"{m}: the client's pockets changed by {moved}, held {m.held}")
        elif settled and not any(m.on_mt5.values()):
            problems.append(f"{m}: completed, but no MT5 account moved")
        elif not settled and any(m.on_mt5.values()):
            problems.append(f"{m}: undone, but MT5 keeps {m.on_mt5}")
    return problems


def processor_problems(movements: list[Movement], books: Books, state: dict[str, Any]) -> list[str]:
    """The processors' ground truth against each movement's clearing entries and the
    unmatched-funds queue: every payment they took or made is booked by its movement, waits
    visibly (a lost webhook), or is in the queue."""
    problems = []
    card = psp_clearing("cardco", CURRENCY)
    bank = psp_clearing("bankco", CURRENCY)
    intents = {i["reference"]: i for i in state["cardco"]["intents"]}
    transfers: dict[str, list[Decimal]] = defaultdict(list)
    for t in state["bankco"]["transfers"]:
        transfers[t["reference"]].append(Decimal(t["amount"]))
    payouts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in state["bankco"]["payouts"]:
        payouts[p["reference"]].append(p)
    queued: dict[str, list[Decimal]] = defaultdict(list)
    for item in books.unmatched:
        queued[item.event_reference].append(item.amount)
        if item.status != "open" or item.reason != "second_payment":
            problems.append(f"unmatched funds {item}: expected an open second payment")
    expected = {"cardco": Decimal(0), "bankco": Decimal(0)}
    for m in movements:
        if m.kind == "deposit" and m.provider == "cardco":
            intent = intents.get(m.reference)
            paid = cents(intent["amount"]) if intent and intent["status"] == "succeeded" else 0
            booked = m.net(card)
            expected["cardco"] += paid
            if m.lost_webhook and m.status == WAITING_FOR_PROCESSOR["deposit"]:
                expected["cardco"] -= paid
                if booked or not paid:
                    problems.append(f"{m}: CardCo took {paid}, booked {booked}")
            elif booked != paid or paid != m.amount:
                problems.append(f"{m}: CardCo took {paid}, booked {booked}")
        elif m.kind == "deposit":
            arrived = transfers.get(m.transfer_reference or "", [])
            booked = m.net(bank)
            in_queue = sum(queued.get(m.transfer_reference or "", []), Decimal(0))
            expected["bankco"] += sum(arrived, Decimal(0)) - in_queue
            if m.lost_webhook and m.status == WAITING_FOR_PROCESSOR["deposit"]:
                expected["bankco"] -= sum(arrived, Decimal(0))
                if booked or in_queue or not arrived:
                    problems.append(f"{m}: BankCo took {arrived}, booked {booked}")
            elif booked != m.amount or sum(arrived, Decimal(0)) != booked + in_queue:
                problems.append(
                    f"{m}: BankCo took {arrived}, booked {booked}, unmatched funds {in_queue}"
                )
        elif m.kind == "withdrawal":
            sent = payouts.get(m.reference, [])
            if len(sent) > 1:
                problems.append(f"{m}: paid out {len(sent)} times: {sent}")
            paid = sum((Decimal(p["amount"]) for p in sent if p["status"] == "settled"), Decimal(0))
            booked = -m.net(bank)
            expected["bankco"] -= paid
            if m.lost_webhook and m.status == WAITING_FOR_PROCESSOR["withdrawal"]:
                expected["bankco"] += paid  # paid, the verdict lost: not booked yet, visibly
                if booked or paid != m.amount:
                    problems.append(f"{m}: BankCo paid {paid}, booked {booked}")
            elif paid != (m.amount if m.status == "completed" else 0) or booked != paid:
                problems.append(f"{m}: BankCo paid {paid}, booked {booked}")
    for provider, code in (("cardco", card), ("bankco", bank)):
        clearing = books.clearing[provider]
        if clearing != expected[provider]:
            problems.append(
                f"{provider} clearing {clearing}, the processor's payments less the explained "
                f"ones (lost webhooks, unmatched funds) say {expected[provider]}"
            )
    known = {m.reference for m in movements} | {m.transfer_reference for m in movements}
    unknown = [i for i in intents if i not in known] + [t for t in transfers if t not in known]
    if unknown:
        problems.append(f"processor payments of no movement: {unknown}")
    return problems
