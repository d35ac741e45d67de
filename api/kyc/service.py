"""Compliance's side of KYC: the queue, the case view, decisions, screening hits and lists, and
staff changes to live accounts.

Decisions on a case go to its `KycReview` workflow as an update: the workflow checks them
(four-eyes, state) and records each one with its audit entry, so the API writes nothing for
them. What the API writes itself — a hit reviewed, a document viewed, a list uploaded, an
account change requested — it audits in the same transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from api.audit.schemas import AuditView
from api.idempotency import KEY_REUSED, request_hash
from api.kyc.schemas import (
    AccountChangeDecisionRequest,
    AccountChangePage,
    AccountChangeView,
    CaseDecisionRequest,
    CaseDecisionResult,
    CaseDetail,
    ClientPersonalData,
    DocumentView,
    HitReview,
    HitView,
    KycDecisionView,
    ListUploadResult,
    QuestionnaireResult,
    QueueItem,
    QueuePage,
    RiskBreakdown,
    RiskFactorView,
    ScreeningListView,
)
from api.policy import Principal
from api.temporal import TemporalConnector, execute_update, staff_update_id, start_once
from contracts.account_change import (
    ACCOUNT_CHANGE,
    ACCOUNT_CHANGE_DECIDE,
    AccountChangeInput,
    account_change_workflow_id,
)
from contracts.kyc import OfficerDecision, StaffActor
from contracts.kyc_review import KYC_DECIDE
from contracts.screening_refresh import (
    SCREENING_REFRESH,
    ScreeningRefreshInput,
    screening_refresh_workflow_id,
)
from db import audit
from db.models import (
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
    StaffUser,
)
from db.queries.clients import client_or_not_found
from domain.account_terms import group_currency
from domain.accounts import AccountChangeKind, AccountChangeStatus, AccountStatus
from domain.errors import Conflict, InvalidInput, NotFound
from domain.kyc import CLOSED_STATUSES, CaseStatus, Decision, KycSla, ReviewAction
from domain.roles import StaffRole
from domain.screening import ListSnapshot, ListSource
from screening.formats import ListFormatError, load_list
from storage.documents import DocumentMissing, DocumentStore

CLOSED = tuple(status.value for status in CLOSED_STATUSES)
DOCUMENT_DOWNLOAD = "/v1/compliance/kyc/documents/{document_id}"
AUDIT_TRAIL_LIMIT = 500


def now() -> datetime:
    return datetime.now(UTC)


def actor_of(staff: Principal) -> StaffActor:
    """The officer as the workflow's activities write them into the audit trail."""
    return StaffActor(
        staff_id=staff.id,
        roles=tuple(sorted(role.value for role in staff.roles)),
        ip=staff.context.ip,
        request_id=staff.context.request_id,
        trace_id=staff.context.trace_id,
    )


def seconds_to_sla(case: KycCase, at: datetime) -> int | None:
    """Seconds until the case is due (negative when overdue); None for a closed case or one
    without a due time yet."""
    if case.due_at is None or case.status in CLOSED:
        return None
    return int((case.due_at - at).total_seconds())


def is_escalated(case: KycCase) -> bool:
    """Escalated in the current waiting period (an older escalation no longer counts)."""
    if case.escalated_at is None:
        return False
    return case.waiting_since is None or case.escalated_at >= case.waiting_since


def _escalated_clause() -> ColumnElement[bool]:
    return and_(
        KycCase.escalated_at.is_not(None),
        or_(KycCase.waiting_since.is_(None), KycCase.escalated_at >= KycCase.waiting_since),
    )


# -- the queue -----------------------------------------------------------------------------------


