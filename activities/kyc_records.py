"""What a KYC case writes: officers' decisions, the client's answers, reminders, escalations,
the live account application of an approved client, and the re-KYC cases opened by a list
refresh or a document running out.

Each step is one transaction with its audit entry, and idempotent: Temporal may run it again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.kyc_checks import appropriateness_of, load_case, newest_questionnaire
from contracts import kyc_review as review
from contracts import rekyc_sweep as sweep
from contracts import screening_refresh as refresh
from contracts.account_opening import AccountOpeningInput, AccountTerms, account_opening_workflow_id
from contracts.kyc import StaffActor
from contracts.kyc_review import (
    EscalateCaseInput,
    LiveAccountPlan,
    OpenedCase,
    OpenedCases,
    PrepareLiveAccountInput,
    RecordClientInfoInput,
    RecordDecisionInput,
    RecordReminderInput,
    kyc_case_workflow_id,
)
from contracts.rekyc_sweep import ExpirySweepInput
from contracts.screening_refresh import OpenCasesInput
from contracts.steps import implements
from db import audit
from db.models import AccountApplication, Client, ClientDocument, KycCase, KycDecision, Mt5Account
from db.queries.clients import client_by_id
from domain.account_terms import live_terms
from domain.appropriateness import ClientCategory
from domain.countries import region_of
from domain.documents import DocumentKind, DocumentStatus
from domain.errors import BackOfficeError
from domain.kyc import CLOSED_STATUSES, CaseReason, CaseStatus, ReviewAction
from domain.onboarding import AccountType, ApplicationStatus
from domain.payment_checks import KycStatus
from domain.risk import RiskLevel

_CASE_IDS = uuid.UUID("6b1f3c52-7a0e-4d7b-9a51-2f0c8e4b6d13")
IDENTITY_KINDS = tuple(kind.value for kind in DocumentKind if kind.is_identity)
OPEN_CASE = KycCase.status.not_in([status.value for status in CLOSED_STATUSES])


def staff_actor(actor: StaffActor) -> audit.Actor:
    return audit.Actor(
        kind="staff",
        id=str(actor.staff_id),
        roles=actor.roles,
        ip=actor.ip,
        request_id=actor.request_id,
        trace_id=actor.trace_id,
    )


def client_actor(client_id: uuid.UUID) -> audit.Actor:
    return audit.Actor(kind="client", id=str(client_id))


def case_id_for(reason: CaseReason, key: str, client_id: uuid.UUID) -> uuid.UUID:
    """The id of the case an opening (a list refresh, a sweep) opens for a client: the same on
    every retry of the step."""
    return uuid.uuid5(_CASE_IDS, f"{reason.value}:{key}:{client_id}")


def live_application_id(case_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_CASE_IDS, f"live-account:{case_id}")


class KycRecords:
    """Database steps of the KYC workflows, on the main task queue."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], rekyc_notice_days: int = 30
    ) -> None:
        self._sessions = sessions
        self._notice = timedelta(days=rekyc_notice_days)

    # -- the review ----------------------------------------------------------------------------

    @implements(review.record_kyc_decision)
    async def record_kyc_decision(self, request: RecordDecisionInput) -> None:
        """The decision row, the case, the client's KYC status when the case closes, and the
        audit entry with the officer as actor, in one transaction. A decision already recorded
        (same case, round, officer and action) is not recorded again."""
        decision = request.decision
        officer = request.actor.staff_id
        try:
            async with self._sessions.begin() as session:
                case = await load_case(session, request.case_id, lock=True)
                recorded = await session.scalar(
                    select(KycDecision.id).where(
                        KycDecision.case_id == case.id,
                        KycDecision.review_round == request.review_round,
                        KycDecision.officer_id == officer,
                        KycDecision.action == decision.action.value,
                    )
                )
                if recorded is not None:
                    return
                before = case_snapshot(case)
                session.add(
                    KycDecision(
                        case_id=case.id,
                        review_round=request.review_round,
                        officer_id=officer,
                        action=decision.action.value,
                        reason=decision.reason,
                        info_needed=decision.info_needed,
                    )
                )
                case.status = request.status.value
                case.review_round = request.next_round
                case.escalated_at = None
                if request.status in CLOSED_STATUSES:
                    case.decided_at = request.at
                    case.decision_reason = decision.reason
                    case.waiting_since = None
                    case.due_at = None
                else:
                    case.waiting_since = request.at
                    case.due_at = request.due_at
                if decision.action is ReviewAction.REQUEST_INFO:
                    case.info_needed = decision.info_needed
                    case.client_note = None
                    case.reminders_sent = 0
                actor = staff_actor(request.actor)
                audit.record(
                    session,
                    actor,
                    audit.Change(
                        action=f"kyc_case.{decision.action.value}",
                        entity_type="kyc_case",
                        entity_id=str(case.id),
                        before=before,
                        after={
                            **case_snapshot(case),
                            "decided_in_round": request.review_round,
                            "info_needed": decision.info_needed,
                        },
                        reason=decision.reason,
                    ),
                )
                if request.status in CLOSED_STATUSES:
                    await set_kyc_status(
                        session,
                        case.client_id,
                        KycStatus.APPROVED
                        if request.status is CaseStatus.APPROVED
                        else KycStatus.REJECTED,
                        actor,
                        case.id,
                    )
                await session.flush()
        except IntegrityError as error:
            # The database's own four-eyes rule: one approval per officer and round.
            raise ApplicationError(
                f"the decision on case {request.case_id} was refused by the database: {error.orig}",
                type="FourEyesViolation",
                non_retryable=True,
            ) from None

    @implements(review.record_kyc_client_info)
    async def record_kyc_client_info(self, request: RecordClientInfoInput) -> None:
        async with self._sessions.begin() as session:
            case = await load_case(session, request.case_id, lock=True)
            if case.status == CaseStatus.IN_REVIEW and case.waiting_since == request.at:
                return  # recorded by an earlier attempt
            before = case_snapshot(case)
            case.client_note = request.info.note or None
            case.status = CaseStatus.IN_REVIEW.value
            case.waiting_since = request.at
            case.due_at = request.due_at
            case.escalated_at = None
            audit.record(
                session,
                client_actor(case.client_id),
                audit.Change(
                    action="kyc_case.info_submitted",
                    entity_type="kyc_case",
                    entity_id=str(case.id),
                    before=before,
                    after={
                        **case_snapshot(case),
                        "note": request.info.note,
                        "document_ids": [str(d) for d in request.info.document_ids],
                    },
                ),
            )

    @implements(review.record_kyc_reminder)
    async def record_kyc_reminder(self, request: RecordReminderInput) -> None:
        async with self._sessions.begin() as session:
            case = await load_case(session, request.case_id, lock=True)
            if case.reminders_sent >= request.reminders_sent:
                return
            before = {"reminders_sent": case.reminders_sent}
            case.reminders_sent = request.reminders_sent
            audit.record(
                session,
                audit.system_actor(on_behalf_of=str(case.client_id)),
                audit.Change(
                    action="kyc_case.client_reminded",
                    entity_type="kyc_case",
                    entity_id=str(case.id),
                    before=before,
                    after={"reminders_sent": request.reminders_sent},
                ),
            )

    @implements(review.escalate_kyc_case)
    async def escalate_kyc_case(self, request: EscalateCaseInput) -> None:
        """Mark the case escalated, for the compliance lead's queue (the console lists
        escalated cases first), with its audit entry."""
        async with self._sessions.begin() as session:
            case = await load_case(session, request.case_id, lock=True)
            if case.escalated_at == request.at:
                return
            before = {"escalated_at": _iso(case.escalated_at), "status": case.status}
            case.escalated_at = request.at
            audit.record(
                session,
                audit.system_actor(on_behalf_of=str(case.client_id)),
                audit.Change(
                    action="kyc_case.escalated",
                    entity_type="kyc_case",
                    entity_id=str(case.id),
                    before=before,
                    after={"escalated_at": request.at.isoformat(), "status": case.status},
                    reason=request.reason,
                ),
            )

    # -- approval ------------------------------------------------------------------------------

    @implements(review.prepare_live_account)
    async def prepare_live_account(self, request: PrepareLiveAccountInput) -> LiveAccountPlan:
        """The live account application of an approved onboarding case (one per case), with the
        terms the client's region, category, account type, questionnaire and risk give."""
        async with self._sessions.begin() as session:
            case = await load_case(session, request.case_id)
            if case.reason != CaseReason.ONBOARDING or case.status != CaseStatus.APPROVED:
                return LiveAccountPlan()
            has_live = await session.scalar(
                select(Mt5Account.id).where(
                    Mt5Account.client_id == case.client_id, Mt5Account.kind == "live"
                )
            )
            if has_live is not None:
                return LiveAccountPlan()
            client = await client_by_id(session, case.client_id)
            if client is None or not case.mt5_server:
                raise ApplicationError(
                    f"case {case.id} names no client or no MT5 server for its live account",
                    type="LiveAccountUndefined",
                    non_retryable=True,
                )
            appropriateness = appropriateness_of(await newest_questionnaire(session, client.id))
            if appropriateness is None:
                raise ApplicationError(
                    f"client {client.id} has no appropriateness questionnaire",
                    type="QuestionnaireMissing",
                    non_retryable=True,
                )
            account_type = AccountType(case.account_type)
            try:
                terms = live_terms(
                    region_of(client.country),
                    ClientCategory(client.category),
                    account_type,
                    appropriateness,
                    RiskLevel(case.risk_level or client.risk_level or RiskLevel.HIGH.value),
                )
            except BackOfficeError as refused:
                raise ApplicationError(
                    refused.detail, type=type(refused).__name__, non_retryable=True
                ) from None
            application_id = live_application_id(case.id)
            created = await session.scalar(
                pg_insert(AccountApplication)
                .values(
                    id=application_id,
                    client_id=client.id,
                    account_type=account_type.value,
                    kind="live",
                    status=ApplicationStatus.PENDING.value,
                    workflow_id=account_opening_workflow_id(application_id),
                    mt5_server=case.mt5_server,
                )
                .on_conflict_do_nothing()
                .returning(AccountApplication.id)
            )
            if created is not None:
                audit.record(
                    session,
                    audit.system_actor(on_behalf_of=str(client.id)),
                    audit.Change(
                        action="account_application.created",
                        entity_type="account_application",
                        entity_id=str(application_id),
                        after={
                            "kind": "live",
                            "kyc_case": str(case.id),
                            "mt5_server": case.mt5_server,
                            **terms.model_dump(),
                        },
                    ),
                )
            return LiveAccountPlan(
                opening=AccountOpeningInput(
                    application_id=application_id,
                    client_id=client.id,
                    account_type=account_type,
                    mt5_server=case.mt5_server,
                    kind="live",
                    terms=AccountTerms(**terms.model_dump()),
                )
            )

    # -- re-KYC --------------------------------------------------------------------------------

    @implements(refresh.open_list_change_cases)
    async def open_list_change_cases(self, request: OpenCasesInput) -> OpenedCases:
        """A LIST_CHANGE case for each client, unless the client already has an open case."""
        async with self._sessions.begin() as session:
            opened = [
                await open_case(session, client_id, CaseReason.LIST_CHANGE, request.key)
                for client_id in request.client_ids
            ]
        return OpenedCases(cases=tuple(case for case in opened if case is not None))

    @implements(sweep.open_document_expiry_cases)
    async def open_document_expiry_cases(self, request: ExpirySweepInput) -> OpenedCases:
        """A DOCUMENT_EXPIRY case for each approved client (at most `limit`) whose identity
        document or proof of address stops being valid within the notice period, and who has
        no open case. The case opens waiting for the client: "upload a new ..."."""
        horizon = datetime.now(UTC).date() + self._notice
        async with self._sessions.begin() as session:
            due = await documents_due(session, horizon, request.limit)
            opened = [
                await open_case(
                    session,
                    client_id,
                    CaseReason.DOCUMENT_EXPIRY,
                    request.key,
                    info_needed=needed,
                )
                for client_id, needed in due
            ]
        return OpenedCases(
            cases=tuple(case for case in opened if case is not None),
            more=len(due) >= request.limit,
        )


