"""What a reconciliation run reads: its MT5, processor, balance and waiting-payment snapshots
and the ledger's postings around its day; what its snapshots are made of (the accounts to
check, the ingested deals' sums, the payments waiting on a processor); and where its breaks are
written."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models.payments import Payment
from db.models.reconciliation import (
    ReconciliationBreak,
    ReconciliationRun,
    ReconciliationWaiting,
)
from domain.reconciliation.ledger import IB_PAYOUT, PSP_STEPS
from domain.reconciliation.matching import gc_paused
from domain.reconciliation.records import (
    SETTLEMENT_KINDS,
    AccountBalance,
    Break,
    Flow,
    LedgerMt5Movement,
    LedgerPspMovement,
    Mt5Deal,
    Period,
    PspRow,
    Sides,
)
from domain.reconciliation.waiting import WAITING_STATUSES, WaitingPayment

# Driver-level queries (psycopg placeholders): a day is a million rows, read in binary by the
# driver's C code into plain tuples and made into the matching's tuples by one comprehension,
# without a result-row object or a Python call per row in between.
_DEALS = (
    "SELECT deal, login, time, action, amount_minor, currency, comment"
    " FROM reconciliation_mt5_deals WHERE run_id = %(run)s"
)
_PSP = (
    "SELECT provider, provider_ref, reference, kind, day, gross_minor, fee_minor, net_minor,"
    " currency FROM reconciliation_psp_rows WHERE run_id = %(run)s"
)
# The ledger's side, parsed by PostgreSQL exactly as `domain.reconciliation.ledger.ledger_sides`
# parses it in Python (tests/reconciliation/test_stored_run.py compares the two): the reference
# is the entry key up to its first `:` (an IB payout's `ib-payout:<uuid>`: the uuid's first 24
# hex digits); the login is what follows `mt5:<server>-` in the account code up to the next `:`,
# when it is all digits (at most 18: a bigint); a processor's provider follows `psp:`, the flow
# is the entry's step's. A mirror's posting is negated: the ledger credits the mirror for money
# onto MT5 (`domain.reconciliation.ledger.onto_mt5`), a movement is money onto MT5.
_KEY = "e.idempotency_key"
_STEP = (  # what follows the reference ('' when the key has no `:`)
    f"CASE WHEN strpos({_KEY}, ':') > 0 THEN substr({_KEY}, strpos({_KEY}, ':') + 1) ELSE '' END"
)
_REFERENCE = (
    f"CASE WHEN split_part({_KEY}, ':', 1) = '{IB_PAYOUT}'"
    f" THEN left(replace({_STEP}, '-', ''), 24) ELSE split_part({_KEY}, ':', 1) END"
)
_PSP_FLOWS = " ".join(f"WHEN '{step}' THEN '{flow.value}'" for step, flow in PSP_STEPS.items())
_FLOW = (
    f"CASE WHEN right({_STEP}, 9) = ':reversal' THEN '{Flow.REFUND.value}'"
    f" ELSE CASE {_STEP} {_PSP_FLOWS}"
    f" ELSE CASE WHEN p.amount_minor > 0 THEN '{Flow.COLLECTION.value}'"
    f" ELSE '{Flow.PAYOUT.value}' END END END"
)
# Both of the ledger's sides in one pass over the postings: key, reference, login (on the
# server's MT5 mirrors) or provider and flow (on a processor's clearing account), booked at,
# amount, currency, and the processor's fee the same entry books as an expense
# (`fees:<provider>:<ccy>`, `domain.wallets.capture_hold`), added back to the clearing posting:
# the gross, as the processor reports it.
_PROVIDER = "split_part(substr(a.code, 5), ':', 1)"
_LEDGER = (
    "SELECT key, reference, login::bigint, provider, flow, booked_at, amount_minor, currency,"  # noqa: S608
    " fee::bigint"
    f" FROM (SELECT {_KEY} AS key, {_REFERENCE} AS reference, e.booked_at,"
    " CASE WHEN starts_with(a.code, %(mirror)s) THEN -p.amount_minor"
    " ELSE p.amount_minor + coalesce(f.fee, 0) END AS amount_minor, f.fee,"
    " p.currency, CASE WHEN starts_with(a.code, %(mirror)s)"
    " THEN split_part(substr(a.code, length(%(mirror)s) + 1), ':', 1) END AS login,"
    f" CASE WHEN starts_with(a.code, 'psp:') THEN {_PROVIDER}"
    f" END AS provider, CASE WHEN starts_with(a.code, 'psp:') THEN {_FLOW} END AS flow"
    " FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
    " JOIN ledger_accounts a ON a.id = p.account_id"
    " LEFT JOIN (SELECT fp.entry_id, fa.code, sum(fp.amount_minor) AS fee FROM postings fp"
    " JOIN journal_entries fe ON fe.id = fp.entry_id"
    " JOIN ledger_accounts fa ON fa.id = fp.account_id"
    " WHERE fa.kind = 'fees' AND fe.booked_at >= %(since)s AND fe.booked_at < %(until)s"
    " GROUP BY fp.entry_id, fa.code) f ON f.entry_id = p.entry_id"
    f" AND starts_with(a.code, 'psp:') AND f.code = 'fees:' || {_PROVIDER} || ':' || p.currency"
    " WHERE a.kind IN ('mt5', 'psp') AND e.booked_at >= %(since)s AND e.booked_at < %(until)s"
    " AND (starts_with(a.code, %(mirror)s) OR starts_with(a.code, 'psp:'))) m"
    " WHERE provider IS NOT NULL OR login ~ '^[0-9]{1,18}$'"
)
_FLOWS = {flow.value: flow for flow in Flow}
# The login in a mirror's code `mt5:<server>-<login>:<ccy>` (NULL unless all digits, ≤ 18).
_MIRROR_LOGIN = (
    "CASE WHEN split_part(substr(a.code, length(%(mirror)s) + 1), ':', 1) ~ '^[0-9]{1,18}$'"
    " THEN split_part(substr(a.code, length(%(mirror)s) + 1), ':', 1)::bigint END"
)
# The balance snapshot beside what the ledger says is on each account at the period's end: its
# mirror's balance negated (the mirror is credited for money onto MT5).
_BALANCES = (
    "SELECT b.login, b.currency, b.mt5_minor, (-coalesce(l.amount, 0))::bigint, b.trading_minor"  # noqa: S608
    " FROM reconciliation_balances b LEFT JOIN ("
    f" SELECT {_MIRROR_LOGIN} AS login, p.currency, sum(p.amount_minor) AS amount"
    " FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
    " JOIN ledger_accounts a ON a.id = p.account_id"
    " WHERE a.kind = 'mt5' AND starts_with(a.code, %(mirror)s) AND e.booked_at < %(end)s"
    " GROUP BY 1, 2) l ON l.login = b.login AND l.currency = b.currency"
    " WHERE b.run_id = %(run)s"
)
# The accounts a balance check covers: the server's live accounts and every login with a
# mirror on the server (money BrokerFlow moved), each in its currency.
_ACCOUNTS = (
    "SELECT login, currency FROM mt5_accounts WHERE server = %(server)s AND kind = 'live'"  # noqa: S608
    f" UNION SELECT {_MIRROR_LOGIN}, a.currency FROM ledger_accounts a"
    " WHERE a.kind = 'mt5' AND starts_with(a.code, %(mirror)s)"
)
# Per login, the ingested deals' Profit + Commission + Swap + Fee after the period's end (up to
# the balances' read) and, for trade deals, up to the end: what trading changed.
_DEAL_SUMS = (
    "SELECT login,"
    " coalesce(sum(profit + commission + storage + fee) FILTER (WHERE time >= %(end)s), 0),"
    " coalesce(sum(profit + commission + storage + fee)"
    " FILTER (WHERE time < %(end)s AND action = ANY(%(trade)s)), 0)"
    " FROM deals WHERE server = %(server)s AND login = ANY(%(logins)s) AND time <= %(until)s"
    " GROUP BY login"
)


async def _fetch(
    session: AsyncSession, query: str, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows of `query` as the driver's own tuples, through its binary protocol."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # an open connection has one
    async with driver.cursor(binary=True) as cursor:
        await cursor.execute(query, params)
        rows: list[tuple[Any, ...]] = await cursor.fetchall()
        return rows


def run_period(run: ReconciliationRun) -> Period:
    """The run's day as stored: its own start and end (a cut-off on a server clock ahead of or
    behind UTC starts the day on another UTC date than `day`)."""
    return Period(
        run.day,
        run.period_start,
        run.period_end,
        timedelta(seconds=run.window_seconds),
        timedelta(seconds=run.match_window_seconds),
    )


async def run_sides(session: AsyncSession, run: ReconciliationRun) -> Sides:
    """The three sides of `run`: its snapshots, and the ledger from the cut-off window (and the
    match window) before its day to the same after it."""
    period = run_period(run)
    margin = period.window + period.match_window
    with gc_paused():  # a million tuples made: see gc_paused
        new = tuple.__new__  # a NamedTuple made from the driver's tuple without a call of its own
        deals = [new(Mt5Deal, values) for values in await _fetch(session, _DEALS, {"run": run.id})]
        kinds = SETTLEMENT_KINDS
        rows = [
            PspRow(provider, ref, reference, kinds[kind], day, gross, fee, net, currency)
            for provider, ref, reference, kind, day, gross, fee, net, currency in await _fetch(
                session, _PSP, {"run": run.id}
            )
        ]
        postings = await _fetch(
            session,
            _LEDGER,
            {
                "since": period.start - margin,
                "until": period.end + margin,
                "mirror": f"mt5:{run.server}-",
            },
        )
        ledger_mt5 = [
            LedgerMt5Movement(key, reference, login, at, amount, currency)
            for key, reference, login, provider, _, at, amount, currency, _ in postings
            if provider is None
        ]
        flows = _FLOWS
        ledger_psp = [
            LedgerPspMovement(key, reference, provider, flows[flow], at, amount, currency, fee)
            for key, reference, _, provider, flow, at, amount, currency, fee in postings
            if provider is not None
        ]
        balances = [
            AccountBalance(*values)
            for values in await _fetch(
                session,
                _BALANCES,
                {"run": run.id, "end": period.end, "mirror": f"mt5:{run.server}-"},
            )
        ]
        return Sides(deals, ledger_mt5, ledger_psp, rows, balances)


async def accounts_to_check(
    session: AsyncSession, server: str, default_currency: str
) -> dict[int, str]:
    """The logins of `server` whose balance a run checks, each with its currency."""
    found: dict[int, str] = {}
    for login, currency in await _fetch(
        session, _ACCOUNTS, {"server": server, "mirror": f"mt5:{server}-"}
    ):
        if login is not None:
            found.setdefault(int(login), currency or default_currency)
    return found


async def deal_sums(
    session: AsyncSession,
    server: str,
    logins: Sequence[int],
    end: datetime,
    until: datetime,
    trade_actions: Collection[int],
) -> dict[int, tuple[Decimal, Decimal]]:
    """Per login of `logins` on `server` with ingested deals: (what its deals in [end, until]
    changed, what its trade deals before `end` changed), each Profit + Commission + Swap + Fee
    in the account's currency."""
    if not logins:
        return {}
    rows = await _fetch(
        session,
        _DEAL_SUMS,
        {
            "server": server,
            "logins": list(logins),
            "end": end,
            "until": until,
            "trade": sorted(trade_actions),
        },
    )
    return {int(login): (Decimal(after), Decimal(trading)) for login, after, trading in rows}


