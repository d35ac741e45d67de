from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import SessionDep
from api.fx import service
from api.fx.schemas import FxRateCreate, FxRateView
from api.policy import FinanceReader, RateSetter
from api.problems import error_responses

router = APIRouter(prefix="/v1/finance/fx-rates", tags=["finance"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses({422: "unsupported currency, same pair or ask below bid"}),
)
async def set_fx_rate(body: FxRateCreate, staff: RateSetter, session: SessionDep) -> FxRateView:
    """Store a quote, time-stamped now; transfers convert at the newest one of their pair."""
    return FxRateView.of(await service.set_rate(session, body, staff))


@router.get("")
async def latest_fx_rates(_: FinanceReader, session: SessionDep) -> list[FxRateView]:
    """The newest quote of every pair, whatever its source (`staff`, or the FX feed's
    `mt5:<server>:<symbol>`), with its time."""
    return [FxRateView.of(r) for r in await service.latest_rates(session)]
