"""Money through the running stack for the chaos test: clients over HTTP, deposits paid on the
PSP simulator (some paid twice on one reference, some whose webhook is lost), withdrawals and
transfers against money already credited, a worker killer, a webhook path that loses what it is
told to, and the books read back afterwards.

Everything here talks to the stack the way its users do (HTTP for clients, the simulators' own
surfaces for payers and processors); only the final read of the books goes to the database.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from sqlalchemy import func, select

from db import ledger
from db.models import (
    FinanceCase,
    JournalEntryRow,
    LedgerAccount,
    Payment,
    PostingRow,
    Transfer,
    UnmatchedFunds,
    WebhookEvent,
)
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
TERMINAL = {"completed", "rejected", "failed", "expired", "cancelled", "needs_attention"}
# Undone: nothing moved (the money is back where it came from).
UNDONE = {"rejected", "failed", "cancelled"}
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


# -- the processors' webhooks, through a path that loses some ------------------------------------


def event_reference(body: bytes) -> tuple[str, str]:
    """(event type, the reference it carries) of a CardCo or BankCo webhook body."""
    event = json.loads(body)
    data = event.get("data", {})
    found = data.get("object", data)
    return str(event.get("type") or event.get("event")), str(found.get("reference", ""))


class WebhookProxy:
    """Between the PSP simulator and BrokerFlow's webhook endpoint: forwards every event, but
    loses (answers 200 without forwarding, so the processor never sends it again) the events
    whose reference it was told to lose. A payout event whose reference is not decided yet is
    answered 503 (the processor retries it shortly), so the driver can decide after it asked
    for the withdrawal without racing the payout. The PSP simulator has no "drop" fault of its
    own; this stands for an event lost between the processor and the API."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self._lose: set[str] = set()
        self._keep: set[str] = set()
        self._lock = threading.Lock()
        self.lost: dict[str, set[str]] = defaultdict(set)  # reference -> event bodies lost
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = proxy._handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/v1/webhooks"
        self._http = httpx.Client(timeout=30)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def lose(self, reference: str) -> None:
        with self._lock:
            self._lose.add(reference)

    def keep(self, reference: str) -> None:
        with self._lock:
            self._keep.add(reference)

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        kind, reference = event_reference(body)
        with self._lock:
            if reference in self._lose:
                self.lost[reference].add(body.decode())
                return 200, b"{}"
            undecided = kind.startswith("payout.") and reference not in self._keep
        if undecided:
            return 503, b'{"detail": "not decided yet"}'
        forward = {k: v for k, v in headers.items() if k.lower() not in {"host", "content-length"}}
        try:
            response = self._http.post(
                f"{self.target}{path.removeprefix('/v1/webhooks')}", content=body, headers=forward
            )
        except httpx.TransportError:
            return 502, b"{}"
        return response.status_code, response.content

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


# -- the money plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DepositPlan:
    index: int
    customer: Customer
    provider: str  # cardco | bankco
    login: int | None  # None: the wallet
    amount: Decimal
    replay: bool  # send the request a second time with the same Idempotency-Key
    lose_webhook: bool = False  # the processor's "paid" event never reaches BrokerFlow
    second_payment: Decimal | None = None  # BankCo: a second transfer on the same reference


@dataclass(frozen=True)
class WithdrawalPlan:
    index: int
    amount: Decimal
    lose_webhook: bool = False  # the payout's "settled" event never reaches BrokerFlow


@dataclass(frozen=True)
class TransferPlan:
    index: int
    amount: Decimal


@dataclass
class Outcome:
    """What one client saw of one payment."""

    kind: str  # deposit | withdrawal | transfer
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
    lost_webhook: bool = False


def plan_deposits(
    customers: list[Customer], count: int, rng: random.Random, lost: int = 0, twice: int = 0
) -> list[DepositPlan]:
    """`lost` of them lose their webhook, `twice` others (BankCo) are paid twice."""
    plans = []
    losing = set(rng.sample(range(count), lost))
    paid_twice = set(rng.sample(sorted(set(range(count)) - losing), twice))
    for index in range(count):
        customer = rng.choice(customers)
        login = rng.choice(customer.logins) if rng.random() < 0.7 else None
        provider = rng.choice(["cardco", "bankco"])
        amount = cents(rng.randrange(5_000, 60_000))
        if index in paid_twice:
            provider = "bankco"
        plans.append(
            DepositPlan(
                index=index,
                customer=customer,
                provider=provider,
                login=login,
                amount=amount,
                replay=rng.random() < 0.1,
                lose_webhook=index in losing,
                second_payment=cents(rng.randrange(1_000, 5_000)) if index in paid_twice else None,
            )
        )
    return plans


def plan_withdrawals(count: int, rng: random.Random, lost: int = 0) -> list[WithdrawalPlan]:
    losing = set(rng.sample(range(count), lost))
    return [
        WithdrawalPlan(index, cents(rng.randrange(1_000, 3_000)), lose_webhook=index in losing)
        for index in range(count)
    ]


