"""Trade ingestion: every deal of every MT5 server into the `deals` table, near real time, and
back-fills of any past range. The workflows' inputs and the two steps they take.

`TradeIngestion` (one per server, id `trade-ingestion-<server>`) runs `follow_deals` (and beside
it `follow_trade_state`: positions, pending and history orders, account states, symbols) again
and again: each run polls the server for a while inside one heartbeating activity and keeps
its watermark in `ingestion_state`, in the transaction that writes the rows. `DealBackfill` splits
a range into parts, each a child running `copy_deal_range`.
"""

from __future__ import annotations

from datetime import datetime

from contracts import policies
from contracts.process import Process
from contracts.steps import Mt5Step
from domain.frozen import Frozen as Contract


def trade_ingestion_workflow_id(server: str) -> str:
    return f"trade-ingestion-{server}"


def deal_backfill_workflow_id(server: str, since: datetime, until: datetime) -> str:
    return f"deal-backfill-{server}-{since:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}"


class IngestionInput(Contract):
    server: str
    # Where a server never ingested before starts (older deals are a back-fill's).
    start_from: datetime
    # `follow_deals` runs per workflow run: continued as new after these, so the history stays
    # a few hundred events long.
    runs_per_history: int = 100
    run_seconds: float = 60.0


class BackfillInput(Contract):
    server: str
    since: datetime
    until: datetime
    # Children the range is split into (each reads and writes its own part).
    parts: int = 1


class FollowDeals(Contract):
    start_from: datetime
    run_seconds: float


class FollowedDeals(Contract):
    deals: int
    polls: int
    watermark: datetime | None


class FollowTradeState(Contract):
    # Where history orders of a never-ingested server start.
    start_from: datetime
    run_seconds: float
    # The symbols are read whole (one request per symbol) when their last read is this old.
    symbols_every: float = 600.0


class FollowedTradeState(Contract):
    polls: int
    positions: int  # open at the last snapshot
    orders: int  # history orders written
    accounts: int  # account states that changed
    open_orders: int = 0  # pending orders open at the last snapshot
    symbols: int = 0  # symbol rows written or deleted


class DealRange(Contract):
    since: datetime
    until: datetime


class CopiedDeals(Contract):
    deals: int
    windows: int
    # History orders set up in the range (a back-fill copies them too).
    orders: int = 0


TRADE_INGESTION = Process("TradeIngestion", IngestionInput, type(None))
DEAL_BACKFILL = Process("DealBackfill", BackfillInput, CopiedDeals)

# Polls the server and writes what is new for `run_seconds`; the watermark is in the database,
# so a retried or killed run resumes where the last commit left it.
follow_deals = Mt5Step("follow_deals", FollowDeals, FollowedDeals, policies.BULK)
# Beside `follow_deals`, for as long: every few seconds a complete snapshot of the open
# positions, pending orders and account states, and the history orders since their watermark
# (and those that left the last committed snapshot of pending orders); every few minutes the
# symbols.
follow_trade_state = Mt5Step(
    "follow_trade_state", FollowTradeState, FollowedTradeState, policies.BULK
)
# Every deal of the range, and every history order set up in it, whatever is already stored
# (idempotent upserts).
copy_deal_range = Mt5Step("copy_deal_range", DealRange, CopiedDeals, policies.BULK)