async def queue(
    session: AsyncSession,
    *,
    status: CaseStatus | None = None,
    escalated: bool | None = None,
    limit: int = 50,
    offset: int = 0,
    at: datetime | None = None,
) -> QueuePage:
    """Open cases (or those of `status`): escalated ones on top, then the one due first; cases
    without a due time (automatic checks still running) last."""
    at = at or now()
    hits = (
        select(
            ScreeningHit.case_id,
            func.count().label("hits"),
            func.count().filter(ScreeningHit.status == "open").label("open_hits"),
        )
        .group_by(ScreeningHit.case_id)
        .subquery()
    )
    approvals = (
        select(func.count())
        .where(
            KycDecision.case_id == KycCase.id,
            KycDecision.review_round == KycCase.review_round,
            KycDecision.action == ReviewAction.APPROVE.value,
        )
        .correlate(KycCase)
        .scalar_subquery()
    )
    conditions: list[ColumnElement[bool]] = [
        KycCase.status == status.value if status is not None else KycCase.status.not_in(CLOSED)
    ]
    if escalated is not None:
        conditions.append(_escalated_clause() if escalated else ~_escalated_clause())
    total = await session.scalar(select(func.count()).select_from(KycCase).where(*conditions))
    rows = await session.execute(
        select(
            KycCase,
            Client,
            func.coalesce(hits.c.hits, 0),
            func.coalesce(hits.c.open_hits, 0),
            approvals,
        )
        .join(Client, Client.id == KycCase.client_id)
        .outerjoin(hits, hits.c.case_id == KycCase.id)
        .where(*conditions)
        .order_by(
            sql_case((_escalated_clause(), 0), else_=1),
            KycCase.due_at.asc().nulls_last(),
            KycCase.waiting_since.asc().nulls_last(),
            KycCase.created_at,
            KycCase.id,
        )
        .limit(limit)
        .offset(offset)
    )
    items = [
        QueueItem(
            case_id=case.id,
            client_id=client.id,
            client_name=client.full_name,
            client_email=client.email,
            client_country=client.country,
            reason=case.reason,
            status=CaseStatus(case.status),
            risk_level=case.risk_level,
            risk_score=case.risk_score,
            hits=hit_count,
            open_hits=open_hits,
            requires_four_eyes=case.requires_four_eyes,
            approvals=approval_count,
            waiting_since=case.waiting_since,
            due_at=case.due_at,
            seconds_to_sla=seconds_to_sla(case, at),
            escalated=is_escalated(case),
            escalated_at=case.escalated_at,
            created_at=case.created_at,
        )
        for case, client, hit_count, open_hits, approval_count in rows.tuples()
    ]
    return QueuePage(items=items, total=int(total or 0), limit=limit, offset=offset)


# -- one case ------------------------------------------------------------------------------------


async def case_detail(
    session: AsyncSession,
    case_id: uuid.UUID,
    *,
    download_url: str = DOCUMENT_DOWNLOAD,
    at: datetime | None = None,
) -> CaseDetail:
    """Everything an officer needs to decide: the client, their questionnaire, documents,
    screening hits, risk breakdown, the decisions so far and the case's audit trail.
    `download_url` is the document link's pattern (the console has its own)."""
    at = at or now()
    case = await session.get(KycCase, case_id)
    if case is None:
        raise NotFound(f"no KYC case {case_id}")
    # A foreign key keeps the client from being gone.
    client = await client_or_not_found(
        session, case.client_id, missing=f"the client of case {case_id} is gone"
    )
    questionnaire = await session.scalar(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.client_id == client.id)
        .order_by(QuestionnaireResponse.created_at.desc(), QuestionnaireResponse.id)
        .limit(1)
    )
    documents = list(
        await session.scalars(
            select(ClientDocument)
            .where(ClientDocument.client_id == client.id)
            .order_by(ClientDocument.created_at.desc(), ClientDocument.id)
        )
    )
    hits = list(
        await session.scalars(
            select(ScreeningHit)
            .where(ScreeningHit.case_id == case.id)
            .order_by(ScreeningHit.score.desc(), ScreeningHit.created_at, ScreeningHit.id)
        )
    )
    decisions = list(
        await session.scalars(
            select(KycDecision)
            .where(KycDecision.case_id == case.id)
            .order_by(KycDecision.created_at, KycDecision.id)
        )
    )
    trail = await _audit_trail(session, case, documents, hits)
    staff_ids = {str(d.officer_id) for d in decisions} | {
        e.actor_id for e in trail if e.actor_kind == "staff" and e.actor_id
    }
    return CaseDetail(
        case_id=case.id,
        workflow_id=case.workflow_id,
        reason=case.reason,
        status=CaseStatus(case.status),
        closed=case.status in CLOSED,
        account_type=case.account_type,
        mt5_server=case.mt5_server,
        requires_four_eyes=case.requires_four_eyes,
        review_round=case.review_round,
        approvals=[
            d.officer_id
            for d in decisions
            if d.action == ReviewAction.APPROVE.value and d.review_round == case.review_round
        ],
        waiting_since=case.waiting_since,
        due_at=case.due_at,
        seconds_to_sla=seconds_to_sla(case, at),
        escalated=is_escalated(case),
        escalated_at=case.escalated_at,
        reminders_sent=case.reminders_sent,
        info_needed=case.info_needed,
        client_note=case.client_note,
        decided_at=case.decided_at,
        decision_reason=case.decision_reason,
        created_at=case.created_at,
        client=ClientPersonalData.model_validate(client),
        questionnaire=(
            QuestionnaireResult.model_validate(questionnaire) if questionnaire else None
        ),
        documents=[_document_view(d, download_url) for d in documents],
        hits=[hit_view(h) for h in hits],
        risk=RiskBreakdown(
            score=case.risk_score,
            level=case.risk_level,
            factors=[_risk_factor(f) for f in case.risk_factors or []],
        ),
        decisions=[KycDecisionView.model_validate(d) for d in decisions],
        audit=trail,
        staff_emails=await _staff_emails(session, staff_ids),
        enhanced_due_diligence=case.enhanced_due_diligence,
    )


