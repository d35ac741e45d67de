from __future__ import annotations

from fastapi import APIRouter, Depends, status

from api.deps import ContextDep, SessionDep, StateDep
from api.policy import public
from api.signup import service
from api.signup.schemas import SignupAccepted, SignupRequest

router = APIRouter(tags=["sign-up"])


@router.post(
    "/v1/signup",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(public)],
    responses={
        409: {"description": "email already registered"},
        503: {"description": "workflow engine down"},
    },
)
async def sign_up(
    body: SignupRequest,
    session: SessionDep,
    context: ContextDep,
    state: StateDep,
) -> SignupAccepted:
    """Register a client; a demo MT5 account is opened in the background."""
    return await service.sign_up(session, state.temporal, body, context, state.settings.mt5.name)
