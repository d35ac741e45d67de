"""The compliance console's server-rendered pages: the review queue with its SLA countdowns, the
case view, the decision forms (anti-forgery value, refusals shown on the page), downloads."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.console.compliance import sla_text
from db import audit
from db.models import AuditEntry, KycDecision, QuestionnaireResponse
from domain.kyc import CaseStatus, ReviewAction
from domain.roles import StaffRole
from storage.documents import EncryptedDocumentStore
from tests.api.test_console_pages import officer_not_yet_logged_in
from tests.api.test_kyc_cases_api import (
    PDF,
    SANCTIONED_FACTORS,
    FakeWorkflows,
    KycSeed,
    use_document_store,
    use_fake_workflows,
)
from tests.support.people import PASSWORD, People

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def workflows(api: httpx.AsyncClient) -> FakeWorkflows:
    return use_fake_workflows(api)


@pytest.fixture
def store(api: httpx.AsyncClient, tmp_path: Path) -> EncryptedDocumentStore:
    return use_document_store(api, tmp_path / "documents")


@pytest.fixture
def kyc(sessions: async_sessionmaker[AsyncSession], store: EncryptedDocumentStore) -> KycSeed:
    return KycSeed(sessions, store)


async def console_cookie(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> tuple[dict[str, str], str]:
    """A compliance officer logged in through the console's form: their cookie and staff id."""
    officer = await officer_not_yet_logged_in(people, sessions, StaffRole.COMPLIANCE)
    code = pyotp.TOTP(people.totp_secrets[officer.email]).now()
    response = await api.post(
        "/console/login", data={"email": officer.email, "password": PASSWORD, "totp_code": code}
    )
    assert response.status_code == 303, response.text
    cookie = {"bf_console": response.cookies["bf_console"]}
    api.cookies.clear()
    return cookie, str(officer.id)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match is not None
    return match.group(1)


def test_sla_text() -> None:
    assert sla_text(3 * 3600 + 12 * 60 + 5) == "due in 3h 12m"
    assert sla_text(-(2 * 3600 + 5 * 60)) == "OVERDUE by 2h 5m"
    assert sla_text(90) == "due in 1m 30s"
    assert sla_text(-7) == "OVERDUE by 7s"
    assert sla_text(2 * 86_400 + 3600) == "due in 2d 1h"
    assert sla_text(None) == ""


async def test_the_pages_need_a_compliance_reader(
    api: httpx.AsyncClient, people: People, kyc: KycSeed
) -> None:
    case = await kyc.case(await kyc.client())
    for path in ("/console/compliance", f"/console/compliance/cases/{case.id}"):
        response = await api.get(path, headers=BROWSER)
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/login?{urlencode({'next': path})}"
    finance = await people.staff(StaffRole.FINANCE)
    assert (await api.get("/console/compliance", headers=finance.headers)).status_code == 403


async def test_an_empty_queue(api: httpx.AsyncClient, people: People) -> None:
    officer = await people.staff(StaffRole.COMPLIANCE)
    page = await api.get("/console/compliance", headers=officer.headers)
    assert page.status_code == 200
    assert "No case is waiting for review." in page.text
    assert 'href="/console/compliance"' in page.text  # the navigation


async def test_the_queue_shows_sla_risk_and_escalation(
    api: httpx.AsyncClient, people: People, kyc: KycSeed
) -> None:
    late = await kyc.case(await kyc.client("Late Larry"), due_in=timedelta(hours=-2, minutes=-5))
    soon = await kyc.case(
        await kyc.client("Soon Sara"),
        due_in=timedelta(hours=3, minutes=12, seconds=30),
        four_eyes=True,
        risk_level="high",
        risk_score=70,
    )
    escalated = await kyc.case(await kyc.client("Escalated Emil"), escalated=True)
    await kyc.case(await kyc.client("Done Dora"), status=CaseStatus.APPROVED, due_in=None)
    auditor = await people.staff(StaffRole.AUDITOR)
    page = await api.get("/console/compliance", headers=auditor.headers)
    assert page.status_code == 200
    text = page.text
    assert "Done Dora" not in text
    rows = re.findall(r'<tr data-case="([0-9a-f-]+)" class="([a-z]*)">', text)
    assert rows == [(str(escalated.id), "escalated"), (str(late.id), ""), (str(soon.id), "")]
    assert "OVERDUE by 2h 5m" in text or "OVERDUE by 2h 4m" in text
    assert "due in 3h 12m" in text
    assert 'class="badge risk-high">HIGH' in text and "four-eyes" in text
    assert f'href="/console/compliance/cases/{soon.id}"' in text
    assert "setInterval(tick, 1000)" in text  # the countdown keeps ticking in the browser