def case_snapshot(case: KycCase) -> dict[str, Any]:
    return {
        "status": case.status,
        "review_round": case.review_round,
        "requires_four_eyes": case.requires_four_eyes,
    }


async def set_kyc_status(
    session: AsyncSession,
    client_id: uuid.UUID,
    status: KycStatus,
    actor: audit.Actor,
    case_id: uuid.UUID,
) -> None:
    client = await client_by_id(session, client_id, lock=True)
    if client is None or client.kyc_status == status.value:
        return
    before = {"kyc_status": client.kyc_status}
    client.kyc_status = status.value
    audit.record(
        session,
        actor,
        audit.Change(
            action="client.kyc_status_changed",
            entity_type="client",
            entity_id=str(client_id),
            before=before,
            after={"kyc_status": status.value, "kyc_case": str(case_id)},
        ),
    )


async def open_case(
    session: AsyncSession,
    client_id: uuid.UUID,
    reason: CaseReason,
    key: str,
    *,
    info_needed: str | None = None,
) -> OpenedCase | None:
    """Open the case `key` stands for, or find it again (a retried step); None when the client
    has another case open (the partial unique index refuses a second one)."""
    case_id = case_id_for(reason, key, client_id)
    client = await client_by_id(session, client_id)
    if client is None:
        return None
    server = await session.scalar(
        select(Mt5Account.server)
        .where(Mt5Account.client_id == client_id, Mt5Account.kind == "live")
        .order_by(Mt5Account.created_at)
        .limit(1)
    )
    inserted = await session.scalar(
        pg_insert(KycCase)
        .values(
            id=case_id,
            client_id=client_id,
            reason=reason.value,
            status=CaseStatus.CHECKING.value,
            workflow_id=kyc_case_workflow_id(case_id),
            account_type=client.account_type,
            mt5_server=server or "",
            requires_four_eyes=False,
            review_round=1,
            risk_factors=[],
            reminders_sent=0,
            info_needed=info_needed,
        )
        .on_conflict_do_nothing()
        .returning(KycCase.id)
    )
    if inserted is not None:
        audit.record(
            session,
            audit.system_actor(on_behalf_of=str(client_id)),
            audit.Change(
                action="kyc_case.opened",
                entity_type="kyc_case",
                entity_id=str(case_id),
                after={"reason": reason.value, "key": key, "info_needed": info_needed},
            ),
        )
    case = await session.get(KycCase, case_id)
    if case is None or case.status in CLOSED_STATUSES:
        return None
    return OpenedCase(case_id=case_id, client_id=client_id, reason=reason)