def plan_transfers(count: int, rng: random.Random) -> list[TransferPlan]:
    return [TransferPlan(index, cents(rng.randrange(500, 2_000))) for index in range(count)]


# A pocket of a client's money: an MT5 login, or the client's (USD) wallet by client id.
PocketKey = int | uuid.UUID


class Mt5Budget:
    """Money known to be in each pocket (MT5 accounts and wallets: completed deposits and
    transfers to it, refused withdrawals and transfers given back) less what withdrawals and
    transfers have claimed: money is only ever asked for where it was already credited."""

    def __init__(self, owners: dict[PocketKey, Customer], rng: random.Random) -> None:
        self._owners = owners
        self._spare: dict[PocketKey, Decimal] = dict.fromkeys(owners, Decimal(0))
        self._rng = rng
        self._changed = threading.Condition()
        self.closed = False

    def credit(self, pocket: PocketKey, amount: Decimal) -> None:
        with self._changed:
            self._spare[pocket] += amount
            self._changed.notify_all()

    def close(self) -> None:
        """No more credit is coming: waiting withdrawals give up."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def claim(
        self, amount: Decimal, deadline: float, wallets: bool = False
    ) -> tuple[Customer, PocketKey] | None:
        """An MT5 account (or, with `wallets`, any pocket) with `amount` spare, claimed."""
        with self._changed:
            while True:
                able = sorted(
                    (pocket for pocket, spare in self._spare.items() if spare >= amount),
                    key=str,
                )
                if not wallets:
                    able = [pocket for pocket in able if isinstance(pocket, int)]
                if able:
                    pocket = self._rng.choice(able)
                    self._spare[pocket] -= amount
                    return self._owners[pocket], pocket
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self._changed.wait(min(left, 1.0))


# How long a payment whose webhook was lost is watched: it must stay visibly waiting.
LOST_WATCH_SECONDS = 4.0
# Where a payment whose processor event was lost waits (visible to the client and to finance).
WAITING_FOR_PROCESSOR = {"deposit": "awaiting_funds", "withdrawal": "payout_sent"}


class MoneyDriver:
    """Runs deposits, withdrawals and transfers as their clients and payers would, counting
    progress: two steps per movement (paid or asked for; finished), so `progress / total` says
    how far the run is whatever its size."""

    def __init__(
        self,
        api: ClientApi,
        psp: PspSimulator,
        budget: Mt5Budget,
        deadline: float,
        total: int,
        proxy: WebhookProxy | None = None,
    ) -> None:
        self.api = api
        self.psp = psp
        self.proxy = proxy
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
        self,
        customer: Customer,
        payment_id: str,
        done: Callable[[dict[str, Any]], bool],
        path: str = "/v1/me/payments",
        until: float | None = None,
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        until = self.deadline if until is None else until
        while time.monotonic() < until:
            seen = self.api.call(customer, "GET", f"{path}/{payment_id}")
            if done(seen):
                return seen
            time.sleep(POLL_SECONDS)
        if until != self.deadline:
            return seen
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
            if plan.lose_webhook:
                assert self.proxy is not None
                self.proxy.lose(ready["transfer_reference"] or payment["reference"])
                outcome.lost_webhook = True
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
            if plan.lose_webhook:  # nothing reaches BrokerFlow: the deposit waits, visibly
                until = time.monotonic() + LOST_WATCH_SECONDS
                final = self._poll(customer, payment["id"], self._settled, until=until)
            else:
                final = self._poll(customer, payment["id"], self._settled)
            outcome.status = final["status"]
            outcome.seconds = time.monotonic() - started
            if plan.second_payment is not None:
                # A second transfer quoting the same reference, once the first is taken (sent
                # earlier, a reordered webhook could make it the one the deposit takes, and the
                # announced amount would then not match): it belongs in the unmatched funds.
                with self.psp_lock:
                    self.psp.incoming(
                        str(ready["transfer_reference"]),
                        f"{plan.second_payment:.2f}",
                        CURRENCY,
                        customer.full_name,
                    )
            if final["status"] == "completed":
                wallet_fallback = (final["failure_reason"] or "").startswith("to the wallet")
                if plan.login is None or wallet_fallback:
                    self.budget.credit(customer.client_id, Decimal(final["amount"]))
                else:
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
            outcome.customer, login = claim
            assert isinstance(login, int)
            outcome.login = login
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
            if self.proxy is not None:  # decided now: the payout's events wait for it
                if plan.lose_webhook:
                    self.proxy.lose(payment["reference"])
                    outcome.lost_webhook = True
                else:
                    self.proxy.keep(payment["reference"])
            self._step()
            steps -= 1
            if plan.lose_webhook:  # the payout is sent and its verdict never arrives: it waits
                sent = self._poll(
                    outcome.customer,
                    payment["id"],
                    lambda p: (
                        p["status"] == WAITING_FOR_PROCESSOR["withdrawal"] or self._settled(p)
                    ),
                )
                final = sent
                if not self._settled(sent):
                    until = time.monotonic() + LOST_WATCH_SECONDS
                    final = self._poll(outcome.customer, payment["id"], self._settled, until=until)
            else:
                final = self._poll(outcome.customer, payment["id"], self._settled)
            outcome.status = final["status"]
            outcome.seconds = time.monotonic() - started
            if outcome.status in UNDONE:  # MT5 refused it, say: the money is back on MT5
                self.budget.credit(login, plan.amount)
        except Exception as exc:  # reported with the outcome, asserted later
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            for _ in range(steps):
                self._step()
        return outcome

    def transfer(self, plan: TransferPlan) -> Outcome:
        """From a pocket with money in it: an MT5 account to the wallet, or the wallet to one
        of the client's MT5 accounts."""
        outcome = Outcome("transfer", plan.index, Customer("", "", "nobody"), plan.amount, "-")
        steps = 2
        try:
            claim = self.budget.claim(plan.amount, self.deadline, wallets=True)
            if claim is None:
                raise DriverError("no pocket had the money credited before the deadline")
            customer, source = claim
            outcome.customer = customer
            if isinstance(source, int):
                destination: PocketKey = customer.client_id
                body: dict[str, Any] = {
                    "source": {"kind": "mt5", "login": source},
                    "destination": {"kind": "wallet", "currency": CURRENCY},
                }
            else:
                destination = customer.logins[plan.index % len(customer.logins)]
                body = {
                    "source": {"kind": "wallet"},
                    "destination": {"kind": "mt5", "login": destination},
                }
            outcome.login = source if isinstance(source, int) else int(destination)
            body |= {"amount": f"{plan.amount:.2f}", "currency": CURRENCY}
            started = time.monotonic()
            transfer = self.api.call(
                customer,
                "POST",
                "/v1/me/transfers",
                body=body,
                key=str(uuid.uuid4()),
                expect=(202,),
            )
            outcome.payment_id, outcome.reference = transfer["id"], transfer["reference"]
            self._step()
            steps -= 1
            final = self._poll(customer, transfer["id"], self._settled, path="/v1/me/transfers")
            outcome.status = final["status"]
            outcome.seconds = time.monotonic() - started
            if outcome.status == "completed":
                self.budget.credit(destination, plan.amount)
            elif outcome.status in UNDONE:
                self.budget.credit(source, plan.amount)
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


