"""Introducing brokers: created by admins; each sees only the clients it referred. Admins place
IBs in the tree and set their plan, payout frequency and destination; finance officers create
plans and their versions (dated in the future, so paid history never moves), preview a plan
on a what-if document, and list and clear fraud flags. Every change has its audit row with
before and after, in the request's transaction."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.ib.schemas import (
    IbCreate,
    IbTermsChange,
    ParentChange,
    PlanCreate,
    PlanTerms,
    PlanVersionCreate,
)
from api.policy import Principal
from api.security import hash_password
from db import audit
from db.models import Client, IntroducingBroker
from db.models.ib import IbFraudFlag, IbPlan, IbPlanVersion
from db.queries import ib_management as queries
from db.queries.clients import client_by_id, clients_referred_by
from domain.errors import Conflict, InvalidInput, NotFound
from domain.ib.commissions import PreviewInput, preview
from domain.ib.document import PlanVersion
from domain.onboarding import check_password_strength

# Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or copied by hand is not
# mistyped; 10 characters are 50 bits, too many to guess through the sign-up form.
REFERRAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERRAL_LENGTH = 10


def generate_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))


async def _unused_referral_code(session: AsyncSession) -> str:
    """A generated code no IB has (a collision at 50 bits is next to impossible; the unique
    constraint is the last word)."""
    while True:
        code = generate_referral_code()
        if await queries.ib_by_referral_code(session, code) is None:
            return code


async def create_ib(session: AsyncSession, request: IbCreate, by: Principal) -> IntroducingBroker:
    check_password_strength(request.password)
    email = request.email.lower()
    code = request.referral_code or await _unused_referral_code(session)
    taken = await session.scalar(
        select(IntroducingBroker.id).where(
            or_(IntroducingBroker.email == email, IntroducingBroker.referral_code == code)
        )
    )
    if taken:
        raise Conflict("an IB with this email or referral code already exists")
    if request.parent_id is not None:
        await queries.ib_or_not_found(session, request.parent_id)
    if request.plan_id is not None:
        await queries.plan_or_not_found(session, request.plan_id)
    ib = IntroducingBroker(
        id=uuid.uuid4(),
        email=email,
        name=request.name,
        password_hash=await hash_password(request.password),
        referral_code=code,
        parent_id=request.parent_id,
        plan_id=request.plan_id,
        payout_frequency=request.payout_frequency.value,
    )
    session.add(ib)
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="ib.created",
            entity_type="introducing_broker",
            entity_id=str(ib.id),
            after={
                "email": email,
                "name": ib.name,
                "referral_code": ib.referral_code,
                **_terms(ib),
            },
        ),
    )
    await session.refresh(ib)
    return ib


async def list_ibs(session: AsyncSession) -> list[IntroducingBroker]:
    return list(await session.scalars(select(IntroducingBroker).order_by(IntroducingBroker.name)))


async def own_profile(session: AsyncSession, ib_id: uuid.UUID) -> IntroducingBroker:
    ib = await session.get(IntroducingBroker, ib_id)
    if ib is None:
        raise NotFound("IB not found")
    return ib


async def referred_clients(session: AsyncSession, ib_id: uuid.UUID) -> list[Client]:
    return await clients_referred_by(session, ib_id)


async def referred_client(session: AsyncSession, ib_id: uuid.UUID, client_id: uuid.UUID) -> Client:
    client = await client_by_id(session, client_id)
    if client is None or client.referred_by_ib_id != ib_id:
        raise NotFound(f"you referred no client {client_id}")
    return client


async def regenerate_referral_code(
    session: AsyncSession, ib_id: uuid.UUID, reason: str, by: Principal
) -> IntroducingBroker:
    """A new generated code for the IB (a leaked or guessable one retired): sign-ups with the
    old code are refused from now on; clients it referred, and their attributions, stay. Audited
    `ib.referral_code_regenerated` with the old and new code."""
    ib = await queries.ib_or_not_found(session, ib_id, lock=True)
    before = ib.referral_code
    ib.referral_code = await _unused_referral_code(session)
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="ib.referral_code_regenerated",
            entity_type="introducing_broker",
            entity_id=str(ib.id),
            before={"referral_code": before},
            after={"referral_code": ib.referral_code},
            reason=reason,
        ),
    )
    return ib


# -- tree and terms ------------------------------------------------------------------------------


def _terms(ib: IntroducingBroker) -> dict[str, Any]:
    """An IB's place and terms, as its audit rows show them before and after a change."""
    return {
        "parent_id": str(ib.parent_id) if ib.parent_id else None,
        "plan_id": ib.plan_id,
        "payout_frequency": ib.payout_frequency,
        "payout_to": (
            f"mt5:{ib.payout_mt5_server}/{ib.payout_mt5_login}"
            if ib.payout_mt5_server is not None
            else "wallet"
        ),
    }


