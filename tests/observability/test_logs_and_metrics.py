"""Logs, metrics and secrets: JSON log lines lead to their trace, /metrics speaks Prometheus, and
no secret reaches a log record or a printed settings object."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from mt5_adapter.errors import Mt5Error
from mt5_adapter.webapi import gateway_for
from observability.logging import JsonFormatter, configure_logging
from settings import Mt5ServerSettings, PspSettings, Settings, seal_secret
from tests.conftest import make_settings, mt5_settings_for
from tests.support.processes import Simulator
from tests.support.stack import TEST_SECRETS_KEY

MASK = "**********"


# -- JSON logs carry the trace id ----------------------------------------------------------------


@contextmanager
def json_logging() -> Iterator[io.StringIO]:
    """`configure_logging(..., as_json=True)` as the API and worker call it, its handler writing to
    a buffer; the root logger's handlers and levels are put back afterwards."""
    root = logging.getLogger()
    httpx_logger = logging.getLogger("httpx")
    saved = (root.handlers[:], root.level, httpx_logger.level)
    buffer = io.StringIO()
    try:
        configure_logging("DEBUG", as_json=True)
        (handler,) = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        assert isinstance(handler.formatter, JsonFormatter)
        handler.setStream(buffer)
        yield buffer
    finally:
        root.handlers[:], level, httpx_level = saved
        root.setLevel(level)
        httpx_logger.setLevel(httpx_level)


