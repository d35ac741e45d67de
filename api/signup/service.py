"""Sign-up: the client record, its first account application, the workflow that opens it, and
the mail that verifies the client's address."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import RequestContext
from api.security import hash_password
from api.signup.schemas import SignupAccepted, SignupRequest
from api.temporal import TemporalConnector, start_once
from contracts.account_opening import (
    ACCOUNT_OPENING,
    AccountOpeningInput,
    account_opening_workflow_id,
)
from contracts.client_mail import (
    CLIENT_MAIL,
    ClientMailInput,
    MailTemplate,
    client_mail_workflow_id,
)
from db import audit
from db.models import AccountApplication, Client, Notification
from db.queries.clients import client_by_email, person_registered
from db.queries.ib_management import ib_by_referral_code
from domain.countries import is_iso_country
from domain.errors import Conflict, InvalidInput
from domain.onboarding import ApplicationStatus, check_applicant, check_password_strength

# Countries whose addresses carry no postal code (UPU, national postal services). Everywhere
# else a postal code is required: an address a letter cannot reach proves nothing.
COUNTRIES_WITHOUT_POSTAL_CODES = frozenset(
    "AE AG AO AW BF BI BJ BO BS BW BZ CD CF CG CI CK CM DJ DM ER FJ GA GD GH GM GQ GY HK HM JM KI "
    "KM KN KP LC ML MO MR MW NR NU QA RW SB SC SL SO SR SS ST SY TD TF TG TK TL TO TT TV UG VU YE "
    "ZW".split()
)


def verification_mail_key(client_id: uuid.UUID, sequence: int = 0) -> str:
    """The first verification mail is `verify-{client}`; each one asked for again adds its number
    (one workflow per mail: a retried request never sends a mail twice)."""
    return f"verify-{client_id}" if sequence == 0 else f"verify-{client_id}-{sequence}"


def name_key(full_name: str) -> str:
    """A name folded so that the same person written twice compares equal: compatibility
    decomposition, combining marks dropped, case folded, anything but letters and digits a
    separator, the words sorted. "Hans Müller-Lüdenscheidt" and "LUDENSCHEIDT muller, hans"
    give the same key ("hans ludenscheidt muller")."""
    decomposed = unicodedata.normalize("NFKD", full_name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = "".join(c if c.isalnum() else " " for c in bare).split()
    return " ".join(sorted(words))[:200]


def _person_lock(key: str, birth: date) -> int:
    """A transaction-level advisory lock id for one person (name key + date of birth): two
    sign-ups of the same person at once are serialised, so the second sees the first."""
    digest = hashlib.sha256(f"signup-person|{key}|{birth.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def sign_up(
    session: AsyncSession,
    temporal: TemporalConnector,
    request: SignupRequest,
    context: RequestContext,
    mt5_server: str,
) -> SignupAccepted:
    check_applicant(request.country, request.date_of_birth, datetime.now(UTC).date())
    _check_contact_data(request)
    check_password_strength(request.password)
    email = request.email.lower()
    person = name_key(request.full_name)
    if not person:
        raise InvalidInput("full_name must contain letters", field="full_name")
    await session.execute(
        select(func.pg_advisory_xact_lock(_person_lock(person, request.date_of_birth)))
    )
    if await person_registered(session, person, request.date_of_birth):
        raise Conflict(
            "a client with this name and date of birth is already registered; log in to that "
            "account (or contact support) instead of opening a second one"
        )
    # Before anything else is looked at or written: an unknown code is the same 422 for a known
    # e-mail as for a new one.
    ib_id = await _referring_ib(session, request.referral_code)
    owner = await client_by_email(session, email)
    if owner is not None:
        return await _known_email(session, temporal, owner, request, context)

    address = request.address
    client = Client(
        id=uuid.uuid4(),
        email=email,
        password_hash=await hash_password(request.password),
        full_name=request.full_name,
        country=request.country,
        date_of_birth=request.date_of_birth,
        status="active",
        referred_by_ib_id=ib_id,
        phone=request.phone,
        nationality=request.nationality,
        address_line1=address.line1,
        address_line2=address.line2,
        city=address.city,
        postal_code=address.postal_code,
        name_key=person,
        account_type=request.account_type.value,
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
                "nationality": client.nationality,
                "account_type": request.account_type,
                "referred_by_ib_id": str(ib_id) if ib_id else None,
            },
        ),
    )
    await session.flush()
    # Started before the commit: if a start fails the request rolls back whole; if the commit
    # fails after a start, the workflow's first step finds no application (or no client) and
    # gives up.
    await start_once(
        temporal,
        ACCOUNT_OPENING,
        AccountOpeningInput(
            application_id=application_id,
            client_id=client.id,
            account_type=request.account_type,
            mt5_server=mt5_server,
        ),
        application.workflow_id,
    )
    await start_verification_mail(temporal, client.id, verification_mail_key(client.id))
    return SignupAccepted(
        client_id=client.id, application_id=application_id, status=application.status
    )


def known_email_notice_key(owner: uuid.UUID, at: datetime) -> str:
    """One notice (in-app and by mail) per owner and hour, however many attempts: repeated
    sign-ups with someone's address must not turn BrokerFlow into a mail cannon."""
    return f"signup-with-your-email-{owner}-{at:%Y%m%d%H}"


