from __future__ import annotations

from fastapi import APIRouter

from api.deps import SessionDep
from api.policy import ClientPrincipal
from api.wallets import service
from api.wallets.schemas import WalletView

router = APIRouter(prefix="/v1/me", tags=["client self-service"])


@router.get("/wallets")
async def my_wallets(me: ClientPrincipal, session: SessionDep) -> list[WalletView]:
    """Per currency you hold: what you may use, and what pending movements have reserved."""
    return await service.wallets(session, me.id)