async def _staff_emails(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    wanted = []
    for value in ids:
        try:
            wanted.append(uuid.UUID(value))
        except ValueError:
            continue
    if not wanted:
        return {}
    rows = await session.execute(
        select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(wanted))
    )
    return {str(staff_id): email for staff_id, email in rows.tuples()}


def _document_view(document: ClientDocument, download_url: str) -> DocumentView:
    return DocumentView(
        id=document.id,
        kind=document.kind,
        status=document.status,
        filename=document.filename,
        content_type=document.content_type,
        pages=document.pages,
        size_bytes=document.size_bytes,
        issued_on=document.issued_on,
        expires_on=document.expires_on,
        valid_until=document.valid_until,
        uploaded_at=document.created_at,
        download_url=download_url.format(document_id=document.id),
    )


def hit_view(hit: ScreeningHit) -> HitView:
    factors = dict(hit.factors or {})
    return HitView(
        id=hit.id,
        case_id=hit.case_id,
        list_id=hit.list_id,
        source=hit.source,
        party_key=hit.party_key,
        listed_name=hit.listed_name,
        primary_name=hit.primary_name,
        score=hit.score,
        name_score=hit.name_score,
        dob=_text_or_none(factors.get("dob")),
        nationality=_text_or_none(factors.get("nationality")),
        is_pep=hit.is_pep,
        factors=factors,
        status=hit.status,
        updated_at=hit.updated_at,
    )


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _risk_factor(raw: Any) -> RiskFactorView:
    """A stored factor (`domain.risk.RiskFactor` as JSON); an odd one is shown, not dropped."""
    if isinstance(raw, dict):
        return RiskFactorView(
            name=str(raw.get("name", "?")),
            points=int(raw.get("points", 0) or 0),
            detail=str(raw.get("detail", "") or ""),
        )
    return RiskFactorView(name=str(raw), points=0)


async def _audit_trail(
    session: AsyncSession,
    case: KycCase,
    documents: list[ClientDocument],
    hits: list[ScreeningHit],
) -> list[AuditView]:
    """The case's entries, the client's, and those of the client's documents and the case's
    hits (viewed, reviewed): oldest first, the newest AUDIT_TRAIL_LIMIT of them."""
    subjects = [
        and_(AuditEntry.entity_type == "kyc_case", AuditEntry.entity_id == str(case.id)),
        and_(AuditEntry.entity_type == "client", AuditEntry.entity_id == str(case.client_id)),
    ]
    if documents:
        subjects.append(
            and_(
                AuditEntry.entity_type == "client_document",
                AuditEntry.entity_id.in_([str(d.id) for d in documents]),
            )
        )
    if hits:
        subjects.append(
            and_(
                AuditEntry.entity_type == "screening_hit",
                AuditEntry.entity_id.in_([str(h.id) for h in hits]),
            )
        )
    entries = list(
        await session.scalars(
            select(AuditEntry)
            .where(or_(*subjects))
            .order_by(AuditEntry.id.desc())
            .limit(AUDIT_TRAIL_LIMIT)
        )
    )
    return [AuditView.model_validate(e) for e in reversed(entries)]


