"""Deposits per second end to end, and their latency from request to MT5 credit, against a bare
workflow doing the same number of no-op activities on the same Temporal server (the ratio is
what BrokerFlow's own work costs; issue 10 targets >= 0.5).

    python -m bench.deposits --size 200 [--concurrency 50] [--profile]

Production's shape (docker-compose.yml, `make run`): the API (`python -m api`, uvicorn) and the
worker (`worker.py`) are each their own process, configured through the environment; this
process is only the load client (the clients and their bank). Around them, each its own process
on free loopback ports, never the default ones (a `make run` stack may be up): a throw-away
PostgreSQL, the Temporal dev server, the MT5 simulator, the payment-processor simulator (its
webhooks reach the API over real HTTP) and an SMTP catcher for the sign-ups' mail. The API and
the worker run through `bench/_metered.py`: the production entry points, with each task's
event-loop CPU counted by step.

The baseline has the same split: bare workflows started from this process and run by a worker
process of their own (`bench/_bare.py`) on the same Temporal server. The deposits run in
`--rounds` rounds (3), the baseline before the first and after each: a round's ratio is its
deposits against the mean of the baselines either side of it, so a machine whose speed drifts
(a shared host: the same code measured 0.39 and 0.54 in two single-round runs back to back)
weighs on both sides alike. The median round is the result; every round's ratio is printed.

Set-up, not measured: size/10 clients sign up and log in through the API, each gets a live USD
MT5 account and approved KYC (`tests.support.accounts`, as the money tests do until live
provisioning lands); the payment rules are relaxed so that velocity and daily limits never hold
a deposit for compliance.

One deposit, as a client and its bank would do it, at most `--concurrency` in flight:
`POST /v1/me/deposits` (bankco, to the client's MT5 account) → poll `GET /v1/me/payments/{id}`
every 0.1 s until the BankCo transfer reference is there → the bank transfer arrives at the
simulator (`POST /_sim/bankco/incoming`) → its signed webhook comes back to the API → the
deposit workflow checks, books and credits MT5 → the bench awaits the workflow's result. The
client's own bank is instant here.

- deposits_per_s: deposits / wall time from the first POST to the last workflow result;
- p50_ms / p99_ms: from just before the POST to the payment's `completed_at`, which the worker
  stamps in the booking step right after the MT5 `trade/balance` credit (one activity later);
- bare_workflows_per_s: workflows of 7 no-op activities, same number, same concurrency;
- deposits_per_s, bare_workflows_per_s, ratio_to_bare: the median round's; ratio_min and
  ratio_max the lowest and the highest round's; the load average (1/5/15 min) at the start and
  the end.

Progress lines show where the time goes: client-side phases; CPU per workflow of each process,
BrokerFlow's split into its event loop, its other Python threads (workflow code runs there)
and Temporal's core threads; the event loop's CPU per workflow by step (activity, local
activity, API route, or Temporal's own task); and per-step medians from a sample of Temporal
histories (gap = workflow task before the step, queue = schedule to start, run = start to
completion of the last attempt). `--profile` also runs the API's and the worker's loops under
cProfile during the phases and keeps the stats. The run ends by checking that every payment
completed once and that every MT5 balance, MT5 deal count and ledger mirror equals its
deposits; it exits 1 if not (after the RESULT line).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench._bare import BareWorkflow
from bench._people import bench_applicant
from bench._processes import (
    CpuMeter,
    Role,
    app_environment,
    spawn,
    start_smtp_catcher,
    wait_for_api,
    wait_for_pollers,
)
from bench._simulator import free_port, start_psp_simulator, start_simulator
from bench.account_opening import bench_database
from contracts import TASK_QUEUE
from contracts.deposit import DEPOSIT, deposit_workflow_id
from contracts.funds import search_attribute_flags
from db.ledger import balance as ledger_balance
from db.migrate import upgrade
from db.models import Payment
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.funds import mt5_mirror
from domain.payments import PaymentStatus
from mt5_adapter.gateway import Mt5Gateway
from mt5_adapter.webapi import gateway_for
from settings import MailSettings, Mt5ServerSettings, PaymentRules, PspSettings, Settings
from tests.support.accounts import approve_kyc, open_live_account

BIN = Path(sys.executable).parent
# start_processor_deposit, record_payment_received, assess_deposit, book_entry (transit),
# mt5_credit_balance, book_entry (to MT5), notify_client: a deposit's steps. Since
# `deposit-local-database-steps` five of them run as local activities (markers in the history,
# not activities); the baseline keeps 7 activities, so the ratio stays comparable with earlier
# runs (docs/payments.md, "Cost per deposit").
STEPS = 7
DEPOSITS_PER_CLIENT = 10
CONCURRENCY = 50
ROUNDS = 3
POLL_S = 0.1
PASSWORD = "Bench-Password-1"
CLIENT_NAME = "Bench Client"
CURRENCY = "USD"
DEPOSIT_TIMEOUT_S = 180.0
HISTORY_SAMPLE = 40
RETRIES = 3


def say(line: str) -> None:
    print(line, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def median_ms(values: Iterable[float]) -> str:
    values = list(values)
    return ms(statistics.median(values)) if values else "-"


async def bounded(size: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Run `one(0..size-1)` with at most `concurrency` in flight; the wall time it took."""
    gate = asyncio.Semaphore(concurrency)

    async def gated(index: int) -> None:
        async with gate:
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(gated(i) for i in range(size)))
    return time.perf_counter() - started