async def payment_references(
    session: AsyncSession, provider: str, transfer_references: Collection[str]
) -> dict[str, str]:
    """BrokerFlow's payment reference of each of `transfer_references` (the reference a
    processor handed out for the client to quote on a bank transfer, `payments.
    transfer_reference`, BankCo's `BF` + 8 hex) of `provider`'s payments, where one is known."""
    if not transfer_references:
        return {}
    rows = await session.execute(
        select(Payment.transfer_reference, Payment.reference).where(
            Payment.provider == provider,
            Payment.transfer_reference.in_(sorted(transfer_references)),
        )
    )
    return {transfer: reference for transfer, reference in rows.tuples() if transfer}


async def waiting_payments(session: AsyncSession) -> list[WaitingPayment]:
    """Every payment waiting on its processor now (`WAITING_STATUSES`), `since` its last
    change."""
    rows = await session.execute(
        select(
            Payment.reference,
            Payment.provider,
            Payment.direction,
            Payment.status,
            Payment.updated_at,
            Payment.amount_minor,
            Payment.currency,
        ).where(Payment.status.in_(sorted(WAITING_STATUSES)))
    )
    return [
        WaitingPayment(reference, provider, direction, status, since, amount, currency)
        for reference, provider, direction, status, since, amount, currency in rows.tuples()
    ]


