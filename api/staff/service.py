"""Managing staff users. Every change is audited with its before and after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import sessions
from api.policy import Principal
from api.security import hash_password, new_totp_secret, totp_provisioning_uri
from api.staff.schemas import StaffCreate, StaffCreated, StaffUpdate, StaffView
from db import audit
from db.models import StaffUser
from db.sealed import SecretBox
from domain.errors import Conflict, Forbidden, NotFound
from domain.roles import PrincipalKind


def _snapshot(staff: StaffUser) -> dict[str, Any]:
    return {
        "roles": sorted(staff.roles),
        "ip_allowlist": [str(c) for c in staff.ip_allowlist],
        "active": staff.active,
    }


async def list_staff(session: AsyncSession) -> list[StaffUser]:
    return list(await session.scalars(select(StaffUser).order_by(StaffUser.email)))


async def create_staff(
    session: AsyncSession, request: StaffCreate, box: SecretBox, by: Principal
) -> StaffCreated:
    email = request.email.lower()
    if await session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        raise Conflict(f"a staff user with email {email} already exists")
    secret = new_totp_secret()
    staff = StaffUser(
        id=uuid.uuid4(),
        email=email,
        full_name=request.full_name,
        password_hash=await hash_password(request.password),
        totp_secret_enc=box.seal(secret),
        roles=sorted({r.value for r in request.roles}),
        ip_allowlist=list(request.ip_allowlist),
        active=True,
    )
    session.add(staff)
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="staff.created",
            entity_type="staff_user",
            entity_id=str(staff.id),
            after={"email": email, **_snapshot(staff)},
        ),
    )
    await session.refresh(staff)
    return StaffCreated(
        **StaffView.model_validate(staff).model_dump(),
        totp_provisioning_uri=totp_provisioning_uri(secret, email),
    )


async def update_staff(
    session: AsyncSession, staff_id: uuid.UUID, request: StaffUpdate, by: Principal
) -> StaffUser:
    staff = await session.get(StaffUser, staff_id, with_for_update=True)
    if staff is None:
        raise NotFound(f"no staff user {staff_id}")
    if staff.id == by.id and (request.active is False or request.roles is not None):
        # Who asks decides, not what is asked: a refusal (403), the same body is fine from
        # another admin.
        raise Forbidden("you cannot change your own roles or disable yourself; ask another admin")
    before = _snapshot(staff)
    if request.roles is not None:
        staff.roles = sorted({r.value for r in request.roles})
    if request.ip_allowlist is not None:
        staff.ip_allowlist = list(request.ip_allowlist)
    if request.active is not None:
        staff.active = request.active
    after = _snapshot(staff)
    # New roles, another allowlist or a deactivation: the sessions opened under the old ones
    # end now (the principal is reloaded on every request anyway; this also ends the refresh).
    if after != before:
        ended = await sessions.revoke_all(
            session, PrincipalKind.STAFF, staff.id, "staff_updated", datetime.now(UTC)
        )
        audit.record(
            session,
            by.actor(),
            audit.Change(
                action="staff.updated",
                entity_type="staff_user",
                entity_id=str(staff.id),
                before=before,
                after={**after, "sessions_ended": ended},
            ),
        )
    await session.flush()
    await session.refresh(staff)
    return staff