async def documents_due(
    session: AsyncSession, horizon: date, limit: int
) -> list[tuple[uuid.UUID, str]]:
    """Approved clients without an open case whose best identity document or best proof of
    address is valid until `horizon` or earlier, with what they must upload."""
    usable = ClientDocument.status != DocumentStatus.REJECTED.value
    identity = (
        select(ClientDocument.client_id, func.max(ClientDocument.valid_until).label("valid_until"))
        .where(ClientDocument.kind.in_(IDENTITY_KINDS), usable)
        .group_by(ClientDocument.client_id)
        .subquery()
    )
    address = (
        select(ClientDocument.client_id, func.max(ClientDocument.valid_until).label("valid_until"))
        .where(ClientDocument.kind == DocumentKind.PROOF_OF_ADDRESS.value, usable)
        .group_by(ClientDocument.client_id)
        .subquery()
    )
    open_case_exists = exists().where(KycCase.client_id == Client.id, OPEN_CASE)
    rows = (
        await session.execute(
            select(Client.id, identity.c.valid_until, address.c.valid_until)
            .outerjoin(identity, identity.c.client_id == Client.id)
            .outerjoin(address, address.c.client_id == Client.id)
            .where(
                Client.kyc_status == KycStatus.APPROVED.value,
                or_(identity.c.valid_until <= horizon, address.c.valid_until <= horizon),
                ~open_case_exists,
            )
            .order_by(Client.id)
            .limit(limit)
        )
    ).all()
    due: list[tuple[uuid.UUID, str]] = []
    for client_id, identity_until, address_until in rows:
        needed: list[str] = []
        if identity_until is not None and identity_until <= horizon:
            kind = await session.scalar(
                select(ClientDocument.kind)
                .where(
                    and_(
                        ClientDocument.client_id == client_id,
                        ClientDocument.kind.in_(IDENTITY_KINDS),
                        ClientDocument.valid_until == identity_until,
                    )
                )
                .limit(1)
            )
            label = DocumentKind(kind).label if kind else "identity document"
            needed.append(f"a new {label} (the one we hold is valid until {identity_until})")
        if address_until is not None and address_until <= horizon:
            needed.append(
                f"a new {DocumentKind.PROOF_OF_ADDRESS.label} (the one we hold is valid until "
                f"{address_until})"
            )
        due.append((client_id, "\n".join(needed)))
    return due


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
