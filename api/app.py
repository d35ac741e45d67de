"""The FastAPI application: built by `create_app`, its resources owned by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

from api.analytics.console import router as reports_console_router
from api.analytics.routes import router as analytics_router
from api.audit.routes import router as audit_router
from api.auth.routes import router as auth_router
from api.auth.routes import session_router as auth_session_router
from api.clients.routes import router as clients_router
from api.compliance.routes import router as compliance_router
from api.console.compliance import router as compliance_console_router
from api.console.ib_payouts import router as ib_payouts_console_router
from api.console.ib_portal import router as ib_portal_console_router
from api.console.ingestion import router as ingestion_console_router
from api.console.password_reset import router as password_reset_console_router
from api.console.routes import router as console_router
from api.finance.console import router as finance_console_router
from api.finance.routes import router as finance_router
from api.fx.routes import router as fx_router
from api.headers import SecurityHeaders
from api.ib.payouts import attribution_router as ib_attribution_router
from api.ib.payouts import finance_router as ib_payout_finance_router
from api.ib.payouts import portal_router as ib_portal_router
from api.ib.routes import self_router as ib_self_router
from api.ib.routes import staff_router as ib_staff_router
from api.kyc.routes import router as kyc_router
from api.ledger.routes import router as ledger_router
from api.locks.routes import router as locks_router
from api.me.routes import router as me_router
from api.onboarding.routes import router as onboarding_router
from api.openapi import install_openapi
from api.payments.routes import router as payments_router
from api.problems import install_problem_handlers
from api.profiling.console import router as profiles_console_router
from api.profiling.routes import router as profiles_router
from api.reconciliation.console import router as reconciliation_console_router
from api.reconciliation.routes import router as reconciliation_router
from api.revenue.console import router as revenue_console_router
from api.revenue.routes import router as revenue_router
from api.risk.console import router as risk_console_router
from api.risk.routes import router as risk_router
from api.signup.routes import router as signup_router
from api.staff.routes import router as staff_router
from api.state import AppState
from api.system.routes import DOCS_ASSETS, DOCS_ASSETS_PATH
from api.system.routes import router as system_router
from api.temporal import TemporalConnector
from api.transfers.routes import router as transfers_router
from api.wallets.routes import router as wallets_router
from api.webhooks.routes import router as webhooks_router
from db.embedded import owner_database_url
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from observability.metrics import ApiMetrics, CountRequests
from observability.tracing import RequestSpan, configure_tracing, records_spans
from psp_adapter.providers import payment_providers
from settings import Settings, get_settings
from storage.documents import EncryptedDocumentStore, LocalFileStore

ROUTERS = (
    system_router,
    auth_router,
    auth_session_router,
    signup_router,
    me_router,
    onboarding_router,
    payments_router,
    transfers_router,
    wallets_router,
    webhooks_router,
    ib_self_router,
    ib_portal_router,
    staff_router,
    locks_router,
    clients_router,
    ib_staff_router,
    ib_attribution_router,
    audit_router,
    finance_router,
    ib_payout_finance_router,
    ledger_router,
    fx_router,
    compliance_router,
    kyc_router,
    console_router,
    compliance_console_router,
    ib_payouts_console_router,
    ib_portal_console_router,
    ingestion_console_router,
    finance_console_router,
    password_reset_console_router,
    risk_router,
    risk_console_router,
    profiles_router,
    profiles_console_router,
    analytics_router,
    reports_console_router,
    reconciliation_router,
    reconciliation_console_router,
    revenue_router,
    revenue_console_router,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Read at each start, not captured: an app may be started again with other settings
        # (the test suite runs one app against each test's own database).
        settings: Settings = app.state.settings
        app.state.metrics = ApiMetrics()
        engine = create_engine(app_database_url(owner_database_url(settings), settings))
        if records_spans():  # no SQL spans at all when nothing would record them
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        providers = payment_providers(settings.psp.opened(settings.secrets_key))
        app.state.brokerflow = AppState(
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            temporal=TemporalConnector(settings.temporal_address, settings.temporal_namespace),
            secret_box=SecretBox(settings.secrets_key),
            providers=providers,
            documents=EncryptedDocumentStore(
                LocalFileStore(settings.documents_path()), settings.documents_key
            ),
        )
        try:
            yield
        finally:
            for provider in providers.values():
                await provider.aclose()
            await engine.dispose()

    app = FastAPI(
        title="BrokerFlow",
        version="0.1.0",
        summary="Back-office for MetaTrader 5 brokers",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.mount(DOCS_ASSETS_PATH, DOCS_ASSETS, name="docs-assets")
    install_problem_handlers(app)
    app.state.settings = settings
    app.state.metrics = ApiMetrics()
    # Plain ASGI middlewares (the last added is the outermost), not `BaseHTTPMiddleware`s.
    app.add_middleware(CountRequests)
    app.add_middleware(SecurityHeaders)
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app)
    configure_tracing("brokerflow-api", settings)
    if records_spans():
        FastAPIInstrumentor.instrument_app(app)
    else:
        # Nothing records spans (exporter `none`): no instrumentation, only a span per request
        # for its trace id (log lines, audit rows), around the whole stack as the
        # instrumentation's middleware would be (observability/tracing.py).
        build_stack = app.build_middleware_stack
        app.build_middleware_stack = lambda: RequestSpan(build_stack())  # type: ignore[method-assign]
    return app