async def waiting_of_run(session: AsyncSession, run_id: uuid.UUID) -> list[WaitingPayment]:
    """Run `run_id`'s snapshot of the payments waiting on a processor."""
    rows = await session.execute(
        select(
            ReconciliationWaiting.reference,
            ReconciliationWaiting.provider,
            ReconciliationWaiting.direction,
            ReconciliationWaiting.status,
            ReconciliationWaiting.since,
            ReconciliationWaiting.amount_minor,
            ReconciliationWaiting.currency,
        ).where(ReconciliationWaiting.run_id == run_id)
    )
    return [WaitingPayment(*values) for values in rows.tuples()]


async def store_breaks(session: AsyncSession, run_id: uuid.UUID, breaks: list[Break]) -> None:
    if not breaks:
        return
    await session.execute(
        insert(ReconciliationBreak),
        [
            {
                "run_id": run_id,
                "type": found.type.value,
                "key": found.key,
                "amount_minor": found.amount_minor,
                "currency": found.currency,
                "reference": found.reference,
                "deal": found.deal,
                "login": found.login,
                "provider": found.provider,
                "found_in": ",".join(found.found_in),
                "missing_from": ",".join(found.missing_from),
                "expected_minor": found.expected_minor,
                "actual_minor": found.actual_minor,
                "expected_currency": found.expected_currency,
                "detail": found.detail,
            }
            for found in breaks
        ],
    )
