"""IB payouts in a real headless Chromium, against the real stack (API and worker processes,
Temporal, PostgreSQL): finance reviews a payout's statement PDF in the console and approves it
four-eyes, and pays again a payout MT5 refused; an introducing broker logs in to its portal
pages and downloads its own statement.

The scene (tests/ib_payout/scene.py): Atlas at the top, Beacon under it, one client of Beacon
trading 3 lots of EURUSD. Beacon earns 3 x 400 + 150 CPA = 1,350 USD (above the four-eyes
threshold of 1,000), Atlas its differential 3 x 100 + 50 = 350 USD. Accrued and opened in
process; each payout's `IbPayout` workflow runs on the stack's worker, which renders the
statement into the stack's document store.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select, update
from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.ib_payout import IbPayoutSteps, accrue
from api.security import hash_password
from contracts import TASK_QUEUE
from contracts.ib_payout import (
    IB_PAYOUT,
    AccrualRequest,
    PayoutFrequency,
    PayoutInput,
    PayoutPeriod,
    ib_payout_workflow_id,
)
from db.models import Client, StaffUser
from db.models.ib import IbPayout, IntroducingBroker
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.roles import StaffRole
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_kyc_console import Officer, log_in
from tests.conftest import make_settings
from tests.ib_payout.scene import T0, Scene, deposit, trade, version
from tests.support.stack import Stack
from tests.support.waiting import eventually, until
from worker import NoDocumentStore

pytestmark = pytest.mark.browser
PASSWORD = "Officer-Pass-42"
IB_PASSWORD = "Atlas-Portal-Pass-42"
WEEK = 7 * 86400
LOGIN = 8_800_001  # far from the simulator's logins and deals: the stack's database is shared
DEAL = 8_000_000_000
REFUSED = f"MT5 live/{LOGIN} refused the credit: 4005 account disabled"


@dataclass(frozen=True)
class Seeded:
    officers: tuple[Officer, Officer]
    atlas_email: str
    atlas_payout: uuid.UUID
    beacon_payout: uuid.UUID


def _staff(email: str, secret: str, box: SecretBox, password_hash: str) -> StaffUser:
    return StaffUser(
        id=uuid.uuid4(),
        email=email,
        full_name=f"Finance {email.split('-')[1].title()}",
        password_hash=password_hash,
        totp_secret_enc=box.seal(secret),
        roles=[StaffRole.FINANCE.value],
        ip_allowlist=["127.0.0.1/32"],
        active=True,
    )


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    """Two finance officers who have not logged in yet, Atlas's portal password, and both
    payouts with their statements rendered (`statement_ready`) by the stack's worker."""
    settings = make_settings(stack.owner_url)
    box = SecretBox(settings.secrets_key)
    tag = uuid.uuid4().hex[:6]
    officers = (
        Officer(f"finance-ann-{tag}@example.com", pyotp.random_base32()),
        Officer(f"finance-ben-{tag}@example.com", pyotp.random_base32()),
    )

    async def insert() -> Seeded:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=2)
        sessions = create_sessionmaker(engine)
        scene = Scene(sessions)
        await scene.plan(f"atlas-{tag}", version(1, T0, "500", "200"))
        await scene.plan(f"beacon-{tag}", version(1, T0, "400", "150"))
        atlas = await scene.ib("Atlas", f"atlas-{tag}")
        beacon = await scene.ib("Beacon", f"beacon-{tag}", atlas)
        await scene.account(LOGIN)
        await scene.attribute(LOGIN, beacon, T0)
        await scene.write_deals(
            [
                deposit(DEAL + 1, T0 + 100, "500.00", login=LOGIN),
                trade(DEAL + 2, T0 + 1000, 0, 0, 30000, "1.10000", DEAL + 2, login=LOGIN),
                trade(
                    DEAL + 3, T0 + 2000, 1, 1, 30000, "1.10100", DEAL + 2,
                    login=LOGIN, closed=30000, profit="300.00",
                ),
            ]
        )  # fmt: skip
        password = await hash_password(PASSWORD)
        async with sessions.begin() as session:
            for officer in officers:
                session.add(_staff(officer.email, officer.secret, box, password))
            await session.execute(
                update(IntroducingBroker)
                .where(IntroducingBroker.id == atlas)
                .values(name="Atlas Partners", password_hash=await hash_password(IB_PASSWORD))
            )
            await session.execute(
                update(IntroducingBroker)
                .where(IntroducingBroker.id == beacon)
                .values(name="Beacon Introductions")
            )
            await session.execute(
                update(Client)
                .where(Client.email.startswith(f"c{LOGIN}-"))
                .values(full_name="Erika Mustermann")
            )
            atlas_email = await session.scalar(
                select(IntroducingBroker.email).where(IntroducingBroker.id == atlas)
            )
        await accrue(sessions, AccrualRequest(start=T0, end=T0 + WEEK, history_from=T0 - WEEK))
        opened = await IbPayoutSteps(sessions, NoDocumentStore()).open_ib_payouts(
            PayoutPeriod(frequency=PayoutFrequency.WEEKLY, start=T0, end=T0 + WEEK)
        )
        temporal = await TemporalClient.connect(
            stack.temporal_address, data_converter=pydantic_data_converter
        )
        for payout_id in opened.payouts:
            await temporal.start_workflow(
                IB_PAYOUT.name,
                PayoutInput(payout_id=payout_id),
                id=ib_payout_workflow_id(payout_id),
                task_queue=TASK_QUEUE,
            )

        async def statements_ready() -> dict[uuid.UUID, uuid.UUID] | None:
            async with sessions() as session:
                payouts = list(
                    await session.scalars(select(IbPayout).where(IbPayout.id.in_(opened.payouts)))
                )
            if {p.status for p in payouts} != {"statement_ready"}:
                return None
            return {p.ib_id: p.id for p in payouts}

        by_ib = await eventually(statements_ready, "both statements rendered", timeout=90)
        await engine.dispose()
        assert atlas_email is not None and set(by_ib) == {atlas, beacon}
        return Seeded(officers, atlas_email, by_ib[atlas], by_ib[beacon])

    return asyncio.run(insert())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module; each person gets a context of their own (own cookies)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Browser) -> Page:
    return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def approve(page: Page, reason: str) -> None:
    form = page.locator("#approve-form")
    form.locator("input[name=reason]").fill(reason)
    form.locator("button[type=submit]").click()


