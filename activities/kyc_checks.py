"""The automatic checks of a KYC case: sanctions and PEP screening, then the risk score.

The screener is built from the active lists in the database (`screening_lists` and their
`screening_parties`) and kept in memory, keyed by the set of active list ids: a newly loaded list
changes the key and the next check builds it again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import desc, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts import kyc_review as review
from contracts.kyc_review import ChecksResult, RunChecksInput
from contracts.steps import implements
from db import audit
from db.models import (
    Client,
    KycCase,
    Payment,
    QuestionnaireResponse,
    ScreeningHit,
    ScreeningList,
    ScreeningParty,
)
from db.queries.clients import client_by_id
from domain.appropriateness import (
    QUESTIONNAIRE_VERSION,
    Appropriateness,
    AppropriatenessResult,
    DepositBand,
    QuestionnaireAnswers,
    SourceOfFunds,
    assess,
)
from domain.errors import BackOfficeError
from domain.kyc import CaseReason, CaseStatus
from domain.money import MINOR_UNITS, Money
from domain.onboarding import age_on
from domain.payment_checks import ScreeningStatus
from domain.payments import PaymentDirection, PaymentStatus
from domain.risk import RiskAssessment, RiskInputs, ScreeningOutcome, assess_client_risk
from domain.risk import requires_four_eyes as needs_four_eyes
from domain.screening import (
    ALERT_THRESHOLD,
    ListedParty,
    ListSnapshot,
    ListSource,
    ScreeningSubject,
)
from domain.screening import ScreeningHit as Hit
from screening.matcher import Screener

# The API commits a case right after starting its workflow: give that commit time, but do not
# wait forever for a request that was rolled back.
MAX_ATTEMPTS_FOR_MISSING_CASE = 20
DEPOSIT_WINDOW = timedelta(days=30)
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class ActiveScreener:
    screener: Screener
    list_ids: dict[ListSource, int]  # the active list of each source


class ScreenerCache:
    """The screener of the active lists, rebuilt only when the set of active lists changes."""

    def __init__(self) -> None:
        self._key: frozenset[int] | None = None
        self._current: ActiveScreener | None = None
        self._lock = asyncio.Lock()

    async def get(self, session: AsyncSession) -> ActiveScreener:
        rows = (
            await session.execute(
                select(ScreeningList.id, ScreeningList.source).where(ScreeningList.active)
            )
        ).all()
        key = frozenset(row.id for row in rows)
        async with self._lock:
            if self._current is None or key != self._key:
                self._current = await self._build(session, rows)
                self._key = key
            return self._current

    @staticmethod
    async def _build(session: AsyncSession, rows: Sequence[Any]) -> ActiveScreener:
        snapshots = []
        list_ids: dict[ListSource, int] = {}
        for row in rows:
            listed = await session.get(ScreeningList, row.id)
            if listed is None:  # pruned between the two reads: the next check rebuilds
                continue
            data = (
                await session.scalars(
                    select(ScreeningParty.data).where(ScreeningParty.list_id == row.id)
                )
            ).all()
            source = ListSource(listed.source)
            list_ids[source] = listed.id
            snapshots.append((source, listed, list(data)))

        def build() -> Screener:
            return Screener(
                ListSnapshot(
                    source=source,
                    published_at=listed.published_at or listed.loaded_at,
                    parties=tuple(ListedParty.model_validate(party) for party in parties),
                    digest=listed.digest,
                )
                for source, listed, parties in snapshots
            )

        return ActiveScreener(screener=await asyncio.to_thread(build), list_ids=list_ids)


def subject_of(client: Client) -> ScreeningSubject:
    """The client as the screener sees them; a country code the screener refuses (data from
    before sign-up checked it) is left out rather than the client left unscreened."""
    try:
        return ScreeningSubject(
            full_name=client.full_name,
            date_of_birth=client.date_of_birth,
            nationality=client.nationality,
            country=client.country,
        )
    except ValidationError:
        return ScreeningSubject(full_name=client.full_name, date_of_birth=client.date_of_birth)


def screening_outcome(hits: Sequence[Hit]) -> ScreeningOutcome:
    alerts = [hit for hit in hits if hit.is_alert]
    return ScreeningOutcome(
        sanctions_potential_matches=sum(1 for hit in alerts if not hit.is_pep),
        pep_potential_match=any(hit.is_pep for hit in alerts),
        best_hit_score=max((hit.score for hit in hits), default=0),
    )


def screening_status(hits: Sequence[Hit]) -> ScreeningStatus:
    return ScreeningStatus.HIT if any(hit.is_alert for hit in hits) else ScreeningStatus.CLEAR


def appropriateness_of(row: QuestionnaireResponse | None) -> AppropriatenessResult | None:
    """The stored questionnaire's result: assessed again when it answers the current version,
    else read from the stored outcome and cap."""
    if row is None:
        return None
    if row.version == QUESTIONNAIRE_VERSION:
        try:
            return assess(QuestionnaireAnswers(version=row.version, answers=row.answers))
        except BackOfficeError:
            pass
    return AppropriatenessResult(
        version=row.version,
        score=row.score,
        max_score=row.max_score,
        knowledge_score=0,
        knowledge_max=0,
        outcome=Appropriateness(row.outcome),
        leverage_cap=row.leverage_cap,
        refused_products=(),
        warnings=(),
    )


async def newest_questionnaire(
    session: AsyncSession, client_id: uuid.UUID
) -> QuestionnaireResponse | None:
    newest: QuestionnaireResponse | None = await session.scalar(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.client_id == client_id)
        .order_by(desc(QuestionnaireResponse.created_at))
        .limit(1)
    )
    return newest


async def deposits_last_30_days(
    session: AsyncSession, client_id: uuid.UUID, now: datetime
) -> tuple[int, Decimal, str]:
    """(count, amount, currency) of the client's completed deposits over the last 30 days, in
    the currency most of the money came in (nominal: risk scoring compares no FX)."""
    rows = (
        await session.execute(
            select(Payment.currency, func.count(), func.sum(Payment.amount_minor))
            .where(
                Payment.client_id == client_id,
                Payment.direction == PaymentDirection.DEPOSIT.value,
                Payment.status == PaymentStatus.COMPLETED.value,
                Payment.completed_at >= now - DEPOSIT_WINDOW,
            )
            .group_by(Payment.currency)
        )
    ).all()
    if not rows:
        return 0, Decimal(0), DEFAULT_CURRENCY
    count = sum(int(row[1]) for row in rows)
    amounts = {
        row[0]: Money.from_minor_units(int(row[2]), row[0]).amount
        for row in rows
        if row[0] in MINOR_UNITS
    }
    if not amounts:
        return 0, Decimal(0), DEFAULT_CURRENCY
    currency = max(amounts, key=lambda c: amounts[c])
    return count, sum(amounts.values(), Decimal(0)), currency


def risk_of(
    client: Client,
    questionnaire: QuestionnaireResponse | None,
    hits: Sequence[Hit],
    deposits: tuple[int, Decimal, str],
    today: date,
) -> RiskAssessment:
    """The client's risk. A client without a questionnaire (re-KYC of an account opened before
    it existed) is scored as the test failed and the source of funds unexplained."""
    result = appropriateness_of(questionnaire)
    answers = questionnaire.answers if questionnaire is not None else {}
    try:
        source = SourceOfFunds(questionnaire.source_of_funds if questionnaire else "other")
    except ValueError:
        source = SourceOfFunds.OTHER
    try:
        band = DepositBand(answers.get("f_expected_deposits", DepositBand.UP_TO_10K.value))
    except ValueError:
        band = DepositBand.UP_TO_10K
    count, amount, currency = deposits
    return assess_client_risk(
        RiskInputs(
            residence=client.country,
            nationality=client.nationality or client.country,
            screening=screening_outcome(hits),
            appropriateness=result.outcome if result else Appropriateness.NOT_APPROPRIATE,
            appropriateness_score=result.score if result else 0,
            source_of_funds=source,
            expected_annual_deposits=band,
            deposits_30d_count=count if amount > 0 else 0,
            deposits_30d_amount=amount if count > 0 else Decimal(0),
            deposits_30d_currency=currency,
            age=max(0, min(120, age_on(client.date_of_birth, today))),
        )
    )


async def store_hits(
    session: AsyncSession,
    case_id: uuid.UUID,
    client_id: uuid.UUID,
    hits: Sequence[Hit],
    list_ids: dict[ListSource, int],
) -> None:
    """One row per case, source and party: storing the same hits again changes nothing."""
    rows = [
        {
            "id": uuid.uuid4(),
            "case_id": case_id,
            "client_id": client_id,
            "list_id": list_ids[hit.source],
            "source": hit.source.value,
            "party_key": hit.party_key,
            "listed_name": hit.listed_name,
            "primary_name": hit.primary_name,
            "score": hit.score,
            "name_score": hit.name_score,
            "is_pep": hit.is_pep,
            "factors": dict(hit.factors),
            "status": "open",
        }
        for hit in hits
        if hit.source in list_ids
    ]
    if rows:
        await session.execute(
            pg_insert(ScreeningHit)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["case_id", "source", "party_key"])
        )


async def load_case(session: AsyncSession, case_id: uuid.UUID, *, lock: bool = False) -> KycCase:
    case = await session.get(KycCase, case_id, with_for_update=lock)
    if case is None:
        raise ApplicationError(
            f"KYC case {case_id} does not exist",
            type="CaseNotFound",
            non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_CASE,
        )
    return case


def checks_result(case: KycCase, potential_matches: int) -> ChecksResult:
    return ChecksResult(
        status=CaseStatus(case.status),
        requires_four_eyes=case.requires_four_eyes,
        risk_score=case.risk_score or 0,
        risk_level=case.risk_level or "",
        potential_matches=potential_matches,
        info_needed=case.info_needed if case.status == CaseStatus.INFO_REQUESTED else None,
    )


class KycChecks:
    """The automatic checks, on the main task queue."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], screeners: ScreenerCache | None = None
    ) -> None:
        self._sessions = sessions
        self.screeners = screeners or ScreenerCache()

    @implements(review.run_kyc_checks)
    async def run_kyc_checks(self, request: RunChecksInput) -> ChecksResult:
        now = datetime.now(UTC)
        async with self._sessions() as session:
            case = await load_case(session, request.case_id)
            if case.status != CaseStatus.CHECKING:
                return checks_result(case, await _alerts(session, case.id))
            client = await client_by_id(session, case.client_id)
            if client is None:
                raise ApplicationError(
                    f"client {case.client_id} does not exist",
                    type="ClientNotFound",
                    non_retryable=True,
                )
            questionnaire = await newest_questionnaire(session, client.id)
            deposits = await deposits_last_30_days(session, client.id, now)
            active = await self.screeners.get(session)
        hits = await asyncio.to_thread(active.screener.screen, subject_of(client))
        risk = risk_of(client, questionnaire, hits, deposits, now.date())
        four_eyes = needs_four_eyes(risk)
        status = (
            CaseStatus.INFO_REQUESTED
            if case.reason == CaseReason.DOCUMENT_EXPIRY
            else CaseStatus.IN_REVIEW
        )
        due_at = request.at + (
            request.sla.client_reminder
            if status is CaseStatus.INFO_REQUESTED
            else request.sla.review
        )
        async with self._sessions.begin() as session:
            case = await load_case(session, request.case_id, lock=True)
            if case.status != CaseStatus.CHECKING:
                return checks_result(case, await _alerts(session, case.id))
            await store_hits(session, case.id, case.client_id, hits, active.list_ids)
            factors = [factor.model_dump(mode="json") for factor in risk.factors]
            case.risk_score = risk.score
            case.risk_level = risk.level.value
            case.risk_factors = factors
            case.requires_four_eyes = four_eyes
            case.status = status.value
            case.waiting_since = request.at
            case.due_at = due_at
            client = await client_by_id(session, case.client_id, lock=True)
            if client is None:  # checked above; clients are never deleted
                raise ApplicationError("the case's client is gone", non_retryable=True)
            before = {
                "risk_level": client.risk_level,
                "risk_score": client.risk_score,
                "screening_status": client.screening_status,
            }
            client.risk_level = risk.level.value
            client.risk_score = risk.score
            client.screening_status = screening_status(hits).value
            alerts = sum(1 for hit in hits if hit.is_alert)
            audit.record(
                session,
                audit.system_actor(on_behalf_of=str(client.id)),
                audit.Change(
                    action="kyc_case.checked",
                    entity_type="kyc_case",
                    entity_id=str(case.id),
                    before={"status": CaseStatus.CHECKING.value, **before},
                    after={
                        "status": status.value,
                        "risk_level": risk.level.value,
                        "risk_score": risk.score,
                        "risk_factors": factors,
                        "requires_four_eyes": four_eyes,
                        "screening_status": client.screening_status,
                        "hits": len(hits),
                        "potential_matches": alerts,
                    },
                ),
            )
            return checks_result(case, alerts)


async def _alerts(session: AsyncSession, case_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(ScreeningHit)
        .where(ScreeningHit.case_id == case_id, ScreeningHit.score >= ALERT_THRESHOLD)
    )
    return int(count or 0)
