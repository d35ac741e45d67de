"""The client's way from sign-up to a KYC case: verifying the email address, the appropriateness
questionnaire, and submitting the application (which starts the KYC review workflow).

Every check a client can fail is made here, before a row is written or a workflow started; the
workflow owns the case from then on (these rows mirror it).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api import throttle
from api.context import RequestContext
from api.onboarding.schemas import (
    EmailVerified,
    KycCaseView,
    KycInfoSubmission,
    KycOverview,
    OptionView,
    QuestionnaireResult,
    QuestionnaireSubmission,
    QuestionnaireView,
    QuestionView,
    VerificationMailSent,
)
from api.policy import Principal
from api.signup.service import start_verification_mail, verification_mail_key
from api.state import AppState
from api.temporal import TemporalConnector, signal_if_open, start_once
from contracts.kyc_review import (
    KYC_INFO_SUBMITTED,
    KYC_REVIEW,
    ClientInfo,
    KycCaseInput,
    kyc_case_workflow_id,
)
from db import audit
from db.models import AuditEntry, Client, ClientDocument, KycCase, QuestionnaireResponse
from db.queries.clients import client_by_id, client_or_not_found
from domain.account_terms import (
    ProductRefused,
    account_leverage_cap,
    check_account_type,
    regulatory_leverage_cap,
    terms_category,
)
from domain.appropriateness import (
    QUESTIONNAIRE_VERSION,
    QUESTIONS,
    Appropriateness,
    AppropriatenessResult,
    ClientCategory,
    QuestionnaireAnswers,
    assess,
    classify,
    source_of_funds,
)
from domain.countries import region_of
from domain.documents import DocumentKind, DocumentStatus, is_expired
from domain.email_verification import read_token
from domain.errors import Conflict, Gone, InvalidInput, NotFound
from domain.kyc import CLOSED_STATUSES, CaseReason, CaseStatus
from domain.onboarding import AccountType
from domain.payment_checks import KycStatus
from domain.risk import RiskLevel
from settings import Settings

# Verification mails a client may ask for again within an hour.
MAX_VERIFICATION_MAILS_PER_HOUR = 5
VERIFICATION_RESENT = "client.email_verification_resent"
RESEND_SCOPE = "resend:verification"
OPEN_STATUSES = tuple(s.value for s in CaseStatus if s not in CLOSED_STATUSES)
# Case ids derived from an Idempotency-Key: the same key from the same client names one case.
_CASE_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4a59-9a39-3f7f4f0b6c11")
# Statuses of a document that no longer proves anything.
_UNUSABLE_DOCUMENTS = (DocumentStatus.REJECTED.value, DocumentStatus.EXPIRED.value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _client_actor(client_id: uuid.UUID, context: RequestContext) -> audit.Actor:
    return audit.Actor(
        kind="client",
        id=str(client_id),
        ip=context.ip,
        request_id=context.request_id,
        trace_id=context.trace_id,
    )


async def client_of(session: AsyncSession, client_id: uuid.UUID, *, lock: bool = False) -> Client:
    return await client_or_not_found(session, client_id, lock=lock, missing="client not found")


# -- email verification -------------------------------------------------------------------------


def _token_client(token: str) -> uuid.UUID | None:
    """The client a token names, if it is well-formed enough to name one (it is checked later)."""
    try:
        return uuid.UUID(hex=token.split(".", 1)[0])
    except ValueError:
        return None


async def verify_email(
    session: AsyncSession, settings: Settings, token: str, context: RequestContext
) -> EmailVerified:
    """Mark the client's address verified; following the link again changes nothing."""
    client_id = _token_client(token)
    client = await client_by_id(session, client_id, lock=True) if client_id else None
    email_of = {client.id: client.email} if client is not None else {}
    key = settings.jwt_secret.get_secret_value().encode()
    try:
        read_token(key, token, email_of, utcnow())
    except InvalidInput as refused:
        # Well-formed (the schema's pattern) yet not verifying: a link of no client, forged or
        # for another address is none this server gave (404); a real one past its time is 410.
        gone = "expired" in refused.detail
        raise (Gone if gone else NotFound)(refused.detail, field="token") from None
    assert client is not None  # read_token refuses a token of no client
    if client.email_verified_at is not None:
        return EmailVerified(
            email=client.email, email_verified_at=client.email_verified_at, newly_verified=False
        )
    client.email_verified_at = utcnow()
    audit.record(
        session,
        _client_actor(client.id, context),
        audit.Change(
            action="client.email_verified",
            entity_type="client",
            entity_id=str(client.id),
            before={"email_verified_at": None},
            after={
                "email": client.email,
                "email_verified_at": client.email_verified_at.isoformat(),
            },
        ),
    )
    return EmailVerified(
        email=client.email, email_verified_at=client.email_verified_at, newly_verified=True
    )


