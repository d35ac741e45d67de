"""The Temporal worker: the one place where workflows, activities and their dependencies meet.

One process serves the main task queue (workflows and database steps) and one queue per MT5
server (that server's MT5 steps). Scale out by running more of these, or by running a worker
per MT5 queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from types import CodeType, ModuleType
from typing import ClassVar

from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.account_changes import AccountChangeRecords, Mt5AccountChangeSteps
from activities.account_opening import AccountOpeningRecords, Mt5AccountSteps
from activities.analytics import AnalyticsSteps
from activities.client_profiling import BookMoveRecords, ClientProfiling, tick_source_of
from activities.dealer_revenue import DealerRevenueSteps
from activities.fx_feed import FxFeed, quote_feed_of
from activities.ib_management import IbManagementSteps
from activities.ib_payout import IbPayoutSteps
from activities.kyc_checks import KycChecks, ScreenerCache
from activities.kyc_records import KycRecords
from activities.ledger_steps import LedgerSteps
from activities.mail import ClientMail
from activities.mt5_funds import Mt5FundsSteps
from activities.payments import PaymentSteps
from activities.reconciliation import ReconciliationMt5Steps, ReconciliationSteps
from activities.risk_exposure import (
    ExposureMt5Reads,
    RiskExposureSteps,
    RiskWebhook,
    trading_terms_of,
)
from activities.screening_lists import ScreeningLists
from activities.trade_ingestion import DealIngestion
from activities.unmatched_funds import UnmatchedFundsSteps
from contracts import TASK_QUEUE, mt5_task_queue
from contracts.steps import Mt5Step, Step, implementations, unimplemented
from db.embedded import owner_database_url
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.exposure.margin_calls import DEFAULT_HEADROOM
from domain.payment_checks import PaymentLimits
from mailer.smtp import Mailer, SmtpMailer
from mt5_adapter.gateway import Mt5Gateway
from mt5_adapter.webapi import gateway_for
from observability.logging import configure_logging
from observability.tracing import configure_tracing, records_spans
from psp_adapter.gateway import PaymentProvider
from psp_adapter.providers import payment_providers
from schedules import ensure_schedules
from settings import (
    DEV_ONLY,
    SEALED_PREFIX,
    KycRules,
    MailSettings,
    Mt5ServerSettings,
    PaymentRules,
    RiskSettings,
    Settings,
    get_settings,
    open_secret,
)
from storage.documents import DocumentMissing, DocumentStore, EncryptedDocumentStore, LocalFileStore
from workflows.registry import WORKFLOWS

log = logging.getLogger("brokerflow.worker")
DATABASE_CONNECTIONS = 20
LOCAL_STEPS_AT_ONCE = DATABASE_CONNECTIONS // 2


class _CompiledOnceLoader(SourceFileLoader):
    """A workflow module's source compiled once per process (see `compile_workflows_once`)."""

    codes: ClassVar[dict[str, CodeType]] = {}

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        code = self.codes.get(path)
        if code is None:
            code = self.codes[path] = super().get_code(fullname)  # type: ignore[assignment]
        assert code is not None
        return code


