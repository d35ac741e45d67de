from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.temporal import TemporalConnector
from contracts.funds import DecisionOutcome
from db.ledger import post_entry
from db.models import (
    AccountApplication,
    AuditEntry,
    FxRateRow,
    JournalEntryRow,
    Mt5Account,
    Payment,
    PaymentDecision,
    PostingRow,
    Transfer,
    WebhookEvent,
)
from db.sealed import SecretBox
from domain.money import Money
from domain.money_flows import MovementKind, reference_for
from domain.payments import PaymentSession, PaymentStatus
from domain.wallets import credit_deposit
from settings import Settings
from tests.support.people import People, Person


@pytest.fixture
def people(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> People:
    return People(sessions, SecretBox(settings.secrets_key), api)


# -- a stand-in for the Temporal client ----------------------------------------------------------


def unavailable() -> RPCError:
    return RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


def not_found() -> RPCError:
    return RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")


@dataclass
class FakeTemporal:
    """Records what the API asks of Temporal; tests set how it answers."""

    started: list[tuple[str, Any, str]] = field(default_factory=list)
    signals: list[tuple[str, str, Any]] = field(default_factory=list)
    updates: list[tuple[str, str, Any]] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    down: bool = False
    refusal: str | None = None
    outcome: DecisionOutcome = field(
        default_factory=lambda: DecisionOutcome(status=PaymentStatus.PENDING_APPROVAL, approvals=1)
    )
    # What a deposit's `payment_session` update (sent with its start) answers; None: the update
    # fails as if the processor had refused (the API then answers as it did before).
    session: PaymentSession | None = None

    async def start_workflow(self, run: Any, arg: Any, *, id: str, **_: Any) -> None:
        if self.down:
            raise unavailable()
        name = getattr(run, "__qualname__", str(run)).split(".")[0]
        self.started.append((name, arg, id))

    async def execute_update_with_start_workflow(
        self, update: str, arg: Any, *, start_workflow_operation: Any, result_type: type
    ) -> Any:
        start = start_workflow_operation._start_workflow_input
        started = start_workflow_operation._workflow_handle  # resolved as the real client does
        try:
            await self.start_workflow(start.workflow, start.args[0], id=start.id)
        except RPCError as refused:
            started.set_exception(refused)
            raise
        started.set_result(self.get_workflow_handle(start.id))
        if self.session is None:
            raise WorkflowUpdateFailedError(
                ApplicationError("no processor behind the fake", type="PaymentSessionRefused")
            )
        return self.session

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@dataclass
class FakeHandle:
    temporal: FakeTemporal
    id: str

    def _reachable(self) -> None:
        if self.temporal.down:
            raise unavailable()
        if self.id in self.temporal.closed:
            raise not_found()

    async def describe(self) -> str:
        self._reachable()
        return self.id

    async def signal(self, name: str, arg: Any) -> None:
        self._reachable()
        self.temporal.signals.append((self.id, name, arg))

    async def execute_update(
        self, name: str, arg: Any, *, id: str | None = None, result_type: type
    ) -> Any:
        self._reachable()
        if self.temporal.refusal is not None:
            raise WorkflowUpdateFailedError(
                ApplicationError(self.temporal.refusal, type="ValueError")
            )
        self.temporal.updates.append((self.id, name, arg))
        assert result_type is DecisionOutcome
        return self.temporal.outcome


@pytest.fixture
def temporal(api: httpx.AsyncClient) -> FakeTemporal:
    """Swap the in-process app's Temporal client for the fake."""
    fake = FakeTemporal()
    app = api._transport.app  # type: ignore[attr-defined]
    app.state.brokerflow.temporal = TemporalConnector("fake:7233", "default", client=fake)  # type: ignore[arg-type]
    return fake


# -- money fixtures ------------------------------------------------------------------------------


class Books:
    """Rows a payment test needs, written straight into the test database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._logins = iter(range(5_200_001, 5_299_999))

    async def live_account(self, owner: Person, currency: str = "USD", kind: str = "live") -> int:
        login = next(self._logins)
        application_id = uuid.uuid4()
        async with self.sessions.begin() as session:
            session.add(
                AccountApplication(
                    id=application_id,
                    client_id=owner.id,
                    account_type="standard",
                    kind=kind,
                    status="completed",
                    workflow_id=f"account-opening-{application_id}",
                    mt5_server="live-1",
                    mt5_login=login,
                )
            )
            await session.flush()
            session.add(
                Mt5Account(
                    client_id=owner.id,
                    application_id=application_id,
                    server="live-1",
                    login=login,
                    group="real\\standard",
                    leverage=100,
                    currency=currency,
                    kind=kind,
                )
            )
        return login

    async def fund_wallet(self, owner: Person, amount: str, currency: str = "USD") -> None:
        money = Money.model_validate({"amount": amount, "currency": currency})
        entry = credit_deposit(f"test-{uuid.uuid4()}", str(owner.id), "bankco", money)
        async with self.sessions.begin() as session:
            await post_entry(session, entry)

    async def fx_rate(self, base: str, quote: str, bid: str, ask: str) -> None:
        from datetime import UTC, datetime
        from decimal import Decimal

        async with self.sessions.begin() as session:
            session.add(
                FxRateRow(
                    base=base,
                    quote=quote,
                    bid=Decimal(bid),
                    ask=Decimal(ask),
                    as_of=datetime.now(UTC),
                )
            )

    async def payment(
        self,
        owner: Person,
        *,
        direction: str = "withdrawal",
        status: str = PaymentStatus.PENDING_APPROVAL,
        provider: str = "bankco",
        amount_minor: int = 250_000,
        currency: str = "USD",
        risk_flags: tuple[str, ...] = ("large_amount",),
        **columns: Any,
    ) -> Payment:
        payment_id = uuid.uuid4()
        row = Payment(
            id=payment_id,
            client_id=owner.id,
            direction=direction,
            provider=provider,
            reference=reference_for(MovementKind.PAYMENT, payment_id),
            status=status,
            currency=currency,
            amount_minor=amount_minor,
            requested_minor=amount_minor,
            idempotency_key=str(payment_id),
            request_hash="0" * 64,
            workflow_id=f"{direction}-{payment_id}",
            compliance_status="pending" if risk_flags else "cleared",
            risk_flags=list(risk_flags),
            **columns,
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def decision(self, payment: Payment, staff: Person, role: str, approve: bool) -> None:
        async with self.sessions.begin() as session:
            session.add(
                PaymentDecision(
                    payment_id=payment.id,
                    staff_id=staff.id,
                    role=role,
                    approve=approve,
                    reason="looks fine" if approve else "no",
                )
            )

    async def count(self, model: type, *where: Any) -> int:
        async with self.sessions() as session:
            query = select(func.count()).select_from(model)
            for condition in where:
                query = query.where(condition)
            return int(await session.scalar(query) or 0)

    async def rows(self, model: type, *where: Any) -> list[Any]:
        async with self.sessions() as session:
            query: Any = select(model)
            for condition in where:
                query = query.where(condition)
            return list(await session.scalars(query))

    async def nothing_written(self) -> None:
        """No payment, transfer, journal entry or money audit row exists."""
        assert await self.count(Payment) == 0
        assert await self.count(Transfer) == 0
        assert await self.count(JournalEntryRow) == 0
        assert await self.count(PostingRow) == 0
        assert await self.count(WebhookEvent) == 0
        money_actions = AuditEntry.action.like("payment.%") | AuditEntry.action.like("transfer.%")
        assert await self.count(AuditEntry, money_actions) == 0


@pytest.fixture
def books(sessions: async_sessionmaker[AsyncSession]) -> Books:
    return Books(sessions)


# -- webhooks as the processors sign them --------------------------------------------------------


def cardco_webhook(
    secret: str, event: dict[str, Any], sent_at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    t = int(time.time()) if sent_at is None else sent_at
    signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"CardCo-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"}


def bankco_webhook(
    secret: str, event: dict[str, Any], sent_at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    t = int(time.time()) if sent_at is None else sent_at
    signature = hmac.new(secret.encode(), f"{t}\n".encode() + body, hashlib.sha256).hexdigest()
    return body, {
        "X-BankCo-Timestamp": str(t),
        "X-BankCo-Signature": f"sha256={signature}",
        "Content-Type": "application/json",
    }


def card_succeeded(
    reference: str, amount_minor: int = 10_000, intent: str = "pi_1", event_id: str = "evt_1"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": intent,
                "amount": amount_minor,
                "currency": "usd",
                "reference": reference,
                "customer_name": "Test Client",
            }
        },
    }