# -- decisions -----------------------------------------------------------------------------------


async def decide(
    session: AsyncSession,
    temporal: TemporalConnector,
    officer: Principal,
    case_id: uuid.UUID,
    request: CaseDecisionRequest,
) -> CaseDecisionResult:
    """Hand an officer's action to the case's workflow; its refusal (same officer approving
    twice, approval while information is awaited, ...) is a 409 with the workflow's reason."""
    case = await session.get(KycCase, case_id)
    if case is None:
        raise NotFound(f"no KYC case {case_id}")
    if case.status in CLOSED:
        raise Conflict(f"the case is closed ({case.status}); nothing to decide")
    edd = None
    if request.action is ReviewAction.APPROVE:
        edd = await _check_approval(session, case, officer, request)
    decision = Decision(
        officer_id=str(officer.id),
        action=request.action,
        reason=request.reason,
        info_needed=request.info_needed if request.action is ReviewAction.REQUEST_INFO else None,
    )
    view = await execute_update(
        temporal,
        case.workflow_id,
        KYC_DECIDE,
        OfficerDecision(actor=actor_of(officer), decision=decision),
        closed="the case's review has finished; nothing to decide",
        update_id=staff_update_id(officer.id, officer.context.request_id),
    )
    if edd is not None:
        # After the workflow's answer: its step writes the case in a transaction of its own,
        # which a row lock held here since before the update would block.
        await _record_edd(session, case_id, officer, edd, request.reason)
    return CaseDecisionResult(
        case_id=case_id,
        status=view.status,
        requires_four_eyes=view.requires_four_eyes,
        approvals=len(view.approvals),
        escalated=view.escalated,
    )


def _hit_summary(hit: ScreeningHit) -> dict[str, Any]:
    return {
        "id": str(hit.id),
        "source": hit.source,
        "listed_name": hit.listed_name,
        "score": hit.score,
        "is_pep": hit.is_pep,
        "status": hit.status,
    }


def _hit_text(hits: list[ScreeningHit]) -> str:
    return "; ".join(f"{h.listed_name} ({h.source}, score {h.score})" for h in hits)


async def _check_approval(
    session: AsyncSession, case: KycCase, officer: Principal, request: CaseDecisionRequest
) -> dict[str, Any] | None:
    """The screening rules of an approval, checked before the workflow hears of it:

    * every hit reviewed: an open one is a 409 listing the open hits;
    * a confirmed sanctions match (a hit that is not a PEP) is never approved: 409;
    * a confirmed PEP needs the enhanced due diligence fields (422 without them, recorded on the
      case and audited) and a senior officer's approval: the approval that completes the case
      (the second of four-eyes, or the only one) is refused unless it or an earlier approval of
      this round comes from a senior compliance officer (holding the admin role as well)."""
    hits = list(
        await session.scalars(
            select(ScreeningHit)
            .where(ScreeningHit.case_id == case.id)
            .order_by(ScreeningHit.score.desc(), ScreeningHit.id)
        )
    )
    still_open = [h for h in hits if h.status == "open"]
    if still_open:
        raise Conflict(
            f"{len(still_open)} screening hit(s) still open: review each as a false positive or "
            f"a true match before approving: {_hit_text(still_open)}",
            open_hits=[_hit_summary(h) for h in still_open],
        )
    confirmed = [h for h in hits if h.status == "confirmed"]
    sanctions = [h for h in confirmed if not h.is_pep]
    if sanctions:
        raise Conflict(
            "a confirmed sanctions match can never be approved; reject the case: "
            + _hit_text(sanctions),
            confirmed_hits=[_hit_summary(h) for h in sanctions],
        )
    peps = [h for h in confirmed if h.is_pep]
    if not peps:
        return None
    edd = request.enhanced_due_diligence
    if edd is None:
        raise InvalidInput(
            "approving a confirmed politically exposed person needs enhanced due diligence: "
            "enhanced_due_diligence with source_of_wealth, source_of_funds, public_function and "
            "relationship_purpose",
            confirmed_hits=[_hit_summary(h) for h in peps],
        )
    earlier = list(
        await session.scalars(
            select(KycDecision.officer_id).where(
                KycDecision.case_id == case.id,
                KycDecision.review_round == case.review_round,
                KycDecision.action == ReviewAction.APPROVE.value,
            )
        )
    )
    completes = not case.requires_four_eyes or len(set(earlier) - {officer.id}) >= 1
    if completes and not is_senior(officer) and not await _any_senior(session, earlier):
        raise Conflict(
            "a confirmed politically exposed person needs a senior officer's approval: the "
            "approval that completes this case must come from, or follow one by, a senior "
            "compliance officer (compliance and admin roles)",
            confirmed_hits=[_hit_summary(h) for h in peps],
        )
    return edd.model_dump()


