"""Finance cases and unmatched funds in a real headless Chromium: a finance officer finds a
second transfer in the unmatched-funds queue by the payer's name, opens it (the deposit its
reference named and that deposit's client, by name), credits it to the client by email; then
finds the client's finance case, reads what was and was not undone, and resolves it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect, sync_playwright

from api.security import hash_password
from db.models import Client, FinanceCase, Payment, StaffUser, UnmatchedFunds
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.unmatched_funds import queue_unmatched
from db.urls import app_database_url
from domain.money import Money
from domain.money_flows import MovementKind, reference_for
from domain.payments import PaymentEvent, PaymentEventKind, UnmatchedReason
from domain.roles import StaffRole
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import make_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.browser
PASSWORD = "Officer-Pass-42"


@dataclass(frozen=True)
class Seeded:
    email: str
    secret: str
    client_id: uuid.UUID
    client_email: str
    payer: str
    item_id: uuid.UUID
    case_id: uuid.UUID
    case_reference: str


def seed(stack: Stack) -> Seeded:
    """A finance officer, a client with a completed deposit, a second transfer on that
    deposit's reference queued as unmatched funds, and an open finance case of the client."""
    settings = make_settings(stack.owner_url)
    tag = uuid.uuid4().hex[:8]
    email, client_email = f"uf-officer-{tag}@example.com", f"uf-client-{tag}@example.com"
    payer = f"Payer {tag.upper()}"
    secret = pyotp.random_base32()
    client_id, deposit_id, case_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    transfer_reference = f"BK{tag.upper()}"
    case_reference = reference_for(MovementKind.TRANSFER, uuid.uuid4())
    item: list[uuid.UUID] = []

    async def insert() -> None:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        async with create_sessionmaker(engine).begin() as session:
            session.add(
                StaffUser(
                    id=uuid.uuid4(),
                    email=email,
                    full_name="Unmatched Officer",
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
                    full_name="Second Transfer Client",
                    country="DE",
                    date_of_birth=date(1984, 5, 2),
                    status="active",
                )
            )
            await session.flush()
            session.add(
                Payment(
                    id=deposit_id,
                    client_id=client_id,
                    direction="deposit",
                    provider="bankco",
                    reference=reference_for(MovementKind.PAYMENT, deposit_id),
                    transfer_reference=transfer_reference,
                    status="completed",
                    currency="USD",
                    amount_minor=50_000,
                    requested_minor=100_000,
                    idempotency_key=str(deposit_id),
                    request_hash="0" * 64,
                    workflow_id=f"deposit-{deposit_id}",
                    compliance_status="approved",
                    risk_flags=[],
                )
            )
            session.add(
                FinanceCase(
                    id=case_id,
                    movement_kind="transfer",
                    movement_id=uuid.uuid4(),
                    reference=case_reference,
                    client_id=client_id,
                    kind="compensation_incomplete",
                    status="open",
                    currency="USD",
                    amount_minor=25_000,
                    reason="failed: undone after a fault",
                    undone=[
                        {
                            "step": "reverse_entry_if_booked",
                            "amount": "250.00",
                            "what": f"reverse the entry {case_reference}:hold",
                            "currency": "USD",
                        }
                    ],
                    not_undone=[
                        {
                            "step": "mt5_reverse_if_applied",
                            "amount": "250.00",
                            "what": f"undo 'tri {case_reference}' on MT5 live-1 5000777",
                            "currency": "USD",
                            "error": "Mt5Error: 10006 Request rejected",
                        }
                    ],
                )
            )
            await session.flush()
            event = PaymentEvent(
                provider="bankco",
                event_id=f"bk_{tag}",
                kind=PaymentEventKind.TRANSFER_RECEIVED,
                provider_ref=f"tr_{tag}",
                reference=transfer_reference,
                amount=Money(amount=Decimal("500.00"), currency="USD"),
                payer_name=payer,
                sent_at=datetime.now(UTC),
            )
            await queue_unmatched(
                session, event, UnmatchedReason.SECOND_PAYMENT, deposit_id, "a second transfer"
            )
            await session.flush()
            [queued] = (
                await session.scalars(
                    UnmatchedFunds.__table__.select()
                    .with_only_columns(UnmatchedFunds.id)
                    .where(UnmatchedFunds.event_id == event.event_id)
                )
            ).all()
            item.append(queued)
        await engine.dispose()

    asyncio.run(insert())
    return Seeded(email, secret, client_id, client_email, payer, item[0], case_id, case_reference)


