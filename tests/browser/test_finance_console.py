"""The finance console in a real headless Chromium: log in with password and TOTP code, see
withdrawals waiting for approval with their flags and the client by name, page through them,
decide one with the form, read the ledger in debit and credit columns with the client named."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect, sync_playwright

from api.security import hash_password
from db.ledger import post_entry
from db.models import Client, Payment, StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.money import Money
from domain.money_flows import MovementKind, reference_for
from domain.roles import StaffRole
from domain.wallets import credit_deposit
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import make_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.browser
PASSWORD = "Officer-Pass-42"


@dataclass(frozen=True)
class Seeded:
    email: str
    secret: str
    payment: Payment
    waiting: tuple[Payment, ...]  # all the client's withdrawals waiting, oldest first
    client_email: str


def seed(stack: Stack) -> Seeded:
    """A finance officer who has not logged in yet, a client with three flagged withdrawals
    waiting (enough to page two at a time) and a deposit booked to the wallet."""
    settings = make_settings(stack.owner_url)
    email = f"console-{uuid.uuid4().hex[:8]}@example.com"
    secret = pyotp.random_base32()
    client_id, payment_id = uuid.uuid4(), uuid.uuid4()
    client_email = f"console-client-{uuid.uuid4().hex[:8]}@example.com"
    payment = Payment(
        id=payment_id,
        client_id=client_id,
        direction="withdrawal",
        provider="bankco",
        reference=reference_for(MovementKind.PAYMENT, payment_id),
        status="pending_approval",
        currency="USD",
        amount_minor=250_000,
        requested_minor=250_000,
        idempotency_key=str(payment_id),
        request_hash="0" * 64,
        # No such workflow: deciding it shows the engine's answer on the page.
        workflow_id=f"withdrawal-{payment_id}",
        compliance_status="pending",
        risk_flags=["large_amount"],
    )
    others = tuple(_withdrawal(client_id, 100_000 * n) for n in (1, 2))

    async def insert() -> None:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        async with create_sessionmaker(engine).begin() as session:
            session.add(
                StaffUser(
                    id=uuid.uuid4(),
                    email=email,
                    full_name="Console Officer",
                    password_hash=await hash_password(PASSWORD),
                    totp_secret_enc=SecretBox(settings.secrets_key).seal(secret),
                    roles=[StaffRole.FINANCE.value],
                    ip_allowlist=["127.0.0.1/32"],
                    active=True,
                )
            )
            session.add(
                Client(
                    id=client_id,
                    email=client_email,
                    password_hash=await hash_password(PASSWORD),
                    full_name="Console Client",
                    country="DE",
                    date_of_birth=date(1985, 3, 1),
                    status="active",
                )
            )
            await session.flush()
            session.add(payment)
            await session.flush()
            for other in others:
                session.add(other)
            deposit = Money.model_validate({"amount": "1200.00", "currency": "USD"})
            await post_entry(
                session, credit_deposit(f"test-{uuid.uuid4()}", str(client_id), "bankco", deposit)
            )
        await engine.dispose()

    asyncio.run(insert())
    return Seeded(email, secret, payment, (payment, *others), client_email)


def _withdrawal(client_id: uuid.UUID, amount_minor: int) -> Payment:
    payment_id = uuid.uuid4()
    return Payment(
        id=payment_id,
        client_id=client_id,
        direction="withdrawal",
        provider="bankco",
        reference=reference_for(MovementKind.PAYMENT, payment_id),
        status="pending_approval",
        currency="USD",
        amount_minor=amount_minor,
        requested_minor=amount_minor,
        idempotency_key=str(payment_id),
        request_hash="0" * 64,
        workflow_id=f"withdrawal-{payment_id}",
        compliance_status="pending",
        risk_flags=["large_amount"],
    )


def test_an_officer_logs_in_and_decides(stack: Stack, artifacts_dir: Path) -> None:
    seeded = seed(stack)
    email, secret, payment = seeded.email, seeded.secret, seeded.payment
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{stack.api_url}/console")
            page.click("text=Payments and approvals")
            # Without a session the page sends the browser to log in, and back after it.
            page.wait_for_url("**/console/login?next=%2Fconsole%2Ffinance")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=totp_code]", pyotp.TOTP(secret).now())
            page.click("button[type=submit]")
            page.wait_for_url("**/console/finance")

            row = page.locator(f"#approvals tr[data-payment='{payment.id}']")
            assert "large_amount" in row.inner_text()
            assert "2500.00 USD" in row.inner_text()
            assert payment.reference in page.locator("#payments").inner_text()
            page.screenshot(path=str(artifacts_dir / "console-finance.png"), full_page=True)

            # The client's withdrawals, two a page: the client by name and email, no ids.
            approvals = page.locator("#approvals-filter")
            approvals.locator("input[name=approvals_q]").fill(seeded.client_email)
            approvals.locator("button[type=submit]").click()
            page.wait_for_url("**approvals_q=*")
            assert "approvals_limit=25" in page.url  # the form keeps the page size
            page.goto(page.url.replace("approvals_limit=25", "approvals_limit=2"))
            assert page.locator("#approvals tbody tr").count() == 2
            client_cell = page.locator("#approvals tbody tr td.client").first.inner_text()
            assert "Console Client" in client_cell and seeded.client_email in client_cell
            assert str(payment.client_id) not in page.locator("#approvals").inner_text()
            expect(page.locator("#approvals-pager")).to_contain_text("1\u20132 of 3")
            page.screenshot(
                path=str(artifacts_dir / "console-finance-approvals-paged.png"), full_page=True
            )
            page.click("#approvals-pager >> a[rel=next]")
            expect(page.locator("#approvals-pager")).to_contain_text("3\u20133 of 3")
            assert page.locator("#approvals tbody tr").count() == 1
            page.goto(f"{stack.api_url}/console/finance")

            row.locator("input[name=reason]").fill("documents checked")
            row.locator("button[value=approve]").click()
            page.wait_for_url("**/console/finance?error=*")
            assert "nothing to decide" in page.locator(".error").inner_text()

            page.click("text=Ledger")
            page.wait_for_url("**/console/ledger")
            assert page.title() == "BrokerFlow console: ledger"
            page.fill("#ledger-filter input[name=q]", seeded.client_email)
            page.click("#ledger-filter button[type=submit]")
            page.wait_for_url("**/console/ledger?q=*")
            wallet = page.locator(f"#accounts tr[data-code='wallet:{payment.client_id}:USD']")
            assert "Console Client" in wallet.inner_text()
            assert "client wallet" in wallet.inner_text()
            assert wallet.locator("td.credit").inner_text() == "1200.00"
            assert wallet.locator("td.debit").inner_text() == ""
            headers = page.locator("#accounts thead").inner_text()
            assert "Debit" in headers and "Credit" in headers
            page.screenshot(path=str(artifacts_dir / "console-ledger.png"), full_page=True)
            wallet.locator("a").first.click()
            page.wait_for_url("**/console/ledger?code=*")
            entry = page.locator("#entries tbody tr").first
            assert entry.locator("td.credit").first.inner_text() == "1200.00"
            assert "clearing at bankco" in entry.inner_text() and "Dr 1200.00" in entry.inner_text()
            assert "1200.00 USD credit" in page.locator("#balance").inner_text()
            page.screenshot(path=str(artifacts_dir / "console-ledger-entries.png"), full_page=True)
        finally:
            browser.close()