async def _record_edd(
    session: AsyncSession,
    case_id: uuid.UUID,
    officer: Principal,
    recorded: dict[str, Any],
    reason: str,
) -> None:
    case = await session.get(KycCase, case_id, populate_existing=True, with_for_update=True)
    assert case is not None
    if case.enhanced_due_diligence == recorded:
        return
    before = case.enhanced_due_diligence
    case.enhanced_due_diligence = recorded
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            action="kyc_case.edd_recorded",
            entity_type="kyc_case",
            entity_id=str(case.id),
            before={"enhanced_due_diligence": before},
            after={"enhanced_due_diligence": recorded},
            reason=reason,
        ),
    )
    await session.flush()


def is_senior(staff: Principal) -> bool:
    return staff.has_role(StaffRole.COMPLIANCE) and staff.has_role(StaffRole.ADMIN)


async def _any_senior(session: AsyncSession, officer_ids: list[uuid.UUID]) -> bool:
    if not officer_ids:
        return False
    roles = await session.scalars(select(StaffUser.roles).where(StaffUser.id.in_(officer_ids)))
    return any({"compliance", "admin"} <= set(r) for r in roles)


# -- documents -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentFile:
    content: bytes
    content_type: str
    filename: str

    def headers(self) -> dict[str, str]:
        return {
            "Content-Disposition": content_disposition(self.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the UTF-8 one (RFC 6266 / 5987)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:150] or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def view_document(
    session: AsyncSession, store: DocumentStore, officer: Principal, document_id: uuid.UUID
) -> DocumentFile:
    """The decrypted file; the viewing is a read of personal data and is audited."""
    document = await session.get(ClientDocument, document_id)
    if document is None:
        raise NotFound(f"no client document {document_id}")
    try:
        content = await store.get(document.storage_key)
    except DocumentMissing as exc:
        raise NotFound(f"the file of document {document_id} is missing from the store") from exc
    audit.record(
        session,
        officer.actor(),
        audit.Change(
            action="client_document.viewed",
            entity_type="client_document",
            entity_id=str(document.id),
            after={
                "client_id": str(document.client_id),
                "kind": document.kind,
                "sha256": document.sha256,
            },
        ),
    )
    await session.flush()
    return DocumentFile(content, document.content_type, document.filename)


# -- screening hits ------------------------------------------------------------------------------


async def review_hit(
    session: AsyncSession, officer: Principal, hit_id: uuid.UUID, review: HitReview
) -> HitView:
    """Mark a hit a false positive (cleared) or a true match (confirmed) while its case is open."""
    hit = await session.get(ScreeningHit, hit_id, with_for_update=True)
    if hit is None:
        raise NotFound(f"no screening hit {hit_id}")
    case = await session.get(KycCase, hit.case_id)
    if case is None or case.status in CLOSED:
        status = case.status if case else "gone"
        raise Conflict(f"the hit's case is closed ({status}); its hits can no longer change")
    if hit.status != review.status:
        before = {"status": hit.status}
        hit.status = review.status
        audit.record(
            session,
            officer.actor(),
            audit.Change(
                action=f"screening_hit.{review.status}",
                entity_type="screening_hit",
                entity_id=str(hit.id),
                before=before,
                after={
                    "status": review.status,
                    "case_id": str(hit.case_id),
                    "source": hit.source,
                    "party_key": hit.party_key,
                    "score": hit.score,
                },
                reason=review.reason,
            ),
        )
        await session.flush()
        await session.refresh(hit)
    return hit_view(hit)


# -- screening lists -----------------------------------------------------------------------------


async def parse_list(source: ListSource, data: bytes) -> ListSnapshot:
    """Parse the file in a worker thread only to check it: a malformed list is a 422 before
    anything is stored (the workflow parses it again from the store)."""
    if not data:
        raise InvalidInput("the list file is empty", field="file")
    try:
        return await asyncio.to_thread(load_list, source, data)
    except ListFormatError as exc:
        reason = f"not a valid {source.value} list: {exc.detail}"
        raise InvalidInput(reason[:1000], field="file") from exc


async def upload_list(
    session: AsyncSession,
    store: DocumentStore,
    temporal: TemporalConnector,
    officer: Principal,
    source: ListSource,
    data: bytes,
    *,
    sla: KycSla,
) -> ListUploadResult:
    """Keep the file under its digest and start its refresh workflow (one per file: the same
    file twice is the same workflow)."""
    snapshot = await parse_list(source, data)
    digest = hashlib.sha256(data).hexdigest()
    storage_key = f"lists/{digest}"
    workflow_id = screening_refresh_workflow_id(digest)
    loaded = await session.scalar(select(ScreeningList).where(ScreeningList.digest == digest))
    if loaded is None:
        await store.put(storage_key, data)
        audit.record(
            session,
            officer.actor(),
            audit.Change(
                action="screening_list.uploaded",
                entity_type="screening_list",
                entity_id=digest,
                after={
                    "source": source.value,
                    "storage_key": storage_key,
                    "party_count": len(snapshot.parties),
                    "published_at": str(snapshot.published_at),
                    "workflow_id": workflow_id,
                },
            ),
        )
        await session.flush()
        await start_once(
            temporal,
            SCREENING_REFRESH,
            ScreeningRefreshInput(
                source=source.value,
                storage_key=storage_key,
                digest=digest,
                uploaded_by=actor_of(officer),
                sla=sla,
            ),
            workflow_id,
        )
    return ListUploadResult(
        source=source.value,
        digest=digest,
        storage_key=storage_key,
        workflow_id=workflow_id,
        party_count=len(snapshot.parties),
        published_at=snapshot.published_at,
        already_loaded=loaded is not None,
    )


async def screening_lists(
    session: AsyncSession, *, active: bool | None, limit: int, offset: int
) -> list[ScreeningListView]:
    query = select(ScreeningList).order_by(
        ScreeningList.source, ScreeningList.loaded_at.desc(), ScreeningList.id.desc()
    )
    if active is not None:
        query = query.where(ScreeningList.active == active)
    rows = await session.scalars(query.limit(limit).offset(offset))
    return [ScreeningListView.model_validate(r) for r in rows]


# -- account changes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffChange:
    """A change staff ask of an account, as the service handles every kind."""

    kind: AccountChangeKind
    # The request body as sent: its fingerprint tells a repeated request from a different one.
    body: BaseModel
    requested: dict[str, Any]
    reason: str | None
    group: str | None = None


async def request_account_change(
    session: AsyncSession,
    temporal: TemporalConnector,
    staff: Principal,
    account_id: uuid.UUID,
    change: StaffChange,
    idempotency_key: str,
    *,
    sla: KycSla,
) -> tuple[AccountChangeView, bool]:
    """Record the change and start its workflow; the view and whether it is new (a repeated
    request with the same key answers the first one's change)."""
    account = await session.get(Mt5Account, account_id)
    if account is None:
        raise NotFound(f"no MT5 account {account_id}")
    digest = request_hash(f"account_change:{change.kind.value}", change.body)
    earlier = await _earlier_change(session, account.id, idempotency_key, digest)
    if earlier is not None:
        # Its workflow started before that request committed: nothing more to do.
        return AccountChangeView.model_validate(earlier), False
    _check_change(account, change)
    change_id = uuid.uuid4()
    row = AccountChange(
        id=change_id,
        mt5_account_id=account.id,
        client_id=account.client_id,
        kind=change.kind.value,
        status=AccountChangeStatus.APPLYING.value,
        requested=change.requested,
        before={
            "group": account.group,
            "leverage": account.leverage,
            "status": account.status,
            "rights": account.rights,
        },
        requested_by_kind=staff.kind.value,
        requested_by_id=staff.id,
        idempotency_key=idempotency_key,
        request_hash=digest,
        workflow_id=account_change_workflow_id(change_id),
        reason=change.reason,
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another request with the same key got there first.
        winner = await _earlier_change(session, account.id, idempotency_key, digest)
        if winner is None:
            raise Conflict("the request conflicts with stored data and was not applied") from None
        return AccountChangeView.model_validate(winner), False
    audit.record(
        session,
        staff.actor(),
        audit.Change(
            action="account_change.requested",
            entity_type="mt5_account",
            entity_id=str(account.id),
            before=row.before,
            after={"change_id": str(change_id), "kind": change.kind.value, **change.requested},
            reason=change.reason,
        ),
    )
    await session.flush()
    await start_once(
        temporal,
        ACCOUNT_CHANGE,
        AccountChangeInput(
            change_id=change_id,
            account_id=account.id,
            kind=change.kind,
            group=change.group,
            requested_by=actor_of(staff),
            sla=sla,
        ),
        row.workflow_id,
    )
    await session.refresh(row)
    return AccountChangeView.model_validate(row), True


def _check_change(account: Mt5Account, change: StaffChange) -> None:
    if account.status == AccountStatus.CLOSED.value:
        raise Conflict(f"account {account.login} is closed; it cannot change any more")
    if change.kind is AccountChangeKind.GROUP:
        if account.kind != "live":
            raise InvalidInput(
                f"account {account.login} is a {account.kind} account; only live accounts move"
                " between live groups",
                field="group",
            )
        assert change.group is not None
        currency = group_currency(change.group)  # InvalidInput for a group that is not live
        if currency != account.currency:
            raise InvalidInput(
                f"group {change.group!r} keeps {currency} accounts; this account is in"
                f" {account.currency}",
                field="group",
            )
        if change.group == account.group:
            raise Conflict(f"account {account.login} is already in group {change.group!r}")


async def _earlier_change(
    session: AsyncSession, account_id: uuid.UUID, key: str, digest: str
) -> AccountChange | None:
    earlier = await session.scalar(
        select(AccountChange).where(
            AccountChange.mt5_account_id == account_id, AccountChange.idempotency_key == key
        )
    )
    if earlier is not None and earlier.request_hash != digest:
        raise InvalidInput(KEY_REUSED, field="Idempotency-Key")
    return earlier


async def account_changes(
    session: AsyncSession,
    *,
    status: AccountChangeStatus | None,
    account_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> AccountChangePage:
    """Changes newest first; pending approvals oldest first (the queue order)."""
    query = select(AccountChange)
    if status is not None:
        query = query.where(AccountChange.status == status.value)
    if account_id is not None:
        query = query.where(AccountChange.mt5_account_id == account_id)
    if status is AccountChangeStatus.PENDING_APPROVAL:
        query = query.order_by(AccountChange.created_at, AccountChange.id)
    else:
        query = query.order_by(AccountChange.created_at.desc(), AccountChange.id)
    rows = await session.scalars(query.limit(limit).offset(offset))
    return AccountChangePage(
        items=[AccountChangeView.model_validate(r) for r in rows], limit=limit, offset=offset
    )


async def decide_account_change(
    session: AsyncSession,
    temporal: TemporalConnector,
    officer: Principal,
    change_id: uuid.UUID,
    request: AccountChangeDecisionRequest,
) -> AccountChangeView:
    """Approve or refuse a leverage request waiting for compliance; the workflow records it."""
    row = await session.get(AccountChange, change_id)
    if row is None:
        raise NotFound(f"no account change {change_id}")
    if row.status != AccountChangeStatus.PENDING_APPROVAL.value:
        raise Conflict(f"nothing to decide: the change is {row.status}")
    decision = Decision(
        officer_id=str(officer.id),
        action=ReviewAction.APPROVE if request.approve else ReviewAction.REJECT,
        reason=request.reason,
    )
    await execute_update(
        temporal,
        row.workflow_id,
        ACCOUNT_CHANGE_DECIDE,
        OfficerDecision(actor=actor_of(officer), decision=decision),
        closed="nothing to decide: the change's workflow has finished",
        update_id=staff_update_id(officer.id, officer.context.request_id),
    )
    # The workflow's activity wrote the decision in its own transaction: read it back.
    await session.refresh(row)
    return AccountChangeView.model_validate(row)
