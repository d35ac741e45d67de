"""Rows the KYC activity tests start from: clients, questionnaires, staff, cases, documents."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.kyc_review import kyc_case_workflow_id
from db.models import (
    AccountApplication,
    ClientDocument,
    KycCase,
    Mt5Account,
    QuestionnaireResponse,
    StaffUser,
)
from db.models import Client as ClientRow
from domain.appropriateness import QUESTIONS, QuestionKind, QuestionnaireAnswers, assess
from domain.kyc import CaseReason, CaseStatus
from tests.support.people import unique_birth_date


def good_answers() -> dict[str, str]:
    """The best answer to every scored question; a salaried retail client."""
    answers: dict[str, str] = {}
    for question in QUESTIONS:
        if question.scored:
            answers[question.id] = max(question.options, key=lambda o: o.points).id
        elif question.kind is QuestionKind.PROFESSIONAL_CRITERION:
            answers[question.id] = "no"
    answers["f_source_of_funds"] = "salary"
    answers["f_expected_deposits"] = "up_to_10k"
    return answers


async def add_client(
    sessions: async_sessionmaker[AsyncSession],
    *,
    name: str = "Jane Roe",
    country: str = "DE",
    nationality: str | None = "DE",
    born: date | None = None,
    kyc_status: str = "pending",
    questionnaire: bool = True,
) -> ClientRow:
    async with sessions.begin() as session:
        client = ClientRow(
            id=uuid.uuid4(),
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            password_hash="x",
            full_name=name,
            country=country,
            nationality=nationality,
            date_of_birth=born or unique_birth_date(),
            status="active",
            kyc_status=kyc_status,
            account_type="standard",
            category="retail",
        )
        session.add(client)
        await session.flush()
        if questionnaire:
            answers = good_answers()
            result = assess(QuestionnaireAnswers(answers=answers))
            session.add(
                QuestionnaireResponse(
                    client_id=client.id,
                    version=result.version,
                    answers=answers,
                    score=result.score,
                    max_score=result.max_score,
                    outcome=result.outcome.value,
                    leverage_cap=result.leverage_cap,
                    category="retail",
                    requested_professional=False,
                    source_of_funds="salary",
                )
            )
    return client


async def add_staff(sessions: async_sessionmaker[AsyncSession]) -> StaffUser:
    async with sessions.begin() as session:
        staff = StaffUser(
            id=uuid.uuid4(),
            email=f"officer-{uuid.uuid4().hex[:8]}@broker.example",
            full_name="Olga Officer",
            password_hash="x",
            totp_secret_enc="x",
            roles=["compliance"],
            ip_allowlist=["127.0.0.1/32"],
        )
        session.add(staff)
    return staff


async def add_case(
    sessions: async_sessionmaker[AsyncSession],
    client_id: uuid.UUID,
    *,
    reason: CaseReason = CaseReason.ONBOARDING,
    status: CaseStatus = CaseStatus.CHECKING,
    info_needed: str | None = None,
    **fields: Any,
) -> KycCase:
    case_id = uuid.uuid4()
    async with sessions.begin() as session:
        case = KycCase(
            id=case_id,
            client_id=client_id,
            reason=reason.value,
            status=status.value,
            workflow_id=kyc_case_workflow_id(case_id),
            account_type="standard",
            mt5_server="live-1",
            requires_four_eyes=False,
            review_round=1,
            risk_factors=[],
            reminders_sent=0,
            info_needed=info_needed,
            **fields,
        )
        session.add(case)
    return case


async def add_document(
    sessions: async_sessionmaker[AsyncSession],
    client_id: uuid.UUID,
    kind: str,
    valid_until: date,
) -> None:
    async with sessions.begin() as session:
        digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        session.add(
            ClientDocument(
                client_id=client_id,
                kind=kind,
                status="accepted",
                filename=f"{kind}.pdf",
                content_type="application/pdf",
                size_bytes=20_000,
                pages=1,
                sha256=digest,
                storage_key=f"clients/{client_id}/documents/{digest[:16]}",
                issued_on=valid_until - timedelta(days=3650),
                expires_on=valid_until,
                valid_until=valid_until,
            )
        )


async def add_live_account(
    sessions: async_sessionmaker[AsyncSession], client_id: uuid.UUID, **fields: Any
) -> Mt5Account:
    application_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            AccountApplication(
                id=application_id,
                client_id=client_id,
                account_type="standard",
                kind="live",
                status="completed",
                workflow_id=f"account-opening-{application_id}",
                mt5_server="live-1",
                mt5_login=fields.get("login", 7001),
            )
        )
        await session.flush()
        values: dict[str, Any] = {
            "client_id": client_id,
            "application_id": application_id,
            "server": "live-1",
            "login": 7001,
            "group": "real\\eu\\standard",
            "leverage": 30,
            "currency": "EUR",
            "kind": "live",
            "status": "active",
            "rights": 0x163,
        }
        values.update(fields)
        account = Mt5Account(id=uuid.uuid4(), **values)
        session.add(account)
    return account