# -- the baseline --------------------------------------------------------------------------------


async def bare_rate(temporal: Client, queue: str, size: int, concurrency: int) -> tuple[float, str]:
    """Bare workflows per second, and their ids' prefix: started from this process, run by the
    baseline's worker process on `queue` (the split of a deposit's: client apart from worker)."""
    tag = uuid.uuid4().hex[:8]

    async def one(index: int) -> None:
        handle = await temporal.start_workflow(
            BareWorkflow.run, STEPS, id=f"bare-{tag}-{index}", task_queue=queue
        )
        await handle.result()

    wall = await bounded(size, concurrency, one)
    return size / wall, f"bare-{tag}"


# -- clients ---------------------------------------------------------------------------------


@dataclass
class Customer:
    id: uuid.UUID
    headers: dict[str, str]
    login: int
    opening_balance: Decimal = Decimal(0)
    payments: list[str] = field(default_factory=list)


async def new_customer(
    api: httpx.AsyncClient,
    temporal: Client,
    sessions: async_sessionmaker[AsyncSession],
    gateway: Mt5Gateway,
) -> Customer:
    """Signed up and logged in through the API (its demo account opened and out of the way),
    with a live USD MT5 account and KYC approved."""
    applicant = bench_applicant(PASSWORD, full_name=CLIENT_NAME)
    email = applicant["email"]
    signup = await api.post("/v1/signup", json=applicant)
    signup.raise_for_status()
    opening = temporal.get_workflow_handle(f"account-opening-{signup.json()['application_id']}")
    await opening.result()
    token = await api.post("/v1/auth/client/login", json={"email": email, "password": PASSWORD})
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    me = await api.get("/v1/me", headers=headers)
    me.raise_for_status()
    client_id = uuid.UUID(me.json()["id"])
    login = await open_live_account(sessions, gateway, client_id, currency=CURRENCY)
    await approve_kyc(sessions, client_id)
    state = await gateway.get_account_state(login)
    return Customer(client_id, headers, login, opening_balance=state.balance)


# -- deposits --------------------------------------------------------------------------------


@dataclass
class Deposit:
    customer: Customer
    amount: Decimal
    wall_begun: float = 0.0  # time.time() just before the POST
    begun: float = 0.0  # perf_counter() from here on
    posted: float = 0.0
    referenced: float = 0.0
    told: float = 0.0
    finished: float = 0.0
    polls: int = 0
    payment_id: str | None = None
    error: str | None = None