@dataclass(frozen=True)
class TransferRow:
    id: str
    client_id: uuid.UUID
    reference: str
    status: str
    amount: Decimal
    source_login: int | None
    destination_login: int | None
    failure_reason: str | None


@dataclass(frozen=True)
class CaseRow:
    movement_kind: str
    reference: str
    status: str
    amount: Decimal | None
    undone: list[dict[str, Any]]
    not_undone: list[dict[str, Any]]


@dataclass(frozen=True)
class UnmatchedRow:
    provider: str
    event_reference: str
    amount: Decimal
    reason: str
    status: str
    payment_id: str | None


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
    transfers: list[TransferRow] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)
    unmatched: list[UnmatchedRow] = field(default_factory=list)
    # movement reference (the head of an entry key) -> ledger account -> net (debit positive)
    by_reference: dict[str, dict[str, Decimal]] = field(default_factory=dict)


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
            transfers = [
                TransferRow(
                    id=str(t.id),
                    client_id=t.client_id,
                    reference=t.reference,
                    status=t.status,
                    amount=cents(t.amount_minor),
                    source_login=t.source_login,
                    destination_login=t.destination_login,
                    failure_reason=t.failure_reason,
                )
                for t in await session.scalars(select(Transfer))
            ]
            cases = [
                CaseRow(
                    movement_kind=c.movement_kind,
                    reference=c.reference,
                    status=c.status,
                    amount=None if c.amount_minor is None else cents(c.amount_minor),
                    undone=list(c.undone),
                    not_undone=list(c.not_undone),
                )
                for c in await session.scalars(select(FinanceCase))
            ]
            unmatched = [
                UnmatchedRow(
                    provider=u.provider,
                    event_reference=u.event_reference,
                    amount=cents(u.amount_minor),
                    reason=u.reason,
                    status=u.status,
                    payment_id=None if u.payment_id is None else str(u.payment_id),
                )
                for u in await session.scalars(select(UnmatchedFunds))
            ]
            by_reference: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
            rows = await session.execute(
                select(JournalEntryRow.idempotency_key, LedgerAccount.code, PostingRow.amount_minor)
                .join(PostingRow, PostingRow.entry_id == JournalEntryRow.id)
                .join(LedgerAccount, LedgerAccount.id == PostingRow.account_id)
            )
            for key, code, minor in rows:
                by_reference[str(key).split(":", 1)[0]][str(code)] += cents(int(minor))
    finally:
        await engine.dispose()
    return Books(
        payments,
        mirrors,
        wallets,
        holds,
        clearing,
        suspense,
        unbalanced,
        outcomes,
        transfers,
        cases,
        unmatched,
        {ref: dict(accounts) for ref, accounts in by_reference.items()},
    )


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