def until_paid(page: Page, url: str, what: str) -> None:
    """The payout's page, loaded again until it shows the payout paid by the stack's worker."""

    def paid() -> bool:
        page.goto(url)
        return page.locator("#payout-status").inner_text() == "paid"

    until(paid, what, timeout=60)


def refused_by_mt5(stack: Stack, payout_id: uuid.UUID) -> None:
    """The payout as `IbPayout` leaves it when MT5 refuses the credit for good (written from a
    thread of its own: Playwright's loop runs in this one)."""
    settings = make_settings(stack.owner_url)

    async def mark() -> None:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        async with create_sessionmaker(engine).begin() as session:
            await session.execute(
                update(IbPayout)
                .where(IbPayout.id == payout_id)
                .values(status="needs_attention", decision_reason=REFUSED)
            )
        await engine.dispose()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, mark()).result()


def open_payout_with_its_statement(page: Page, payout_id: uuid.UUID) -> None:
    """Open the payout from the queue; its statement PDF must load in the page's frame."""
    statement = f"/console/ib-payouts/{payout_id}/statement"
    with page.expect_response(lambda r: r.url.endswith(statement)) as pdf:
        page.locator(f"#payouts tr[data-payout='{payout_id}'] a").first.click()
    assert pdf.value.status == 200
    assert pdf.value.headers["content-type"] == "application/pdf"
    # (Its body in the page is the viewer's; the bytes themselves, with the page's cookie:)
    assert page.request.get(pdf.value.url).body().startswith(b"%PDF-")
    page.wait_for_url(f"**/console/ib-payouts/{payout_id}")
    assert page.locator("iframe#statement").get_attribute("src") == statement

    # Chromium's own PDF viewer took the frame over (the page's policy let it in).
    # `page.frames` is what Playwright has heard so far: a round trip to the page lets the
    # frame events in between polls (the sync API reads none while the test only looks).
    def viewer_loaded() -> bool:
        page.evaluate("true")
        return any(f.url.startswith("chrome-extension://") for f in page.frames)

    # A deadline, not a speed: Chromium starts its viewer slowly on a busy machine.
    until(viewer_loaded, "the PDF viewer in the statement's frame", timeout=90)