async def resend_verification(
    session: AsyncSession, state: AppState, me: Principal
) -> VerificationMailSent:
    """Send a new verification link (a new mail, under a key of its own), at most
    MAX_VERIFICATION_MAILS_PER_HOUR times an hour per client (the audit trail is the counter)
    and within the throttle of the caller's address (each request counts); both answer 429
    with Retry-After."""
    rules = state.settings.auth_throttle
    address = (throttle.ThrottleKey(throttle.ADDRESS, me.context.ip, rules.resend_address),)
    now = state.clock()
    await throttle.check(session, RESEND_SCOPE, address, now)
    await throttle.record_failure(state.sessions, rules, RESEND_SCOPE, address, now, me.context)
    temporal = state.temporal
    client = await client_of(session, me.id, lock=True)  # one resend of a client at a time
    if client.email_verified_at is not None:
        raise Conflict("your email address is already verified")
    resent = (
        select(AuditEntry.occurred_at)
        .where(AuditEntry.action == VERIFICATION_RESENT, AuditEntry.entity_id == str(client.id))
        .order_by(AuditEntry.occurred_at.desc())
    )
    earlier = list(await session.scalars(resent))
    hour_ago = utcnow() - timedelta(hours=1)
    recent = [at for at in earlier if at > hour_ago]
    if len(recent) >= MAX_VERIFICATION_MAILS_PER_HOUR:
        retry_at = min(recent) + timedelta(hours=1)
        raise throttle.TooManyAttempts(
            f"{MAX_VERIFICATION_MAILS_PER_HOUR} verification mails were sent within the last "
            f"hour; ask again after {retry_at:%H:%M} UTC",
            max(1, math.ceil((retry_at - utcnow()).total_seconds())),
            retry_at=retry_at.isoformat(),
        )
    key = verification_mail_key(client.id, len(earlier) + 1)
    audit.record(
        session,
        me.actor(),
        audit.Change(
            action=VERIFICATION_RESENT,
            entity_type="client",
            entity_id=str(client.id),
            after={"email": client.email, "mail_key": key},
        ),
    )
    await session.flush()
    await start_verification_mail(temporal, client.id, key)
    return VerificationMailSent(
        email=client.email, remaining_this_hour=MAX_VERIFICATION_MAILS_PER_HOUR - len(recent) - 1
    )


# -- questionnaire ------------------------------------------------------------------------------


async def latest_questionnaire(
    session: AsyncSession, client_id: uuid.UUID
) -> QuestionnaireResponse | None:
    row: QuestionnaireResponse | None = await session.scalar(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.client_id == client_id)
        .order_by(QuestionnaireResponse.created_at.desc(), QuestionnaireResponse.id)
        .limit(1)
    )
    return row


def stored_appropriateness(row: QuestionnaireResponse) -> AppropriatenessResult:
    """The result of a stored questionnaire: assessed again when it answers the current version,
    else as it was recorded (the outcome and cap are what the account terms use)."""
    try:
        return assess(QuestionnaireAnswers(version=row.version, answers=dict(row.answers)))
    except InvalidInput:
        outcome = Appropriateness(row.outcome)
        return AppropriatenessResult(
            version=row.version,
            score=row.score,
            max_score=row.max_score,
            knowledge_score=0,
            knowledge_max=0,
            outcome=outcome,
            leverage_cap=row.leverage_cap,
            refused_products=(),
            warnings=(),
        )