def test_json_log_lines_carry_the_trace_id_of_the_current_span() -> None:
    # A provider of the test's own: spans are real (valid ids) without touching the global one.
    tracer = TracerProvider().get_tracer("brokerflow-test")
    log = logging.getLogger("brokerflow.test.json")
    with json_logging() as buffer:
        with tracer.start_as_current_span("inside") as span:
            log.info('inside a span, with "quotes"\nand a newline')
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed inside the span")
        log.warning("outside any span")
        assert logging.getLogger("httpx").level == logging.WARNING

    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3, lines  # one record, one line: newlines in messages stay escaped
    inside, failed, outside = (json.loads(line) for line in lines)

    trace_id = inside["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert trace_id == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert inside["message"] == 'inside a span, with "quotes"\nand a newline'
    assert inside["level"] == "INFO"
    assert inside["logger"] == "brokerflow.test.json"

    assert failed["trace_id"] == trace_id
    assert failed["message"] == "failed inside the span"
    assert "ValueError: boom" in failed["exception"]

    assert outside["message"] == "outside any span"
    assert not outside.get("trace_id")
    assert not outside.get("span_id")


# -- Prometheus metrics --------------------------------------------------------------------------


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_endpoint_counts_earlier_requests_by_route_template(
    api: httpx.AsyncClient,
) -> None:
    for _ in range(2):
        assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/v1/me/accounts/5000123")).status_code == 401
    assert (await api.get("/no/such/path")).status_code == 404

    response = await api.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    # The text exposition format (0.0.4, or 1.0.0 from newer prometheus-client), not OpenMetrics.
    assert re.search(r"version=(0\.0\.4|1\.0\.0)", response.headers["content-type"])
    body = response.text
    assert "# TYPE brokerflow_http_requests_total counter" in body
    assert "# TYPE brokerflow_http_request_seconds histogram" in body

    requests = samples(body, "brokerflow_http_requests_total")
    assert requests[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 2
    # Route templates, not raw paths: no time series per login or per made-up URL.
    assert requests[(("method", "GET"), ("route", "/v1/me/accounts/{login}"), ("status", "401"))]
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    routes = {dict(labels)["route"] for labels in requests}
    assert not any("5000123" in route or "/no/such" in route for route in routes), routes

    latency = samples(body, "brokerflow_http_request_seconds_count")
    assert latency[(("method", "GET"), ("route", "/healthz"))] == 2

    # The scrape itself is counted once it has been answered.
    again = samples((await api.get("/metrics")).text, "brokerflow_http_requests_total")
    assert again[(("method", "GET"), ("route", "/metrics"), ("status", "200"))] == 1


# -- secrets never logged ------------------------------------------------------------------------


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Each record as a JSON log line would show it, plus every attribute it carries."""
    formatter = JsonFormatter()
    return "\n".join(
        f"{formatter.format(record)}\n{record.__dict__!r}" for record in caplog.records
    )


def debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=name)
    for name in ("httpx", "httpcore", "mt5_adapter"):
        caplog.set_level(logging.DEBUG, logger=name)


async def test_mt5_log_in_logs_no_manager_password(
    mt5_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    debug_everywhere(caplog)
    server = mt5_settings_for(mt5_sim)
    gateway = gateway_for(server)
    try:
        await gateway.ping()
    finally:
        await gateway.aclose()

    logged = everything_logged(caplog)
    assert "MT5 session opened" in logged  # the log-in was captured, down to httpcore's DEBUG
    assert any(record.name.startswith("httpcore") for record in caplog.records)
    assert mt5_sim.password not in logged


async def test_refused_mt5_log_in_logs_and_raises_no_password(
    mt5_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    debug_everywhere(caplog)
    wrong = "Wrong-Manager-Pass#42"
    server = mt5_settings_for(mt5_sim).model_copy(update={"manager_password": SecretStr(wrong)})
    gateway = gateway_for(server)
    try:
        with pytest.raises(Mt5Error) as refused:
            await gateway.ping()
    finally:
        await gateway.aclose()

    assert caplog.records
    assert wrong not in everything_logged(caplog)
    assert wrong not in f"{refused.value!s} {refused.value!r}"


SECRETS = {
    "manager": "mt5-manager-Pa55!",
    "backup_manager": "mt5-live-Pa55!",
    "cardco_api_key": "sk_card_live_0123456789",
    "cardco_webhook_secret": "whsec_card_live_0123456789",
    "bankco_api_key": "sk_bank_live_0123456789",
    "bankco_webhook_secret": "whsec_bank_live_0123456789",
    "jwt": "jwt-secret-for-this-test-0123456789abcdef",
    "db_app": "app-role-Pa55!",
}


def settings_with_secrets(owner_url: str, *, sealed: bool) -> Settings:
    key = SecretStr(TEST_SECRETS_KEY)

    def given(name: str) -> str:
        return seal_secret(SECRETS[name], key) if sealed else SECRETS[name]

    return make_settings(
        owner_url,
        jwt_secret=SECRETS["jwt"],
        database_app_password=SECRETS["db_app"],
        mt5=Mt5ServerSettings(name="demo", manager_password=SecretStr(given("manager"))),
        mt5_servers=[
            Mt5ServerSettings(name="live-1", manager_password=SecretStr(given("backup_manager")))
        ],
        psp=PspSettings(
            cardco_api_key=SecretStr(given("cardco_api_key")),
            cardco_webhook_secret=SecretStr(given("cardco_webhook_secret")),
            bankco_api_key=SecretStr(given("bankco_api_key")),
            bankco_webhook_secret=SecretStr(given("bankco_webhook_secret")),
        ),
    )


def shown(settings: Settings) -> dict[str, str]:
    return {
        "repr": repr(settings),
        "str": str(settings),
        "model_dump_json": settings.model_dump_json(),
        "model_dump(mode=json)": json.dumps(settings.model_dump(mode="json")),
        "psp repr": repr(settings.psp),
        "opened psp": repr(settings.psp.opened(settings.secrets_key)),
        "opened mt5": repr(settings.mt5.opened(settings.secrets_key)),
    }


@pytest.mark.parametrize("sealed", [False, True], ids=["clear", "sealed"])
def test_settings_show_secrets_masked(sealed: bool) -> None:
    settings = settings_with_secrets("postgresql+psycopg://owner@db/brokerflow", sealed=sealed)
    # The values really are in there (opened on demand) ...
    opened = settings.psp.opened(settings.secrets_key)
    assert opened.cardco_api_key.get_secret_value() == SECRETS["cardco_api_key"]
    mt5 = settings.mt5.opened(settings.secrets_key)
    assert mt5.manager_password.get_secret_value() == SECRETS["manager"]
    # ... and never in how settings print or serialise.
    for form, text in shown(settings).items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} shows in {form}"
        assert TEST_SECRETS_KEY not in text, f"secrets_key shows in {form}"
    dumped = json.loads(settings.model_dump_json())
    for name in PspSettings().secret_fields():
        assert dumped["psp"][name] == MASK
    assert dumped["mt5"]["manager_password"] == MASK
    assert dumped["mt5_servers"][0]["manager_password"] == MASK
    assert dumped["jwt_secret"] == dumped["secrets_key"] == dumped["database_app_password"] == MASK


def test_settings_hide_the_database_url_password() -> None:
    settings = make_settings("postgresql://brokerflow:db-owner-Pa55!@postgres:5432/brokerflow")
    for form, text in shown(settings).items():
        assert "db-owner-Pa55!" not in text, f"the database password shows in {form}"