async def test_the_case_page_and_its_decision_forms(
    api: httpx.AsyncClient,
    people: People,
    kyc: KycSeed,
    workflows: FakeWorkflows,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = await kyc.client("Maria Example")
    case = await kyc.case(
        client, four_eyes=True, risk_level="high", risk_score=70, factors=SANCTIONED_FACTORS
    )
    await kyc.questionnaire(client)
    document = await kyc.document(client)
    hit = await kyc.hit(case, await kyc.screening_list(), score=91)
    cookie, officer_id = await console_cookie(api, people, sessions)
    path = f"/console/compliance/cases/{case.id}"

    page = await api.get(path, cookies=cookie)
    assert page.status_code == 200
    text = page.text
    assert "Maria Example" in text and "1980-05-17" in text and "Hauptstrasse 1" in text
    assert f'data-hit="{hit.id}"' in text and "<strong>91</strong>" in text
    assert "EXAMPEL, Maria" in text
    assert 'data-factor="sanctions_potential_match"' in text and ">60<" in text
    assert "appropriate, score 72 of 100" in text and "1:30" in text
    assert f'href="/console/compliance/documents/{document.id}"' in text
    action = f"/console/compliance/cases/{case.id}/decision"
    assert text.count(f'action="{action}"') == 3
    csrf = csrf_of(text)

    forged = await api.post(
        action, data={"action": "approve", "reason": "fine", "csrf": "0" * 64}, cookies=cookie
    )
    assert forged.status_code == 403 and workflows.updates == []

    # The hit is still open: approval is refused on the page, with the hit named.
    early = await api.post(
        action, data={"action": "approve", "reason": "looks fine", "csrf": csrf}, cookies=cookie
    )
    assert early.status_code == 303 and "error=" in early.headers["location"]
    refused_early = await api.get(early.headers["location"], cookies=cookie)
    assert "1 screening hit(s) still open" in refused_early.text
    assert "Maria Exampel (ofac_sdn, score 91)" in refused_early.text
    assert workflows.updates == []
    cleared = await api.post(
        f"/console/compliance/hits/{hit.id}",
        data={"status": "cleared", "case_id": str(case.id), "reason": "namesake", "csrf": csrf},
        cookies=cookie,
    )
    assert cleared.status_code == 303

    approved = await api.post(
        action,
        data={"action": "approve", "reason": "hit is a namesake", "csrf": csrf},
        cookies=cookie,
    )
    assert approved.status_code == 303
    assert approved.headers["location"].startswith(f"{path}?notice=")
    [(workflow_id, _, sent)] = workflows.updates
    assert workflow_id == case.workflow_id and str(sent.actor.staff_id) == officer_id
    assert sent.decision.action is ReviewAction.APPROVE
    shown = await api.get(approved.headers["location"], cookies=cookie)
    assert "the case is now awaiting_second_approval (1 approval)" in shown.text

    # The same officer again: the workflow refuses; the page says why, no error page.
    workflows.refusal = "this officer has already approved the case"
    again = await api.post(
        action, data={"action": "approve", "reason": "again", "csrf": csrf}, cookies=cookie
    )
    assert again.status_code == 303 and "error=" in again.headers["location"]
    refused = await api.get(again.headers["location"], cookies=cookie)
    assert refused.status_code == 200
    assert 'class="error" role="alert">this officer has already approved the case' in refused.text

    # A request for information without saying what is needed is an error on the page too.
    workflows.refusal = None
    incomplete = await api.post(
        action,
        data={"action": "request_info", "reason": "address", "info_needed": " ", "csrf": csrf},
        cookies=cookie,
    )
    assert incomplete.status_code == 303
    assert "info_needed" in (await api.get(incomplete.headers["location"], cookies=cookie)).text
    assert len(workflows.updates) == 1

    download = await api.get(f"/console/compliance/documents/{document.id}", cookies=cookie)
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    [viewed] = await kyc.rows(AuditEntry, AuditEntry.action == "client_document.viewed")
    assert viewed.actor_id == officer_id

    reviewed = await api.post(
        f"/console/compliance/hits/{hit.id}",
        data={"status": "cleared", "reason": "other DOB", "case_id": str(case.id), "csrf": csrf},
        cookies=cookie,
    )
    assert reviewed.status_code == 303 and reviewed.headers["location"].startswith(path)
    after = await api.get(path, cookies=cookie)
    assert "screening_hit.cleared" in after.text


async def test_a_closed_case_and_readers_without_forms(
    api: httpx.AsyncClient, people: People, kyc: KycSeed, workflows: FakeWorkflows
) -> None:
    client = await kyc.client()
    case = await kyc.case(client)
    document = await kyc.document(client)
    auditor = await people.staff(StaffRole.AUDITOR)
    page = await api.get(f"/console/compliance/cases/{case.id}", headers=auditor.headers)
    assert page.status_code == 200
    assert "/decision" not in page.text and "Compliance officers decide this case." in page.text
    assert f"/console/compliance/documents/{document.id}" in page.text
    admin = await people.staff(StaffRole.ADMIN)
    as_admin = await api.get(f"/console/compliance/cases/{case.id}", headers=admin.headers)
    assert f"/console/compliance/documents/{document.id}" not in as_admin.text
    assert (
        await api.get(f"/console/compliance/documents/{document.id}", headers=admin.headers)
    ).status_code == 403

    closed = await kyc.case(await kyc.client(), status=CaseStatus.REJECTED, due_in=None)
    officer = await people.staff(StaffRole.COMPLIANCE)
    closed_page = await api.get(f"/console/compliance/cases/{closed.id}", headers=officer.headers)
    assert closed_page.status_code == 200 and "/decision" not in closed_page.text
    decided = await api.post(
        f"/console/compliance/cases/{closed.id}/decision",
        data={"action": "approve", "reason": "late"},
        headers=officer.headers,
    )
    assert decided.status_code == 303 and "closed" in decided.headers["location"]
    assert workflows.updates == []
    missing = await api.get(f"/console/compliance/cases/{client.id}", headers=officer.headers)
    assert missing.status_code == 404


async def test_the_filter_form_as_a_browser_sends_it(
    api: httpx.AsyncClient, people: People, kyc: KycSeed
) -> None:
    await kyc.case(await kyc.client("Escalated Emil"), escalated=True)
    await kyc.case(await kyc.client("Calm Carl"))
    officer = await people.staff(StaffRole.COMPLIANCE)
    every = await api.get("/console/compliance?status=&escalated=", headers=officer.headers)
    assert every.status_code == 200
    assert "Escalated Emil" in every.text and "Calm Carl" in every.text
    only = await api.get("/console/compliance?status=&escalated=true", headers=officer.headers)
    assert "Escalated Emil" in only.text and "Calm Carl" not in only.text


async def test_the_queue_is_searched_and_paged(
    api: httpx.AsyncClient, people: People, kyc: KycSeed
) -> None:
    tag = uuid.uuid4().hex[:6]
    cases = [
        await kyc.case(await kyc.client(f"Paged {tag} {n}"), due_in=timedelta(hours=n + 1))
        for n in range(3)
    ]
    await kyc.case(await kyc.client("Someone Else"))
    officer = await people.staff(StaffRole.COMPLIANCE)
    first = await api.get(
        "/console/compliance", params={"q": tag, "limit": 2}, headers=officer.headers
    )
    assert first.status_code == 200
    rows = re.findall(r'<tr data-case="([0-9a-f-]+)"', first.text)
    assert rows == [str(cases[0].id), str(cases[1].id)]  # due first on top
    assert "1&ndash;2 of 3" in first.text and 'rel="next"' in first.text
    assert "Someone Else" not in first.text
    second = await api.get(
        "/console/compliance", params={"q": tag, "limit": 2, "offset": 2}, headers=officer.headers
    )
    assert re.findall(r'<tr data-case="([0-9a-f-]+)"', second.text) == [str(cases[2].id)]
    assert "3&ndash;3 of 3" in second.text and 'rel="prev"' in second.text
    # By email too; a search that finds nothing says so.
    client = await kyc.client(f"Mailed {tag}")
    await kyc.case(client)
    by_email = await api.get(
        "/console/compliance", params={"q": client.email}, headers=officer.headers
    )
    assert re.findall(r'<tr data-case="', by_email.text) == ['<tr data-case="']
    none = await api.get(
        "/console/compliance", params={"q": "nobody-" + tag}, headers=officer.headers
    )
    assert "No case matches" in none.text


async def test_the_case_page_names_people_and_hides_a_decided_approval(
    api: httpx.AsyncClient,
    people: People,
    kyc: KycSeed,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Officers by name in decisions and the audit trail (ids on hover), the trail paged and
    searched, no Approve for the officer who approved, and one leverage: the account's."""
    client = await kyc.client("Lena Leverage")
    case = await kyc.case(client, four_eyes=True, risk_level="medium", risk_score=40)
    questionnaire = await kyc.questionnaire(client)
    async with sessions.begin() as session:
        await session.execute(
            update(QuestionnaireResponse)
            .where(QuestionnaireResponse.id == questionnaire.id)
            .values(leverage_cap=None)  # an APPROPRIATE result sets no cap of its own
        )
    cookie, officer_id = await console_cookie(api, people, sessions)
    async with sessions.begin() as session:
        session.add(
            KycDecision(
                case_id=case.id,
                review_round=1,
                officer_id=uuid.UUID(officer_id),
                action="approve",
                reason="documents fine",
            )
        )
        for n in range(30):
            audit.record(
                session,
                audit.Actor(kind="staff", id=officer_id, roles=("compliance",)),
                audit.Change(
                    action=f"kyc_case.noted_{n}",
                    entity_type="kyc_case",
                    entity_id=str(case.id),
                    reason=f"note {n}",
                ),
            )
    path = f"/console/compliance/cases/{case.id}"
    page = await api.get(path, cookies=cookie)
    assert page.status_code == 200
    text = page.text
    # The leverage the live account gets, from the rule that opens it: 1:30 (EU retail), not
    # "none" because the questionnaire sets no cap of its own.
    leverage = text[text.index('id="leverage"') :]
    assert leverage.startswith('id="leverage"><strong>1:30</strong>')
    assert "regulatory 1:30" in leverage and "questionnaire: no cap of its own" in leverage
    assert "Leverage cap</dt><dd>none" not in text
    # Approved already: no Approve form, Reject and Request information stay.
    assert 'id="approve-form"' not in text and 'id="approved-already"' in text
    assert 'id="reject-form"' in text and 'id="request-info-form"' in text
    decisions = text[text.index('id="decisions"') : text.index('id="audit"')]
    assert "Test Staff" in decisions or "@example.com" in decisions
    assert f'title="{officer_id}"' in decisions and "(you)" in decisions
    # The trail: newest first, 25 a page, the officer by name, searchable.
    trail = text[text.index('<table id="audit"') :]
    assert trail.index("kyc_case.noted_29") < trail.index("kyc_case.noted_28")
    assert "kyc_case.noted_4 <" not in trail and 'rel="next"' in trail
    assert f'title="staff {officer_id}"' in trail
    found = await api.get(path, params={"audit_q": "note 7"}, cookies=cookie)
    found_trail = found.text[found.text.index('<table id="audit"') :]
    assert "kyc_case.noted_7" in found_trail and "kyc_case.noted_8" not in found_trail
    older = await api.get(path, params={"audit_offset": 25}, cookies=cookie)
    assert "kyc_case.noted_4 <" in older.text
