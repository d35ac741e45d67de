"""Deposits and withdrawals while the worker is SIGKILLed again and again, MT5 drops `trade/balance`
answers (some after committing them) and the PSP sends webhooks twice and out of order.

Afterwards, the issue's words: 0 lost and 0 duplicated credits, every MT5 balance equals its
ledger mirror, every PSP payment is accounted for. Reconciled three ways: the MT5 simulator's
deals (ground truth of MT5), the PSP simulator's state (ground truth of the processors), and
BrokerFlow's payments and ledger.

`make test` runs 60 deposits and 25 withdrawals; `--chaos-full` runs 500 and 200.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.chaos.money_driver import (
    NAMES,
    TERMINAL,
    WAITS_FOR_STAFF,
    Books,
    ClientApi,
    Customer,
    MoneyDriver,
    Mt5Budget,
    Outcome,
    PaymentRow,
    WorkerKiller,
    cents,
    percentile,
    plan_deposits,
    plan_withdrawals,
    prepare_accounts,
    read_books,
    start_worker,
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
    {"path": "/api/trade/balance", "mode": "drop_after_commit", "probability": 0.05},
    {"path": "/api/trade/balance", "mode": "drop_before_commit", "probability": 0.02},
    {"path": "/api/trade/balance", "mode": "retcode", "retcode": 12, "probability": 0.02},
    {"path": "/api/trade/balance", "mode": "latency", "latency_ms": 300, "probability": 0.2},
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


DEFAULT = Size(60, 25, 6, 16, 6, kills=4, load_seconds=360, settle_seconds=90)
FULL = Size(500, 200, 16, 24, 8, kills=20, load_seconds=2400, settle_seconds=300)


@pytest.fixture
def money_stack(
    pg_cluster_url: str, temporal_env: WorkflowEnvironment, artifacts_dir: Path
) -> Iterator[tuple[Stack, Simulator, PspSimulator]]:
    logs = artifacts_dir / "logs" / f"money-chaos-{time.strftime('%Y%m%dT%H%M%S')}"
    db = database.create_database(pg_cluster_url, prefix="chaos")
    simulator = start_simulator(logs)
    api_port = free_port()
    psp = start_psp_simulator(logs, f"http://127.0.0.1:{api_port}/v1/webhooks")
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
        start_worker(stack)
        stack.start_api()
        yield stack, simulator, psp
    finally:
        stack.stop()
        psp.stop()
        simulator.child.stop()
        database.drop_database(pg_cluster_url, db)


@pytest.mark.timeout(3600)  # bounded inside by the size's own deadlines
def test_no_credit_is_lost_or_doubled_under_worker_kills_and_faults(
    money_stack: tuple[Stack, Simulator, PspSimulator], request: pytest.FixtureRequest
) -> None:
    stack, simulator, psp = money_stack
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
        outcomes, killer, load_seconds = run_load(stack, api, psp, customers, size, rng)
        settled_in = wait_until_settled(api, psp, customers, size.settle_seconds)
        duration = time.monotonic() - started
    finally:
        api.close()

    books = asyncio.run(read_books(stack.owner_url, customers))
    problems = reconcile(outcomes, books, customers, simulator, psp, size)

    fault_rules = httpx.get(f"{simulator.base_url}/_sim/faults", verify=False).json()["rules"]
    hits = {str(rule["mode"]): int(rule["hits"]) for rule in fault_rules}
    deliveries = psp.deliveries()
    copies = Counter(d["body"] for d in deliveries)
    duplicated = sum(1 for n in copies.values() if n > 1)
    if len(killer.kills) < 3:
        problems.append(f"the worker was killed only {len(killer.kills)} times")
    if any(status != -9 for status in killer.kills):
        problems.append(f"a kill was not a SIGKILL: exit statuses {killer.kills}")
    if simulator.fault_hits() == 0 or hits.get("drop_after_commit", 0) == 0:
        problems.append(f"the MT5 faults did not fire: {hits}")
    if duplicated == 0:
        problems.append("no webhook was delivered twice")
    stored = {outcome: n for outcome, n in books.webhook_outcomes.items() if outcome != "accepted"}
    if stored or books.webhook_outcomes.get("accepted", 0) != len(copies):
        problems.append(
            f"{len(copies)} distinct webhook events sent, stored as {books.webhook_outcomes}"
        )
    undelivered = [d for d in deliveries if d["outcome"] != "delivered"]
    if undelivered:
        problems.append(f"{len(undelivered)} webhook copies were not delivered: {undelivered[:3]}")

    latencies = [o.seconds for o in outcomes if o.seconds is not None]
    completed = Counter((p.direction, p.status) for p in books.payments)
    print(
        f"\nmoney chaos: {size.deposits} deposits ({completed['deposit', 'completed']} completed), "
        f"{size.withdrawals} withdrawals ({completed['withdrawal', 'completed']} completed), "
        f"{len(customers)} clients, {sum(len(c.logins) for c in customers)} MT5 accounts; "
        f"worker SIGKILLed {len(killer.kills)}x (restarts took "
        f"{', '.join(f'{t:.0f}' for t in killer.restart_seconds)}s); "
        f"MT5 faults fired {hits}; webhooks {len(deliveries)} copies, {duplicated} duplicated, "
        f"stored as {books.webhook_outcomes}; request-to-terminal p50 "
        f"{percentile(latencies, 0.5):.1f}s p99 {percentile(latencies, 0.99):.1f}s; "
        f"load {load_seconds:.0f}s, stragglers {settled_in:.0f}s, {duration:.0f}s in all; "
        f"{len(problems)} problems"
    )
    assert not problems, "\n".join(problems[:60])


def run_load(
    stack: Stack,
    api: ClientApi,
    psp: PspSimulator,
    customers: list[Customer],
    size: Size,
    rng: random.Random,
) -> tuple[list[Outcome], WorkerKiller, float]:
    """Deposits and withdrawals from many threads while the worker is SIGKILLed `size.kills`
    times, spread over the run; returns the outcomes, the killer, and how long it all took."""
    deposits = plan_deposits(customers, size.deposits, rng)
    withdrawals = plan_withdrawals(size.withdrawals, rng)
    owners = {login: c for c in customers for login in c.logins}
    budget = Mt5Budget(owners, random.Random(rng.random()))
    started = time.monotonic()
    total = 2 * (len(deposits) + len(withdrawals))
    driver = MoneyDriver(api, psp, budget, started + size.load_seconds, total)
    killer = WorkerKiller(stack, driver, random.Random(rng.random()), size.kills)
    with (
        webhook_flusher(driver, every=3.0),
        ThreadPoolExecutor(size.deposit_threads, "deposit") as deposit_pool,
        ThreadPoolExecutor(size.withdrawal_threads, "withdrawal") as withdrawal_pool,
    ):
        killer.start()
        deposit_jobs = [deposit_pool.submit(driver.deposit, plan) for plan in deposits]
        withdrawal_jobs = [withdrawal_pool.submit(driver.withdrawal, plan) for plan in withdrawals]
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
    api: ClientApi, psp: PspSimulator, customers: list[Customer], seconds: float
) -> float:
    """Until every payment is terminal (or waits for staff) and no webhook is still on its way;
    returns how long that took. Bounded: what is still open then is reported by the checks."""
    started = time.monotonic()
    while time.monotonic() < started + seconds:
        psp.flush_webhooks()
        open_payments = [
            p
            for customer in customers
            for p in all_payments(api, customer)
            if p["status"] not in TERMINAL | WAITS_FOR_STAFF
        ]
        in_flight = [d for d in psp.deliveries() if d["outcome"] == "pending"]
        if not open_payments and not in_flight:
            break
        time.sleep(1)
    return time.monotonic() - started


def all_payments(api: ClientApi, customer: Customer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = api.call(
            customer, "GET", "/v1/me/payments", params={"limit": 200, "offset": len(found)}
        )
        found += page
        if len(page) < 200:
            return found


def reconcile(
    outcomes: list[Outcome],
    books: Books,
    customers: list[Customer],
    simulator: Simulator,
    psp: PspSimulator,
    size: Size,
) -> list[str]:
    problems = [
        f"{o.kind} #{o.index} ({o.provider}, {o.amount}, MT5 {o.login}, payment {o.payment_id}): "
        f"{o.error}"
        for o in outcomes
        if o.error
    ]
    payments = {p.id: p for p in books.payments}
    deposits = [p for p in books.payments if p.direction == "deposit"]
    withdrawals = [p for p in books.payments if p.direction == "withdrawal"]
    if len(deposits) != size.deposits or len(withdrawals) != size.withdrawals:
        problems.append(
            f"{len(deposits)} deposits and {len(withdrawals)} withdrawals recorded, "
            f"{size.deposits} and {size.withdrawals} asked for"
        )
    for outcome in outcomes:
        if outcome.payment_id is not None and outcome.payment_id not in payments:
            problems.append(f"payment {outcome.payment_id} the client was given is not recorded")
    problems += [
        f"{p.direction} {p.reference} ({p.provider}, {p.amount} {p.currency}, MT5 "
        f"{p.mt5_login}) is {p.status}: {p.failure_reason or ''} flags {list(p.risk_flags)}"
        for p in books.payments
        if p.status != "completed"
    ]
    completed = [p for p in books.payments if p.status == "completed"]
    problems += mt5_problems(completed, books, customers, simulator)
    problems += wallet_problems(completed, books, customers)
    problems += psp_problems(completed, books, psp.state())
    return problems


def mt5_problems(
    completed: list[PaymentRow], books: Books, customers: list[Customer], simulator: Simulator
) -> list[str]:
    """One balance deal per completed payment to or from each account, none twice, and MT5's
    balance = the deals' sum = minus the ledger's mirror of the account."""
    problems = []
    users = {int(u["Login"]): u for u in simulator_users(simulator.base_url)}
    for login in [login for customer in customers for login in customer.logins]:
        expected: dict[str, Decimal] = {}
        for p in completed:
            if p.mt5_login == login:
                purpose, sign = ("dep", 1) if p.direction == "deposit" else ("wd", -1)
                expected[f"{purpose} {p.reference}"] = sign * p.amount
        deals = [
            d
            for d in simulator_deals(simulator.base_url, login)
            if int(d["Action"]) == BALANCE_DEAL
        ]
        twice = [c for c, n in Counter(d["Comment"] for d in deals).items() if n > 1]
        if twice:
            problems.append(f"MT5 {login}: balance deals made twice: {twice}")
        actual: dict[str, Decimal] = defaultdict(Decimal)
        for deal in deals:
            actual[deal["Comment"]] += Decimal(deal["Profit"])
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        different = sorted(c for c in set(expected) & set(actual) if expected[c] != actual[c])
        if missing or extra or different:
            problems.append(
                f"MT5 {login}: credits lost {missing}, unexplained deals "
                f"{[(c, actual[c]) for c in extra]}, wrong amounts "
                f"{[(c, expected[c], actual[c]) for c in different]}"
            )
        balance = Decimal(users[login]["Balance"])
        owed = sum(expected.values(), Decimal(0))
        mirror = books.mirrors[login]
        if not balance == owed == -mirror:
            problems.append(
                f"MT5 {login}: balance {balance}, completed payments say {owed}, "
                f"ledger mirror {-mirror}"
            )
    return problems


def wallet_problems(
    completed: list[PaymentRow], books: Books, customers: list[Customer]
) -> list[str]:
    """Each wallet holds exactly its completed wallet deposits; nothing is left in a hold or in
    suspense, and every journal entry balances."""
    problems = []
    for customer in customers:
        owed = sum(
            (
                p.amount
                for p in completed
                if p.client_id == customer.client_id
                and p.direction == "deposit"
                and p.mt5_login is None
            ),
            Decimal(0),
        )
        in_wallet = -books.wallets[customer.client_id]
        if in_wallet != owed:
            problems.append(
                f"wallet of {customer.client_id}: {in_wallet} in the books, deposits say {owed}"
            )
        if books.holds[customer.client_id] != 0:
            problems.append(
                f"hold of {customer.client_id}: {-books.holds[customer.client_id]} left over"
            )
    if books.suspense != 0:
        problems.append(f"incoming suspense holds {-books.suspense}")
    if books.unbalanced_entries:
        problems.append(f"{books.unbalanced_entries} journal entries do not balance")
    return problems


def psp_problems(completed: list[PaymentRow], books: Books, state: dict[str, Any]) -> list[str]:
    """The processors' ground truth against BrokerFlow's payments and PSP clearing accounts."""
    problems = []
    by_reference = {p.reference: p for p in completed}
    by_transfer_reference: dict[str, list[PaymentRow]] = defaultdict(list)
    for p in completed:
        if p.transfer_reference:
            by_transfer_reference[p.transfer_reference].append(p)

    def matches(p: PaymentRow | None, direction: str, provider: str, amount: Decimal) -> bool:
        return (
            p is not None
            and p.direction == direction
            and p.provider == provider
            and p.amount == amount
            and p.currency == "USD"
        )

    intents = state["cardco"]["intents"]
    succeeded = [i for i in intents if i["status"] == "succeeded"]
    if len(succeeded) != len(intents):
        problems.append(
            f"CardCo intents not succeeded: {[i for i in intents if i not in succeeded]}"
        )
    for intent in succeeded:
        if not matches(
            by_reference.get(intent["reference"]), "deposit", "cardco", cents(intent["amount"])
        ):
            problems.append(f"CardCo payment {intent['id']} has no completed deposit: {intent}")
    transfers = state["bankco"]["transfers"]
    for transfer in transfers:
        found = by_transfer_reference.get(transfer["reference"], [])
        if len(found) != 1 or not matches(
            found[0], "deposit", "bankco", Decimal(transfer["amount"])
        ):
            problems.append(f"BankCo transfer {transfer['id']} matches deposits {found}")
    payouts = state["bankco"]["payouts"]
    for payout in payouts:
        if payout["status"] != "settled":
            problems.append(f"BankCo payout {payout['id']} is {payout['status']}")
        if not matches(
            by_reference.get(payout["reference"]), "withdrawal", "bankco", Decimal(payout["amount"])
        ):
            problems.append(f"BankCo payout {payout['id']} has no completed withdrawal: {payout}")
    paid_twice = [r for r, n in Counter(p["reference"] for p in payouts).items() if n > 1]
    if paid_twice:
        problems.append(f"references paid out twice: {paid_twice}")

    # The other way round: every completed payment is exactly one processor payment.
    known = Counter(i["reference"] for i in succeeded)
    received = Counter(t["reference"] for t in transfers)
    sent = Counter(p["reference"] for p in payouts if p["status"] == "settled")
    for p in completed:
        if p.direction == "deposit" and p.provider == "cardco":
            count = known[p.reference]
        elif p.direction == "deposit":
            count = received[p.transfer_reference or ""]
        else:
            count = sent[p.reference]
        if count != 1:
            problems.append(f"{p.direction} {p.reference} is {count} processor payments")

    card_in = sum((cents(i["amount"]) for i in succeeded), Decimal(0))
    bank_in = sum((Decimal(t["amount"]) for t in transfers), Decimal(0))
    bank_out = sum((Decimal(p["amount"]) for p in payouts if p["status"] == "settled"), Decimal(0))
    if books.clearing["cardco"] != card_in:
        problems.append(f"CardCo clearing {books.clearing['cardco']}, CardCo collected {card_in}")
    if books.clearing["bankco"] != bank_in - bank_out:
        problems.append(
            f"BankCo clearing {books.clearing['bankco']}, BankCo received {bank_in} "
            f"and paid out {bank_out}"
        )
    return problems
