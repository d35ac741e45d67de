"""The reconciliation console in a real headless Chromium: a finance officer reads the runs
(an unresolved-cases banner), opens a run (its counts, its cases, the report PDF framed), signs
it off, filters the break cases, opens the alerted one, assigns it, comments and proposes the
adjusting entry; a second finance officer approves it and the case is resolved, then reopens
it (open again, the entry still posted, its history kept). Screenshots of each page in
test-artifacts/."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from activities.reconciliation import ReconciliationSteps
from api.security import hash_password
from contracts.reconciliation import FileCases, period_bounds
from db.models import StaffUser
from db.models.reconciliation import ReconciliationBreak, ReconciliationRun
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.roles import StaffRole
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import make_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.browser
PASSWORD = "Officer-Pass-42"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class Officer:
    email: str
    secret: str
    name: str


@dataclass(frozen=True)
class Seeded:
    first: Officer
    second: Officer
    run_id: uuid.UUID
    key: str
    server: str


def seed(stack: Stack) -> Seeded:
    """Two finance officers and a matched run of yesterday with two breaks filed as cases."""
    settings = make_settings(stack.owner_url)
    tag = uuid.uuid4().hex[:8]
    server = f"rc{tag}"
    officers = [
        Officer(f"rc-{n.lower()}-{tag}@example.com", pyotp.random_base32(), f"Recon Officer {n}")
        for n in ("One", "Two")
    ]
    run_id = uuid.uuid4()
    key = f"mt5:5000777:BF{tag.upper()}LOST:in"
    day = datetime.now(UTC).date() - timedelta(days=2)

    async def insert() -> None:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            for officer in officers:
                session.add(
                    StaffUser(
                        id=uuid.uuid4(),
                        email=officer.email,
                        full_name=officer.name,
                        password_hash=await hash_password(PASSWORD),
                        totp_secret_enc=SecretBox(settings.secrets_key).seal(officer.secret),
                        roles=[StaffRole.FINANCE.value],
                        ip_allowlist=["127.0.0.1/32"],
                        active=True,
                    )
                )
            start, end = period_bounds(day, time(0), 0)
            session.add(
                ReconciliationRun(
                    id=run_id,
                    server=server,
                    day=day,
                    period_start=start,
                    period_end=end,
                    window_seconds=300,
                    match_window_seconds=3600,
                    status="matched",
                    matched=412,
                    breaks=2,
                    finished_at=end,
                )
            )
            await session.flush()
            for kind, found_key, amount in (
                ("missing_in_ledger", key, 25_000),
                ("manual_adjustment", f"mt5:5000778:deal:{tag}", 1_000),
            ):
                session.add(
                    ReconciliationBreak(
                        run_id=run_id,
                        type=kind,
                        key=found_key,
                        amount_minor=amount,
                        currency="USD",
                        reference=found_key.split(":")[2],
                        login=int(found_key.split(":")[1]),
                        found_in="mt5",
                        missing_from="ledger",
                        detail=f"{kind.replace('_', ' ')} (browser test)",
                    )
                )
        await ReconciliationSteps(sessions, {}).file_reconciliation_cases(
            FileCases(run_id=run_id, alert_above=100)
        )
        await engine.dispose()

    asyncio.run(insert())
    return Seeded(officers[0], officers[1], run_id, key, server)


def log_in(browser: Browser, stack: Stack, officer: Officer, path: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(f"{stack.api_url}{path}")
    page.wait_for_url("**/console/login?next=*")
    page.fill("input[name=email]", officer.email)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=totp_code]", pyotp.TOTP(officer.secret).now())
    page.click("button[type=submit]")
    try:
        page.wait_for_url(lambda url: url.startswith(f"{stack.api_url}{path}"), timeout=60_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "console-reconciliation-login-failed.png"))
        raise
    return page


def test_finance_signs_a_run_off_and_resolves_a_break_with_four_eyes(
    stack: Stack, artifacts_dir: Path
) -> None:
    seeded = seed(stack)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = log_in(browser, stack, seeded.first, "/console/reconciliation")
            page.goto(f"{stack.api_url}/console/reconciliation?server={seeded.server}")
            expect(page.locator("#unresolved-banner")).to_be_visible()
            row = page.locator(f"#runs tr[data-run='{seeded.run_id}']")
            expect(row).to_contain_text("not signed off")
            page.screenshot(path=str(artifacts_dir / "console-reconciliation.png"), full_page=True)

            row.locator("a").first.click()
            page.wait_for_url(f"**/console/reconciliation/runs/{seeded.run_id}")
            expect(page.locator("#cases")).to_contain_text(seeded.key)
            expect(page.locator("#cases")).to_contain_text("250.00 USD")
            expect(page.locator("iframe[title='reconciliation report']")).to_be_visible()
            page.fill("#sign-off-form input[name=note]", "reviewed; the lost deposit is assigned")
            page.click("#sign-off-form button[type=submit]")
            page.wait_for_url("**notice=*")
            expect(page.locator("#sign-off")).to_contain_text("signed off by Recon Officer One")
            page.screenshot(
                path=str(artifacts_dir / "console-reconciliation-run.png"), full_page=True
            )

            page.goto(
                f"{stack.api_url}/console/reconciliation/cases?server={seeded.server}"
                "&type=missing_in_ledger"
            )
            cases = page.locator("#cases")
            expect(cases).to_contain_text(seeded.key)
            expect(cases).not_to_contain_text("manual adjustment")
            expect(cases.locator(".flag")).to_contain_text("missing in ledger")  # alerted
            page.screenshot(
                path=str(artifacts_dir / "console-reconciliation-cases.png"), full_page=True
            )
            cases.locator("a", has_text=seeded.key).click()
            page.wait_for_url("**/console/reconciliation/cases/*")
            case_url = page.url
            page.select_option("#assign-form select[name=staff_id]", label="Recon Officer Two")
            page.click("#assign-form button[type=submit]")
            page.wait_for_url("**notice=*")
            expect(page.locator("#assignee")).to_have_text("Recon Officer Two")
            page.fill("#comment-form input[name=body]", "dealer booked it by hand on MT5")
            page.click("#comment-form button[type=submit]")
            page.wait_for_url("**notice=*")
            expect(page.locator("#comments")).to_contain_text("dealer booked it by hand")
            form = page.locator("#adjustment-form")
            # Money onto MT5 credits the account's mirror, as the ledger's own deposit does.
            form.locator("input[name=debit_account]").fill("suspense:reconciliation:USD")
            form.locator("input[name=credit_account]").fill(f"mt5:{seeded.server}-5000777:USD")
            form.locator("input[name=amount]").fill("250.00")
            form.locator("input[name=reason]").fill("book the dealer's manual deposit")
            form.locator("button[type=submit]").click()
            page.wait_for_url("**notice=*")
            expect(page.locator("#case-status")).to_have_text("proposed")
            # The officer who proposed it is not offered the approval.
            assert page.locator("#approve-form").count() == 0
            page.screenshot(
                path=str(artifacts_dir / "console-reconciliation-case.png"), full_page=True
            )

            second = log_in(browser, stack, seeded.second, case_url.split(stack.api_url)[1])
            expect(second.locator("#adjustment")).to_contain_text(
                "waiting for a second finance officer"
            )
            second.click("#approve-form button[type=submit]")
            second.wait_for_url("**notice=*")
            expect(second.locator("#case-status")).to_have_text("resolved")
            expect(second.locator("#adjustment")).to_contain_text("Recon Officer Two")
            second.screenshot(
                path=str(artifacts_dir / "console-reconciliation-case-resolved.png"),
                full_page=True,
            )
            # Reopened: open again, the entry still shown as posted, the history kept.
            second.fill("#reopen-form input[name=note]", "the dealer reversed the deposit")
            second.click("#reopen-form button[type=submit]")
            second.wait_for_url("**notice=*")
            expect(second.locator("#case-status")).to_have_text("open")
            expect(second.locator("#reopened")).to_contain_text("the dealer reversed the deposit")
            expect(second.locator("#adjustment")).to_contain_text("posted as")
            expect(second.locator("#history")).to_contain_text("adjustment approved")
            second.screenshot(
                path=str(artifacts_dir / "console-reconciliation-case-reopened.png"),
                full_page=True,
            )
        finally:
            browser.close()
