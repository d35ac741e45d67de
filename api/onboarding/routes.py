"""The client's side of onboarding: email verification, questionnaire, documents, KYC, and the
changes a client may ask for on its live accounts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from api.deps import ContextDep, SessionDep, SettingsDep, StateDep
from api.idempotency import KEY_PATTERN, IdempotencyKey
from api.onboarding import account_changes, documents, service
from api.onboarding.schemas import (
    AccountChangeView,
    CloseRequest,
    DocumentView,
    EmailVerified,
    KycCaseView,
    KycInfoSubmission,
    KycOverview,
    LeverageRequest,
    QuestionnaireResult,
    QuestionnaireSubmission,
    QuestionnaireView,
    VerificationMailSent,
    VerificationToken,
)
from api.policy import ClientPrincipal, public
from api.problems import error_responses
from api.schemas import Limit, Mt5Login, Offset
from domain.documents import ALLOWED_CONTENT_TYPES, MAX_BYTES, DocumentKind
from domain.errors import ServiceUnavailable

router = APIRouter(tags=["onboarding"])

OptionalIdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=KEY_PATTERN,
        description="optional: repeating the submission with the same key returns the same case",
    ),
]

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kind", "file"],
                    "properties": {
                        "kind": {"type": "string", "enum": [k.value for k in DocumentKind]},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"PDF, JPEG or PNG, at most {MAX_BYTES} bytes ("
                            + ", ".join(sorted(ALLOWED_CONTENT_TYPES))
                            + ")",
                        },
                        "issued_on": {"type": "string", "format": "date"},
                        "expires_on": {
                            "type": "string",
                            "format": "date",
                            "description": "identity documents only",
                        },
                    },
                }
            }
        },
    }
}


# -- email verification -------------------------------------------------------------------------


@router.get(
    "/v1/verify-email",
    dependencies=[Depends(public)],
    responses=error_responses(
        {
            404: "a well-formed link this server did not give: forged, of no client, or for "
            "an address the client no longer has",
            410: "the link has expired; ask for a new one",
            422: "the link is malformed (not the token's pattern)",
        }
    ),
)
async def verify_email(
    session: SessionDep,
    settings: SettingsDep,
    context: ContextDep,
    token: Annotated[VerificationToken, Query(description="the token of the mailed link")],
) -> EmailVerified:
    """Follow the link of the verification mail: the address is verified (again: no change)."""
    return await service.verify_email(session, settings, token, context)


@router.post(
    "/v1/me/email/verification",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        {
            409: "already verified",
            429: "too many mails asked for within the hour, or from this address (Retry-After)",
            503: "workflow engine down; nothing was sent",
        }
    ),
)
async def resend_verification_mail(
    me: ClientPrincipal, session: SessionDep, state: StateDep
) -> VerificationMailSent:
    """Send a new verification link (at most 5 an hour); earlier links stay good until they
    expire."""
    return await service.resend_verification(session, state, me)


# -- questionnaire ------------------------------------------------------------------------------


@router.get("/v1/me/questionnaire")
async def questionnaire(me: ClientPrincipal, session: SessionDep) -> QuestionnaireView:
    """The appropriateness questionnaire (no points shown), with your newest answers."""
    return await service.questionnaire_view(session, me)


@router.put(
    "/v1/me/questionnaire",
    responses=error_responses(
        {
            409: "your application is under review",
            422: "a question unanswered, unknown, or answered with an option it does not have",
        }
    ),
)
async def answer_questionnaire(
    body: QuestionnaireSubmission, me: ClientPrincipal, session: SessionDep
) -> QuestionnaireResult:
    """Answer every question: the score, outcome, category, leverage cap and warnings."""
    return await service.answer_questionnaire(session, me, body)


# -- documents ----------------------------------------------------------------------------------


@router.post(
    "/v1/me/documents",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"description": "the same file was uploaded before: that document"},
        **error_responses(
            {
                409: "the same file was uploaded before as another kind of document",
                422: "not multipart, too large, not a PDF/JPEG/PNG, damaged, active content, "
                "wrong dates",
                503: "the document store is not available",
            }
        ),
    },
)
async def upload_document(
    request: Request, me: ClientPrincipal, session: SessionDep, state: StateDep, response: Response
) -> DocumentView:
    """Upload an identity document or a proof of address (multipart: kind, file, issued_on,
    expires_on). Kept encrypted; the same file again returns the document already stored."""
    if state.documents is None:
        raise ServiceUnavailable("the document store is not configured")
    upload = await documents.read_upload(request)
    row, created = await documents.upload_document(session, state.documents, me, upload)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/me/documents/{row.id}"
    return DocumentView.of(row)


@router.get("/v1/me/documents")
async def my_documents(me: ClientPrincipal, session: SessionDep) -> list[DocumentView]:
    """Your documents, newest first (the files themselves are not handed back)."""
    return [DocumentView.of(d) for d in await documents.documents_of(session, me.id)]


# -- KYC ----------------------------------------------------------------------------------------


@router.post(
    "/v1/me/kyc",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "a case is already open (or was opened with this key): that case"},
        **error_responses(
            {
                409: "something is missing (email, questionnaire, documents), the product is "
                "refused, or KYC is already decided",
                503: "workflow engine down; nothing was recorded",
            }
        ),
    },
)
async def submit_kyc(
    me: ClientPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
    key: OptionalIdempotencyKey = None,
) -> KycCaseView:
    """Apply for a live account: compliance reviews your identity (status in GET /v1/me/kyc)."""
    case, created = await service.submit_kyc(session, state.temporal, state.settings, me, key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return KycCaseView.of(case)


@router.get("/v1/me/kyc")
async def my_kyc(me: ClientPrincipal, session: SessionDep) -> KycOverview:
    """Your KYC status, your newest case, and what is still missing before you can submit."""
    return await service.kyc_overview(session, me)


@router.post(
    "/v1/me/kyc/info",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        {
            409: "no information is requested from you (or the case is closed)",
            422: "neither a note nor documents, or a document that is not yours",
            503: "workflow engine down; nothing was recorded",
        }
    ),
)
async def submit_kyc_info(
    body: KycInfoSubmission, me: ClientPrincipal, session: SessionDep, state: StateDep
) -> KycCaseView:
    """Answer compliance's request for information: a note and/or documents you uploaded."""
    return KycCaseView.of(await service.submit_kyc_info(session, state.temporal, me, body))


