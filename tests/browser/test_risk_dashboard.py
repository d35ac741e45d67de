"""The risk dashboard in a real headless Chromium, refreshing while the MT5 simulator's own trader
flow trades: a dealer opens /console/risk; the simulator's flow accounts (`--traders`, which
BrokerFlow knows as accounts it opened) open and close positions by themselves; BrokerFlow's
real path reads them (the ingestion's trade-state poll over the Web API into PostgreSQL, then
the exposure step, each as its schedule would run it); and the page, pushed by server-sent
events, shows the new figures, the bars, the series and the alert a threshold raised, without a
reload. The test changes no position itself. Screenshots before and after in test-artifacts/.

The simulator's markets never close (`--market-hours always`, from `start_simulator`) and its
clock is frozen on a Wednesday, so the flow trades whatever day the test runs on. The API is
served in-process on the test's own database; no worker, no Temporal: the two steps are called
as the worker's activities would be."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyotp
import pytest
import uvicorn
from playwright.sync_api import Page, sync_playwright
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.risk_exposure import ExposureMt5Reads, RiskExposureSteps
from activities.trade_ingestion import DealIngestion
from api.app import create_app
from api.security import hash_password
from contracts.risk_exposure import ExposurePointRecorded, RecordExposurePoint
from contracts.trade_ingestion import FollowTradeState
from db.models import RiskThreshold, StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.roles import StaffRole
from mt5_adapter.webapi import WebApiGateway, gateway_for
from settings import Settings
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import mt5_settings_for
from tests.risk.scene import account
from tests.support.database import ProvisionedDatabase
from tests.support.processes import Simulator, free_port, start_simulator
from tests.support.waiting import until

pytestmark = pytest.mark.browser
T = TypeVar("T")
PASSWORD = "Dealer-Pass-42"
SERVER = "flow-1"
FLOW_GROUP = "real\\standard"  # where the simulator's trader flow opens its accounts
WEDNESDAY_NOON_MSC = 1_793_793_600_000  # 2026-11-04 12:00 UTC, a Wednesday
START_FROM = datetime(2026, 10, 1, tzinfo=UTC)  # history orders from here (before the clock)
COUNTRIES = ("DE", "GB", "JP", "FR", "AU")


@pytest.fixture
def flow_sim(artifacts_dir: Path) -> Iterator[Simulator]:
    """A simulator whose seven flow traders (one of each archetype) make about 20 deals a
    second by themselves."""
    simulator = start_simulator(
        artifacts_dir / "logs", extra=[*("--traders", "7", "--rate", "20", "--seed", "15")]
    )
    try:
        frozen = httpx.post(
            f"{simulator.base_url}/_sim/time", json={"utc_msc": WEDNESDAY_NOON_MSC}, verify=False
        )
        frozen.raise_for_status()
        yield simulator
    finally:
        simulator.child.stop()


@pytest.fixture
def api_url(settings: Settings, test_db: ProvisionedDatabase) -> Iterator[str]:
    """The API on this test's database, served by uvicorn in a thread."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        until(lambda: server.started, "the API serving", 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Desk:
    """BrokerFlow's side as the worker runs it, on an event loop in a thread of its own
    (Playwright's sync API holds this thread's): `cycle()` is one trade-state poll of the
    ingestion (positions, pending orders, account states and symbols read over the Web API into
    PostgreSQL) and one run of the exposure step on what it stored."""

    def __init__(self, settings: Settings, simulator: Simulator) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.gateway: WebApiGateway | None = None
        self.run(self._open(simulator))

    async def _open(self, simulator: Simulator) -> None:
        self.engine = create_engine(
            app_database_url(self.settings.database_url or "", self.settings), pool_size=2
        )
        self.sessions = create_sessionmaker(self.engine)
        self.gateway = gateway_for(mt5_settings_for(simulator, SERVER))
        self.ingestion = DealIngestion(SERVER, self.sessions, self.gateway)
        # The live step as the worker runs it on the server's queue: MT5 asked for groups,
        # accounts and ticks besides the ingested state.
        self.steps = ExposureMt5Reads(SERVER, RiskExposureSteps(self.sessions), self.gateway)

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    async def _cycle(self) -> ExposurePointRecorded:
        poll = FollowTradeState(start_from=START_FROM, run_seconds=0)
        await ActivityEnvironment().run(self.ingestion.follow_trade_state, poll)
        return await self.steps.record_live_exposure_point(RecordExposurePoint(server=SERVER))

    def cycle(self) -> ExposurePointRecorded:
        recorded = self.run(self._cycle())
        assert recorded.error is None, recorded.error
        assert not recorded.skipped_logins, recorded.skipped_logins
        return recorded

    def close(self) -> None:
        async def shut() -> None:
            if self.gateway is not None:
                await self.gateway.aclose()
            if self.engine is not None:
                await self.engine.dispose()

        try:
            self.run(shut())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def desk(settings: Settings, flow_sim: Simulator) -> Iterator[Desk]:
    opened = Desk(settings, flow_sim)
    try:
        yield opened
    finally:
        opened.close()


