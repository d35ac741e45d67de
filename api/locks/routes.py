from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from api.deps import SessionDep, StateDep
from api.locks import service
from api.locks.schemas import LockView, UnlockRequest
from api.policy import AdminPrincipal
from api.problems import error_responses

router = APIRouter(prefix="/v1/security/locks", tags=["staff administration"])


@router.get("")
async def list_locks(_: AdminPrincipal, session: SessionDep, state: StateDep) -> list[LockView]:
    """Accounts and addresses that wait or are locked after failed log-ins or resends."""
    return await service.blocked(session, state.clock())


@router.post(
    "/{lock_id}/unlock",
    responses=error_responses({404: "no such throttle entry", 409: "neither waiting nor locked"}),
)
async def unlock(
    lock_id: UUID, body: UnlockRequest, admin: AdminPrincipal, session: SessionDep, state: StateDep
) -> LockView:
    """Lift a lock (and forget the failures) before it runs out; audited as `auth.unlocked`."""
    return await service.unlock(session, lock_id, body.reason, admin, state.clock())
