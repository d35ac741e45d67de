"""KYC steps against the real database: list loading, automatic checks, decisions, re-KYC
openings, the live account application, and client mail."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.kyc_checks import KycChecks, ScreenerCache
from activities.kyc_records import KycRecords, live_application_id
from activities.mail import ClientMail, message_id
from activities.screening_lists import ScreeningLists
from contracts.client_mail import ClientMailInput, MailTemplate
from contracts.kyc import StaffActor
from contracts.kyc_review import PrepareLiveAccountInput, RecordDecisionInput, RunChecksInput
from contracts.rekyc_sweep import ExpirySweepInput
from contracts.screening_refresh import OpenCasesInput, RescreenInput, ScreeningRefreshInput
from db.models import (
    AccountApplication,
    AuditEntry,
    Client,
    KycCase,
    KycDecision,
    Notification,
    ScreeningHit,
    ScreeningList,
    ScreeningParty,
)
from domain.email_verification import read_token
from domain.kyc import CaseReason, CaseStatus, Decision, KycSla, ReviewAction
from mailer.smtp import InMemoryMailer, MailRejected
from settings import Settings
from storage.documents import EncryptedDocumentStore, LocalFileStore
from tests.activities.kyc_rows import (
    add_case,
    add_client,
    add_document,
    add_live_account,
    add_staff,
)

SAMPLES = Path(__file__).resolve().parents[2] / "screening" / "samples"
OFAC = (SAMPLES / "ofac_sdn_sample.xml").read_bytes()
SLA = KycSla()
MADURO = {
    "name": "Nicolas Maduro",
    "country": "VE",
    "nationality": "VE",
    "born": date(1962, 11, 23),
}

Sessions = async_sessionmaker[AsyncSession]


def run() -> ActivityEnvironment:
    return ActivityEnvironment()


@pytest.fixture
def store(tmp_path: Path, settings: Settings) -> EncryptedDocumentStore:
    return EncryptedDocumentStore(LocalFileStore(tmp_path / "documents"), settings.documents_key)


@pytest.fixture
def screeners() -> ScreenerCache:
    return ScreenerCache()


@pytest.fixture
def lists(
    sessions: Sessions, store: EncryptedDocumentStore, screeners: ScreenerCache
) -> ScreeningLists:
    return ScreeningLists(sessions, store, screeners)


@pytest.fixture
def checks(sessions: Sessions, screeners: ScreenerCache) -> KycChecks:
    return KycChecks(sessions, screeners)


@pytest.fixture
def records(sessions: Sessions) -> KycRecords:
    return KycRecords(sessions, rekyc_notice_days=30)


async def upload(
    store: EncryptedDocumentStore, data: bytes = OFAC, source: str = "ofac_sdn"
) -> ScreeningRefreshInput:
    digest = hashlib.sha256(data).hexdigest()
    key = f"screening-lists/{source}/{digest[:16]}"
    await store.put(key, data)
    return ScreeningRefreshInput(source=source, storage_key=key, digest=digest)


async def count(sessions: Sessions, model: type, *where: Any) -> int:
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(model).where(*where))
        return int(total or 0)


async def audit_actions(sessions: Sessions, entity_id: object) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.id)
        )
        return list(rows)


class TestLoadScreeningList:
    async def test_a_list_is_stored_once_and_made_the_active_one_of_its_source(
        self, lists: ScreeningLists, store: EncryptedDocumentStore, sessions: Sessions
    ) -> None:
        first = await upload(store)
        loaded = await run().run(lists.load_screening_list, first)
        again = await run().run(lists.load_screening_list, first)
        assert loaded.newly_loaded and not again.newly_loaded
        assert again.list_id == loaded.list_id
        assert await count(sessions, ScreeningParty, ScreeningParty.list_id == loaded.list_id) == (
            loaded.party_count
        )
        assert await audit_actions(sessions, loaded.list_id) == ["screening_list.loaded"]

        newer = await upload(store, OFAC + b"\n<!-- republished -->\n")
        replacing = await run().run(lists.load_screening_list, newer)
        async with sessions() as session:
            rows = (await session.execute(select(ScreeningList.id, ScreeningList.active))).all()
        active = {row[0]: row[1] for row in rows}
        assert active == {loaded.list_id: False, replacing.list_id: True}

    async def test_a_file_that_is_not_the_named_list_is_refused_for_good(
        self, lists: ScreeningLists, store: EncryptedDocumentStore
    ) -> None:
        request = await upload(store, OFAC, source="pep")
        with pytest.raises(ApplicationError) as refused:
            await run().run(lists.load_screening_list, request)
        assert (refused.value.type, refused.value.non_retryable) == ("ListFormatError", True)


class TestRunChecks:
    async def test_a_listed_person_gets_hits_a_high_risk_and_four_eyes(
        self,
        lists: ScreeningLists,
        checks: KycChecks,
        store: EncryptedDocumentStore,
        sessions: Sessions,
    ) -> None:
        await run().run(lists.load_screening_list, await upload(store))
        client = await add_client(sessions, **MADURO)  # type: ignore[arg-type]
        case = await add_case(sessions, client.id)
        at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
        request = RunChecksInput(case_id=case.id, client_id=client.id, at=at, sla=SLA)

        result = await run().run(checks.run_kyc_checks, request)
        again = await run().run(checks.run_kyc_checks, request)

        assert result == again
        assert (result.status, result.requires_four_eyes, result.risk_level) == (
            CaseStatus.IN_REVIEW,
            True,
            "high",
        )
        assert result.potential_matches >= 1
        async with sessions() as session:
            hits = (
                await session.scalars(select(ScreeningHit).where(ScreeningHit.case_id == case.id))
            ).all()
            stored = await session.get(KycCase, case.id)
            row = await session.get(Client, client.id)
        assert ("ofac_sdn", "22790") in {(hit.source, hit.party_key) for hit in hits}
        best = max(hits, key=lambda hit: hit.score)
        assert best.score >= 80 and best.factors  # the evidence of the score is kept
        assert stored is not None and row is not None
        factor_names = {factor["name"] for factor in stored.risk_factors}
        assert "sanctions_potential_match" in factor_names
        assert all(factor["detail"] and factor["points"] > 0 for factor in stored.risk_factors)
        assert (stored.waiting_since, stored.due_at) == (at, at + SLA.review)
        assert (row.risk_level, row.risk_score, row.screening_status) == (
            "high",
            stored.risk_score,
            "hit",
        )
        assert await audit_actions(sessions, case.id) == ["kyc_case.checked"]

    async def test_a_clean_client_is_low_risk_and_clear(
        self,
        lists: ScreeningLists,
        checks: KycChecks,
        store: EncryptedDocumentStore,
        sessions: Sessions,
    ) -> None:
        await run().run(lists.load_screening_list, await upload(store))
        client = await add_client(sessions, born=date(1985, 6, 1))
        case = await add_case(sessions, client.id)
        result = await run().run(
            checks.run_kyc_checks,
            RunChecksInput(case_id=case.id, client_id=client.id, at=datetime.now(UTC)),
        )
        assert (result.status, result.requires_four_eyes, result.risk_level) == (
            CaseStatus.IN_REVIEW,
            False,
            "low",
        )
        async with sessions() as session:
            row = await session.get(Client, client.id)
        assert row is not None and row.screening_status == "clear"

    async def test_a_document_expiry_case_waits_for_the_client(
        self, checks: KycChecks, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, kyc_status="approved")
        case = await add_case(
            sessions, client.id, reason=CaseReason.DOCUMENT_EXPIRY, info_needed="a new passport"
        )
        at = datetime.now(UTC)
        result = await run().run(
            checks.run_kyc_checks,
            RunChecksInput(case_id=case.id, client_id=client.id, at=at, sla=SLA),
        )
        assert (result.status, result.info_needed) == (CaseStatus.INFO_REQUESTED, "a new passport")
        async with sessions() as session:
            stored = await session.get(KycCase, case.id)
        assert stored is not None and stored.due_at == at + SLA.client_reminder


def officer_decision(
    case: KycCase, staff_id: uuid.UUID, action: ReviewAction, status: CaseStatus, round_: int = 1
) -> RecordDecisionInput:
    return RecordDecisionInput(
        case_id=case.id,
        client_id=case.client_id,
        actor=StaffActor(
            staff_id=staff_id,
            roles=("compliance",),
            ip="10.1.2.3",
            request_id="req-1",
            trace_id="trace-1",
        ),
        decision=Decision(officer_id=str(staff_id), action=action, reason="checked the file"),
        review_round=round_,
        status=status,
        next_round=round_,
        at=datetime.now(UTC),
    )


class TestRecordDecision:
    async def test_recording_twice_writes_one_decision_and_one_audit_entry(
        self, records: KycRecords, sessions: Sessions
    ) -> None:
        client = await add_client(sessions)
        staff = await add_staff(sessions)
        case = await add_case(sessions, client.id, status=CaseStatus.IN_REVIEW)
        request = officer_decision(case, staff.id, ReviewAction.APPROVE, CaseStatus.APPROVED)

        await run().run(records.record_kyc_decision, request)
        await run().run(records.record_kyc_decision, request)

        assert await count(sessions, KycDecision, KycDecision.case_id == case.id) == 1
        assert await audit_actions(sessions, case.id) == ["kyc_case.approve"]
        async with sessions() as session:
            stored = await session.get(KycCase, case.id)
            row = await session.get(Client, client.id)
            entry = await session.scalar(
                select(AuditEntry).where(AuditEntry.entity_id == str(case.id))
            )
        assert stored is not None and stored.status == "approved" and stored.decided_at
        assert stored.decision_reason == "checked the file"
        assert row is not None and row.kyc_status == "approved"
        assert entry is not None
        assert (entry.actor_kind, entry.actor_id, entry.ip, entry.request_id) == (
            "staff",
            str(staff.id),
            "10.1.2.3",
            "req-1",
        )
        assert (entry.actor_roles, entry.trace_id) == (["compliance"], "trace-1")
        assert await audit_actions(sessions, client.id) == ["client.kyc_status_changed"]

    async def test_the_database_refuses_a_second_approval_by_the_same_officer(
        self, sessions: Sessions
    ) -> None:
        client = await add_client(sessions)
        staff = await add_staff(sessions)
        case = await add_case(sessions, client.id, status=CaseStatus.AWAITING_SECOND_APPROVAL)

        def approval(round_: int) -> KycDecision:
            return KycDecision(
                case_id=case.id,
                review_round=round_,
                officer_id=staff.id,
                action="approve",
                reason="ok",
            )

        async with sessions.begin() as session:
            session.add(approval(1))
        with pytest.raises(IntegrityError, match="uq_kyc_decisions_one_approval_per_officer"):
            async with sessions.begin() as session:
                session.add(approval(1))
        async with sessions.begin() as session:  # another round is another matter
            session.add(approval(2))
        assert await count(sessions, KycDecision, KycDecision.case_id == case.id) == 2


class TestRescreenAndOpenCases:
    async def test_a_new_potential_match_flags_the_client_once(
        self,
        lists: ScreeningLists,
        checks: KycChecks,
        records: KycRecords,
        store: EncryptedDocumentStore,
        sessions: Sessions,
    ) -> None:
        loaded = await run().run(lists.load_screening_list, await upload(store))
        listed = await add_client(sessions, kyc_status="approved", **MADURO)  # type: ignore[arg-type]
        await add_client(sessions, name="Jane Roe", kyc_status="pending")
        await add_client(sessions, name="Nicolas Maduro", kyc_status="rejected")

        batch = await run().run(lists.rescreen_clients, RescreenInput(list_id=loaded.list_id))
        assert batch.flagged == (listed.id,)
        assert batch.next_after is None

        opening = OpenCasesInput(client_ids=batch.flagged, key=loaded.list_id.__str__())
        first = await run().run(records.open_list_change_cases, opening)
        again = await run().run(records.open_list_change_cases, opening)
        assert first == again
        [case] = first.cases
        assert (case.client_id, case.reason) == (listed.id, CaseReason.LIST_CHANGE)
        # Another opening while the case is open opens nothing more.
        other = OpenCasesInput(client_ids=(listed.id,), key="another-list")
        assert (await run().run(records.open_list_change_cases, other)).cases == ()
        assert await count(sessions, KycCase, KycCase.client_id == listed.id) == 1

        # Once the case's checks stored the hit, the same list flags nobody.
        await run().run(
            checks.run_kyc_checks,
            RunChecksInput(case_id=case.case_id, client_id=listed.id, at=datetime.now(UTC)),
        )
        batch = await run().run(lists.rescreen_clients, RescreenInput(list_id=loaded.list_id))
        assert batch.flagged == ()

    async def test_batches_walk_the_clients_in_id_order(
        self,
        lists: ScreeningLists,
        store: EncryptedDocumentStore,
        sessions: Sessions,
    ) -> None:
        loaded = await run().run(lists.load_screening_list, await upload(store))
        ids = sorted([(await add_client(sessions)).id for _ in range(3)])
        first = await run().run(
            lists.rescreen_clients, RescreenInput(list_id=loaded.list_id, limit=2)
        )
        assert first.next_after == ids[1]
        last = await run().run(
            lists.rescreen_clients,
            RescreenInput(list_id=loaded.list_id, after=first.next_after, limit=2),
        )
        assert last.next_after is None

    async def test_documents_running_out_open_a_case_asking_for_new_ones(
        self, records: KycRecords, sessions: Sessions
    ) -> None:
        today = datetime.now(UTC).date()
        due = await add_client(sessions, kyc_status="approved")
        await add_document(sessions, due.id, "passport", today + timedelta(days=10))
        await add_document(sessions, due.id, "proof_of_address", today + timedelta(days=80))
        fine = await add_client(sessions, kyc_status="approved")
        await add_document(sessions, fine.id, "passport", today + timedelta(days=10))
        await add_document(sessions, fine.id, "passport", today + timedelta(days=3000))
        await add_document(sessions, fine.id, "proof_of_address", today + timedelta(days=60))
        pending = await add_client(sessions, kyc_status="pending")
        await add_document(sessions, pending.id, "passport", today)

        sweep = ExpirySweepInput(key="rekyc-sweep-2026-11-26T03:00:00Z")
        opened = await run().run(records.open_document_expiry_cases, sweep)
        assert [(c.client_id, c.reason) for c in opened.cases] == [
            (due.id, CaseReason.DOCUMENT_EXPIRY)
        ]
        assert not opened.more
        async with sessions() as session:
            case = await session.get(KycCase, opened.cases[0].case_id)
        assert case is not None and case.status == "checking"
        assert case.info_needed is not None
        assert case.info_needed.startswith("a new passport (the one we hold is valid until")
        assert "proof of address" not in case.info_needed
        assert await audit_actions(sessions, case.id) == ["kyc_case.opened"]
        # The client now has an open case: the next sweep leaves them alone.
        assert (await run().run(records.open_document_expiry_cases, sweep)).cases == ()


class TestPrepareLiveAccount:
    async def test_the_terms_follow_the_region_and_the_application_is_made_once(
        self, records: KycRecords, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, country="DE", kyc_status="approved")
        case = await add_case(sessions, client.id, status=CaseStatus.APPROVED, risk_level="low")
        request = PrepareLiveAccountInput(case_id=case.id)

        plan = await run().run(records.prepare_live_account, request)
        again = await run().run(records.prepare_live_account, request)

        assert plan == again and plan.opening is not None
        assert plan.opening.application_id == live_application_id(case.id)
        assert (plan.opening.kind, plan.opening.mt5_server) == ("live", "live-1")
        assert plan.opening.terms is not None
        assert plan.opening.terms.model_dump() == {
            "group": "real\\eu\\standard",
            "leverage": 30,
            "currency": "EUR",
        }
        async with sessions() as session:
            application = await session.get(AccountApplication, plan.opening.application_id)
        assert application is not None
        assert (application.kind, application.status) == ("live", "pending")
        assert (
            await count(sessions, AccountApplication, AccountApplication.client_id == client.id)
            == 1
        )

    async def test_nothing_is_opened_for_a_client_with_a_live_account(
        self, records: KycRecords, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, kyc_status="approved")
        await add_live_account(sessions, client.id)
        case = await add_case(sessions, client.id, status=CaseStatus.APPROVED, risk_level="low")
        plan = await run().run(
            records.prepare_live_account, PrepareLiveAccountInput(case_id=case.id)
        )
        assert plan.opening is None


class TestSendClientMail:
    @pytest.fixture
    def mailer(self) -> InMemoryMailer:
        return InMemoryMailer()

    @pytest.fixture
    def mail(self, sessions: Sessions, mailer: InMemoryMailer, settings: Settings) -> ClientMail:
        return ClientMail(
            sessions,
            mailer,
            sender="Broker <no-reply@broker.example>",
            public_base_url="https://portal.broker.example/",
            link_key=settings.jwt_secret,
            email_link_hours=48,
        )

    async def test_a_verification_mail_carries_a_signed_link_and_one_notification(
        self,
        mail: ClientMail,
        mailer: InMemoryMailer,
        sessions: Sessions,
        settings: Settings,
    ) -> None:
        client = await add_client(sessions)
        request = ClientMailInput(
            key=f"signup-{client.id}:verify",
            client_id=client.id,
            template=MailTemplate.VERIFY_EMAIL,
        )
        await run().run(mail.send_client_mail, request)
        await run().run(mail.send_client_mail, request)  # a retry after a lost answer

        assert await count(sessions, Notification, Notification.key == request.key) == 1
        first, second = mailer.sent
        assert first.message_id == second.message_id == message_id(request.key, "x@broker.example")
        assert first.to == client.email
        assert "Confirm your email address" in first.subject
        [link] = [line for line in first.text.splitlines() if "verify-email?token=" in line]
        assert link.startswith("https://portal.broker.example/v1/verify-email?token=")
        token = link.split("token=", 1)[1].strip()
        key = settings.jwt_secret.get_secret_value().encode()
        assert read_token(key, token, {client.id: client.email}, datetime.now(UTC)) == client.id

    async def test_lists_and_flags_reach_the_templates(
        self, mail: ClientMail, mailer: InMemoryMailer, sessions: Sessions
    ) -> None:
        client = await add_client(sessions, name="Ada Lovelace")
        await run().run(
            mail.send_client_mail,
            ClientMailInput(
                key=f"kyc-case-x:info:{client.id}",
                client_id=client.id,
                template=MailTemplate.KYC_INFO_REQUESTED,
                context={"missing": "a bank statement\na payslip"},
            ),
        )
        await run().run(
            mail.send_client_mail,
            ClientMailInput(
                key=f"account-change-x:{client.id}",
                client_id=client.id,
                template=MailTemplate.LEVERAGE_DECIDED,
                context={"login": "7001", "leverage": "100", "approved": "false", "reason": "no"},
            ),
        )
        asked, leverage = mailer.sent
        assert "Dear Ada Lovelace" in asked.text
        assert "  - a bank statement" in asked.text and "  - a payslip" in asked.text
        assert "declined" in leverage.subject

    async def test_a_refused_recipient_is_final(
        self, mail: ClientMail, mailer: InMemoryMailer, sessions: Sessions
    ) -> None:
        client = await add_client(sessions)
        mailer.fail_with = MailRejected("550 no such user")
        with pytest.raises(ApplicationError) as refused:
            await run().run(
                mail.send_client_mail,
                ClientMailInput(
                    key=f"k-{client.id}", client_id=client.id, template=MailTemplate.KYC_APPROVED
                ),
            )
        assert (refused.value.type, refused.value.non_retryable) == ("MailRejected", True)
