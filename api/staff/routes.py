from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.deps import SecretBoxDep, SessionDep
from api.policy import AdminPrincipal
from api.problems import error_responses
from api.staff import service
from api.staff.schemas import StaffCreate, StaffCreated, StaffUpdate, StaffView

router = APIRouter(prefix="/v1/staff/users", tags=["staff administration"])


@router.get("")
async def list_staff(_: AdminPrincipal, session: SessionDep) -> list[StaffView]:
    return [StaffView.model_validate(s) for s in await service.list_staff(session)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses({409: "email taken"})
)
async def create_staff(
    body: StaffCreate, admin: AdminPrincipal, session: SessionDep, box: SecretBoxDep
) -> StaffCreated:
    return await service.create_staff(session, body, box, admin)


@router.patch(
    "/{staff_id}",
    responses=error_responses(
        {
            403: "not an administrator, or a change of your own roles or active flag",
            404: "no such staff user",
        }
    ),
)
async def update_staff(
    staff_id: UUID, body: StaffUpdate, admin: AdminPrincipal, session: SessionDep
) -> StaffView:
    """Change roles, IP allowlist or active flag; takes effect on the user's next request."""
    return StaffView.model_validate(await service.update_staff(session, staff_id, body, admin))