def shown(amount: str | None) -> str:
    """A figure as the page prints it (Intl en-US, two decimals)."""
    assert amount is not None
    return f"{Decimal(amount):,.2f}"


def bars(page: Page) -> dict[str, str]:
    found: dict[str, str] = page.eval_on_selector_all(
        "#symbol-bars g[data-symbol]",
        "gs => Object.fromEntries(gs.map(g => [g.dataset.symbol, g.dataset.net]))",
    )
    return found


def series_points(page: Page) -> int:
    line = page.locator("#series-line polyline")
    return 0 if line.count() == 0 else len((line.get_attribute("points") or "").split())


def test_the_dashboard_follows_the_simulator_flow(
    settings: Settings, api_url: str, desk: Desk, artifacts_dir: Path
) -> None:
    email = f"dealer-{uuid.uuid4().hex[:8]}@example.com"
    secret = pyotp.random_base32()

    async def scene() -> None:
        assert desk.gateway is not None
        logins = await desk.gateway.logins(FLOW_GROUP)
        async with desk.sessions.begin() as session:
            session.add(
                StaffUser(
                    id=uuid.uuid4(),
                    email=email,
                    full_name="Desk Dealer",
                    password_hash=await hash_password(PASSWORD),
                    totp_secret_enc=SecretBox(settings.secrets_key).seal(secret),
                    roles=[StaffRole.DEALER.value],
                    ip_allowlist=["127.0.0.1/32"],
                    active=True,
                )
            )
            # The flow's accounts, as if BrokerFlow had opened them (clients, mt5_accounts).
            for n, login in enumerate(logins):
                await account(session, login, COUNTRIES[n % len(COUNTRIES)], FLOW_GROUP, SERVER)

    async def threshold() -> None:
        async with desk.sessions.begin() as session:
            session.add(
                RiskThreshold(
                    server=SERVER,
                    scope="total",
                    key="*",
                    metric="gross_notional",
                    raise_above=Decimal(1),
                    clear_below=Decimal(0),
                    created_by="test",
                )
            )

    desk.run(scene())
    first = until(lambda: (r := desk.cycle()).positions > 0 and r, "the flow's first positions", 10)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{api_url}/console/risk?server={SERVER}")
            page.wait_for_url("**/console/login?next=*")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=totp_code]", pyotp.TOTP(secret).now())
            page.click("button[type=submit]")
            page.wait_for_url(f"**/console/risk?server={SERVER}")

            net, at = page.locator("#net-notional"), page.locator("#at")
            until(lambda: net.inner_text() == shown(first.net_notional), "the first point", 10)
            until(lambda: page.locator("#live").inner_text() == "events", "the event stream", 10)
            before_bars, before_at, before_points = bars(page), at.inner_text(), series_points(page)
            assert before_bars and before_points == 1
            assert page.locator("#alerts tbody tr[data-alert]").count() == 0
            page.screenshot(
                path=str(artifacts_dir / "console-risk-flow-before.png"), full_page=True
            )

            # The desk sets a threshold; the flow trades on; the schedule's next runs read it.
            desk.run(threshold())
            moved = until(
                lambda: (r := desk.cycle()).net_notional != first.net_notional and r,
                "the flow moving the exposure",
                10,
            )
            # No reload, no request from the test: the page's event stream brings the point.
            until(lambda: net.inner_text() == shown(moved.net_notional), "the new point", 10)
            assert at.inner_text() != before_at
            assert bars(page) != before_bars
            assert series_points(page) > before_points
            alert = page.locator("#alerts tbody tr[data-alert]")
            until(lambda: alert.count() == 1, "the raised alert on the page", 10)
            assert "gross_notional" in alert.inner_text()
            page.screenshot(path=str(artifacts_dir / "console-risk-flow-after.png"), full_page=True)

            alert.locator("button", has_text="Acknowledge").click()
            page.wait_for_url("**/console/risk?notice=*")
            status = page.locator("#alerts tbody tr[data-alert] .status")
            until(lambda: status.inner_text() == "acknowledged", "the acknowledged alert", 10)
        finally:
            browser.close()