def client_risk(client: Client) -> RiskLevel:
    """The client's AML risk level; until the KYC review has scored it, the strictest."""
    return RiskLevel(client.risk_level) if client.risk_level else RiskLevel.HIGH


@dataclass(frozen=True)
class _Terms:
    leverage_cap: int | None
    regulatory_cap: int | None
    product_refused: str | None


def _terms_for(client: Client, category: ClientCategory, result: AppropriatenessResult) -> _Terms:
    """The leverage the client's live account type would get, or why it is refused. Before the
    KYC review the risk level is not known: the cap shown assumes a low risk."""
    region = region_of(client.country)
    account_type = AccountType(client.account_type)
    risk = RiskLevel(client.risk_level) if client.risk_level else RiskLevel.LOW
    try:
        run_as = terms_category(region, category, account_type)
    except ProductRefused as refused:
        return _Terms(None, None, refused.detail)
    regulatory = regulatory_leverage_cap(region, run_as)
    try:
        cap = account_leverage_cap(region, run_as, result, risk)
    except ProductRefused as refused:
        return _Terms(None, regulatory, refused.detail)
    return _Terms(cap, regulatory, None)


def questionnaire_result(
    client: Client, row: QuestionnaireResponse, result: AppropriatenessResult
) -> QuestionnaireResult:
    terms = _terms_for(client, ClientCategory(row.category), result)
    return QuestionnaireResult(
        id=row.id,
        version=row.version,
        score=row.score,
        max_score=row.max_score,
        outcome=row.outcome,
        category=row.category,
        requested_professional=row.requested_professional,
        source_of_funds=row.source_of_funds,
        leverage_cap=terms.leverage_cap,
        regulatory_leverage_cap=terms.regulatory_cap,
        refused_products=[p.value for p in result.refused_products],
        product_refused=terms.product_refused,
        warnings=list(result.warnings),
        created_at=row.created_at,
    )


async def questionnaire_view(session: AsyncSession, me: Principal) -> QuestionnaireView:
    """The questions and options (never their points), and the client's newest answers."""
    client = await client_of(session, me.id)
    latest = await latest_questionnaire(session, me.id)
    return QuestionnaireView(
        version=QUESTIONNAIRE_VERSION,
        questions=[
            QuestionView(
                id=q.id,
                kind=q.kind.value,
                text=q.text,
                options=[OptionView(id=o.id, text=o.text) for o in q.options],
            )
            for q in QUESTIONS
        ],
        answers=dict(latest.answers) if latest is not None else None,
        result=(
            questionnaire_result(client, latest, stored_appropriateness(latest))
            if latest is not None
            else None
        ),
    )


async def answer_questionnaire(
    session: AsyncSession, me: Principal, body: QuestionnaireSubmission
) -> QuestionnaireResult:
    answers = QuestionnaireAnswers(version=body.version, answers=body.answers)
    result = assess(answers)  # unknown questions and options are refused here, with a reason
    category = classify(answers, body.requested_professional)
    client = await client_of(session, me.id, lock=True)
    case = await open_case(session, client.id)
    if case is not None and case.status != CaseStatus.INFO_REQUESTED:
        raise Conflict(
            "your application is being reviewed; the questionnaire cannot change until the "
            "review is over"
        )
    row = QuestionnaireResponse(
        id=uuid.uuid4(),
        client_id=client.id,
        version=result.version,
        answers=dict(body.answers),
        score=result.score,
        max_score=result.max_score,
        outcome=result.outcome.value,
        leverage_cap=result.leverage_cap,
        category=category.value,
        requested_professional=body.requested_professional,
        source_of_funds=source_of_funds(answers).value,
    )
    before = {"category": client.category}
    client.category = category.value
    session.add(row)
    audit.record(
        session,
        me.actor(),
        audit.Change(
            action="client.questionnaire_answered",
            entity_type="client",
            entity_id=str(client.id),
            before=before,
            after={
                "questionnaire_id": str(row.id),
                "version": row.version,
                "score": row.score,
                "outcome": row.outcome,
                "category": row.category,
                "requested_professional": row.requested_professional,
            },
        ),
    )
    await session.flush()
    await session.refresh(row)
    return questionnaire_result(client, row, result)