# -- account changes ----------------------------------------------------------------------------

CHANGE_ERRORS = {
    404: "no such MT5 account among yours",
    409: "the account is not active, or another change is still in progress",
    422: "refused (above the regulatory cap, not offered), a demo account, or a reused key",
    503: "workflow engine down; nothing was recorded",
}


def _accepted(view: AccountChangeView, created: bool, response: Response) -> AccountChangeView:
    response.status_code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
    return view


@router.post(
    "/v1/me/accounts/{login}/leverage",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(CHANGE_ERRORS),
)
async def request_leverage(
    login: Mt5Login,
    body: LeverageRequest,
    key: IdempotencyKey,
    me: ClientPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> AccountChangeView:
    """Ask for a new leverage on a live account: within your cap it is applied at once; above
    it (but within the regulatory cap) compliance decides; above the regulatory cap, refused."""
    change, created = await account_changes.request_leverage(
        session, state.temporal, state.settings, me, login, body, key
    )
    return _accepted(await account_changes.view(session, change), created, response)


@router.post(
    "/v1/me/accounts/{login}/close",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(CHANGE_ERRORS),
)
async def request_close(
    login: Mt5Login,
    key: IdempotencyKey,
    me: ClientPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
    body: CloseRequest | None = None,
) -> AccountChangeView:
    """Close a live account (refused by the workflow while positions are open or money is on
    it: withdraw first)."""
    change, created = await account_changes.request_close(
        session, state.temporal, state.settings, me, login, body or CloseRequest(), key
    )
    return _accepted(await account_changes.view(session, change), created, response)


@router.get("/v1/me/account-changes")
async def my_account_changes(
    me: ClientPrincipal, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> list[AccountChangeView]:
    """Changes asked for on your accounts, newest first."""
    return await account_changes.changes_of(session, me.id, limit, offset)
