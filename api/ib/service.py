"""Introducing brokers: created by admins; each sees only the clients it referred."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.ib.schemas import IbCreate
from api.policy import Principal
from api.security import hash_password
from db import audit
from db.models import Client, IntroducingBroker
from db.queries.clients import client_by_id, clients_referred_by
from domain.errors import Conflict, NotFound
from domain.onboarding import check_password_strength


async def create_ib(session: AsyncSession, request: IbCreate, by: Principal) -> IntroducingBroker:
    check_password_strength(request.password)
    email = request.email.lower()
    taken = await session.scalar(
        select(IntroducingBroker.id).where(
            or_(
                IntroducingBroker.email == email,
                IntroducingBroker.referral_code == request.referral_code,
            )
        )
    )
    if taken:
        raise Conflict("an IB with this email or referral code already exists")
    ib = IntroducingBroker(
        id=uuid.uuid4(),
        email=email,
        name=request.name,
        password_hash=await hash_password(request.password),
        referral_code=request.referral_code,
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
            after={"email": email, "name": ib.name, "referral_code": ib.referral_code},
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