async def set_parent(
    session: AsyncSession, ib_id: uuid.UUID, change: ParentChange, by: Principal
) -> IntroducingBroker:
    """Moves the IB (and its sub-tree) under `parent_id`; a parent that is the IB itself or
    one of its descendants would make a cycle: 409. Rows already accrued keep the chain they
    were computed with; the next accrual pays the new chain."""
    ib = await queries.ib_or_not_found(session, ib_id, lock=True)
    if change.parent_id is not None:
        await queries.ib_or_not_found(session, change.parent_id)
        if change.parent_id == ib_id or ib_id in await queries.ancestors(session, change.parent_id):
            raise Conflict(f"IB {change.parent_id} is {ib_id} or below it: that makes a cycle")
    before = _terms(ib)
    ib.parent_id = change.parent_id
    await session.flush()
    _record_ib_change(session, by, ib, "ib.parent_set", before, change.reason)
    return ib


async def set_terms(
    session: AsyncSession, ib_id: uuid.UUID, change: IbTermsChange, by: Principal
) -> IntroducingBroker:
    """Plan, payout frequency and destination: only the fields given change. An MT5
    destination must be an account BrokerFlow opened (its currency is then known)."""
    ib = await queries.ib_or_not_found(session, ib_id, lock=True)
    before = _terms(ib)
    given = change.model_fields_set
    if "plan_id" in given:
        if change.plan_id is not None:
            await queries.plan_or_not_found(session, change.plan_id)
        ib.plan_id = change.plan_id
    if "payout_frequency" in given:
        if change.payout_frequency is None:
            raise InvalidInput("payout_frequency cannot be null", field="payout_frequency")
        ib.payout_frequency = change.payout_frequency.value
    if "payout_to" in given:
        destination = change.payout_to
        if destination is None or destination.kind == "wallet":
            ib.payout_mt5_server, ib.payout_mt5_login = None, None
        else:
            assert destination.server is not None and destination.login is not None
            if await queries.mt5_account(session, destination.server, destination.login) is None:
                raise NotFound(
                    f"BrokerFlow opened no MT5 account {destination.server}/{destination.login}"
                )
            ib.payout_mt5_server, ib.payout_mt5_login = destination.server, destination.login
    await session.flush()
    _record_ib_change(session, by, ib, "ib.terms_set", before, change.reason)
    return ib


def _record_ib_change(
    session: AsyncSession,
    by: Principal,
    ib: IntroducingBroker,
    action: str,
    before: dict[str, Any],
    reason: str,
) -> None:
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action=action,
            entity_type="introducing_broker",
            entity_id=str(ib.id),
            before=before,
            after=_terms(ib),
            reason=reason,
        ),
    )


# -- plans ---------------------------------------------------------------------------------------


def server_now(offset: int) -> int:
    """Now on the trade server's clock (the clock plan versions' `from` is on)."""
    return int(time.time()) + offset


def _version(terms: PlanTerms, number: int) -> PlanVersion:
    """`terms` (already read as `domain.ib` reads a plan version) numbered `number`; 422 with
    the field when it is not one."""
    try:
        return PlanVersion.model_validate({**terms.model_dump(by_alias=True), "version": number})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "terms"
        raise InvalidInput(
            f"terms.{where}: {first['msg'].removeprefix('Value error, ')}", field=f"terms.{where}"
        ) from None


def _stored(version: PlanVersion) -> dict[str, Any]:
    dumped: dict[str, Any] = version.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


async def create_plan(session: AsyncSession, request: PlanCreate, by: Principal) -> IbPlan:
    """A plan and its version 1 (any `from`: nothing was paid under a plan nobody had)."""
    if await session.get(IbPlan, request.id) is not None:
        raise Conflict(f"a plan {request.id!r} exists already")
    version = _version(request.terms, 1)
    plan = IbPlan(id=request.id, name=request.name)
    session.add(plan)
    await session.flush()
    session.add(
        IbPlanVersion(
            plan_id=plan.id,
            version=1,
            effective_from=version.effective_from,
            terms=_stored(version),
        )
    )
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="ib_plan.created",
            entity_type="ib_plan",
            entity_id=plan.id,
            after={"name": plan.name, "version": 1, "from": version.effective_from},
            reason=request.reason,
        ),
    )
    await session.refresh(plan)
    return plan


