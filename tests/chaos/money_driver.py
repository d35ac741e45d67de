"""Money through the running stack for the chaos test: clients over HTTP, deposits paid on the
PSP simulator, withdrawals against money already credited, a worker killer, and the books read
back afterwards.

Everything here talks to the stack the way its users do (HTTP for clients, the simulators' own
surfaces for payers and processors); only the final read of the books goes to the database.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select

from db import ledger
from db.models import Payment, PostingRow, WebhookEvent
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.funds import incoming_suspense, mt5_mirror, psp_clearing
from domain.wallets import hold_account, wallet
from mt5_adapter.webapi import gateway_for
from tests.conftest import make_settings, mt5_settings_for
from tests.e2e.helpers import new_applicant
from tests.support.accounts import approve_kyc, open_live_account
from tests.support.processes import PspSimulator, Simulator, wait_for_log
from tests.support.stack import Stack

IBAN = "DE89370400440532013000"
CURRENCY = "USD"
SERVER = "demo"
TERMINAL = {"completed", "rejected", "failed", "expired", "cancelled"}
# Waiting for a person: nothing in this run decides, so these are as far as a payment gets.
WAITS_FOR_STAFF = {"held", "pending_approval"}
POLL_SECONDS = 1.0
NAMES = [
    "Erika Mustermann",
    "Jürgen Müller",
    "Amélie Dubois",
    "Kenji Watanabe",
    "Sofia Rossi",
    "Olumide Adeyemi",
    "Ingrid Johansson",
    "Mateus Oliveira",
    "Zofia Nowak",
    "Liam O'Connor",
]


class DriverError(AssertionError):
    """The stack answered what a client (or a payer) cannot go on from."""


def cents(value: int) -> Decimal:
    return Decimal(value) / 100


# -- clients ------------------------------------------------------------------------------------


@dataclass
class Customer:
    email: str
    password: str
    full_name: str
    client_id: uuid.UUID = field(default_factory=uuid.uuid4)
    logins: list[int] = field(default_factory=list)
    token: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class ClientApi:
    """Clients' HTTP calls from many threads: one connection pool per thread, a new access token
    when the old one expires (a full-size run outlives its 15 minutes), and patient retries of
    what a real client retries: no answer, or a 5xx. A POST is retried with its Idempotency-Key,
    so a retry can never make a second payment."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, timeout=30)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def sign_up(self, full_name: str) -> Customer:
        applicant = new_applicant(full_name=full_name)
        response = self._http().post("/v1/signup", json=applicant)
        if response.status_code != 202:
            raise DriverError(f"sign-up refused: {response.status_code} {response.text}")
        customer = Customer(applicant["email"], applicant["password"], full_name)
        self.log_in(customer)
        customer.client_id = uuid.UUID(self.call(customer, "GET", "/v1/me")["id"])
        return customer

    def log_in(self, customer: Customer) -> None:
        with customer.lock:
            response = self._http().post(
                "/v1/auth/client/login",
                json={"email": customer.email, "password": customer.password},
            )
            if response.status_code != 200:
                raise DriverError(f"log-in refused: {response.status_code} {response.text}")
            customer.token = response.json()["access_token"]

    def call(
        self,
        customer: Customer,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        expect: tuple[int, ...] = (200,),
        params: dict[str, Any] | None = None,
    ) -> Any:
        last = "no attempt"
        for attempt in range(8):
            headers = customer.headers()
            if key is not None:
                headers["Idempotency-Key"] = key
            try:
                response = self._http().request(
                    method, path, json=body, headers=headers, params=params
                )
            except httpx.TransportError as exc:
                last = repr(exc)
                time.sleep(0.25 * (attempt + 1))
                continue
            if response.status_code == 401:
                last = "401"
                self.log_in(customer)
                continue
            if response.status_code >= 500:
                last = f"{response.status_code} {response.text[:300]}"
                time.sleep(0.25 * (attempt + 1))
                continue
            if response.status_code not in expect:
                raise DriverError(
                    f"{method} {path} {body or ''} answered {response.status_code}: "
                    f"{response.text[:500]}"
                )
            return response.json()
        raise DriverError(f"{method} {path} never answered: {last}")


# -- the money plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DepositPlan:
    index: int
    customer: Customer
    provider: str  # cardco | bankco
    login: int | None  # None: the wallet
    amount: Decimal
    replay: bool  # send the request a second time with the same Idempotency-Key


@dataclass(frozen=True)
class WithdrawalPlan:
    index: int
    amount: Decimal


