"""Compliance's KYC API: the review queue, the case view, decisions through the case's workflow,
document downloads (audited), screening hits, list uploads and staff account changes.

Most tests answer for Temporal with a fake client (what the API asks of it is recorded, its
refusals are WorkflowUpdateFailedErrors as Temporal raises them); one runs the real `KycReview`
workflow with its real database activities.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.temporal import TemporalConnector
from contracts import client_mail
from contracts.account_change import ACCOUNT_CHANGE, AccountChangeInput
from contracts.account_change import AccountChangeView as ChangeState
from contracts.client_mail import ClientMailInput
from contracts.kyc import OfficerDecision
from contracts.kyc_review import KYC_DECIDE, KYC_STATE, CaseView, KycCaseInput, kyc_case_workflow_id
from contracts.screening_refresh import SCREENING_REFRESH, ScreeningRefreshInput
from contracts.steps import implements
from db.models import (
    AccountApplication,
    AccountChange,
    AuditEntry,
    Client,
    ClientDocument,
    KycCase,
    KycDecision,
    Mt5Account,
    QuestionnaireResponse,
    ScreeningHit,
    ScreeningList,
)
from domain.accounts import AccountChangeKind, AccountChangeStatus
from domain.kyc import CaseReason, CaseStatus, ReviewAction
from domain.roles import StaffRole
from storage.documents import EncryptedDocumentStore, LocalFileStore, generate_key
from tests.support.people import People, Person

SAMPLES = Path(__file__).resolve().parents[2] / "screening" / "samples"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SANCTIONED_FACTORS = [
    {
        "name": "sanctions_potential_match",
        "points": 60,
        "detail": "1 sanctions potential match(es), best hit score 91",
    },
    {"name": "source_of_funds", "points": 10, "detail": "source of funds: business_income"},
]


# -- rows a KYC test needs, written straight into the database ----------------------------------


class KycSeed:
    """Clients, cases, documents, lists and hits, as the onboarding and the checks leave them."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], store: EncryptedDocumentStore | None
    ) -> None:
        self.sessions = sessions
        self.store = store
        self._logins = iter(range(6_100_001, 6_199_999))

    async def client(self, name: str = "Maria Example", **columns: Any) -> Client:
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "email": f"kyc-{uuid.uuid4().hex[:8]}@example.com",
            "password_hash": "x",
            "full_name": name,
            "country": "DE",
            "nationality": "DE",
            "date_of_birth": date(1980, 5, 17),
            "status": "active",
            "phone": "+4930123456",
            "address_line1": "Hauptstrasse 1",
            "city": "Berlin",
            "postal_code": "10115",
            "email_verified_at": datetime.now(UTC),
        }
        values.update(columns)
        row = Client(**values)
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def case(
        self,
        client: Client,
        *,
        status: CaseStatus = CaseStatus.IN_REVIEW,
        due_in: timedelta | None = timedelta(hours=3),
        four_eyes: bool = False,
        risk_level: str | None = "low",
        risk_score: int | None = 10,
        factors: list[dict[str, Any]] | None = None,
        escalated: bool = False,
        reason: str = "onboarding",
        review_round: int = 1,
    ) -> KycCase:
        case_id = uuid.uuid4()
        now = datetime.now(UTC)
        row = KycCase(
            id=case_id,
            client_id=client.id,
            reason=reason,
            status=status.value,
            workflow_id=kyc_case_workflow_id(case_id),
            account_type="standard",
            mt5_server="live-1",
            requires_four_eyes=four_eyes,
            review_round=review_round,
            risk_score=risk_score,
            risk_level=risk_level,
            risk_factors=factors or [],
            waiting_since=now - timedelta(hours=1) if due_in is not None else None,
            due_at=now + due_in if due_in is not None else None,
            escalated_at=now - timedelta(minutes=5) if escalated else None,
            reminders_sent=0,
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def questionnaire(self, client: Client) -> QuestionnaireResponse:
        row = QuestionnaireResponse(
            client_id=client.id,
            version="2026-11",
            answers={},
            score=72,
            max_score=100,
            outcome="appropriate",
            leverage_cap=30,
            category="retail",
            requested_professional=False,
            source_of_funds="business_income",
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def document(
        self, client: Client, data: bytes = PDF, kind: str = "passport"
    ) -> ClientDocument:
        key = f"clients/{client.id}/documents/{uuid.uuid4().hex}"
        if self.store is not None:
            await self.store.put(key, data)
        row = ClientDocument(
            client_id=client.id,
            kind=kind,
            status="accepted",
            filename="pässport scan.pdf",
            content_type="application/pdf",
            size_bytes=len(data),
            pages=1,
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key=key,
            issued_on=date(2020, 1, 1),
            expires_on=date(2030, 1, 1),
            valid_until=date(2030, 1, 1),
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def screening_list(self, source: str = "ofac_sdn", active: bool = True) -> ScreeningList:
        row = ScreeningList(
            source=source,
            published_at=datetime(2026, 11, 1, tzinfo=UTC),
            digest=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            party_count=2,
            active=active,
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def hit(
        self, case: KycCase, listed: ScreeningList, score: int = 91, **columns: Any
    ) -> ScreeningHit:
        values: dict[str, Any] = {
            "case_id": case.id,
            "client_id": case.client_id,
            "list_id": listed.id,
            "source": listed.source,
            "party_key": uuid.uuid4().hex[:12],
            "listed_name": "Maria Exampel",
            "primary_name": "EXAMPEL, Maria",
            "score": score,
            "name_score": score - 5,
            "is_pep": False,
            "factors": {"name": "token alignment", "dob": "agree", "nationality": "agree"},
        }
        values.update(columns)
        row = ScreeningHit(**values)
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def decision(
        self, case: KycCase, officer: Person, action: str = "approve", review_round: int = 1
    ) -> None:
        async with self.sessions.begin() as session:
            session.add(
                KycDecision(
                    case_id=case.id,
                    review_round=review_round,
                    officer_id=officer.id,
                    action=action,
                    reason="looked at it",
                )
            )

    async def live_account(self, client: Client, currency: str = "EUR") -> Mt5Account:
        application_id = uuid.uuid4()
        login = next(self._logins)
        row = Mt5Account(
            id=uuid.uuid4(),
            client_id=client.id,
            application_id=application_id,
            server="live-1",
            login=login,
            group="real\\eu\\standard",
            leverage=30,
            currency=currency,
            kind="live",
        )
        async with self.sessions.begin() as session:
            session.add(
                AccountApplication(
                    id=application_id,
                    client_id=client.id,
                    account_type="standard",
                    kind="live",
                    status="completed",
                    workflow_id=f"account-opening-{application_id}",
                    mt5_server="live-1",
                    mt5_login=login,
                )
            )
            await session.flush()
            session.add(row)
        return row

    async def count(self, model: type, *where: Any) -> int:
        async with self.sessions() as session:
            query = select(func.count()).select_from(model)
            for condition in where:
                query = query.where(condition)
            return int(await session.scalar(query) or 0)

    async def rows(self, model: type, *where: Any) -> list[Any]:
        async with self.sessions() as session:
            query: Select[Any] = select(model)
            for condition in where:
                query = query.where(condition)
            return list(await session.scalars(query))


# -- a stand-in for the Temporal client ----------------------------------------------------------


@dataclass
class FakeWorkflows:
    """Records starts and updates; `refusal` makes the next updates fail as a validator's
    rejection does; `closed` ids answer NOT_FOUND as a finished workflow does."""

    started: list[tuple[str, Any, str]] = field(default_factory=list)
    updates: list[tuple[str, str, Any]] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    refusal: str | None = None
    answer: Any = None

    async def start_workflow(self, run: Any, arg: Any, *, id: str, **_: Any) -> None:
        self.started.append((str(run), arg, id))

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@dataclass
class FakeHandle:
    workflows: FakeWorkflows
    id: str

    async def execute_update(
        self, name: str, arg: Any, *, id: str | None = None, result_type: type
    ) -> Any:
        if self.id in self.workflows.closed:
            raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
        if self.workflows.refusal is not None:
            raise WorkflowUpdateFailedError(
                ApplicationError(self.workflows.refusal, type="Conflict")
            )
        self.workflows.updates.append((self.id, name, arg))
        if self.workflows.answer is not None:
            return self.workflows.answer
        assert result_type is CaseView
        decision = arg.decision
        return CaseView(
            case_id=uuid.UUID(self.id.removeprefix("kyc-case-")),
            status=CaseStatus.AWAITING_SECOND_APPROVAL
            if decision.action is ReviewAction.APPROVE
            else CaseStatus.REJECTED,
            requires_four_eyes=True,
            approvals=(decision.officer_id,) if decision.action is ReviewAction.APPROVE else (),
        )


def app_state(api: httpx.AsyncClient) -> Any:
    return api._transport.app.state.brokerflow  # type: ignore[attr-defined]


def use_fake_workflows(api: httpx.AsyncClient) -> FakeWorkflows:
    """Swap the in-process app's Temporal client for the fake."""
    fake = FakeWorkflows()
    app_state(api).temporal = TemporalConnector("fake:7233", "default", client=fake)  # type: ignore[arg-type]
    return fake


def use_document_store(api: httpx.AsyncClient, root: Path) -> EncryptedDocumentStore:
    """Give the in-process app a document store of the test's own."""
    documents = EncryptedDocumentStore(LocalFileStore(root), SecretStr(generate_key()))
    app_state(api).documents = documents
    return documents


@pytest.fixture
def workflows(api: httpx.AsyncClient) -> FakeWorkflows:
    return use_fake_workflows(api)


@pytest.fixture
def store(api: httpx.AsyncClient, tmp_path: Path) -> EncryptedDocumentStore:
    return use_document_store(api, tmp_path / "documents")


@pytest.fixture
def kyc(sessions: async_sessionmaker[AsyncSession], store: EncryptedDocumentStore) -> KycSeed:
    return KycSeed(sessions, store)


@pytest.fixture
async def officer(people: People) -> Person:
    return await people.staff(StaffRole.COMPLIANCE)


# -- the queue -----------------------------------------------------------------------------------


class TestQueue:
    async def test_open_cases_due_first_with_their_sla(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, people: People
    ) -> None:
        late = await kyc.case(await kyc.client("Late Larry"), due_in=timedelta(hours=-2))
        soon = await kyc.case(
            await kyc.client("Soon Sara"),
            due_in=timedelta(hours=1),
            four_eyes=True,
            risk_level="high",
            risk_score=70,
        )
        later = await kyc.case(await kyc.client("Later Lea"), due_in=timedelta(hours=20))
        escalated = await kyc.case(
            await kyc.client("Escalated Emil"), due_in=timedelta(hours=5), escalated=True
        )
        checking = await kyc.case(
            await kyc.client("Checking Chris"), status=CaseStatus.CHECKING, due_in=None
        )
        await kyc.case(await kyc.client("Done Dora"), status=CaseStatus.APPROVED, due_in=None)
        listed = await kyc.screening_list()
        await kyc.hit(soon, listed, score=91)
        await kyc.hit(soon, listed, score=65, status="cleared")
        await kyc.decision(soon, officer)

        response = await api.get("/v1/compliance/kyc/cases", headers=officer.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        ids = [item["case_id"] for item in page["items"]]
        # Escalated first, then by due time, cases without one (still checking) last.
        assert ids == [str(c.id) for c in (escalated, late, soon, later, checking)]
        assert page["total"] == 5
        by_id = {item["case_id"]: item for item in page["items"]}
        overdue = by_id[str(late.id)]
        assert -2 * 3600 - 60 < overdue["seconds_to_sla"] < -2 * 3600 + 60
        four_eyes = by_id[str(soon.id)]
        assert four_eyes["client_name"] == "Soon Sara" and four_eyes["client_country"] == "DE"
        assert four_eyes["client_email"].startswith("kyc-")
        assert (four_eyes["hits"], four_eyes["open_hits"], four_eyes["approvals"]) == (2, 1, 1)
        assert four_eyes["requires_four_eyes"] is True
        assert (four_eyes["risk_level"], four_eyes["risk_score"]) == ("high", 70)
        assert 0 < four_eyes["seconds_to_sla"] <= 3600
        assert by_id[str(escalated.id)]["escalated"] is True
        assert by_id[str(checking.id)]["seconds_to_sla"] is None

        only_escalated = await api.get(
            "/v1/compliance/kyc/cases", params={"escalated": "true"}, headers=officer.headers
        )
        assert [i["case_id"] for i in only_escalated.json()["items"]] == [str(escalated.id)]
        approved = await api.get(
            "/v1/compliance/kyc/cases", params={"status": "approved"}, headers=officer.headers
        )
        assert [i["client_name"] for i in approved.json()["items"]] == ["Done Dora"]
        paged = await api.get(
            "/v1/compliance/kyc/cases", params={"limit": 2, "offset": 1}, headers=officer.headers
        )
        assert [i["case_id"] for i in paged.json()["items"]] == [str(late.id), str(soon.id)]

        auditor = await people.staff(StaffRole.AUDITOR)
        assert (await api.get("/v1/compliance/kyc/cases", headers=auditor.headers)).is_success

    async def test_an_empty_queue(self, api: httpx.AsyncClient, officer: Person) -> None:
        response = await api.get("/v1/compliance/kyc/cases", headers=officer.headers)
        assert response.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}

    async def test_staff_outside_compliance_are_refused(
        self, api: httpx.AsyncClient, people: People, kyc: KycSeed
    ) -> None:
        case = await kyc.case(await kyc.client())
        for role in (StaffRole.FINANCE, StaffRole.SUPPORT, StaffRole.DEALER):
            staff = await people.staff(role)
            for method, path in (
                ("GET", "/v1/compliance/kyc/cases"),
                ("GET", f"/v1/compliance/kyc/cases/{case.id}"),
                ("POST", f"/v1/compliance/kyc/cases/{case.id}/decision"),
            ):
                body = {"action": "approve", "reason": "fine"} if method == "POST" else None
                refused = await api.request(method, path, json=body, headers=staff.headers)
                assert refused.status_code == 403, (role, path)
        client = await people.client()
        assert (
            await api.get("/v1/compliance/kyc/cases", headers=client.headers)
        ).status_code == 403
        assert (await api.get("/v1/compliance/kyc/cases")).status_code == 401


# -- one case ------------------------------------------------------------------------------------


class TestCaseView:
    async def test_everything_an_officer_needs(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, sessions: Any
    ) -> None:
        client = await kyc.client("Maria Example")
        case = await kyc.case(
            client, four_eyes=True, risk_level="high", risk_score=70, factors=SANCTIONED_FACTORS
        )
        await kyc.questionnaire(client)
        document = await kyc.document(client)
        listed = await kyc.screening_list()
        hit = await kyc.hit(case, listed, score=91, is_pep=False)
        await kyc.decision(case, officer)
        async with sessions.begin() as session:
            session.add(
                AuditEntry(
                    actor_kind="system",
                    actor_id="brokerflow",
                    action="kyc_case.checked",
                    entity_type="kyc_case",
                    entity_id=str(case.id),
                )
            )
            session.add(
                AuditEntry(
                    actor_kind="client",
                    actor_id=str(client.id),
                    action="client.signed_up",
                    entity_type="client",
                    entity_id=str(client.id),
                )
            )
            session.add(  # another client's entry: not in this case's trail
                AuditEntry(
                    actor_kind="system",
                    actor_id="brokerflow",
                    action="client.signed_up",
                    entity_type="client",
                    entity_id=str(uuid.uuid4()),
                )
            )

        response = await api.get(f"/v1/compliance/kyc/cases/{case.id}", headers=officer.headers)
        assert response.status_code == 200, response.text
        view = response.json()
        assert view["status"] == "in_review" and view["closed"] is False
        assert view["requires_four_eyes"] is True and view["approvals"] == [str(officer.id)]
        person = view["client"]
        assert (person["full_name"], person["date_of_birth"], person["nationality"]) == (
            "Maria Example",
            "1980-05-17",
            "DE",
        )
        assert person["address_line1"] == "Hauptstrasse 1" and person["phone"] == "+4930123456"
        assert view["questionnaire"]["score"] == 72
        assert view["questionnaire"]["outcome"] == "appropriate"
        assert view["questionnaire"]["leverage_cap"] == 30
        assert view["questionnaire"]["category"] == "retail"
        [doc] = view["documents"]
        assert doc["id"] == str(document.id) and doc["kind"] == "passport"
        assert (doc["pages"], doc["size_bytes"], doc["valid_until"]) == (1, len(PDF), "2030-01-01")
        assert doc["download_url"] == f"/v1/compliance/kyc/documents/{document.id}"
        [found] = view["hits"]
        assert found["id"] == str(hit.id) and found["source"] == "ofac_sdn"
        assert (found["score"], found["name_score"]) == (91, 86)
        assert (found["dob"], found["nationality"], found["is_pep"]) == ("agree", "agree", False)
        assert found["listed_name"] == "Maria Exampel"
        assert found["primary_name"] == "EXAMPEL, Maria"
        assert view["risk"] == {"score": 70, "level": "high", "factors": SANCTIONED_FACTORS}
        [decision] = view["decisions"]
        assert decision["officer_id"] == str(officer.id) and decision["action"] == "approve"
        assert [e["action"] for e in view["audit"]] == ["kyc_case.checked", "client.signed_up"]
        assert view["staff_emails"] == {str(officer.id): officer.email}

    async def test_an_unknown_case_is_404(self, api: httpx.AsyncClient, officer: Person) -> None:
        response = await api.get(
            f"/v1/compliance/kyc/cases/{uuid.uuid4()}", headers=officer.headers
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


# -- decisions -----------------------------------------------------------------------------------


class TestDecision:
    async def test_goes_to_the_case_workflow_as_the_officer(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, workflows: FakeWorkflows
    ) -> None:
        case = await kyc.case(await kyc.client(), four_eyes=True)
        response = await api.post(
            f"/v1/compliance/kyc/cases/{case.id}/decision",
            json={"action": "approve", "reason": "documents and hits checked"},
            headers={**officer.headers, "X-Request-ID": "req-kyc-1"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "case_id": str(case.id),
            "status": "awaiting_second_approval",
            "requires_four_eyes": True,
            "approvals": 1,
            "escalated": False,
        }
        [(workflow_id, name, sent)] = workflows.updates
        assert (workflow_id, name) == (case.workflow_id, KYC_DECIDE.name)
        assert isinstance(sent, OfficerDecision)
        assert sent.actor.staff_id == officer.id and sent.actor.roles == ("compliance",)
        assert sent.actor.ip == "127.0.0.1"
        assert sent.decision.officer_id == str(officer.id)
        assert sent.decision.action is ReviewAction.APPROVE
        assert sent.decision.reason == "documents and hits checked"
        # The workflow's activity writes the audit entry: the API writes none of its own.
        assert await kyc.count(AuditEntry, AuditEntry.entity_id == str(case.id)) == 0

    async def test_request_info_needs_what_is_needed(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, workflows: FakeWorkflows
    ) -> None:
        case = await kyc.case(await kyc.client())
        path = f"/v1/compliance/kyc/cases/{case.id}/decision"
        missing = await api.post(
            path, json={"action": "request_info", "reason": "unclear"}, headers=officer.headers
        )
        assert missing.status_code == 422 and "info_needed" in missing.text
        blank = await api.post(
            path,
            json={"action": "request_info", "reason": "unclear", "info_needed": "   "},
            headers=officer.headers,
        )
        assert blank.status_code == 422
        short_reason = await api.post(
            path, json={"action": "reject", "reason": "x"}, headers=officer.headers
        )
        assert short_reason.status_code == 422
        assert workflows.updates == []
        asked = await api.post(
            path,
            json={
                "action": "request_info",
                "reason": "address unclear",
                "info_needed": "a utility bill of the last 3 months",
            },
            headers=officer.headers,
        )
        assert asked.status_code == 200, asked.text
        [(_, _, sent)] = workflows.updates
        assert sent.decision.info_needed == "a utility bill of the last 3 months"

    async def test_unknown_and_closed_cases(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, workflows: FakeWorkflows
    ) -> None:
        body = {"action": "approve", "reason": "all good"}
        unknown = await api.post(
            f"/v1/compliance/kyc/cases/{uuid.uuid4()}/decision", json=body, headers=officer.headers
        )
        assert unknown.status_code == 404
        closed = await kyc.case(await kyc.client(), status=CaseStatus.REJECTED, due_in=None)
        answer = await api.post(
            f"/v1/compliance/kyc/cases/{closed.id}/decision", json=body, headers=officer.headers
        )
        assert answer.status_code == 409 and "closed (rejected)" in answer.json()["detail"]
        # The database lags behind a workflow that just finished: still a 409.
        finished = await kyc.case(await kyc.client())
        workflows.closed.add(finished.workflow_id)
        late = await api.post(
            f"/v1/compliance/kyc/cases/{finished.id}/decision", json=body, headers=officer.headers
        )
        assert late.status_code == 409 and "finished" in late.json()["detail"]
        assert workflows.updates == []

    async def test_a_refusal_by_the_workflow_is_409_with_its_reason(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, workflows: FakeWorkflows
    ) -> None:
        case = await kyc.case(await kyc.client(), four_eyes=True)
        workflows.refusal = "this officer has already approved the case"
        response = await api.post(
            f"/v1/compliance/kyc/cases/{case.id}/decision",
            json={"action": "approve", "reason": "again"},
            headers=officer.headers,
        )
        assert response.status_code == 409
        assert response.json()["detail"] == "this officer has already approved the case"

    async def test_four_eyes_with_the_real_workflow(
        self,
        api: httpx.AsyncClient,
        kyc: KycSeed,
        people: People,
        sessions: async_sessionmaker[AsyncSession],
        temporal_env: WorkflowEnvironment,
    ) -> None:
        from activities.kyc_checks import KycChecks
        from activities.kyc_records import KycRecords
        from workflows.kyc_review import KycReviewWorkflow

        mails: list[ClientMailInput] = []

        @implements(client_mail.send_client_mail)
        async def send_client_mail(mail: ClientMailInput) -> None:
            mails.append(mail)

        first = await people.staff(StaffRole.COMPLIANCE)
        second = await people.staff(StaffRole.COMPLIANCE)
        client = await kyc.client("Four Eyes")
        # A HIGH-risk case the checks have scored already (the real checks step only reads it).
        case = await kyc.case(
            client,
            four_eyes=True,
            risk_level="high",
            risk_score=70,
            factors=SANCTIONED_FACTORS,
            reason="list_change",
        )
        checks, records = KycChecks(sessions), KycRecords(sessions)
        queue = f"kyc-api-{uuid.uuid4()}"
        app_state(api).temporal = TemporalConnector("unused", "default", client=temporal_env.client)
        async with Worker(
            temporal_env.client,
            task_queue=queue,
            workflows=[KycReviewWorkflow],
            activities=[
                checks.run_kyc_checks,
                records.record_kyc_decision,
                records.escalate_kyc_case,
                send_client_mail,
            ],
        ):
            handle = await temporal_env.client.start_workflow(
                KycReviewWorkflow.run,
                KycCaseInput(case_id=case.id, client_id=client.id, reason=CaseReason.LIST_CHANGE),
                id=case.workflow_id,
                task_queue=queue,
            )
            await waiting_for_review(handle)
            path = f"/v1/compliance/kyc/cases/{case.id}/decision"
            body = {"action": "approve", "reason": "hit is a namesake"}
            sent_once = {**first.headers, "X-Request-ID": f"approve-{case.id}"}
            one = await api.post(path, json=body, headers=sent_once)
            assert one.status_code == 200, one.text
            assert one.json()["status"] == "awaiting_second_approval"
            assert one.json()["approvals"] == 1

            # A resend under the same X-Request-ID (an answer the console never heard) is the
            # same decision: the first one's answer again, not a refusal, not a second approval.
            resent = await api.post(path, json=body, headers=sent_once)
            assert resent.status_code == 200, resent.text
            assert resent.json() == one.json()

            again = await api.post(path, json=body, headers=first.headers)
            assert again.status_code == 409
            assert "different compliance officer" in again.json()["detail"]

            two = await api.post(path, json=body, headers=second.headers)
            assert two.status_code == 200, two.text
            assert two.json()["status"] == "approved" and two.json()["approvals"] == 2
            await handle.result()

            after = await api.post(path, json=body, headers=second.headers)
            assert after.status_code == 409

        [stored] = await kyc.rows(KycCase, KycCase.id == case.id)
        assert stored.status == "approved"
        decisions = await kyc.rows(KycDecision, KycDecision.case_id == case.id)
        assert sorted(str(d.officer_id) for d in decisions) == sorted(
            [str(first.id), str(second.id)]
        )
        entries = await kyc.rows(
            AuditEntry,
            AuditEntry.entity_id == str(case.id),
            AuditEntry.action == "kyc_case.approve",
        )
        assert {e.actor_id for e in entries} == {str(first.id), str(second.id)}
        assert all(e.actor_kind == "staff" for e in entries)
        [approved_client] = await kyc.rows(Client, Client.id == client.id)
        assert approved_client.kyc_status == "approved"
        assert [m.template.value for m in mails] == ["kyc_approved"]


async def waiting_for_review(handle: WorkflowHandle[Any, Any], timeout: float = 20) -> None:
    """Until the workflow has its checks' answer (the case waits for compliance)."""
    async with asyncio.timeout(timeout):
        while True:
            view = await handle.query(KYC_STATE.name, result_type=CaseView)
            if view.status is not CaseStatus.CHECKING:
                return
            await asyncio.sleep(0.1)


# -- documents -----------------------------------------------------------------------------------


class TestDocumentDownload:
    async def test_decrypted_as_an_attachment_and_audited(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person
    ) -> None:
        client = await kyc.client()
        document = await kyc.document(client, data=PDF)
        response = await api.get(
            f"/v1/compliance/kyc/documents/{document.id}", headers=officer.headers
        )
        assert response.status_code == 200
        assert response.content == PDF
        assert response.headers["content-type"] == "application/pdf"
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert "filename*=UTF-8''p%C3%A4ssport%20scan.pdf" in disposition
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        [entry] = await kyc.rows(AuditEntry, AuditEntry.action == "client_document.viewed")
        assert (entry.actor_kind, entry.actor_id) == ("staff", str(officer.id))
        assert (entry.entity_type, entry.entity_id) == ("client_document", str(document.id))
        assert entry.after is not None and entry.after["client_id"] == str(client.id)
        assert entry.ip == "127.0.0.1" and entry.request_id

    async def test_who_may_download(
        self, api: httpx.AsyncClient, kyc: KycSeed, people: People
    ) -> None:
        document = await kyc.document(await kyc.client())
        path = f"/v1/compliance/kyc/documents/{document.id}"
        auditor = await people.staff(StaffRole.AUDITOR)
        assert (await api.get(path, headers=auditor.headers)).status_code == 200
        for role in (StaffRole.ADMIN, StaffRole.FINANCE, StaffRole.SUPPORT):
            staff = await people.staff(role)
            assert (await api.get(path, headers=staff.headers)).status_code == 403, role
        assert await kyc.count(AuditEntry, AuditEntry.action == "client_document.viewed") == 1

    async def test_unknown_or_missing_file(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person
    ) -> None:
        unknown = await api.get(
            f"/v1/compliance/kyc/documents/{uuid.uuid4()}", headers=officer.headers
        )
        assert unknown.status_code == 404
        kyc.store = None  # a row whose file never reached the store
        orphan = await kyc.document(await kyc.client())
        missing = await api.get(
            f"/v1/compliance/kyc/documents/{orphan.id}", headers=officer.headers
        )
        assert missing.status_code == 404 and "missing" in missing.json()["detail"]
        assert await kyc.count(AuditEntry, AuditEntry.action == "client_document.viewed") == 0


# -- screening hits ------------------------------------------------------------------------------


class TestHitReview:
    async def test_clear_then_confirm_audited(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person
    ) -> None:
        case = await kyc.case(await kyc.client())
        hit = await kyc.hit(case, await kyc.screening_list())
        path = f"/v1/compliance/kyc/hits/{hit.id}"
        cleared = await api.post(
            path,
            json={"status": "cleared", "reason": "different date of birth"},
            headers=officer.headers,
        )
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["status"] == "cleared" and cleared.json()["score"] == 91
        same = await api.post(
            path, json={"status": "cleared", "reason": "again"}, headers=officer.headers
        )
        assert same.status_code == 200
        confirmed = await api.post(
            path,
            json={"status": "confirmed", "reason": "passport matches"},
            headers=officer.headers,
        )
        assert confirmed.json()["status"] == "confirmed"
        entries = await kyc.rows(AuditEntry, AuditEntry.entity_id == str(hit.id))
        assert sorted((e.action, e.before["status"], e.after["status"]) for e in entries) == [
            ("screening_hit.cleared", "open", "cleared"),
            ("screening_hit.confirmed", "cleared", "confirmed"),
        ]
        assert {e.actor_id for e in entries} == {str(officer.id)}
        # The case view shows the review in the trail.
        view = await api.get(f"/v1/compliance/kyc/cases/{case.id}", headers=officer.headers)
        assert "screening_hit.confirmed" in [e["action"] for e in view.json()["audit"]]

    async def test_refused_on_a_closed_case_and_validated(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, people: People
    ) -> None:
        case = await kyc.case(await kyc.client(), status=CaseStatus.APPROVED, due_in=None)
        hit = await kyc.hit(case, await kyc.screening_list())
        path = f"/v1/compliance/kyc/hits/{hit.id}"
        closed = await api.post(
            path, json={"status": "cleared", "reason": "namesake"}, headers=officer.headers
        )
        assert closed.status_code == 409
        wrong = await api.post(
            path, json={"status": "ignored", "reason": "namesake"}, headers=officer.headers
        )
        assert wrong.status_code == 422
        unknown = await api.post(
            f"/v1/compliance/kyc/hits/{uuid.uuid4()}",
            json={"status": "cleared", "reason": "namesake"},
            headers=officer.headers,
        )
        assert unknown.status_code == 404
        auditor = await people.staff(StaffRole.AUDITOR)
        refused = await api.post(
            path, json={"status": "cleared", "reason": "namesake"}, headers=auditor.headers
        )
        assert refused.status_code == 403
        [row] = await kyc.rows(ScreeningHit, ScreeningHit.id == hit.id)
        assert row.status == "open"


# -- screening lists -----------------------------------------------------------------------------


def list_form(source: str, data: bytes, name: str = "sdn.xml") -> dict[str, Any]:
    return {"data": {"source": source}, "files": {"file": (name, data, "application/xml")}}


class TestListUpload:
    async def test_a_list_is_stored_by_digest_and_its_refresh_started_once(
        self,
        api: httpx.AsyncClient,
        kyc: KycSeed,
        officer: Person,
        workflows: FakeWorkflows,
        store: EncryptedDocumentStore,
    ) -> None:
        data = (SAMPLES / "ofac_sdn_sample.xml").read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        first = await api.post(
            "/v1/compliance/screening/lists", **list_form("ofac_sdn", data), headers=officer.headers
        )
        assert first.status_code == 202, first.text
        result = first.json()
        assert result["digest"] == digest and result["storage_key"] == f"lists/{digest}"
        assert result["party_count"] > 0 and result["already_loaded"] is False
        assert await store.get(f"lists/{digest}") == data
        [(name, started, workflow_id)] = workflows.started
        assert name == SCREENING_REFRESH.name and workflow_id == result["workflow_id"]
        assert isinstance(started, ScreeningRefreshInput)
        assert (started.source, started.digest, started.storage_key) == (
            "ofac_sdn",
            digest,
            f"lists/{digest}",
        )
        assert started.uploaded_by is not None and started.uploaded_by.staff_id == officer.id
        [entry] = await kyc.rows(AuditEntry, AuditEntry.action == "screening_list.uploaded")
        assert entry.entity_id == digest and entry.actor_id == str(officer.id)

        again = await api.post(
            "/v1/compliance/screening/lists", **list_form("ofac_sdn", data), headers=officer.headers
        )
        assert again.status_code == 202 and again.json()["workflow_id"] == result["workflow_id"]

        # Once the workflow has loaded it, the same file is answered as already there.
        async with kyc.sessions.begin() as session:
            session.add(
                ScreeningList(
                    source="ofac_sdn",
                    digest=digest,
                    party_count=result["party_count"],
                    active=True,
                )
            )
        loaded = await api.post(
            "/v1/compliance/screening/lists", **list_form("ofac_sdn", data), headers=officer.headers
        )
        assert loaded.status_code == 200 and loaded.json()["already_loaded"] is True
        assert len(workflows.started) == 2

        lists = await api.get("/v1/compliance/screening/lists", headers=officer.headers)
        assert lists.status_code == 200
        [shown] = lists.json()
        assert (shown["source"], shown["active"], shown["digest"]) == ("ofac_sdn", True, digest)
        assert {"published_at", "party_count", "loaded_at"} <= set(shown)

    async def test_a_malformed_list_is_refused_and_nothing_kept(
        self,
        api: httpx.AsyncClient,
        kyc: KycSeed,
        officer: Person,
        workflows: FakeWorkflows,
        store: EncryptedDocumentStore,
        tmp_path: Path,
    ) -> None:
        data = (SAMPLES / "ofac_sdn_sample.xml").read_bytes()
        cases = [
            ("ofac_sdn", data[: len(data) // 2], "not a valid ofac_sdn list"),
            ("eu_fsf", data, "not a valid eu_fsf list"),  # an OFAC file named as the EU's
            ("ofac_sdn", b"", "empty"),
            ("cia_world", data, "unknown list source"),
        ]
        for source, content, reason in cases:
            refused = await api.post(
                "/v1/compliance/screening/lists",
                **list_form(source, content),
                headers=officer.headers,
            )
            assert refused.status_code == 422, (source, refused.text)
            assert reason in refused.json()["detail"], refused.json()["detail"]
        not_multipart = await api.post(
            "/v1/compliance/screening/lists", json={"source": "ofac_sdn"}, headers=officer.headers
        )
        assert not_multipart.status_code == 422
        assert workflows.started == []
        stored = tmp_path / "documents"
        assert not stored.exists() or not any(stored.rglob("*"))
        assert await kyc.count(AuditEntry, AuditEntry.entity_type == "screening_list") == 0

    async def test_only_compliance_uploads(
        self, api: httpx.AsyncClient, people: People, workflows: FakeWorkflows
    ) -> None:
        data = (SAMPLES / "ofac_sdn_sample.xml").read_bytes()
        for role in (StaffRole.ADMIN, StaffRole.AUDITOR, StaffRole.RISK):
            staff = await people.staff(role)
            refused = await api.post(
                "/v1/compliance/screening/lists",
                **list_form("ofac_sdn", data),
                headers=staff.headers,
            )
            assert refused.status_code == 403, role
        assert workflows.started == []


# -- account changes by staff --------------------------------------------------------------------


class TestAccountChanges:
    async def test_a_group_change_is_recorded_and_started_once_per_key(
        self, api: httpx.AsyncClient, kyc: KycSeed, people: People, workflows: FakeWorkflows
    ) -> None:
        account = await kyc.live_account(await kyc.client())
        dealer = await people.staff(StaffRole.DEALER)
        path = f"/v1/accounts/{account.id}/group"
        headers = {**dealer.headers, "Idempotency-Key": "grp-1"}
        body = {"group": "real\\eu\\standard-hr", "reason": "risk moved to high"}
        first = await api.post(path, json=body, headers=headers)
        assert first.status_code == 202, first.text
        change = first.json()
        assert (change["kind"], change["status"]) == ("group", "applying")
        assert change["requested"] == {"group": "real\\eu\\standard-hr"}
        assert change["before"]["group"] == "real\\eu\\standard"
        assert change["requested_by_id"] == str(dealer.id)
        [(name, started, workflow_id)] = workflows.started
        assert name == ACCOUNT_CHANGE.name and workflow_id == change["workflow_id"]
        assert isinstance(started, AccountChangeInput)
        assert (started.kind, started.group) == (AccountChangeKind.GROUP, "real\\eu\\standard-hr")
        assert started.requested_by is not None and started.requested_by.staff_id == dealer.id
        [entry] = await kyc.rows(AuditEntry, AuditEntry.action == "account_change.requested")
        assert entry.entity_id == str(account.id) and entry.reason == "risk moved to high"

        repeat = await api.post(path, json=body, headers=headers)
        assert repeat.status_code == 200 and repeat.json()["id"] == change["id"]
        other_body = await api.post(path, json={**body, "group": "real\\eu\\pro"}, headers=headers)
        assert other_body.status_code == 422 and "Idempotency-Key" in other_body.text
        assert len(workflows.started) == 1
        assert await kyc.count(AccountChange) == 1

    async def test_group_rules(
        self, api: httpx.AsyncClient, kyc: KycSeed, people: People, workflows: FakeWorkflows
    ) -> None:
        account = await kyc.live_account(await kyc.client())
        risk = await people.staff(StaffRole.RISK)
        path = f"/v1/accounts/{account.id}/group"

        async def ask(group: str, key: str) -> httpx.Response:
            return await api.post(
                path,
                json={"group": group},
                headers={**risk.headers, "Idempotency-Key": key},
            )

        assert (await ask("demo\\standard", "a")).status_code == 422
        other_currency = await ask("real\\uk\\standard", "b")
        assert other_currency.status_code == 422 and "GBP" in other_currency.text
        assert (await ask("real\\eu\\standard", "c")).status_code == 409
        no_key = await api.post(path, json={"group": "real\\eu\\pro"}, headers=risk.headers)
        assert no_key.status_code == 422
        unknown = await api.post(
            f"/v1/accounts/{uuid.uuid4()}/group",
            json={"group": "real\\eu\\pro"},
            headers={**risk.headers, "Idempotency-Key": "d"},
        )
        assert unknown.status_code == 404
        compliance = await people.staff(StaffRole.COMPLIANCE)
        refused = await api.post(
            path,
            json={"group": "real\\eu\\pro"},
            headers={**compliance.headers, "Idempotency-Key": "e"},
        )
        assert refused.status_code == 403
        assert workflows.started == []

    async def test_trading_and_closure(
        self, api: httpx.AsyncClient, kyc: KycSeed, people: People, workflows: FakeWorkflows
    ) -> None:
        account = await kyc.live_account(await kyc.client())
        officer = await people.staff(StaffRole.COMPLIANCE)
        off = await api.post(
            f"/v1/accounts/{account.id}/trading",
            json={"enabled": False, "reason": "suspicious deposits"},
            headers={**officer.headers, "Idempotency-Key": "t-1"},
        )
        assert off.status_code == 202 and off.json()["kind"] == "disable_trading"
        close = await api.post(
            f"/v1/accounts/{account.id}/close",
            json={"reason": "client asked to close"},
            headers={**officer.headers, "Idempotency-Key": "c-1"},
        )
        assert close.status_code == 202 and close.json()["kind"] == "close"
        assert [arg.kind for _, arg, _ in workflows.started] == [
            AccountChangeKind.DISABLE_TRADING,
            AccountChangeKind.CLOSE,
        ]
        dealer = await people.staff(StaffRole.DEALER)
        not_closer = await api.post(
            f"/v1/accounts/{account.id}/close",
            json={"reason": "client asked to close"},
            headers={**dealer.headers, "Idempotency-Key": "c-2"},
        )
        assert not_closer.status_code == 403
        async with kyc.sessions.begin() as session:
            row = await session.get(Mt5Account, account.id)
            assert row is not None
            row.status = "closed"
        on_closed = await api.post(
            f"/v1/accounts/{account.id}/trading",
            json={"enabled": True, "reason": "reopen"},
            headers={**officer.headers, "Idempotency-Key": "t-2"},
        )
        assert on_closed.status_code == 409

        listed = await api.get(
            "/v1/compliance/account-changes",
            params={"account_id": str(account.id)},
            headers=officer.headers,
        )
        assert [c["kind"] for c in listed.json()["items"]] == ["close", "disable_trading"]

    async def test_deciding_a_pending_leverage_request(
        self,
        api: httpx.AsyncClient,
        kyc: KycSeed,
        people: People,
        workflows: FakeWorkflows,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        client = await kyc.client()
        account = await kyc.live_account(client)
        change_id = uuid.uuid4()
        async with sessions.begin() as session:
            session.add(
                AccountChange(
                    id=change_id,
                    mt5_account_id=account.id,
                    client_id=client.id,
                    kind="leverage",
                    status="pending_approval",
                    requested={"leverage": 100},
                    before={"leverage": 30},
                    requested_by_kind="client",
                    requested_by_id=client.id,
                    idempotency_key="lev-1",
                    request_hash="0" * 64,
                    workflow_id=f"account-change-{change_id}",
                )
            )
        officer = await people.staff(StaffRole.COMPLIANCE)
        pending = await api.get(
            "/v1/compliance/account-changes",
            params={"status": "pending_approval"},
            headers=officer.headers,
        )
        assert [c["id"] for c in pending.json()["items"]] == [str(change_id)]
        workflows.answer = ChangeState(
            change_id=change_id, status=AccountChangeStatus.APPLYING, decided_by=officer.id
        )
        path = f"/v1/compliance/account-changes/{change_id}/decision"
        decided = await api.post(
            path, json={"approve": True, "reason": "professional client"}, headers=officer.headers
        )
        assert decided.status_code == 200, decided.text
        [(workflow_id, name, sent)] = workflows.updates
        assert workflow_id == f"account-change-{change_id}" and name == "decide"
        assert sent.decision.action is ReviewAction.APPROVE
        assert sent.actor.staff_id == officer.id
        async with sessions.begin() as session:
            row = await session.get(AccountChange, change_id)
            assert row is not None
            row.status = "applied"
        done = await api.post(
            path, json={"approve": False, "reason": "too late"}, headers=officer.headers
        )
        assert done.status_code == 409
        unknown = await api.post(
            f"/v1/compliance/account-changes/{uuid.uuid4()}/decision",
            json={"approve": True, "reason": "ok then"},
            headers=officer.headers,
        )
        assert unknown.status_code == 404


# -- screening hits gate an approval -------------------------------------------------------------

EDD = {
    "source_of_wealth": "salary as a minister and an inherited family estate",
    "source_of_funds": "savings account statements of the last 12 months",
    "public_function": "deputy minister of finance until 2024",
    "relationship_purpose": "retail CFD trading of personal savings",
}


class TestScreeningGate:
    async def test_an_open_hit_refuses_approval_with_the_hits_listed(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person, workflows: FakeWorkflows
    ) -> None:
        case = await kyc.case(await kyc.client(), four_eyes=True, risk_level="high")
        pep = await kyc.hit(case, await kyc.screening_list("pep"), score=88, is_pep=True)
        reviewed = await kyc.hit(case, await kyc.screening_list(), score=70, status="cleared")
        path = f"/v1/compliance/kyc/cases/{case.id}/decision"
        body = {"action": "approve", "reason": "documents checked"}
        refused = await api.post(path, json=body, headers=officer.headers)
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert "1 screening hit(s) still open" in problem["detail"]
        assert [h["id"] for h in problem["open_hits"]] == [str(pep.id)]
        assert problem["open_hits"][0]["is_pep"] is True
        assert str(reviewed.id) not in refused.text
        assert workflows.updates == []
        # Rejecting or asking for information is not held up by an open hit.
        asked = await api.post(
            path,
            json={"action": "request_info", "reason": "pep?", "info_needed": "source of wealth"},
            headers=officer.headers,
        )
        assert asked.status_code == 200
        review = await api.post(
            f"/v1/compliance/kyc/hits/{pep.id}",
            json={"status": "cleared", "reason": "other date of birth"},
            headers=officer.headers,
        )
        assert review.status_code == 200
        approved = await api.post(path, json=body, headers=officer.headers)
        assert approved.status_code == 200, approved.text

    async def test_a_confirmed_sanctions_match_is_never_approved(
        self, api: httpx.AsyncClient, kyc: KycSeed, people: People, workflows: FakeWorkflows
    ) -> None:
        senior = await people.staff(StaffRole.COMPLIANCE, StaffRole.ADMIN)
        case = await kyc.case(await kyc.client(), four_eyes=True, risk_level="high")
        hit = await kyc.hit(case, await kyc.screening_list(), score=97, status="confirmed")
        path = f"/v1/compliance/kyc/cases/{case.id}/decision"
        body = {"action": "approve", "reason": "senior override", "enhanced_due_diligence": EDD}
        refused = await api.post(path, json=body, headers=senior.headers)
        assert refused.status_code == 409
        assert "confirmed sanctions match can never be approved" in refused.json()["detail"]
        assert [h["id"] for h in refused.json()["confirmed_hits"]] == [str(hit.id)]
        assert workflows.updates == []
        rejected = await api.post(
            path, json={"action": "reject", "reason": "sanctioned"}, headers=senior.headers
        )
        assert rejected.status_code == 200

    async def test_a_confirmed_pep_needs_due_diligence_and_a_senior_approval(
        self,
        api: httpx.AsyncClient,
        kyc: KycSeed,
        people: People,
        workflows: FakeWorkflows,
    ) -> None:
        first = await people.staff(StaffRole.COMPLIANCE)
        second = await people.staff(StaffRole.COMPLIANCE)
        senior = await people.staff(StaffRole.COMPLIANCE, StaffRole.ADMIN)
        case = await kyc.case(await kyc.client(), four_eyes=True, risk_level="high")
        await kyc.hit(
            case, await kyc.screening_list("pep"), score=93, is_pep=True, status="confirmed"
        )
        path = f"/v1/compliance/kyc/cases/{case.id}/decision"
        plain = {"action": "approve", "reason": "pep accepted"}
        missing = await api.post(path, json=plain, headers=first.headers)
        assert missing.status_code == 422
        assert "enhanced due diligence" in missing.json()["detail"]
        thin = await api.post(
            path,
            json={**plain, "enhanced_due_diligence": {**EDD, "source_of_wealth": "job"}},
            headers=first.headers,
        )
        assert thin.status_code == 422
        assert workflows.updates == []

        with_edd = {**plain, "enhanced_due_diligence": EDD}
        one = await api.post(path, json=with_edd, headers=first.headers)
        assert one.status_code == 200, one.text  # the first of four eyes
        await kyc.decision(case, first)  # what the workflow's step records
        [recorded] = await kyc.rows(AuditEntry, AuditEntry.action == "kyc_case.edd_recorded")
        assert recorded.actor_id == str(first.id) and recorded.entity_id == str(case.id)
        assert recorded.before == {"enhanced_due_diligence": None}
        assert recorded.after == {"enhanced_due_diligence": EDD}
        view = await api.get(f"/v1/compliance/kyc/cases/{case.id}", headers=first.headers)
        assert view.json()["enhanced_due_diligence"] == EDD

        not_senior = await api.post(path, json=with_edd, headers=second.headers)
        assert not_senior.status_code == 409
        assert "senior officer's approval" in not_senior.json()["detail"]
        assert len(workflows.updates) == 1
        two = await api.post(path, json=with_edd, headers=senior.headers)
        assert two.status_code == 200, two.text
        assert len(workflows.updates) == 2

    async def test_a_senior_first_approval_lets_a_second_officer_complete(
        self, api: httpx.AsyncClient, kyc: KycSeed, people: People, workflows: FakeWorkflows
    ) -> None:
        senior = await people.staff(StaffRole.COMPLIANCE, StaffRole.ADMIN)
        officer = await people.staff(StaffRole.COMPLIANCE)
        case = await kyc.case(await kyc.client(), four_eyes=True, risk_level="high")
        await kyc.hit(case, await kyc.screening_list("pep"), is_pep=True, status="confirmed")
        await kyc.decision(case, senior)
        body = {"action": "approve", "reason": "pep accepted", "enhanced_due_diligence": EDD}
        response = await api.post(
            f"/v1/compliance/kyc/cases/{case.id}/decision", json=body, headers=officer.headers
        )
        assert response.status_code == 200, response.text

    async def test_the_interim_endpoint_does_not_approve_around_a_hit(
        self, api: httpx.AsyncClient, kyc: KycSeed, officer: Person
    ) -> None:
        client = await kyc.client()
        case = await kyc.case(client)
        await kyc.hit(case, await kyc.screening_list())
        response = await api.put(
            f"/v1/compliance/clients/{client.id}/kyc",
            json={"kyc_status": "approved", "screening_status": "clear", "reason": "by hand"},
            headers=officer.headers,
        )
        assert response.status_code == 409 and "open or confirmed" in response.json()["detail"]