class _CompiledOnce(MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name.partition(".")[0] != "workflows":
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is not None and type(spec.loader) is SourceFileLoader:
            spec.loader = _CompiledOnceLoader(spec.loader.name, spec.loader.path)
        return spec


def compile_workflows_once() -> None:
    """The workflow sandbox imports a workflow's module (and `workflows.funds`) afresh for every
    run; with PYTHONDONTWRITEBYTECODE set (our image, our machines) no .pyc is ever written, so
    each run compiled them from source again (~6 ms of the event loop per deposit). Their code
    objects are kept for the process instead: a module is still executed anew in each run's
    sandbox, as before; only the compilation is shared. Idempotent."""
    if not any(isinstance(finder, _CompiledOnce) for finder in sys.meta_path):
        sys.meta_path.insert(0, _CompiledOnce())


def payment_limits(rules: PaymentRules) -> PaymentLimits:
    return PaymentLimits(
        min_amount=rules.min_deposit,
        max_amount=rules.max_deposit,
        daily_deposit_limit=rules.daily_deposit_limit,
        max_deposits_per_hour=rules.max_deposits_per_hour,
        payer_name_min_score=rules.payer_name_min_score,
        auto_approve_withdrawal_up_to=rules.auto_approve_withdrawal_up_to,
    )


def smtp_mailer(mail: MailSettings, master_key: SecretStr | None = None) -> SmtpMailer:
    """The SMTP client of `mail`; a sealed password is opened with `master_key`."""
    password = mail.password
    if password is not None and password.get_secret_value().startswith(SEALED_PREFIX):
        if master_key is None:
            raise ValueError("the SMTP password is sealed: give the secrets key to open it")
        password = open_secret(password.get_secret_value(), master_key)
    return SmtpMailer(
        mail.smtp_host,
        mail.smtp_port,
        mail.sender,
        starttls=mail.starttls,
        username=mail.username,
        password=password,
    )


def document_store(settings: Settings) -> EncryptedDocumentStore:
    return EncryptedDocumentStore(LocalFileStore(settings.documents_path()), settings.documents_key)


class NoDocumentStore:
    """Where a worker is built without a document store (tests of other processes)."""

    async def put(self, key: str, data: bytes) -> None:
        raise DocumentMissing("this worker has no document store")

    async def get(self, key: str) -> bytes:
        raise DocumentMissing("this worker has no document store")

    async def delete(self, key: str) -> None:
        raise DocumentMissing("this worker has no document store")

    async def exists(self, key: str) -> bool:
        return False


def risk_webhook(risk: RiskSettings) -> RiskWebhook | None:
    """Where raised risk alerts are posted, signed; none when no receiver is configured."""
    if not risk.webhook_url or risk.webhook_secret is None:
        return None
    return RiskWebhook(risk.webhook_url, risk.webhook_secret)


def temporal_runtime(metrics_address: str | None) -> Runtime | None:
    """A runtime serving the SDK's metrics for Prometheus at `metrics_address`: a step retried
    without end (an MT5 outcome nobody can establish, a compensation) shows there as a growing
    `temporal_activity_execution_failed` count, which an alert watches. None: the default."""
    if metrics_address is None:
        return None
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_address))
    )


