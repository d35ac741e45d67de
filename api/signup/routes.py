from __future__ import annotations

from fastapi import APIRouter, Depends, status

from api.deps import ContextDep, SessionDep, StateDep
from api.policy import public
from api.problems import error_responses
from api.signup import service
from api.signup.schemas import SignupAccepted, SignupRequest

router = APIRouter(tags=["sign-up"])


@router.post(
    "/v1/signup",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(public)],
    responses=error_responses(
        {
            409: "the same person (name and date of birth) is registered already; an email "
            "that has an account is answered 202 like a new one, and its owner is told",
            422: "invalid or missing field: country, nationality, age, phone, address, password,"
            " or a referral_code no introducing broker has (nothing is written)",
            503: "workflow engine down; nothing was recorded",
        }
    ),
)
async def sign_up(
    body: SignupRequest,
    session: SessionDep,
    context: ContextDep,
    state: StateDep,
) -> SignupAccepted:
    """Register a client: a demo MT5 account opens in the background and a mail with a link to
    verify the email address is sent."""
    return await service.sign_up(session, state.temporal, body, context, state.settings.mt5.name)
