"""The compliance console in a real headless Chromium, against the real stack (API and worker
processes, Temporal, PostgreSQL): two compliance officers approve a HIGH-risk case four-eyes.

Officer 1 logs in, sees the case in the queue with its SLA countdown ticking, finds it by the
client's name, opens it, sees the screening hit's score and the risk breakdown; approving while
the hit is open is refused on the page (the 409's reason), clears the hit, approves; the Approve
button is then gone for them; officer 2 approves and the case is approved.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect, sync_playwright
from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter

from api.security import hash_password
from contracts import TASK_QUEUE
from contracts.kyc_review import KYC_REVIEW, KYC_STATE, CaseView, KycCaseInput
from db.models import StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.kyc import CaseReason, CaseStatus
from domain.roles import StaffRole
from tests.api.test_kyc_cases_api import SANCTIONED_FACTORS, KycSeed
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import make_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.browser
PASSWORD = "Officer-Pass-42"


@dataclass(frozen=True)
class Officer:
    email: str
    secret: str


@dataclass(frozen=True)
class Seeded:
    officers: tuple[Officer, Officer]
    case_id: uuid.UUID
    soon_id: uuid.UUID
    client_name: str


def seed(stack: Stack) -> Seeded:
    """Two compliance officers who have not logged in yet, and a HIGH-risk case whose checks
    are done (a sanctions potential match), its `KycReview` workflow running on the stack."""
    settings = make_settings(stack.owner_url)
    box = SecretBox(settings.secrets_key)
    officers = tuple(
        Officer(f"kyc-officer-{uuid.uuid4().hex[:8]}@example.com", pyotp.random_base32())
        for _ in range(2)
    )
    name = f"Viktor Namesake {uuid.uuid4().hex[:4]}"

    async def insert() -> tuple[uuid.UUID, uuid.UUID]:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            for officer in officers:
                session.add(
                    StaffUser(
                        id=uuid.uuid4(),
                        email=officer.email,
                        full_name="Compliance Officer",
                        password_hash=await hash_password(PASSWORD),
                        totp_secret_enc=box.seal(officer.secret),
                        roles=[StaffRole.COMPLIANCE.value],
                        ip_allowlist=["127.0.0.1/32"],
                        active=True,
                    )
                )
        kyc = KycSeed(sessions, None)
        client = await kyc.client(name)
        await kyc.questionnaire(client)
        await kyc.document(client)
        case = await kyc.case(
            client,
            due_in=timedelta(hours=3, minutes=12),
            four_eyes=True,
            risk_level="high",
            risk_score=70,
            factors=SANCTIONED_FACTORS,
            reason=CaseReason.LIST_CHANGE.value,
        )
        await kyc.hit(
            case,
            await kyc.screening_list(active=False),
            score=91,
            listed_name="Viktor Namesake",
            primary_name="NAMESAKE, Viktor",
        )
        # Another case, due within the hour: its countdown shows the seconds ticking.
        soon = await kyc.case(await kyc.client("Soon Sara"), due_in=timedelta(minutes=40))
        await engine.dispose()

        temporal = await TemporalClient.connect(
            stack.temporal_address, data_converter=pydantic_data_converter
        )
        handle = await temporal.start_workflow(
            KYC_REVIEW.name,
            KycCaseInput(case_id=case.id, client_id=client.id, reason=CaseReason.LIST_CHANGE),
            id=case.workflow_id,
            task_queue=TASK_QUEUE,
        )
        async with asyncio.timeout(30):  # the checks step finds the case already checked
            while (
                await handle.query(KYC_STATE.name, result_type=CaseView)
            ).status is CaseStatus.CHECKING:
                await asyncio.sleep(0.2)
        return case.id, soon.id

    case_id, soon_id = asyncio.run(insert())
    return Seeded((officers[0], officers[1]), case_id, soon_id, name)


def log_in(page: Page, stack: Stack, officer: Officer) -> None:
    page.goto(f"{stack.api_url}/console/login")
    page.fill("input[name=email]", officer.email)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=totp_code]", pyotp.TOTP(officer.secret).now())
    page.click("button[type=submit]")
    page.wait_for_url("**/console/finance")


def approve(page: Page, reason: str) -> None:
    form = page.locator("#approve-form")
    form.locator("input[name=reason]").fill(reason)
    form.locator("button[type=submit]").click()


def test_two_officers_approve_a_high_risk_case(stack: Stack, artifacts_dir: Path) -> None:
    seeded = seed(stack)
    first, second = seeded.officers
    case_url = f"{stack.api_url}/console/compliance/cases/{seeded.case_id}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            log_in(page, stack, first)
            page.click("nav >> text=KYC review")
            page.wait_for_url("**/console/compliance")
            assert page.title() == "BrokerFlow console: KYC review"

            row = page.locator(f"#queue tr[data-case='{seeded.case_id}']")
            assert seeded.client_name in row.inner_text()
            assert "HIGH" in row.inner_text() and "four-eyes" in row.inner_text()
            shown = row.locator(".sla").inner_text()
            assert re.fullmatch(r"due in 3h 1[12]m", shown), shown
            # Under an hour the countdown shows seconds, and the page ticks them down.
            ticking = page.locator(f"#queue tr[data-case='{seeded.soon_id}'] .sla")
            before = ticking.inner_text()
            assert re.fullmatch(r"due in (39|40)m \d+s", before), before
            expect(ticking).not_to_have_text(before, timeout=5000)
            page.screenshot(path=str(artifacts_dir / "console-kyc-queue.png"), full_page=True)
            # Found by the client's name; the queue pages (one a page here).
            page.fill("#queue-filter input[name=q]", seeded.client_name)
            page.click("#queue-filter button[type=submit]")
            page.wait_for_url("**/console/compliance?*q=*")
            assert page.locator("#queue tbody tr").count() == 1
            expect(page.locator("#queue-pager")).to_contain_text("1\u20131 of 1")
            row = page.locator(f"#queue tr[data-case='{seeded.case_id}']")

            row.locator(f"a[href='/console/compliance/cases/{seeded.case_id}']").first.click()
            page.wait_for_url(f"**/console/compliance/cases/{seeded.case_id}")
            assert page.locator("#leverage").inner_text().startswith("1:")
            hit = page.locator("#hits tbody tr").first
            assert "91" in hit.locator("td.score").inner_text()
            assert "NAMESAKE, Viktor" in hit.inner_text()
            risk = page.locator("#risk").inner_text()
            assert "sanctions_potential_match" in risk and "60" in risk
            assert "source_of_funds" in risk and "70" in risk
            assert "appropriate, score 72 of 100" in page.locator("#questionnaire").inner_text()
            assert "passport" in page.locator("#documents").inner_text()
            page.screenshot(path=str(artifacts_dir / "console-kyc-case.png"), full_page=True)

            # The hit is still open: approval is refused, the page names the hit.
            approve(page, "looks fine")
            page.wait_for_url("**?error=*")
            assert "still open" in page.locator(".error").inner_text()
            assert "Viktor Namesake" in page.locator(".error").inner_text()
            page.screenshot(
                path=str(artifacts_dir / "console-kyc-case-open-hit-refused.png"), full_page=True
            )
            hit = page.locator("#hits tbody tr").first
            hit.locator("input[name=reason]").fill("other date of birth")
            hit.locator("button[value=cleared]").click()
            page.wait_for_url("**?notice=*")
            assert "cleared" in page.locator("#hits tbody tr").first.inner_text()
            page.goto(case_url)

            approve(page, "the hit is a namesake: other date of birth")
            page.wait_for_url("**?notice=*")
            assert "awaiting_second_approval" in page.locator(".notice").inner_text()
            assert "1 of 2" in page.locator("#approvals").inner_text()

            # This officer has decided: no Approve button any more, the page says who must.
            assert page.locator("#approve-form").count() == 0
            assert (
                "second, different compliance officer"
                in page.locator("#approved-already").inner_text()
            )
            assert "(you)" in page.locator("#approvals").inner_text()
            assert "awaiting_second_approval" in page.locator("#case-status").inner_text()

            page.click("nav button[type=submit]")  # log out
            page.wait_for_url("**/console/login")
            log_in(page, stack, second)
            page.goto(case_url)
            approve(page, "second pair of eyes: agreed")
            page.wait_for_url("**?notice=*")
            assert "approved" in page.locator(".notice").inner_text()
            assert page.locator("#case-status").inner_text().startswith("approved")
            assert page.locator("#decide").count() == 0
            decisions = page.locator("#decisions").inner_text()
            assert decisions.count("approve") == 2
            page.screenshot(path=str(artifacts_dir / "console-kyc-approved.png"), full_page=True)
        finally:
            browser.close()
