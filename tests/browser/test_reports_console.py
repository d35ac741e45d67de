"""The reports page in a real headless Chromium against the stack: a finance officer opens
/console/reports over two seeded days on a server of its own, sees the charts drawn (bars per
symbol, the stacked breakdown, the cohort line) with the seeded figures, and downloads the CSV
and the PDF; then the same deals' dealer-revenue figures on /console/revenue. Screenshots in
test-artifacts/."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import sync_playwright

from activities.analytics import AnalyticsSteps
from api.security import hash_password
from contracts.analytics import RefreshAggregates
from db.models import AccountApplication, Client, Mt5Account, StaffUser
from db.queries.revenue import refresh_deal_revenue
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.trade_store import Batch, DealStore, copy_text
from db.urls import app_database_url
from domain.roles import StaffRole
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_kyc_console import PASSWORD, Officer, log_in
from tests.conftest import make_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.browser
SERVER = f"reports-{uuid.uuid4().hex[:6]}"  # the stack's database is shared
DAY = date(2025, 6, 2)
T = int(datetime(2025, 6, 2, 9, tzinfo=UTC).timestamp())


def _deal(ticket: int, symbol: str, action: int, at: int, **fields: str) -> dict[str, str]:
    return {
        "Deal": str(ticket), "Login": "9100001", "Time": str(at), "Symbol": symbol,
        "Action": str(action), "Entry": "1", "Volume": "10000", "Price": "1.1",
        "PositionID": str(ticket), "ContractSize": "100000", "Digits": "5", **fields,
    }  # fmt: skip


def seed(stack: Stack) -> Officer:
    settings = make_settings(stack.owner_url)
    box = SecretBox(settings.secrets_key)
    officer = Officer(f"finance-reports-{uuid.uuid4().hex[:8]}@example.com", pyotp.random_base32())
    records = [
        _deal(1, "EURUSD", 1, T, Commission="-7", Profit="-40", Storage="-2"),
        _deal(2, "XAUUSD", 0, T + 60, Commission="-12", Profit="-25"),
        _deal(3, "GBPUSD", 1, T + 120, Commission="-3", Profit="9"),
        _deal(4, "EURUSD", 0, T + 86400, Commission="-5", Profit="-15", Fee="-1"),
    ]

    async def insert() -> None:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        sessions = create_sessionmaker(engine)
        lines, low, high = copy_text(SERVER, records, lambda msc: msc)
        async with sessions.begin() as session:
            await DealStore(sessions).merge(
                await session.connection(), Batch(lines, lines.count("\n"), low, high)
            )
            client_id, application_id = uuid.uuid4(), uuid.uuid4()
            session.add(
                Client(
                    id=client_id,
                    email=f"reports-{client_id.hex[:8]}@example.com",
                    password_hash="x",
                    full_name="Report Client",
                    country="FR",
                    date_of_birth=date(1990, 1, 1),
                    created_at=datetime(2025, 5, 20, tzinfo=UTC),
                )
            )
            await session.flush()
            session.add(
                AccountApplication(
                    id=application_id, client_id=client_id, account_type="standard",
                    kind="live", status="completed", workflow_id=f"reports-{application_id}",
                    mt5_server=SERVER, mt5_login=9100001,
                )
            )  # fmt: skip
            await session.flush()
            session.add(
                Mt5Account(
                    client_id=client_id, application_id=application_id, server=SERVER,
                    login=9100001, group="real\\standard", leverage=100, currency="USD",
                    kind="live",
                )
            )  # fmt: skip
            session.add(
                StaffUser(
                    id=uuid.uuid4(),
                    email=officer.email,
                    full_name="Finance Reports",
                    password_hash=await hash_password(PASSWORD),
                    totp_secret_enc=box.seal(officer.secret),
                    roles=[StaffRole.FINANCE.value],
                    ip_allowlist=["127.0.0.1/32"],
                    active=True,
                )
            )
        await AnalyticsSteps(sessions).run(RefreshAggregates(servers=[SERVER]))
        async with sessions.begin() as session:
            await refresh_deal_revenue(session, SERVER, datetime.now(UTC))
        await engine.dispose()

    asyncio.run(insert())
    return officer


def test_finance_reads_the_reports_with_charts(stack: Stack, artifacts_dir: Path) -> None:
    officer = seed(stack)
    url = f"{stack.api_url}/console/reports?first={DAY}&last=2025-06-03&currency=USD"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            log_in(page, stack, officer)
            page.click("nav >> text=Reports")
            page.wait_for_url("**/console/reports")
            page.goto(url)
            symbols = page.locator("#chart-symbols svg")
            # One bar per symbol traded.
            assert symbols.locator("rect.bar").count() == 3
            assert "EURUSD" in (symbols.text_content() or "") and "XAUUSD" in (
                symbols.text_content() or ""
            )
            box = symbols.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 60
            # Two days, each a stack of coloured segments; the cohort chart is a line chart.
            assert page.locator("#chart-breakdown rect.segment").count() >= 4
            # The May cohort (one client, FR): a line over its months M0 (May) and M1 (June).
            assert page.locator("#chart-cohorts polyline.line").count() == 1
            # EURUSD's revenue: 7 + 2 + 40 + 5 + 1 + 15 = 70.00
            assert "70.00" in (symbols.text_content() or "")
            page.screenshot(path=str(artifacts_dir / "reports-console.png"), full_page=True)
            page.locator("#chart-symbols").screenshot(
                path=str(artifacts_dir / "reports-chart-symbols.png")
            )
            csv = page.request.get(
                f"{stack.api_url}/console/reports/export/revenue-by-symbol?first={DAY}&last=2025-06-03"
            )
            assert csv.status == 200 and "EURUSD,USD" in csv.text()
            pdf = page.request.get(
                f"{stack.api_url}{page.locator('#pdf-link').get_attribute('href')}"
            )
            assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")

            # The dealer-revenue page of the same deals (finance reads it too).
            page.click("nav >> text=Revenue")
            page.wait_for_url("**/console/revenue")
            page.goto(
                f"{stack.api_url}/console/revenue?server={SERVER}&first={DAY}&last=2025-06-03"
            )
            b_book = page.locator("#totals tr[data-book='USD-B']").inner_text().split("\t")
            # 4 deals; commission 7 + 12 + 3 + 5, fee 1; the house's side of the clients'
            # profit -40 - 25 + 9 - 15; no raw quote on any deal (no spread or markup).
            assert [b_book[2], b_book[4], b_book[5], *b_book[6:9], b_book[10]] == [
                "4", "—", "—", "27.00", "1.00", "71.00", "4",
            ]  # fmt: skip
            page.screenshot(path=str(artifacts_dir / "revenue-console.png"), full_page=True)
        finally:
            browser.close()