def test_an_officer_credits_unmatched_funds_and_resolves_a_case(
    stack: Stack, artifacts_dir: Path
) -> None:
    seeded = seed(stack)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{stack.api_url}/console/finance/unmatched")
            page.wait_for_url("**/console/login?next=*")
            page.fill("input[name=email]", seeded.email)
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=totp_code]", pyotp.TOTP(seeded.secret).now())
            page.click("button[type=submit]")
            page.wait_for_url("**/console/finance/unmatched")

            # The queue, searched by the payer's name: the deposit's client by name, no ids.
            page.fill("#unmatched-filter input[name=q]", seeded.payer)
            page.click("#unmatched-filter button[type=submit]")
            page.wait_for_url("**/console/finance/unmatched?*q=*")
            row = page.locator(f"#unmatched tr[data-item='{seeded.item_id}']")
            expect(row).to_contain_text("500.00 USD")
            expect(row).to_contain_text("Second Transfer Client")
            assert str(seeded.client_id) not in page.locator("#unmatched").inner_text()
            expect(page.locator("#unmatched-pager")).to_contain_text("1\u20131 of 1")
            page.screenshot(path=str(artifacts_dir / "console-unmatched-funds.png"), full_page=True)

            row.locator("a", has_text="Open").click()
            page.wait_for_url(f"**/console/finance/unmatched/{seeded.item_id}")
            facts = page.locator("#item-facts")
            expect(facts).to_contain_text("second payment")
            expect(facts).to_contain_text("Second Transfer Client")
            credit = page.locator("#credit-form")
            # The deposit's client is offered: finance only confirms and gives the reason.
            assert credit.locator("input[name=client_email]").input_value() == seeded.client_email
            credit.locator("input[name=reason]").fill("the client's second transfer of 500")
            page.screenshot(
                path=str(artifacts_dir / "console-unmatched-funds-item.png"), full_page=True
            )
            credit.locator("button[type=submit]").click()
            page.wait_for_url("**notice=*")
            expect(page.locator(".notice")).to_contain_text("being credited to Second Transfer")
            expect(page.locator("#history")).to_contain_text("unmatched_funds.crediting")
            expect(page.locator("#history")).to_contain_text("Unmatched Officer")

            page.click("nav >> text=Finance cases")
            page.wait_for_url("**/console/finance/cases")
            page.fill("#cases-filter input[name=q]", seeded.client_email)
            page.click("#cases-filter button[type=submit]")
            page.wait_for_url("**/console/finance/cases?*q=*")
            case_row = page.locator(f"#finance-cases tr[data-case='{seeded.case_id}']")
            expect(case_row).to_contain_text("Second Transfer Client")
            expect(case_row).to_contain_text("250.00 USD")
            page.screenshot(path=str(artifacts_dir / "console-finance-cases.png"), full_page=True)

            case_row.locator("a", has_text="Open").click()
            page.wait_for_url(f"**/console/finance/cases/{seeded.case_id}")
            expect(page.locator("#not-undone")).to_contain_text("10006 Request rejected")
            expect(page.locator("#undone")).to_contain_text(f"{seeded.case_reference}:hold")
            page.screenshot(path=str(artifacts_dir / "console-finance-case.png"), full_page=True)
            page.fill("#resolve-form input[name=reason]", "credit taken back on MT5 by hand")
            page.click("#resolve-form button[type=submit]")
            page.wait_for_url("**notice=*")
            expect(page.locator("#case-status")).to_have_text("resolved")
            expect(page.locator("#history")).to_contain_text("finance_case.resolved")
            assert page.locator("#resolve-form").count() == 0
        finally:
            browser.close()