def amount_for(index: int) -> Decimal:
    """Different amounts, so a credit landing twice or on the wrong account shows in the sums."""
    return Decimal(100 + index % 900) + Decimal(index % 97) / 100


async def again(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """A request safe to repeat (a GET, or a POST under the same Idempotency-Key), sent again
    when the connection drops under it (a keep-alive connection the server just closed)."""
    for attempt in range(RETRIES):
        try:
            return await send()
        except httpx.TransportError:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def transfer_arrives(psp: httpx.AsyncClient, reference: str, amount: Decimal) -> None:
    """The client's bank transfer reaches BankCo, once: a dropped call is repeated only if the
    simulator did not record the transfer."""
    body = {
        "reference": reference,
        "amount": f"{amount:.2f}",
        "currency": CURRENCY,
        "payer_name": CLIENT_NAME,
    }
    for attempt in range(RETRIES):
        try:
            (await psp.post("/_sim/bankco/incoming", json=body)).raise_for_status()
            return
        except httpx.TransportError:
            if attempt == RETRIES - 1:
                raise
            state = (await again(lambda: psp.get("/_sim/state"))).json()
            if any(t["reference"] == reference for t in state["bankco"]["transfers"]):
                return


async def make_deposit(
    api: httpx.AsyncClient, psp: httpx.AsyncClient, temporal: Client, deposit: Deposit
) -> None:
    customer = deposit.customer
    phase = "POST /v1/me/deposits"
    try:
        deposit.wall_begun = time.time()
        deposit.begun = time.perf_counter()
        key = str(uuid.uuid4())
        response = await again(
            lambda: api.post(
                "/v1/me/deposits",
                json={
                    "provider": "bankco",
                    "amount": f"{deposit.amount:.2f}",
                    "currency": CURRENCY,
                    "mt5_login": customer.login,
                },
                headers={**customer.headers, "Idempotency-Key": key},
            )
        )
        if response.status_code != 202:
            raise RuntimeError(f"{response.status_code} {response.text}")
        deposit.posted = time.perf_counter()
        payment_id = str(response.json()["id"])
        deposit.payment_id = payment_id
        customer.payments.append(payment_id)
        reference = response.json()["transfer_reference"]
        phase = "polling for the transfer reference"
        while reference is None:
            await asyncio.sleep(POLL_S)
            deposit.polls += 1
            view = await again(
                lambda: api.get(f"/v1/me/payments/{payment_id}", headers=customer.headers)
            )
            view.raise_for_status()
            reference = view.json()["transfer_reference"]
        deposit.referenced = time.perf_counter()
        phase = "POST /_sim/bankco/incoming"
        await transfer_arrives(psp, reference, deposit.amount)
        deposit.told = time.perf_counter()
        phase = "waiting for the workflow result"
        handle = temporal.get_workflow_handle(
            deposit_workflow_id(uuid.UUID(payment_id)), result_type=DEPOSIT.result
        )
        result = await asyncio.wait_for(handle.result(), DEPOSIT_TIMEOUT_S)
        deposit.finished = time.perf_counter()
        if result.status is not PaymentStatus.COMPLETED or result.reason is not None:
            deposit.error = f"ended {result.status.value}: {result.reason}"
    except Exception as exc:  # one failed deposit is a finding, not the end of the run
        deposit.error = deposit.error or f"{phase}: {type(exc).__name__}: {exc!r}"


async def run_deposits(
    api: httpx.AsyncClient,
    psp: httpx.AsyncClient,
    temporal: Client,
    customers: list[Customer],
    size: int,
    concurrency: int,
    first_index: int = 0,
) -> tuple[float, list[Deposit]]:
    deposits = [
        Deposit(customers[i % len(customers)], amount_for(first_index + i)) for i in range(size)
    ]
    done = 0
    step = max(1, size // 10)
    started = time.perf_counter()

    async def one(index: int) -> None:
        nonlocal done
        await make_deposit(api, psp, temporal, deposits[index])
        done += 1
        if done % step == 0 and size >= 20:
            elapsed = time.perf_counter() - started
            say(f"  deposits {done}/{size} in {elapsed:.1f} s ({done / elapsed:.1f}/s)")

    wall = await bounded(size, concurrency, one)
    return wall, deposits


# -- where the time goes -----------------------------------------------------------------------


def cpu_lines(before: dict[str, float], after: dict[str, float], count: int) -> list[str]:
    """CPU ms per workflow: in all, BrokerFlow's own processes (API + worker, or the baseline's
    worker), then each part, largest first."""
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    total = sum(spent.values())
    own = sum(v for k, v in spent.items() if k.startswith(("API", "worker", "bare worker")))
    parts = ", ".join(
        f"{name} {ms(value / count)}"
        for name, value in sorted(spent.items(), key=lambda item: -item[1])
        if value / count >= 0.0005
    )
    return [
        f"    CPU ms per workflow: {ms(total / count)} in all, {ms(own / count)} in the app's "
        f"own processes; {parts}"
    ]


def step_lines(role: str, counts: dict[str, list[float]], count: int, top: int = 14) -> list[str]:
    """Where a process's event loop spent its CPU, per label (`bench/_metered.py`), per workflow."""
    total = sum(cpu for cpu, _, _ in counts.values())
    lines = [f"    {role} event loop, CPU ms per workflow by step: {ms(total / count)} in all"]
    for label, (cpu, steps, calls) in sorted(counts.items(), key=lambda item: -item[1][0])[:top]:
        per_call = f", {cpu / calls * 1000:.1f} ms a call" if calls else ""
        lines.append(
            f"      {label[:60]:<60} {cpu / count * 1000:6.1f} ms"
            f"  ({calls / count:.1f} calls, {steps / count:.0f} task steps{per_call})"
        )
    return lines


class LoopLag:
    """How late a 50 ms sleep on the event loop wakes up: a busy loop delays every request,
    activity and workflow-task poll of this process alike."""

    PERIOD = 0.05

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            begun = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.lags.append(time.perf_counter() - begun - self.PERIOD)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def line(self) -> str:
        if len(self.lags) < 2:
            return "    event-loop lag: -"
        cuts = statistics.quantiles(self.lags, n=10)
        return (
            f"    event-loop lag: median {ms(statistics.median(self.lags))} ms, "
            f"p90 {ms(cuts[8])} ms, max {ms(max(self.lags))} ms"
        )


TROUBLE = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: "workflow tasks timed out",
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: "workflow tasks failed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activities timed out",
}


def _at(event: Any) -> float:
    return float(event.event_time.ToMicroseconds()) / 1e6


async def step_profile(temporal: Client, workflow_ids: list[str]) -> list[str]:
    """Per step (in workflow order), medians over the sample of: the workflow-task gap before it
    (previous step done or signal → scheduled), its queue time and its run time."""
    gaps: dict[str, list[float]] = defaultdict(list)
    queues: dict[str, list[float]] = defaultdict(list)
    runs: dict[str, list[float]] = defaultdict(list)
    attempts: dict[str, list[int]] = defaultdict(list)
    order: list[str] = []
    waits: list[float] = []
    totals: list[float] = []
    events: list[int] = []
    troubles: dict[str, int] = defaultdict(int)
    for workflow_id in workflow_ids:
        history = await temporal.get_workflow_handle(workflow_id).fetch_history()
        events.append(len(history.events))
        scheduled: dict[int, tuple[str, float]] = {}
        started: dict[int, float] = {}
        last_done = None
        position = 0
        workflow_started = None
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                workflow_started = last_done = _at(event)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                if last_done is not None:
                    waits.append(_at(event) - last_done)
                last_done = _at(event)
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                position += 1
                attributes = event.activity_task_scheduled_event_attributes
                label = f"{position}.{attributes.activity_type.name}"
                if label not in order:
                    order.append(label)
                scheduled[event.event_id] = (label, _at(event))
                if last_done is not None:
                    gaps[label].append(_at(event) - last_done)
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started_of = event.activity_task_started_event_attributes.scheduled_event_id
                attempts[scheduled[started_of][0]].append(
                    event.activity_task_started_event_attributes.attempt
                )
                started[started_of] = _at(event)
                label, at = scheduled[started_of]
                queues[label].append(_at(event) - at)
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done_of = event.activity_task_completed_event_attributes.scheduled_event_id
                label, _ = scheduled[done_of]
                runs[label].append(_at(event) - started[done_of])
                last_done = _at(event)
            elif kind in TROUBLE:
                troubles[TROUBLE[kind]] += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                if workflow_started is not None:
                    totals.append(_at(event) - workflow_started)
    lines = [
        f"    {label:<34} gap {median_ms(gaps[label]):>5} ms  queue {median_ms(queues[label]):>5}"
        f" ms  run {median_ms(runs[label]):>5} ms  attempts {max(attempts[label], default=0)} max,"
        f" {statistics.mean(attempts[label] or [0]):.1f} mean"
        for label in order
    ]
    if waits:
        lines.append(f"    awaiting the webhook signal          {median_ms(waits):>5} ms")
    lines.append(
        f"    workflow start to completion         {median_ms(totals):>5} ms"
        f" ({statistics.median(events or [0]):.0f} history events)"
    )
    if troubles:
        found = ", ".join(f"{count} {what}" for what, count in sorted(troubles.items()))
        lines.append(f"    in those histories: {found}")
    return lines


def phase_lines(deposits: list[Deposit], latencies: list[float]) -> list[str]:
    ok = [d for d in deposits if d.error is None]
    return [
        "  client side, medians: "
        f"POST {median_ms(d.posted - d.begun for d in ok)} ms, "
        f"then reference seen {median_ms(d.referenced - d.posted for d in ok)} ms "
        f"({statistics.mean(d.polls for d in ok) if ok else 0:.1f} polls), "
        f"bank transfer told {median_ms(d.told - d.referenced for d in ok)} ms, "
        f"then workflow result {median_ms(d.finished - d.told for d in ok)} ms",
        f"  request to workflow result: p50 {median_ms(d.finished - d.begun for d in ok)} ms; "
        f"request to completed_at: p50 {median_ms(latencies)} ms",
    ]


# -- the check ---------------------------------------------------------------------------------


async def verify(
    sessions: async_sessionmaker[AsyncSession],
    gateway: Mt5Gateway,
    mt5_url: str,
    customers: list[Customer],
    deposits: list[Deposit],
) -> list[str]:
    """Every deposit completed once; every MT5 balance, deal count and ledger mirror adds up."""
    problems = [f"deposit {d.payment_id}: {d.error}" for d in deposits if d.error]
    ids = [uuid.UUID(d.payment_id) for d in deposits if d.payment_id]
    async with sessions() as session:
        rows = (await session.execute(select(Payment).where(Payment.id.in_(ids)))).scalars()
        payments = {str(p.id): p for p in rows}
        for deposit in deposits:
            payment = payments.get(deposit.payment_id or "")
            if payment is None:
                problems.append(f"no payment row for a deposit of {deposit.amount}")
                continue
            if payment.status != PaymentStatus.COMPLETED.value or payment.completed_at is None:
                problems.append(f"payment {payment.id} is {payment.status}")
            if payment.amount_minor != int(deposit.amount * 100):
                problems.append(f"payment {payment.id} has {payment.amount_minor} minor units")
        async with httpx.AsyncClient(base_url=mt5_url, timeout=30) as mt5:
            for customer in customers:
                asked = sum(
                    (d.amount for d in deposits if d.customer is customer), start=Decimal(0)
                )
                state = await gateway.get_account_state(customer.login)
                credited = state.balance - customer.opening_balance
                if credited != asked:
                    problems.append(f"MT5 {customer.login}: credited {credited}, asked {asked}")
                deals = await mt5.get("/_sim/state/deals", params={"login": customer.login})
                deals.raise_for_status()
                count = len(deals.json()["deals"])
                if count != len(customer.payments):
                    problems.append(
                        f"MT5 {customer.login}: {count} deals for {len(customer.payments)} deposits"
                    )
                mirror = await ledger_balance(
                    session, mt5_mirror("demo", customer.login, CURRENCY), CURRENCY
                )
                if -mirror.amount != asked:
                    problems.append(f"ledger mirror of {customer.login}: {-mirror.amount}")
    return problems


# -- the run -----------------------------------------------------------------------------------


async def completion_times(
    sessions: async_sessionmaker[AsyncSession], deposits: list[Deposit]
) -> dict[str, float]:
    """Each payment's `completed_at` (stamped by the worker, in this process) as a Unix time."""
    ids = [uuid.UUID(d.payment_id) for d in deposits if d.payment_id]
    async with sessions() as session:
        rows = await session.execute(
            select(Payment.id, Payment.completed_at).where(Payment.id.in_(ids))
        )
        times: dict[str, float] = {}
        for payment_id, completed in rows:
            if completed is not None:
                completed = completed if completed.tzinfo else completed.replace(tzinfo=UTC)
                times[str(payment_id)] = completed.timestamp()
        return times


def percentiles(latencies: list[float]) -> tuple[str, str]:
    if len(latencies) >= 2:
        cuts = statistics.quantiles(latencies, n=100)
        return ms(cuts[49]), ms(cuts[98])
    single = ms(latencies[0]) if latencies else "nan"
    return single, single


def load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


@dataclass
class Phase:
    """One measured phase: its rate, CPU by part, loop CPU by step per BrokerFlow process."""

    rate: float
    cpu: list[str]
    steps: list[str]
    load_before: str
    load_after: str


async def measured(
    meter: CpuMeter,
    roles: list[tuple[str, Role]],
    count: int,
    run: Callable[[], Awaitable[float]],
) -> Phase:
    for _, role in roles:
        role.reset()
    load_before, before = load(), meter.snapshot()
    rate = await run()
    after, load_after = meter.snapshot(), load()
    steps: list[str] = []
    for name, role in roles:
        steps += step_lines(name, await role.counts(), count)
    return Phase(rate, cpu_lines(before, after, count), steps, load_before, load_after)


async def main(
    size: int,
    rounds: int,
    concurrency: int,
    owner: str,
    folder: Path,
    ports: Ports,
    profile: bool,
) -> bool:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=search_attribute_flags(),  # the money workflows' own
    )
    try:
        settings = Settings(
            env="test",
            database_url=owner,
            temporal_address=env.client.service_client.config.target_host,
            mt5=Mt5ServerSettings(address=f"127.0.0.1:{ports.mt5}", tls=False),
            psp=PspSettings(base_url=f"http://127.0.0.1:{ports.psp}"),
            mail=MailSettings(smtp_port=ports.smtp),
            payments=PaymentRules(max_deposits_per_hour=10**6, daily_deposit_limit=Decimal(10**9)),
            access_token_minutes=24 * 60,  # a long run must not see its clients' tokens expire
            log_json=False,
        )
        upgrade(owner, settings)
        engine = create_engine(app_database_url(owner, settings))
        sessions = create_sessionmaker(engine)
        gateway = gateway_for(settings.mt5)
        environment = app_environment(settings, ports.api, folder)
        bare_queue = f"bench-bare-{uuid.uuid4()}"
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            stack.push_async_callback(gateway.aclose)
            worker = spawn("worker", ["worker"], environment, folder, profile)
            stack.push_async_callback(worker.stop)
            api_role = spawn("API", ["api"], environment, folder, profile)
            stack.push_async_callback(api_role.stop)
            target = settings.temporal_address
            bare_worker = spawn("bare worker", ["bare", target, bare_queue], environment, folder)
            stack.push_async_callback(bare_worker.stop)
            await wait_for_pollers(env.client, TASK_QUEUE, worker)
            await wait_for_pollers(env.client, bare_queue, bare_worker)
            await wait_for_api(ports.api, api_role)
            # Idle connections are dropped before uvicorn's 5 s keep-alive closes them.
            limits = httpx.Limits(max_connections=concurrency + 10, keepalive_expiry=2.0)
            api = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{ports.api}", timeout=60, limits=limits
                )
            )
            psp = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{ports.psp}", timeout=60, limits=limits
                )
            )

            clients = max(1, size // DEPOSITS_PER_CLIENT)
            say(f"setting up {clients} clients with live {CURRENCY} MT5 accounts and KYC approved")
            customers = list(
                await asyncio.gather(
                    *(new_customer(api, env.client, sessions, gateway) for _ in range(clients))
                )
            )
            meter = CpuMeter(
                folder / "pg", {"API": api_role, "worker": worker, "bare worker": bare_worker}
            )

            await bare_rate(env.client, bare_queue, min(size, 10), concurrency)  # warm-up
            bare_ids: list[str] = []

            async def bare_phase() -> float:
                rate, prefix = await bare_rate(env.client, bare_queue, size, concurrency)
                bare_ids.append(prefix)
                return rate

            bare_roles = [("bare worker", bare_worker)]
            app_roles = [("worker", worker), ("API", api_role)]
            with LoopLag() as bare_lag:
                bare_first = await measured(meter, bare_roles, size, bare_phase)
            say(
                f"bare: {size} workflows of {STEPS} no-op activities, {bare_first.rate:.1f}/s "
                f"(load {bare_first.load_before} -> {bare_first.load_after})"
            )

            warm = min(size, 5)
            _, warm_deposits = await run_deposits(
                api, psp, env.client, customers, warm, concurrency, first_index=rounds * size
            )
            say(f"warm-up: {warm} deposits")
            deposits: list[Deposit] = []
            # Rounds of deposits, each followed by the baseline again: a round's ratio is its
            # deposits against the mean of the baselines either side of it, so a machine whose
            # speed drifts (a shared host) weighs on both sides alike; the median round's ratio
            # is the result, each round's is shown.
            bares, measured_rounds = [bare_first], []
            for round_ in range(rounds):
                say(
                    f"deposits, round {round_ + 1}/{rounds}: {size} from {clients} clients, "
                    f"at most {concurrency} in flight"
                )

                async def deposit_phase(first: int = round_ * size) -> float:
                    wall, done = await run_deposits(
                        api, psp, env.client, customers, size, concurrency, first_index=first
                    )
                    deposits.extend(done)
                    return size / wall

                with LoopLag() as deposit_lag:
                    deposit = await measured(meter, app_roles, size, deposit_phase)
                bare_next = await measured(meter, bare_roles, size, bare_phase)
                bares.append(bare_next)
                bare_mean = (bares[-2].rate + bare_next.rate) / 2
                ratio = deposit.rate / bare_mean
                measured_rounds.append((ratio, deposit, deposit_lag, bare_mean))
                say(
                    f"  {deposit.rate:.1f} deposits/s (load {deposit.load_before} -> "
                    f"{deposit.load_after}); bare again: {bare_next.rate:.1f}/s (load "
                    f"{bare_next.load_before} -> {bare_next.load_after}); ratio {ratio:.2f}"
                )
            by_ratio = sorted(measured_rounds, key=lambda measured_round: measured_round[0])
            ratio, deposit, deposit_lag, bare = by_ratio[(rounds - 1) // 2]
            say(f"  the median round (ratio {ratio:.2f}), where its time went:")

            completed_at = await completion_times(sessions, deposits)
            latencies = [
                completed_at[d.payment_id] - d.wall_begun
                for d in deposits
                if d.payment_id in completed_at and d.error is None
            ]
            for line in [
                *phase_lines(deposits, latencies),
                *deposit.cpu,
                *deposit.steps,
                f"    load client's event-loop lag: {deposit_lag.line().split(': ', 1)[1]}",
            ]:
                say(line)
            sample = random.Random(0).sample(
                [d.payment_id for d in deposits if d.payment_id and d.error is None],
                min(HISTORY_SAMPLE, len(latencies)),
            )
            say(f"  deposit workflow steps, medians over {len(sample)} histories:")
            workflow_ids = [deposit_workflow_id(uuid.UUID(p)) for p in sample]
            for line in await step_profile(env.client, workflow_ids):
                say(line)
            say(f"  bare workflow steps, medians over {min(size, HISTORY_SAMPLE)} histories:")
            sampled = [f"{bare_ids[0]}-{i}" for i in range(min(size, HISTORY_SAMPLE))]
            for line in [
                *await step_profile(env.client, sampled),
                *bare_first.cpu,
                *bare_first.steps,
                f"    load client's event-loop lag: {bare_lag.line().split(': ', 1)[1]}",
            ]:
                say(line)

            problems = await verify(
                sessions,
                gateway,
                f"http://127.0.0.1:{ports.mt5}",
                customers,
                warm_deposits + deposits,
            )
    finally:
        await env.shutdown()
    for problem in problems[:50]:
        say(f"FAILED: {problem}")
    if problems:
        say(f"FAILED: {len(problems)} problems")
    else:
        say(
            f"verified: {rounds * size + warm} deposits completed, MT5 balances, deals and "
            f"ledger mirrors of {len(customers)} accounts equal their deposits"
        )
    if profile:
        say(f"cProfile of the worker's and the API's event loops: {folder}/*.prof (kept)")
    p50, p99 = percentiles(latencies)
    say(
        f"RESULT deposits_per_s={deposit.rate:.1f} bare_workflows_per_s={bare:.1f} "
        f"ratio_to_bare={ratio:.2f} ratio_min={by_ratio[0][0]:.2f} "
        f"ratio_max={by_ratio[-1][0]:.2f} rounds={rounds} p50_ms={p50} p99_ms={p99} "
        f"size={size} load_at_start={bare_first.load_before} load_at_end={bares[-1].load_after}"
    )
    return not problems


@dataclass
class Ports:
    mt5: int
    psp: int
    api: int
    smtp: int


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=200, help="deposits to run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help="rounds of --size deposits, each followed by the baseline (the median round's "
        "ratio is the result)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help="deposits in flight at most"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the worker's and the API's event loops under cProfile during each phase "
        "(slower; the .prof files are kept and named at the end)",
    )
    args = parser.parse_args()
    # Stopped by a signal, the run still stops what it started (finally blocks, atexit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ok = False
    folder = Path(tempfile.mkdtemp(prefix="bf-bench-"))
    if not args.profile:  # registered first, so it runs after PostgreSQL's stop (atexit: LIFO)
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    children: list[subprocess.Popen[bytes]] = []
    try:
        database = bench_database(folder)
        api_port = free_port()
        simulator, mt5_port = start_simulator()
        children.append(simulator)
        processor, psp_port = start_psp_simulator(f"http://127.0.0.1:{api_port}/v1/webhooks")
        children.append(processor)
        catcher, smtp_port = start_smtp_catcher()
        children.append(catcher)
        ports = Ports(mt5=mt5_port, psp=psp_port, api=api_port, smtp=smtp_port)
        ok = asyncio.run(
            main(args.size, args.rounds, args.concurrency, database, folder, ports, args.profile)
        )
    finally:
        for child in reversed(children):
            child.terminate()
    sys.exit(0 if ok else 1)