def test_two_finance_officers_approve_a_payout_from_its_statement(
    stack: Stack, seeded: Seeded, browser: Browser, artifacts_dir: Path
) -> None:
    first, second = seeded.officers
    payout_url = f"{stack.api_url}/console/ib-payouts/{seeded.beacon_payout}"

    page = new_page(browser)
    log_in(page, stack, first)
    page.click("nav >> text=IB payouts")
    page.wait_for_url("**/console/ib-payouts")
    row = page.locator(f"#payouts tr[data-payout='{seeded.beacon_payout}']")
    text = row.inner_text()
    assert "Beacon Introductions" in text and str(seeded.beacon_payout) not in text
    assert "1,350.00 USD" in text and "four-eyes" in text and "0 of 2" in text
    assert "2026-01-01 00:00 to 2026-01-08 00:00" in text
    assert "350.00 USD" in page.locator(f"tr[data-payout='{seeded.atlas_payout}']").inner_text()
    page.screenshot(path=str(artifacts_dir / "console-ib-payouts-queue.png"), full_page=True)

    open_payout_with_its_statement(page, seeded.beacon_payout)
    assert "under Atlas Partners" in page.locator("#payout-facts").inner_text()
    page.screenshot(path=str(artifacts_dir / "console-ib-payout-statement.png"), full_page=True)

    approve(page, "statement checked against the deals")
    page.wait_for_url("**?notice=*")
    assert "a second, different finance officer" in page.locator(".notice").inner_text()
    approvals = page.locator("#approvals").inner_text()
    assert "1 of 2" in approvals and first.email in approvals
    assert page.locator("#payout-status").inner_text() == "statement_ready"

    # The same officer again: refused by the payout's workflow, shown on the page.
    approve(page, "approving once more")
    page.wait_for_url("**?error=*")
    assert "approved this payout already" in page.locator(".error").inner_text()
    assert "1 of 2" in page.locator("#approvals").inner_text()
    page.screenshot(
        path=str(artifacts_dir / "console-ib-payout-same-officer-refused.png"), full_page=True
    )
    page.context.close()

    page = new_page(browser)
    log_in(page, stack, second)
    page.goto(payout_url)
    approve(page, "second pair of eyes: agreed")
    page.wait_for_url("**?notice=*")
    assert "approved (2 of 2)" in page.locator(".notice").inner_text()

    until_paid(page, payout_url, "the payout credited to Beacon's wallet")
    assert page.locator("#decide").count() == 0
    decisions = page.locator("#decisions").inner_text()
    assert decisions.count("approved") == 2
    assert "Finance Ann" in decisions and "Finance Ben" in decisions
    assert page.locator("#payout-facts").inner_text().count("ib-payout:") == 1
    page.screenshot(path=str(artifacts_dir / "console-ib-payout-paid.png"), full_page=True)

    # Atlas's payout (350 USD, one approval) was refused by MT5: the officer pays it again.
    refused_by_mt5(stack, seeded.atlas_payout)
    atlas_url = f"{stack.api_url}/console/ib-payouts/{seeded.atlas_payout}"
    page.goto(atlas_url)
    assert REFUSED in page.locator("#payout-reason").inner_text()
    form = page.locator("#pay-again-form")
    form.locator("input[name=reason]").fill("Atlas's account enabled again")
    page.screenshot(path=str(artifacts_dir / "console-ib-payout-pay-again.png"), full_page=True)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**?notice=*")
    assert "paying it again is approved (1 of 1)" in page.locator(".notice").inner_text()

    until_paid(page, atlas_url, "Atlas's payout paid again")
    assert page.locator("#pay-again-form").count() == 0
    assert "approved paying it again" in page.locator("#decisions").inner_text()
    page.screenshot(path=str(artifacts_dir / "console-ib-payout-paid-again.png"), full_page=True)
    page.context.close()


def test_an_ib_logs_in_and_downloads_its_own_statement(
    stack: Stack, seeded: Seeded, browser: Browser, artifacts_dir: Path, tmp_path: Path
) -> None:
    page = new_page(browser)
    page.goto(f"{stack.api_url}/console/ib/login")
    page.fill("input[name=email]", seeded.atlas_email)
    page.fill("input[name=password]", IB_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/ib")

    tree = page.locator("#tree").inner_text()
    assert "Atlas Partners" in tree and "Beacon Introductions" in tree
    assert "350.00" in page.locator("#totals").inner_text()
    # An IB's navigation: its own pages, none of the staff console's.
    nav = page.locator("nav").inner_text()
    assert "Commissions" in nav and "IB payouts" not in nav and "Ledger" not in nav
    page.screenshot(path=str(artifacts_dir / "console-ib-portal-network.png"), full_page=True)

    page.click("nav >> text=Clients")
    page.wait_for_url("**/console/ib/clients")
    clients = page.locator("#clients").inner_text()
    assert str(LOGIN) in clients and "E. M." in clients and "Erika" not in clients
    page.screenshot(path=str(artifacts_dir / "console-ib-portal-clients.png"), full_page=True)

    page.click("nav >> text=Commissions")
    page.wait_for_url("**/console/ib/commissions")
    rows = page.locator("#commissions tbody tr")
    assert rows.count() == 2  # the CPA on the deposit and the closed round turn
    closed = page.locator(f"#commissions tr[data-deal='{DEAL + 3}']").inner_text()
    assert "300.00 USD" in closed and "differential" in closed and "lots counted" in closed
    page.screenshot(path=str(artifacts_dir / "console-ib-portal-commissions.png"), full_page=True)

    page.click("nav >> text=Payouts")
    page.wait_for_url("**/console/ib/payouts")
    mine = page.locator(f"#payouts tr[data-payout='{seeded.atlas_payout}']")
    assert "350.00 USD" in mine.inner_text()
    assert page.locator(f"tr[data-payout='{seeded.beacon_payout}']").count() == 0
    with page.expect_download() as downloading:
        mine.locator("a.statement").click()
    download = downloading.value
    assert download.suggested_filename == f"ib-statement-{seeded.atlas_payout}.pdf"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(
        ["pdftotext", str(saved), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Atlas Partners" in text
    page.screenshot(path=str(artifacts_dir / "console-ib-portal-statements.png"), full_page=True)

    # Another IB's statement, even one below it in the tree, is not its to read.
    other = page.request.get(f"{stack.api_url}/console/ib/payouts/{seeded.beacon_payout}/statement")
    assert other.status == 404
    page.context.close()
