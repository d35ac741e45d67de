"""Compliance's side of KYC: the review queue, cases, decisions, screening lists, account
lifecycle."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep, StateDep, documents_of
from api.idempotency import IdempotencyKey
from api.kyc import service
from api.kyc.schemas import (
    AccountChangeDecisionRequest,
    AccountChangePage,
    AccountChangeView,
    CaseDecisionRequest,
    CaseDecisionResult,
    CaseDetail,
    CloseAccountRequest,
    GroupChangeRequest,
    HitReview,
    HitView,
    ListUploadResult,
    QueuePage,
    ScreeningListView,
    TradingChangeRequest,
)
from api.kyc.upload import SOURCES, read_list_upload
from api.policy import (
    AccountChangeReader,
    AccountCloser,
    AccountGroupManager,
    AccountManager,
    ComplianceOfficer,
    KycDocumentReader,
    KycReader,
    Principal,
)
from api.problems import error_responses
from api.schemas import Limit, Offset
from api.state import AppState
from domain.accounts import AccountChangeKind, AccountChangeStatus
from domain.kyc import CaseStatus
from settings import Settings

router = APIRouter(tags=["kyc"])
KYC = "/v1/compliance/kyc"

DECISION_ERRORS = error_responses(
    {
        404: "no such case",
        409: "the case is closed, or the workflow refused the action (e.g. the same officer "
        "approving twice, approval while information is awaited)",
        422: "request_info without info_needed, or a reason too short",
        503: "workflow engine down or silent",
    }
)
CHANGE_ERRORS = error_responses(
    {
        404: "no such account",
        409: "the account is closed (or already in that group)",
        422: "invalid request, or the Idempotency-Key was used for a different request",
        503: "workflow engine down",
    }
)


@router.get(f"{KYC}/cases")
async def review_queue(
    _: KycReader,
    session: SessionDep,
    status: CaseStatus | None = None,
    escalated: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> QueuePage:
    """The review queue: open cases (or those of `status`), the one due first on top, with the
    seconds left to the service level (negative once overdue)."""
    return await service.queue(
        session, status=status, escalated=escalated, limit=limit, offset=offset
    )


@router.get(f"{KYC}/cases/{{case_id}}", responses=error_responses({404: "no such case"}))
async def get_case(case_id: UUID, _: KycReader, session: SessionDep) -> CaseDetail:
    """A case with everything needed to decide it: the client's personal data, questionnaire
    result, documents (with download links), screening hits with their scores and factors, the
    risk breakdown, the decisions so far and the audit trail."""
    return await service.case_detail(session, case_id)


@router.post(f"{KYC}/cases/{{case_id}}/decision", responses=DECISION_ERRORS)
async def decide_case(
    case_id: UUID,
    body: CaseDecisionRequest,
    officer: ComplianceOfficer,
    session: SessionDep,
    state: StateDep,
) -> CaseDecisionResult:
    """Approve, reject or ask the client for information (`info_needed`). A HIGH-risk case needs
    the approvals of two different officers. The case's workflow records the decision and its
    audit entry."""
    return await service.decide(session, state.temporal, officer, case_id, body)


@router.get(
    f"{KYC}/documents/{{document_id}}",
    response_class=Response,
    responses={
        200: {"description": "the decrypted file", "content": {"application/pdf": {}}},
        **error_responses({404: "no such document, or its file is missing"}),
    },
)
async def download_document(
    document_id: UUID, officer: KycDocumentReader, session: SessionDep, state: StateDep
) -> Response:
    """The client's document, decrypted, as an attachment; every download is audited
    (`client_document.viewed`)."""
    document = await service.view_document(session, documents_of(state), officer, document_id)
    return Response(document.content, media_type=document.content_type, headers=document.headers())


@router.post(
    f"{KYC}/hits/{{hit_id}}",
    responses=error_responses({404: "no such hit", 409: "the hit's case is closed"}),
)
async def review_hit(
    hit_id: UUID, body: HitReview, officer: ComplianceOfficer, session: SessionDep
) -> HitView:
    """Mark a screening hit a false positive (`cleared`) or a true match (`confirmed`), with a
    reason; audited with the status before and after."""
    return await service.review_hit(session, officer, hit_id, body)


@router.post(
    "/v1/compliance/screening/lists",
    status_code=202,
    responses={
        200: {"description": "this very file is already loaded: nothing new was started"},
        **error_responses({422: "not a valid list of that source, or too large", 503: "down"}),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["source", "file"],
                        "properties": {
                            "source": {"type": "string", "enum": SOURCES.split(", ")},
                            "file": {"type": "string", "format": "binary"},
                        },
                    }
                }
            },
        }
    },
)
async def upload_screening_list(
    request: Request,
    response: Response,
    officer: ComplianceOfficer,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> ListUploadResult:
    """Upload a published sanctions or PEP list (multipart: `source`, `file`, at most
    200 MiB). The file is parsed at once (a malformed one is refused with the
    parser's reason and nothing is kept), stored under its SHA-256, and a `ScreeningListRefresh`
    workflow loads it and re-screens every client; the same file twice is the same workflow."""
    upload = await read_list_upload(request)
    result = await service.upload_list(
        session,
        documents_of(state),
        state.temporal,
        officer,
        upload.source,
        upload.data,
        sla=settings.kyc.sla(),
    )
    if result.already_loaded:
        response.status_code = 200
    return result


@router.get("/v1/compliance/screening/lists")
async def list_screening_lists(
    _: KycReader,
    session: SessionDep,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[ScreeningListView]:
    """Loaded list versions by source, newest first; `active` marks the one screening uses."""
    return await service.screening_lists(session, active=active, limit=limit, offset=offset)


# -- live accounts, staff side -------------------------------------------------------------------


@router.post("/v1/accounts/{account_id}/group", status_code=202, responses=CHANGE_ERRORS)
async def change_group(
    account_id: UUID,
    body: GroupChangeRequest,
    idempotency_key: IdempotencyKey,
    response: Response,
    staff: AccountGroupManager,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> AccountChangeView:
    """Move a live account to another live group of its currency (dealing desk, risk, admins)."""
    change = service.StaffChange(
        AccountChangeKind.GROUP, body, {"group": body.group}, body.reason, group=body.group
    )
    return await _request_change(
        session, state, settings, staff, account_id, change, idempotency_key, response
    )


@router.post("/v1/accounts/{account_id}/trading", status_code=202, responses=CHANGE_ERRORS)
async def change_trading(
    account_id: UUID,
    body: TradingChangeRequest,
    idempotency_key: IdempotencyKey,
    response: Response,
    staff: AccountManager,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> AccountChangeView:
    """Switch trading on the account off (`enabled: false`) or back on."""
    kind = AccountChangeKind.ENABLE_TRADING if body.enabled else AccountChangeKind.DISABLE_TRADING
    change = service.StaffChange(kind, body, {"enabled": body.enabled}, body.reason)
    return await _request_change(
        session, state, settings, staff, account_id, change, idempotency_key, response
    )


@router.post("/v1/accounts/{account_id}/close", status_code=202, responses=CHANGE_ERRORS)
async def close_account(
    account_id: UUID,
    body: CloseAccountRequest,
    idempotency_key: IdempotencyKey,
    response: Response,
    staff: AccountCloser,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> AccountChangeView:
    """Close the account: refused by the workflow while positions are open or money is on it;
    otherwise trading and log-in are disabled and the account is marked closed."""
    change = service.StaffChange(AccountChangeKind.CLOSE, body, {}, body.reason)
    return await _request_change(
        session, state, settings, staff, account_id, change, idempotency_key, response
    )


async def _request_change(
    session: AsyncSession,
    state: AppState,
    settings: Settings,
    staff: Principal,
    account_id: UUID,
    change: service.StaffChange,
    idempotency_key: str,
    response: Response,
) -> AccountChangeView:
    view, created = await service.request_account_change(
        session,
        state.temporal,
        staff,
        account_id,
        change,
        idempotency_key,
        sla=settings.kyc.sla(),
    )
    if not created:
        response.status_code = 200
    return view


@router.get("/v1/compliance/account-changes")
async def list_account_changes(
    _: AccountChangeReader,
    session: SessionDep,
    status: AccountChangeStatus | None = None,
    account_id: Annotated[UUID | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AccountChangePage:
    """Changes to live accounts, newest first; `status=pending_approval` is compliance's queue
    of leverage requests (oldest first)."""
    return await service.account_changes(
        session, status=status, account_id=account_id, limit=limit, offset=offset
    )


@router.post(
    "/v1/compliance/account-changes/{change_id}/decision",
    responses=error_responses(
        {
            404: "no such change",
            409: "nothing to decide, or refused by the workflow",
            503: "workflow engine down or silent",
        }
    ),
)
async def decide_account_change(
    change_id: UUID,
    body: AccountChangeDecisionRequest,
    officer: ComplianceOfficer,
    session: SessionDep,
    state: StateDep,
) -> AccountChangeView:
    """Approve or refuse a leverage request above the client's appropriateness or risk cap."""
    return await service.decide_account_change(session, state.temporal, officer, change_id, body)
