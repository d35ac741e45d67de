"""Per-account margin-utilisation alerts (by hand on tests/risk/scene.py) and alert delivery by
webhook: signed with the configured secret (never logged), retried when the receiver cannot
take it, not retried when it refuses, and one `RiskAlertWebhook` workflow per raise started by
the scheduled run through Temporal."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.risk_exposure import (
    ExposureMt5Reads,
    NoTradingTerms,
    RiskExposureSteps,
    RiskWebhook,
    RiskWebhookFailed,
    RiskWebhookRefused,
)
from contracts import mt5_task_queue
from contracts.risk_exposure import (
    RISK_EXPOSURE,
    ExposurePointRecorded,
    RaisedAlert,
    RecordExposurePoint,
    RiskAlertWebhookInput,
    RiskAlertWebhookPosted,
    RiskExposureInput,
    risk_alert_webhook_workflow_id,
)
from contracts.steps import Mt5Step, Step, implementations
from db.models import ExposurePointRow, RiskAlert, RiskThreshold
from tests.risk.scene import B_CLIENT, SEEN, SERVER, seed, set_gold_lots
from workflows.risk_exposure import RiskAlertWebhookWorkflow, RiskExposureWorkflow

D = Decimal
SECRET = "whsec-risk-test-7f3a"
URL = "http://receiver.test/hooks/risk?token=do-not-log-me"


def webhook() -> RiskWebhook:
    return RiskWebhook(url=URL, secret=SecretStr(SECRET))


class Receiver:
    """An in-process webhook receiver answering `statuses` in turn (then 200)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.answer)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