@dataclass
class Outcome:
    """What one client saw of one payment."""

    kind: str  # deposit | withdrawal
    index: int
    customer: Customer
    amount: Decimal
    provider: str
    login: int | None = None
    payment_id: str | None = None
    reference: str | None = None
    status: str | None = None
    seconds: float | None = None  # request to terminal status
    error: str | None = None


def plan_deposits(customers: list[Customer], count: int, rng: random.Random) -> list[DepositPlan]:
    plans = []
    for index in range(count):
        customer = rng.choice(customers)
        login = rng.choice(customer.logins) if rng.random() < 0.7 else None
        plans.append(
            DepositPlan(
                index=index,
                customer=customer,
                provider=rng.choice(["cardco", "bankco"]),
                login=login,
                amount=cents(rng.randrange(5_000, 60_000)),
                replay=rng.random() < 0.1,
            )
        )
    return plans


def plan_withdrawals(count: int, rng: random.Random) -> list[WithdrawalPlan]:
    return [WithdrawalPlan(index, cents(rng.randrange(1_000, 3_000))) for index in range(count)]


class Mt5Budget:
    """Money known to be on each MT5 account (completed deposits to it) less what withdrawals
    have claimed: a withdrawal is only ever asked for against money already credited."""

    def __init__(self, owners: dict[int, Customer], rng: random.Random) -> None:
        self._owners = owners
        self._spare: dict[int, Decimal] = dict.fromkeys(owners, Decimal(0))
        self._rng = rng
        self._changed = threading.Condition()
        self.closed = False

    def credit(self, login: int, amount: Decimal) -> None:
        with self._changed:
            self._spare[login] += amount
            self._changed.notify_all()

    def close(self) -> None:
        """No more credit is coming: waiting withdrawals give up."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def claim(self, amount: Decimal, deadline: float) -> tuple[Customer, int] | None:
        with self._changed:
            while True:
                able = sorted(login for login, spare in self._spare.items() if spare >= amount)
                if able:
                    login = self._rng.choice(able)
                    self._spare[login] -= amount
                    return self._owners[login], login
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self._changed.wait(min(left, 1.0))


class MoneyDriver:
    """Runs deposits and withdrawals as their clients and payers would, counting progress: two
    steps per payment (paid or asked for; finished), so `progress / total` says how far the run
    is whatever its size."""

    def __init__(
        self, api: ClientApi, psp: PspSimulator, budget: Mt5Budget, deadline: float, total: int
    ) -> None:
        self.api = api
        self.psp = psp
        self.budget = budget
        self.deadline = deadline
        self.total = total
        # The PSP helper shares one HTTP client: one payer at a time (each call takes ms).
        self.psp_lock = threading.Lock()
        self.progress = 0
        self.paid = 0
        self._count = threading.Lock()

    def _step(self, paid: bool = False) -> None:
        with self._count:
            self.progress += 1
            self.paid += paid

    def _poll(
        self, customer: Customer, payment_id: str, done: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        while time.monotonic() < self.deadline:
            seen = self.api.call(customer, "GET", f"/v1/me/payments/{payment_id}")
            if done(seen):
                return seen
            time.sleep(POLL_SECONDS)
        raise DriverError(f"payment {payment_id} still {seen.get('status')} at the deadline")

    @staticmethod
    def _settled(payment: dict[str, Any]) -> bool:
        return payment["status"] in TERMINAL | WAITS_FOR_STAFF

    def deposit(self, plan: DepositPlan) -> Outcome:
        customer = plan.customer
        outcome = Outcome(
            "deposit", plan.index, customer, plan.amount, plan.provider, login=plan.login
        )
        steps = 2
        try:
            body: dict[str, Any] = {
                "provider": plan.provider,
                "amount": f"{plan.amount:.2f}",
                "currency": CURRENCY,
            }
            if plan.login is not None:
                body["mt5_login"] = plan.login
            key = str(uuid.uuid4())
            started = time.monotonic()
            payment = self.api.call(
                customer, "POST", "/v1/me/deposits", body=body, key=key, expect=(202,)
            )
            outcome.payment_id, outcome.reference = payment["id"], payment["reference"]
            if plan.replay:
                again = self.api.call(
                    customer, "POST", "/v1/me/deposits", body=body, key=key, expect=(202,)
                )
                if again["id"] != payment["id"]:
                    raise DriverError(
                        f"the same Idempotency-Key made a second deposit: {again['id']} "
                        f"besides {payment['id']}"
                    )
            ready = self._poll(
                customer,
                payment["id"],
                lambda p: bool(p["redirect_url"] or p["transfer_reference"]) or self._settled(p),
            )
            with self.psp_lock:
                if plan.provider == "cardco":
                    self.psp.pay(str(ready["redirect_url"]).rstrip("/").rsplit("/", 1)[-1])
                else:
                    self.psp.incoming(
                        str(ready["transfer_reference"]),
                        f"{plan.amount:.2f}",
                        CURRENCY,
                        customer.full_name,
                    )
            self._step(paid=True)
            steps -= 1
            final = self._poll(customer, payment["id"], self._settled)
            outcome.status = final["status"]
            outcome.seconds = time.monotonic() - started
            if final["status"] == "completed" and plan.login is not None:
                self.budget.credit(plan.login, Decimal(final["amount"]))
        except Exception as exc:  # reported with the outcome, asserted later
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            for _ in range(steps):
                self._step()
        return outcome

    def withdrawal(self, plan: WithdrawalPlan) -> Outcome:
        outcome = Outcome(
            "withdrawal", plan.index, Customer("", "", "nobody"), plan.amount, "bankco"
        )
        steps = 2
        try:
            claim = self.budget.claim(plan.amount, self.deadline)
            if claim is None:
                raise DriverError("no MT5 account had the money credited before the deadline")
            outcome.customer, outcome.login = claim
            body = {
                "provider": "bankco",
                "amount": f"{plan.amount:.2f}",
                "currency": CURRENCY,
                "mt5_login": outcome.login,
                "beneficiary_name": outcome.customer.full_name,
                "beneficiary_account": IBAN,
            }
            started = time.monotonic()
            payment = self.api.call(
                outcome.customer,
                "POST",
                "/v1/me/withdrawals",
                body=body,
                key=str(uuid.uuid4()),
                expect=(202,),
            )
            outcome.payment_id, outcome.reference = payment["id"], payment["reference"]
            self._step()
            steps -= 1
            final = self._poll(outcome.customer, payment["id"], self._settled)
            outcome.status = final["status"]
            outcome.seconds = time.monotonic() - started
        except Exception as exc:  # reported with the outcome, asserted later
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            for _ in range(steps):
                self._step()
        return outcome


# -- chaos --------------------------------------------------------------------------------------

WORKER_READY = "worker running on task queues"


def start_worker(stack: Stack, patience: float = 240) -> float:
    """A new worker process, up and polling; returns how long it took to start. A busy machine
    can take longer than `Stack.start_worker` waits: then it is waited for a while more."""
    started = time.monotonic()
    try:
        stack.start_worker()
    except TimeoutError:
        assert stack.worker is not None
        wait_for_log(stack.worker, WORKER_READY, timeout=patience)
    return time.monotonic() - started


class WorkerKiller(threading.Thread):
    """SIGKILLs the stack's worker `kills` times and starts a new one each time.

    The kills are spread over the first four fifths of the run by its progress: kill n of k
    comes once 0.8 n/k of the work is done and the worker has been up a few seconds (a seeded
    draw), then after a seeded random delay, so each lands at a random moment with payments in
    every stage in flight. (On a slow machine a plain clock would only kill workers that never
    got to work: a restart takes seconds there, and dozens of workflows replay after each.)"""

    def __init__(
        self,
        stack: Stack,
        driver: MoneyDriver,
        rng: random.Random,
        kills: int,
        uptime: tuple[float, float] = (2.0, 6.0),
    ) -> None:
        super().__init__(name="worker-killer", daemon=True)
        self.stack = stack
        self.driver = driver
        self.rng = rng
        self.planned = kills
        self.uptime = uptime
        self.kills: list[int | None] = []  # each killed process's exit status (-9: SIGKILL)
        self.restart_seconds: list[float] = []
        self.error: BaseException | None = None
        self._stop_asked = threading.Event()

    def _due(self, number: int, up_since: float, up_for: float) -> bool:
        driver = self.driver
        return (
            driver.progress * self.planned * 5 >= driver.total * number * 4
            and time.monotonic() - up_since >= up_for
        )

    def run(self) -> None:
        try:
            up_since = time.monotonic()
            while len(self.kills) < self.planned:
                number = len(self.kills) + 1
                up_for = self.rng.uniform(*self.uptime)
                while not self._due(number, up_since, up_for):
                    if self._stop_asked.wait(0.2):
                        return
                if self._stop_asked.wait(self.rng.uniform(0, 2)):
                    return
                worker = self.stack.worker
                assert worker is not None
                worker.kill()
                self.kills.append(worker.process.returncode)
                print(
                    f"  worker SIGKILLed (#{number}) at {self.driver.progress}/"
                    f"{self.driver.total} steps, starting a new one",
                    flush=True,
                )
                self.restart_seconds.append(start_worker(self.stack))
                up_since = time.monotonic()
        except BaseException as exc:  # re-raised by stop()
            self.error = exc

    def stop(self) -> None:
        self._stop_asked.set()
        self.join(300)
        if self.error is not None:
            raise DriverError(f"the worker killer failed: {self.error!r}") from self.error
        if self.is_alive():
            raise DriverError("the worker killer did not stop")


@contextmanager
def webhook_flusher(driver: MoneyDriver, every: float) -> Iterator[None]:
    """Events a reorder window holds wait for the next ones; at the tail of the run no more come,
    so they are sent now and then (the window still reorders everything in between)."""
    stop = threading.Event()

    def flush() -> None:
        while not stop.wait(every):
            with driver.psp_lock:
                driver.psp.flush_webhooks()

    thread = threading.Thread(target=flush, name="webhook-flusher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


# -- setting up and reading back ----------------------------------------------------------------


async def prepare_accounts(
    owner_url: str, simulator: Simulator, customers: list[Customer], rng: random.Random
) -> None:
    """KYC approved, and one or two live USD MT5 accounts each."""
    settings = make_settings(owner_url)
    engine = create_engine(app_database_url(owner_url, settings), pool_size=2)
    sessions = create_sessionmaker(engine)
    gateway = gateway_for(mt5_settings_for(simulator))
    try:
        for customer in customers:
            await approve_kyc(sessions, customer.client_id)
            for _ in range(rng.choice([1, 2])):
                login = await open_live_account(
                    sessions, gateway, customer.client_id, currency=CURRENCY, server=SERVER
                )
                customer.logins.append(login)
    finally:
        await gateway.aclose()
        await engine.dispose()


@dataclass(frozen=True)
class PaymentRow:
    id: str
    client_id: uuid.UUID
    direction: str
    provider: str
    reference: str
    status: str
    amount: Decimal
    requested: Decimal
    currency: str
    mt5_login: int | None
    transfer_reference: str | None
    provider_ref: str | None
    failure_reason: str | None
    risk_flags: tuple[str, ...]


@dataclass
class Books:
    payments: list[PaymentRow]
    mirrors: dict[int, Decimal]  # login -> ledger balance of its mirror (debit positive)
    wallets: dict[uuid.UUID, Decimal]
    holds: dict[uuid.UUID, Decimal]
    clearing: dict[str, Decimal]
    suspense: Decimal
    unbalanced_entries: int
    webhook_outcomes: dict[str, int]


async def read_books(owner_url: str, customers: list[Customer]) -> Books:
    settings = make_settings(owner_url)
    engine = create_engine(app_database_url(owner_url, settings), pool_size=2)
    try:
        async with create_sessionmaker(engine)() as session:
            payments = [
                PaymentRow(
                    id=str(p.id),
                    client_id=p.client_id,
                    direction=p.direction,
                    provider=p.provider,
                    reference=p.reference,
                    status=p.status,
                    amount=cents(p.amount_minor),
                    requested=cents(p.requested_minor),
                    currency=p.currency,
                    mt5_login=p.mt5_login,
                    transfer_reference=p.transfer_reference,
                    provider_ref=p.provider_ref,
                    failure_reason=p.failure_reason,
                    risk_flags=tuple(p.risk_flags or ()),
                )
                for p in await session.scalars(select(Payment))
            ]

            async def balance(code: str) -> Decimal:
                return (await ledger.balance(session, code, CURRENCY)).amount

            mirrors = {
                login: await balance(mt5_mirror(SERVER, login, CURRENCY))
                for customer in customers
                for login in customer.logins
            }
            wallets = {
                c.client_id: await balance(wallet(str(c.client_id), CURRENCY)) for c in customers
            }
            holds = {
                c.client_id: await balance(hold_account(str(c.client_id), CURRENCY))
                for c in customers
            }
            clearing = {
                provider: await balance(psp_clearing(provider, CURRENCY))
                for provider in ("cardco", "bankco")
            }
            suspense = await balance(incoming_suspense(CURRENCY))
            per_entry = (
                select(PostingRow.entry_id)
                .group_by(PostingRow.entry_id, PostingRow.currency)
                .having(func.sum(PostingRow.amount_minor) != 0)
                .subquery()
            )
            unbalanced = int(await session.scalar(select(func.count()).select_from(per_entry)) or 0)
            outcomes = {
                str(outcome): int(count)
                for outcome, count in await session.execute(
                    select(WebhookEvent.outcome, func.count()).group_by(WebhookEvent.outcome)
                )
            }
    finally:
        await engine.dispose()
    return Books(payments, mirrors, wallets, holds, clearing, suspense, unbalanced, outcomes)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