# -- KYC ------------------------------------------------------------------------------------------


async def open_case(
    session: AsyncSession, client_id: uuid.UUID, *, lock: bool = False
) -> KycCase | None:
    query = (
        select(KycCase)
        .where(KycCase.client_id == client_id, KycCase.status.in_(OPEN_STATUSES))
        .order_by(KycCase.created_at.desc())
        .limit(1)
    )
    if lock:
        query = query.with_for_update()
    case: KycCase | None = await session.scalar(query)
    return case


async def latest_case(session: AsyncSession, client_id: uuid.UUID) -> KycCase | None:
    case: KycCase | None = await session.scalar(
        select(KycCase)
        .where(KycCase.client_id == client_id)
        .order_by(KycCase.created_at.desc(), KycCase.id)
        .limit(1)
    )
    return case


@dataclass(frozen=True)
class Missing:
    code: str
    reason: str


async def _valid_document(
    session: AsyncSession, client_id: uuid.UUID, kinds: tuple[DocumentKind, ...], today: date
) -> bool:
    valid_until = await session.scalar(
        select(func.max(ClientDocument.valid_until)).where(
            ClientDocument.client_id == client_id,
            ClientDocument.kind.in_([k.value for k in kinds]),
            ClientDocument.status.not_in(_UNUSABLE_DOCUMENTS),
        )
    )
    return valid_until is not None and not is_expired(valid_until, today)


async def missing_for_kyc(session: AsyncSession, client: Client, today: date) -> list[Missing]:
    """Everything the client must still do before its application can be reviewed."""
    missing: list[Missing] = []
    if client.email_verified_at is None:
        missing.append(
            Missing("email_not_verified", "verify your email address (follow the link we sent)")
        )
    questionnaire = await latest_questionnaire(session, client.id)
    if questionnaire is None:
        missing.append(Missing("questionnaire_missing", "answer the appropriateness questionnaire"))
    else:
        result = stored_appropriateness(questionnaire)
        if result.outcome is Appropriateness.NOT_APPROPRIATE:
            missing.append(
                Missing(
                    "not_appropriate",
                    "the appropriateness questionnaire found leveraged CFDs not appropriate for "
                    "you; a live account cannot be opened",
                )
            )
        try:
            check_account_type(
                region_of(client.country),
                ClientCategory(questionnaire.category),
                AccountType(client.account_type),
            )
        except ProductRefused as refused:
            missing.append(Missing("product_refused", refused.detail))
    identity = tuple(kind for kind in DocumentKind if kind.is_identity)
    if not await _valid_document(session, client.id, identity, today):
        missing.append(
            Missing(
                "identity_document_missing",
                "upload a valid identity document (passport, national identity card or "
                "driving licence)",
            )
        )
    if not await _valid_document(session, client.id, (DocumentKind.PROOF_OF_ADDRESS,), today):
        missing.append(
            Missing(
                "proof_of_address_missing",
                "upload a proof of address dated within the last 90 days",
            )
        )
    return missing


async def kyc_overview(session: AsyncSession, me: Principal) -> KycOverview:
    client = await client_of(session, me.id)
    case = await latest_case(session, client.id)
    missing: list[Missing] = []
    if case is None or case.status in CLOSED_STATUSES:
        if client.kyc_status == KycStatus.PENDING:
            missing = await missing_for_kyc(session, client, utcnow().date())
    return KycOverview(
        kyc_status=client.kyc_status,
        case=KycCaseView.of(case) if case is not None else None,
        missing=[m.reason for m in missing],
    )