def build_workers(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    gateways: dict[str, Mt5Gateway],
    mt5_servers: Sequence[Mt5ServerSettings],
    providers: dict[str, PaymentProvider] | None = None,
    rules: PaymentRules | None = None,
    *,
    kyc: KycRules | None = None,
    mail: MailSettings | None = None,
    mailer: Mailer | None = None,
    documents: DocumentStore | None = None,
    link_key: SecretStr | None = None,
    risk_webhook: RiskWebhook | None = None,
    margin_call_headroom: Decimal = DEFAULT_HEADROOM,
) -> list[Worker]:
    """`providers` may be left out where no payment runs (e.g. MT5-only tests); `mailer`
    defaults to SMTP as `mail` says, `documents` to none (no list can be loaded), `link_key`
    (the email-verification links' key, the JWT secret) to the dev key."""
    compile_workflows_once()
    rules = rules or PaymentRules()
    kyc = kyc or KycRules()
    mail = mail or MailSettings()
    records = AccountOpeningRecords(
        sessions,
        box,
        {server.name: (server.login_range_start, server.login_range_end) for server in mt5_servers},
    )
    payments = PaymentSteps(sessions, providers or {}, payment_limits(rules))
    ledger = LedgerSteps(sessions, rules.fx_spread_bps, fx_rate_max_age=rules.fx_rate_max_age)
    screeners = ScreenerCache()
    checks = KycChecks(sessions, screeners)
    cases = KycRecords(sessions, kyc.rekyc_notice_days)
    lists = ScreeningLists(sessions, documents or NoDocumentStore(), screeners)
    changes = AccountChangeRecords(sessions)
    client_mail = ClientMail(
        sessions,
        mailer or smtp_mailer(mail),
        sender=mail.sender,
        public_base_url=mail.public_base_url,
        link_key=link_key or SecretStr(DEV_ONLY["jwt_secret"]),
        email_link_hours=kyc.email_link_hours,
    )
    unmatched = UnmatchedFundsSteps(sessions, providers or {})
    ib_payouts = IbPayoutSteps(sessions, documents or NoDocumentStore())
    exposure = RiskExposureSteps(
        sessions,
        mailer or smtp_mailer(mail),
        sender=mail.sender,
        webhook=risk_webhook,
        margin_call_headroom=margin_call_headroom,
    )
    database_steps = implementations(
        Step,
        records,
        payments,
        ledger,
        unmatched,
        checks,
        cases,
        lists,
        changes,
        client_mail,
        ib_payouts,
        IbManagementSteps(sessions),
        ReconciliationSteps(
            sessions,
            providers or {},
            mailer=mailer or smtp_mailer(mail),
            sender=mail.sender,
            documents=documents,
            console_url=mail.public_base_url,
        ),
        exposure,
        BookMoveRecords(sessions),
        AnalyticsSteps(sessions),
        DealerRevenueSteps(sessions),
    )
    mt5_steps = {
        server.name: implementations(
            Mt5Step,
            Mt5AccountSteps(sessions, box, gateways[server.name]),
            Mt5FundsSteps(gateways[server.name]),
            Mt5AccountChangeSteps(gateways[server.name]),
            DealIngestion(server.name, sessions, gateways[server.name]),
            FxFeed(server.name, sessions, quote_feed_of(gateways[server.name])),
            ReconciliationMt5Steps(server.name, sessions, gateways[server.name]),
            ClientProfiling(server.name, sessions, tick_source_of(gateways[server.name])),
            ExposureMt5Reads(server.name, exposure, trading_terms_of(gateways[server.name])),
        )
        for server in mt5_servers
    }
    missing = unimplemented(Step, database_steps) + [
        name for steps in mt5_steps.values() for name in unimplemented(Mt5Step, steps)
    ]
    if missing:
        raise RuntimeError(f"steps declared in contracts but implemented by no activity: {missing}")
    workers = [
        Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=WORKFLOWS,
            activities=list(database_steps.values()),
            # Each database step holds a connection: no more steps at once than the pool has
            # connections, or the waiting ones run out of their start-to-close time. Steps a
            # workflow runs locally (`Step.local`: short ones, a deposit's database steps and
            # its processor's) take half of them.
            max_concurrent_activities=DATABASE_CONNECTIONS - LOCAL_STEPS_AT_ONCE,
            max_concurrent_local_activities=LOCAL_STEPS_AT_ONCE,
        )
    ]
    for server_name, steps in mt5_steps.items():
        workers.append(
            Worker(
                client,
                task_queue=mt5_task_queue(server_name),
                activities=list(steps.values()),
                # MT5 serves one request per manager connection at a time: keep the queue short.
                max_concurrent_activities=8,
            )
        )
    return workers


async def run(settings: Settings, stop: asyncio.Event) -> None:
    configure_tracing("brokerflow-worker", settings)
    HTTPXClientInstrumentor().instrument()
    engine = create_engine(
        app_database_url(owner_database_url(settings), settings),
        pool_size=DATABASE_CONNECTIONS // 2,
        # Every step is retried (a ping per step was ~1 ms of the loop and a round trip).
        ping_on_checkout=False,
    )
    if records_spans():  # with exporter `none` SQL spans would cost CPU and record nothing
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
        runtime=temporal_runtime(settings.worker_metrics_address),
    )
    servers = settings.mt5_fleet()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        gateways: dict[str, Mt5Gateway] = {}
        for server in servers:
            gateway = gateway_for(server.opened(settings.secrets_key))
            stack.push_async_callback(gateway.aclose)
            gateways[server.name] = gateway
        providers = payment_providers(settings.psp.opened(settings.secrets_key))
        for provider in providers.values():
            stack.push_async_callback(provider.aclose)
        workers = build_workers(
            client,
            create_sessionmaker(engine),
            SecretBox(settings.secrets_key),
            gateways,
            servers,
            providers,
            settings.payments,
            kyc=settings.kyc,
            mail=settings.mail,
            mailer=smtp_mailer(settings.mail, settings.secrets_key),
            documents=document_store(settings),
            link_key=settings.jwt_secret,
            risk_webhook=risk_webhook(settings.risk.opened(settings.secrets_key)),
            margin_call_headroom=settings.risk.margin_call_headroom,
        )
        try:
            await ensure_schedules(client, settings)
        except Exception:  # the worker serves all the same; the schedule is retried next start
            log.exception("could not create or update the Temporal schedules")
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info("worker running on task queues %s", [w.task_queue for w in workers])
        await stop.wait()
        log.info("worker stopping")


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