def verified(request: httpx.Request) -> dict[str, object]:
    """The body, after checking the signature as a receiver would."""
    stamp, mac = dict(
        part.split("=", 1) for part in request.headers["X-BrokerFlow-Signature"].split(",")
    ).values()
    expected = hmac.new(
        SECRET.encode(), f"{stamp}.".encode() + request.content, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(mac, expected)
    body: dict[str, object] = json.loads(request.content)
    return body


async def watch_b_client(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        session.add(
            RiskThreshold(
                server=SERVER,
                scope="account",
                key=str(B_CLIENT),
                metric="margin_utilisation",
                raise_above=D("0.3"),
                clear_below=D("0.2"),
                created_by="test",
            )
        )


async def test_an_account_margin_utilisation_alert_raises_holds_and_clears(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    await watch_b_client(sessions)
    clock = iter(SEEN + timedelta(seconds=10 * n) for n in range(10))
    steps = RiskExposureSteps(sessions, now=lambda: next(clock))
    request = RecordExposurePoint(server=SERVER)

    # 6100001: EURUSD 1000 EUR x 1.1002 = 1100.20 + XAUUSD 100 x 2000 / 100 = 2000; / 10000.
    first = await steps.record_exposure_point(request)
    assert first.raised == [f"account:{B_CLIENT}:margin_utilisation"]
    assert first.webhook_alerts == []  # no webhook configured
    await set_gold_lots(sessions, "0.5")  # 1100.20 + 1000 = 2100.20: 0.210020, in the band
    assert (await steps.record_exposure_point(request)).cleared == []
    await set_gold_lots(sessions, "0")  # 1100.20: 0.110020 < 0.2
    cleared = await steps.record_exposure_point(request)
    assert cleared.cleared == [f"account:{B_CLIENT}:margin_utilisation"]

    async with sessions() as session:
        [alert] = (await session.scalars(select(RiskAlert))).all()
        stored = (
            await session.scalars(select(ExposurePointRow).order_by(ExposurePointRow.at))
        ).all()
    assert (alert.scope, alert.key, alert.value, alert.peak_value, alert.last_value) == (
        "account",
        str(B_CLIENT),
        D("0.310020"),
        D("0.310020"),
        D("0.110020"),
    )
    # A point keeps the watched accounts' utilisation, and only theirs.
    assert [p.figures["accounts"] for p in stored] == [
        {str(B_CLIENT): "0.310020"},
        {str(B_CLIENT): "0.210020"},
        {str(B_CLIENT): "0.110020"},
    ]


async def raised_alert(sessions: async_sessionmaker[AsyncSession]) -> RaisedAlert:
    await seed(sessions)
    await watch_b_client(sessions)
    steps = RiskExposureSteps(sessions, webhook=webhook())
    [alert] = (await steps.record_exposure_point(RecordExposurePoint(server=SERVER))).webhook_alerts
    return alert


class TestPostRiskAlertWebhook:
    async def test_signed_once_per_raise_with_a_stable_event_id(
        self, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        alert = await raised_alert(sessions)
        receiver = Receiver(503, 200)
        steps = RiskExposureSteps(sessions, webhook=webhook(), transport=receiver.transport)
        request = RiskAlertWebhookInput(server=SERVER, alert=alert)
        with pytest.raises(RiskWebhookFailed, match=r"receiver\.test answered 503"):
            await steps.post_risk_alert_webhook(request)  # Temporal retries this attempt
        posted = await steps.post_risk_alert_webhook(request)
        assert posted == RiskAlertWebhookPosted(outcome="delivered", http_status=200)

        first, second = receiver.requests
        event_id = f"risk-alert-{alert.alert_id}-1"
        for sent in (first, second):
            assert sent.headers["X-BrokerFlow-Event-Id"] == event_id
            assert sent.headers["Idempotency-Key"] == event_id
            body = verified(sent)
            assert body["id"] == event_id and body["type"] == "risk.alert.raised"
            assert body["alert"] == {
                **body["alert"],  # type: ignore[dict-item]
                "id": alert.alert_id,
                "scope": "account",
                "key": str(B_CLIENT),
                "metric": "margin_utilisation",
                "raise": 1,
                "value": "0.310020",
                "raise_above": "0.3",
            }
        assert SECRET not in caplog.text
        # BrokerFlow's own lines name the host only (httpx itself logs every request's URL: a
        # URL is no place for a credential, the signature is the credential).
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("brokerflow")]
        assert ours and not any("do-not-log-me" in line for line in ours)

    async def test_a_refusal_is_final_and_no_answer_is_retried_without_the_url(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        alert = await raised_alert(sessions)
        request = RiskAlertWebhookInput(server=SERVER, alert=alert)
        refused = RiskExposureSteps(sessions, webhook=webhook(), transport=Receiver(400).transport)
        with pytest.raises(RiskWebhookRefused, match="answered 400"):
            await refused.post_risk_alert_webhook(request)

        def down(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        unreachable = RiskExposureSteps(
            sessions, webhook=webhook(), transport=httpx.MockTransport(down)
        )
        with pytest.raises(RiskWebhookFailed) as failed:
            await unreachable.post_risk_alert_webhook(request)
        assert str(failed.value) == "ConnectError posting to receiver.test"

        unset = RiskExposureSteps(sessions)
        assert (await unset.post_risk_alert_webhook(request)).outcome == "not_configured"


async def test_the_scheduled_run_starts_one_webhook_delivery_per_raise(
    temporal_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    await watch_b_client(sessions)
    receiver = Receiver()
    queue = f"risk-{uuid.uuid4()}"
    database = RiskExposureSteps(sessions, webhook=webhook(), transport=receiver.transport)
    steps = implementations(Step, database)
    live = implementations(Mt5Step, ExposureMt5Reads(SERVER, database, NoTradingTerms()))
    client = temporal_env.client
    async with (
        Worker(
            client,
            task_queue=queue,
            workflows=[RiskExposureWorkflow, RiskAlertWebhookWorkflow],
            activities=list(steps.values()),
        ),
        Worker(client, task_queue=mt5_task_queue(SERVER), activities=list(live.values())),
    ):
        result = await client.execute_workflow(
            RISK_EXPOSURE.name,
            RiskExposureInput(server=SERVER),
            id=f"risk-exposure-test-{uuid.uuid4()}",
            task_queue=queue,
            result_type=ExposurePointRecorded,
        )
        [alert] = result.webhook_alerts
        handle = client.get_workflow_handle(
            risk_alert_webhook_workflow_id(alert), result_type=RiskAlertWebhookPosted
        )
        posted = await handle.result()
    assert posted.outcome == "delivered"
    [sent] = receiver.requests
    assert verified(sent)["id"] == f"risk-alert-{alert.alert_id}-1"