async def _known_email(
    session: AsyncSession,
    temporal: TemporalConnector,
    owner: Client,
    request: SignupRequest,
    context: RequestContext,
) -> SignupAccepted:
    """A sign-up with an address that has an account answers as a new one would (202, ids of
    nothing), after the same password-hashing work and a workflow start too: the answer does not
    tell who has an account. The owner is told in their notifications and by mail (at most once
    an hour), and every attempt is audited."""
    await hash_password(request.password)
    attempt = uuid.uuid4()
    key = known_email_notice_key(owner.id, datetime.now(UTC))
    # The mail step writes a notification under the mail's key too; this one, first, says more.
    await session.execute(
        pg_insert(Notification)
        .values(
            client_id=owner.id,
            key=key,
            kind=MailTemplate.SIGNUP_WITH_YOUR_EMAIL.value,
            message=(
                "Someone tried to open a new account with your email address. You already have "
                "an account: log in with it (or reset its password). If this was not you, "
                "nothing was opened and you need not do anything."
            ),
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    audit.record(
        session,
        audit.Actor(
            kind="anonymous",
            id=None,
            ip=context.ip,
            request_id=context.request_id,
            trace_id=context.trace_id,
        ),
        audit.Change(
            action="client.signup_with_known_email",
            entity_type="client",
            entity_id=str(owner.id),
            after={"email": owner.email, "attempt": str(attempt), "notice": key},
        ),
    )
    await session.flush()
    # A second start of the same notice (the same hour) is a no-op.
    await start_once(
        temporal,
        CLIENT_MAIL,
        ClientMailInput(key=key, client_id=owner.id, template=MailTemplate.SIGNUP_WITH_YOUR_EMAIL),
        client_mail_workflow_id(key),
    )
    return SignupAccepted(
        client_id=uuid.uuid4(), application_id=uuid.uuid4(), status=ApplicationStatus.PENDING
    )


async def start_verification_mail(
    temporal: TemporalConnector, client_id: uuid.UUID, key: str
) -> None:
    """The mail with the signed verification link (the mail activity builds the link, so the
    link's secret never travels through workflow history)."""
    await start_once(
        temporal,
        CLIENT_MAIL,
        ClientMailInput(key=key, client_id=client_id, template=MailTemplate.VERIFY_EMAIL),
        client_mail_workflow_id(key),
    )


def _check_contact_data(request: SignupRequest) -> None:
    if not is_iso_country(request.nationality):
        raise InvalidInput(
            f"nationality {request.nationality!r} is not an ISO 3166-1 alpha-2 code",
            field="nationality",
        )
    if (
        request.address.postal_code is None
        and request.country not in COUNTRIES_WITHOUT_POSTAL_CODES
    ):
        raise InvalidInput(
            f"addresses in {request.country} need a postal code", field="address.postal_code"
        )


async def _referring_ib(session: AsyncSession, referral_code: str | None) -> uuid.UUID | None:
    """The IB whose referral code the client gave (as given, or upper-cased: the codes
    BrokerFlow generates are upper case and people type them in lower case); an unknown code is
    a 422 naming the field, before anything is written."""
    if referral_code is None:
        return None
    code = referral_code.strip()
    ib = await ib_by_referral_code(session, code)
    if ib is None and code.upper() != code:
        ib = await ib_by_referral_code(session, code.upper())
    if ib is None:
        raise InvalidInput(
            "referral_code does not belong to any introducing broker (check it with the IB"
            " that gave it, or sign up without it)",
            field="referral_code",
        )
    return ib.id
