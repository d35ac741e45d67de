"""The risk dashboard in a real headless Chromium: a dealer opens /console/risk, the page shows
the newest exposure point; the gold position grows and the exposure step runs again (as its
schedule would), and the page, polling, shows the new net figure and the alert it raised
without a reload; the dealer acknowledges the alert. Screenshot in test-artifacts/.

The page needs the API and the database only (no worker, no Temporal): the app is served
in-process on this test's own database, so the test does not wait for the whole stack."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
import uvicorn
from playwright.sync_api import sync_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.risk_exposure import RiskExposureSteps
from api.app import create_app
from api.security import hash_password
from contracts.risk_exposure import RecordExposurePoint
from db.models import RiskThreshold, StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.roles import StaffRole
from settings import Settings
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.risk.scene import SERVER, seed, set_gold_lots
from tests.support.database import ProvisionedDatabase
from tests.support.processes import free_port
from tests.support.waiting import until

pytestmark = pytest.mark.browser
PASSWORD = "Dealer-Pass-42"


def on_db(
    settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[None]]
) -> None:
    async def run() -> None:
        engine = create_engine(app_database_url(settings.database_url or "", settings), pool_size=1)
        try:
            await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    # In a thread of its own: Playwright's sync API runs an event loop in this one.
    failed: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as e:
            failed.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


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


def test_the_dashboard_follows_the_exposure_as_it_changes(
    settings: Settings, api_url: str, artifacts_dir: Path
) -> None:
    email = f"dealer-{uuid.uuid4().hex[:8]}@example.com"
    secret = pyotp.random_base32()

    async def scene(sessions: async_sessionmaker[AsyncSession]) -> None:
        await seed(sessions)
        async with sessions.begin() as session:
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
            session.add(
                RiskThreshold(
                    server=SERVER,
                    scope="symbol",
                    key="XAUUSD",
                    metric="net_notional",
                    raise_above=Decimal(300000),
                    clear_below=Decimal(250000),
                    created_by="test",
                )
            )
        await RiskExposureSteps(sessions).record_exposure_point(RecordExposurePoint(server=SERVER))

    async def gold_doubles(sessions: async_sessionmaker[AsyncSession]) -> None:
        await set_gold_lots(sessions, "2")  # XAUUSD 402000: net 90990 + 201000
        await RiskExposureSteps(sessions).record_exposure_point(RecordExposurePoint(server=SERVER))

    on_db(settings, scene)
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

            net = page.locator("#net-notional")
            until(lambda: net.inner_text() == "90,990.00", "the first point on the page", 10)
            assert page.locator("#symbol-bars g[data-symbol]").count() == 2
            assert page.locator("#alerts tbody tr[data-alert]").count() == 0

            on_db(settings, gold_doubles)
            # No reload: the page's own polling brings the new point and the alert.
            until(lambda: net.inner_text() == "291,990.00", "the new point on the page", 15)
            alert = page.locator("#alerts tbody tr[data-alert]")
            until(lambda: alert.count() == 1, "the raised alert on the page", 15)
            assert "XAUUSD" in alert.inner_text() and "402000.00" in alert.inner_text()
            assert page.locator("#series-line polyline").count() == 1
            assert page.locator("#refreshed").inner_text().startswith("at ")
            page.screenshot(path=str(artifacts_dir / "console-risk-dashboard.png"), full_page=True)

            alert.locator("button", has_text="Acknowledge").click()
            page.wait_for_url("**/console/risk?notice=*")
            status = page.locator("#alerts tbody tr[data-alert] .status")
            until(lambda: status.inner_text() == "acknowledged", "the acknowledged alert", 10)
        finally:
            browser.close()