async def add_plan_version(
    session: AsyncSession,
    plan_id: str,
    request: PlanVersionCreate,
    by: Principal,
    *,
    server_clock_offset: int,
) -> IbPlanVersion:
    """The plan's next version, taking effect after now (server clock) and after its newest
    version: deals already made (and paid) keep the version they were priced with."""
    await queries.plan_or_not_found(session, plan_id)
    # Two versions added at once would both be numbered next: one waits for the other.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"ib_plan:{plan_id}"))))
    versions = await queries.plan_versions_of(session, plan_id)
    newest = versions[-1] if versions else None
    number = (newest.version + 1) if newest else 1
    version = _version(request.terms, number)
    now = server_now(server_clock_offset)
    if version.effective_from <= now:
        raise InvalidInput(
            f"terms.from {version.effective_from} is not in the future (server clock now {now}):"
            " a new version never reprices deals already made",
            field="terms.from",
        )
    if newest is not None and version.effective_from <= newest.effective_from:
        raise Conflict(
            f"version {newest.version} takes effect at {newest.effective_from}: a new version"
            " must take effect after it"
        )
    row = IbPlanVersion(
        plan_id=plan_id,
        version=number,
        effective_from=version.effective_from,
        terms=_stored(version),
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="ib_plan.version_added",
            entity_type="ib_plan",
            entity_id=plan_id,
            before=({"version": newest.version, "from": newest.effective_from} if newest else None),
            after={"version": number, "from": version.effective_from},
            reason=request.reason,
        ),
    )
    await session.refresh(row)
    return row


async def plan_versions(session: AsyncSession, plan_id: str) -> list[IbPlanVersion]:
    return await queries.plan_versions_of(session, plan_id)


async def plans_with_versions(session: AsyncSession) -> list[tuple[IbPlan, list[IbPlanVersion]]]:
    return [
        (p, await queries.plan_versions_of(session, p.id)) for p in await queries.plans(session)
    ]


# -- the what-if preview -------------------------------------------------------------------------


def plan_preview(body: bytes) -> dict[str, Any]:
    """`python -m ib.preview`'s calculation on the request's JSON document: the same reading
    (numbers as decimals, never floats), the same model and the same `domain.ib.preview`; what
    the command says on stderr with exit code 2 is a 422 here with the same reason."""
    try:
        document = json.loads(body, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(f"the document is not JSON: {error}") from None
    try:
        result = preview(PreviewInput.model_validate(document))
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}:"
            f" {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise InvalidInput(f"the document is not valid: {reasons}") from None
    answer: dict[str, Any] = result.model_dump(mode="json")
    return answer


# -- fraud flags ---------------------------------------------------------------------------------


async def fraud_flags(
    session: AsyncSession,
    *,
    ib_id: uuid.UUID | None,
    payout_id: uuid.UUID | None,
    open_only: bool,
) -> list[IbFraudFlag]:
    if payout_id is not None:
        return await queries.fraud_flags_of_payout(session, payout_id)
    return await queries.fraud_flags(
        session, ib_ids=[ib_id] if ib_id is not None else None, open_only=open_only
    )


async def clear_fraud_flag(
    session: AsyncSession, flag_id: int, reason: str, by: Principal
) -> IbFraudFlag:
    """A finance officer looked and found nothing wrong: the flag is cleared (it stays, with
    who cleared it and why); the same evidence found again is not flagged again."""
    flag = await queries.fraud_flag_or_not_found(session, flag_id, lock=True)
    if flag.cleared_at is not None:
        raise Conflict(f"flag {flag_id} was cleared already")
    flag.cleared_at = await session.scalar(select(func.now()))
    flag.cleared_by = by.id
    flag.cleared_reason = reason
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="ib_fraud_flag.cleared",
            entity_type="ib_fraud_flag",
            entity_id=str(flag.id),
            before={"ib_id": str(flag.ib_id), "rule": flag.rule, "cleared": False},
            after={"ib_id": str(flag.ib_id), "rule": flag.rule, "cleared": True},
            reason=reason,
        ),
    )
    return flag