async def submit_kyc(
    session: AsyncSession,
    temporal: TemporalConnector,
    settings: Settings,
    me: Principal,
    key: str | None,
) -> tuple[KycCase, bool]:
    """The client's application for a live account: a new case (True), or the one already open
    or already created with this Idempotency-Key (False)."""
    client = await client_of(session, me.id, lock=True)  # one submission of a client at a time
    case_id = uuid.uuid5(_CASE_NAMESPACE, f"{client.id}:{key}") if key else uuid.uuid4()
    if key:
        earlier = await session.get(KycCase, case_id)
        if earlier is not None:
            return earlier, False
    current = await open_case(session, client.id)
    if current is not None:
        return current, False
    if client.kyc_status == KycStatus.APPROVED:
        raise Conflict("your identity is already verified (KYC approved); nothing to submit")
    if client.kyc_status == KycStatus.REJECTED:
        raise Conflict("your application was rejected; contact support to discuss it")
    missing = await missing_for_kyc(session, client, utcnow().date())
    if missing:
        raise Conflict(
            "before your application can be reviewed: " + "; ".join(m.reason for m in missing),
            missing=[m.code for m in missing],
        )
    case = KycCase(
        id=case_id,
        client_id=client.id,
        reason=CaseReason.ONBOARDING.value,
        status=CaseStatus.CHECKING.value,
        workflow_id=kyc_case_workflow_id(case_id),
        account_type=client.account_type,
        mt5_server=settings.mt5.name,
        requires_four_eyes=False,
        review_round=1,
        risk_factors=[],
        reminders_sent=0,
    )
    try:
        async with session.begin_nested():
            session.add(case)
    except IntegrityError:
        # The partial unique index: another submission opened a case in between.
        raise Conflict("an application of yours is already being reviewed") from None
    audit.record(
        session,
        me.actor(),
        audit.Change(
            action="kyc_case.submitted",
            entity_type="kyc_case",
            entity_id=str(case.id),
            after={
                "client_id": str(client.id),
                "reason": case.reason,
                "account_type": case.account_type,
                "mt5_server": case.mt5_server,
                "idempotency_key": key,
            },
        ),
    )
    await session.flush()
    # Before the commit, as sign-up does: a refused start rolls the case back (503); a commit
    # that fails after the start leaves a workflow whose first step finds no case and stops.
    await start_once(
        temporal,
        KYC_REVIEW,
        KycCaseInput(
            case_id=case.id,
            client_id=client.id,
            reason=CaseReason.ONBOARDING,
            sla=settings.kyc.sla(),
        ),
        case.workflow_id,
    )
    await session.refresh(case)
    return case, True


async def submit_kyc_info(
    session: AsyncSession, temporal: TemporalConnector, me: Principal, body: KycInfoSubmission
) -> KycCase:
    """The client's answer to compliance's request for information, handed to the case's
    workflow (which records it and puts the case back in review)."""
    case = await open_case(session, me.id, lock=True)
    if case is None or case.status != CaseStatus.INFO_REQUESTED:
        raise Conflict("no information is requested from you at the moment")
    if not body.note and not body.document_ids:
        raise InvalidInput("give a note or at least one document id", field="note")
    ids = list(dict.fromkeys(body.document_ids))
    if ids:
        own = set(
            await session.scalars(
                select(ClientDocument.id).where(
                    ClientDocument.client_id == me.id, ClientDocument.id.in_(ids)
                )
            )
        )
        unknown = [str(i) for i in ids if i not in own]
        if unknown:
            raise InvalidInput(
                f"you have no document {', '.join(unknown)}; upload it first", field="document_ids"
            )
    audit.record(
        session,
        me.actor(),
        audit.Change(
            action="kyc_case.info_submitted",
            entity_type="kyc_case",
            entity_id=str(case.id),
            after={"note": body.note, "document_ids": [str(i) for i in ids]},
        ),
    )
    await session.flush()
    delivered = await signal_if_open(
        temporal,
        case.workflow_id,
        KYC_INFO_SUBMITTED,
        ClientInfo(note=body.note, document_ids=tuple(ids)),
    )
    if not delivered:
        raise Conflict("the case is closed; it no longer takes information")
    return case
