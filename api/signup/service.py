"""Sign-up: the client record, its first account application, and the workflow that opens it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import RequestContext
from api.security import hash_password
from api.signup.schemas import SignupAccepted, SignupRequest
from api.temporal import TemporalConnector, start_once
from db import audit
from db.models import AccountApplication, Client, IntroducingBroker
from domain.account_opening import AccountOpeningInput
from domain.errors import Conflict, InvalidInput
from domain.onboarding import ApplicationStatus, check_applicant, check_password_strength
from workflows.account_opening import AccountOpeningWorkflow


def account_opening_workflow_id(application_id: uuid.UUID) -> str:
    return f"account-opening-{application_id}"


async def sign_up(
    session: AsyncSession,
    temporal: TemporalConnector,
    request: SignupRequest,
    context: RequestContext,
    mt5_server: str,
) -> SignupAccepted:
    check_applicant(request.country, request.date_of_birth, datetime.now(UTC).date())
    check_password_strength(request.password)
    email = request.email.lower()
    if await session.scalar(select(Client.id).where(Client.email == email)):
        raise Conflict("an account with this email already exists; log in or reset the password")
    ib_id = await _referring_ib(session, request.referral_code)

    client = Client(
        id=uuid.uuid4(),
        email=email,
        password_hash=await hash_password(request.password),
        full_name=request.full_name,
        country=request.country,
        date_of_birth=request.date_of_birth,
        status="active",
        referred_by_ib_id=ib_id,
    )
    application_id = uuid.uuid4()
    application = AccountApplication(
        id=application_id,
        client_id=client.id,
        account_type=request.account_type,
        kind="demo",
        status=ApplicationStatus.PENDING,
        workflow_id=account_opening_workflow_id(application_id),
        mt5_server=mt5_server,
    )
    session.add(client)
    await session.flush()
    session.add(application)
    audit.record(
        session,
        audit.Actor(
            kind="client",
            id=str(client.id),
            ip=context.ip,
            request_id=context.request_id,
            trace_id=context.trace_id,
        ),
        audit.Change(
            action="client.signed_up",
            entity_type="client",
            entity_id=str(client.id),
            after={
                "email": email,
                "country": client.country,
                "account_type": request.account_type,
                "referred_by_ib_id": str(ib_id) if ib_id else None,
            },
        ),
    )
    await session.flush()
    # Started before the commit: if the start fails the request rolls back whole; if the commit
    # fails after a start, the workflow's first step finds no application and gives up.
    await start_once(
        temporal,
        AccountOpeningWorkflow.run,
        AccountOpeningInput(
            application_id=application_id,
            client_id=client.id,
            account_type=request.account_type,
            mt5_server=mt5_server,
        ),
        application.workflow_id,
    )
    return SignupAccepted(
        client_id=client.id, application_id=application_id, status=application.status
    )


async def _referring_ib(session: AsyncSession, referral_code: str | None) -> uuid.UUID | None:
    if referral_code is None:
        return None
    ib_id = await session.scalar(
        select(IntroducingBroker.id).where(IntroducingBroker.referral_code == referral_code)
    )
    if ib_id is None:
        raise InvalidInput(
            "referral_code does not belong to any introducing broker", field="referral_code"
        )
    return ib_id
