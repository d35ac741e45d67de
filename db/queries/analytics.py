"""The reporting aggregate (docs/reporting.md): the daily per (server, day, login, symbol) sums
replaced from `deals`, and the questions the reports ask of them and of the raw tables
(payments, the ledger, account states, the IB tree and commissions).

Every report reads `analytics_daily`, never `deals` (the transaction report excepted: it is one
row per deal). A day is a UTC day of the deal's `time`. A report's rows are per currency: the
accounts' currencies are never added together.

The broker's side of a client's figures (`revenue`): commission, swap and fee charged to the
client (MT5 gives them signed from the client's side: a charge is negative, so the income is
its negation) plus the B-book P&L, minus what the client realised on the kept share of the
account's flow (`b_share`: 1 for B or no book, 0 for A, 1 - `a_share` for hybrid). Coverage
accounts (the broker's own at a liquidity provider) are not clients: left out of every report.
`markup` is the dealer's markup captured on the slice's deals (`deal_revenue`, docs/revenue.md):
shown beside the revenue, not added to it (on the B-book it is already inside the clients' P&L);
NULL when no deal of the slice has it computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

# Buy and sell (trade deals) and the commission deals MT5 books apart (daily, monthly, instant).
TRADE_ACTIONS = (0, 1)
COMMISSION_ACTIONS = (7, 8, 9)
# A run recomputes at most this many days (a first run over a long history takes several).
MAX_DAYS_PER_RUN = 31

_REPLACE_DAYS = text(
    """
    INSERT INTO analytics_daily (server, day, login, symbol, currency, deals, volume_lots,
                                 volume_units, commission, swap, fee, client_pnl)
    SELECT d.server, (d.time AT TIME ZONE 'UTC')::date, d.login, d.symbol,
           coalesce(max(a.currency), 'XXX'),
           count(*) FILTER (WHERE d.action IN (0, 1)),
           coalesce(sum(l.lots) FILTER (WHERE d.action IN (0, 1)), 0),
           coalesce(sum(l.lots * d.contract_size) FILTER (WHERE d.action IN (0, 1)), 0),
           coalesce(sum(CASE WHEN d.action IN (0, 1) THEN d.commission ELSE d.profit END), 0),
           coalesce(sum(d.storage) FILTER (WHERE d.action IN (0, 1)), 0),
           coalesce(sum(d.fee) FILTER (WHERE d.action IN (0, 1)), 0),
           coalesce(sum(d.profit) FILTER (WHERE d.action IN (0, 1)), 0)
    FROM deals d
    CROSS JOIN LATERAL (
        SELECT CASE WHEN d.volume_ext > 0 THEN d.volume_ext::numeric / 100000000
                    ELSE d.volume::numeric / 10000 END AS lots
    ) l
    LEFT JOIN mt5_accounts a ON a.server = d.server AND a.login = d.login
    WHERE d.server = :server
      AND d.time >= :since AND d.time < :until
      AND d.action IN (0, 1, 7, 8, 9)
    GROUP BY d.server, (d.time AT TIME ZONE 'UTC')::date, d.login, d.symbol
    """
)


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def replace_days(session: AsyncSession, server: str, first: date, last: date) -> int:
    """Recompute `server`'s aggregate rows of the UTC days `first`..`last` (inclusive) from its
    deals: the days' rows are deleted and written again, so recomputing gives the same rows.
    Returns the rows written."""
    # Two statements: a data-modifying CTE's delete is not seen by its own statement's insert.
    await session.execute(
        text(
            "DELETE FROM analytics_daily WHERE server = :server AND day >= :first AND day <= :last"
        ),
        {"server": server, "first": first, "last": last},
    )
    result = await session.execute(
        _REPLACE_DAYS,
        {
            "server": server,
            "first": first,
            "last": last,
            "since": _utc_midnight(first),
            "until": _utc_midnight(last + timedelta(days=1)),
        },
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def servers_to_refresh(session: AsyncSession) -> list[str]:
    """Every server the ingestion follows or the aggregates already cover."""
    result = await session.scalars(
        text("SELECT server FROM ingestion_state UNION SELECT server FROM analytics_state")
    )
    return sorted(result.all())


async def refresh_window(
    session: AsyncSession, server: str
) -> tuple[datetime | None, datetime | None]:
    """(`through`, the newest deal time at or after it): the aggregates are complete up to
    `through` (None: never refreshed); the state row is locked for the caller's transaction."""
    through = await session.scalar(
        text("SELECT through FROM analytics_state WHERE server = :s FOR UPDATE"), {"s": server}
    )
    if through is None:
        newest = await session.scalar(
            text("SELECT max(time) FROM deals WHERE server = :s"), {"s": server}
        )
        first = await session.scalar(
            text("SELECT min(time) FROM deals WHERE server = :s"), {"s": server}
        )
        return first, newest
    newest = await session.scalar(
        text("SELECT max(time) FROM deals WHERE server = :s AND time >= :t"),
        {"s": server, "t": through},
    )
    return through, newest


async def record_refresh(
    session: AsyncSession, server: str, through: datetime | None, at: datetime, days: int
) -> None:
    await session.execute(
        text(
            """
            INSERT INTO analytics_state (server, through, refreshed_at, days_refreshed)
            VALUES (:s, :t, :at, :days)
            ON CONFLICT (server) DO UPDATE SET through = excluded.through,
                refreshed_at = excluded.refreshed_at, days_refreshed = excluded.days_refreshed
            """
        ),
        {"s": server, "t": through, "at": at, "days": days},
    )


# --- reports -------------------------------------------------------------------------------

# The aggregate rows of clients' accounts in the range, each with its book's kept share and
# the markup captured on its deals (`deal_revenue`, docs/revenue.md; NULL: none computed).
_BOOKED = """
    SELECT g.*, coalesce(b.book, 'B') AS book,
           CASE coalesce(b.book, 'B') WHEN 'A' THEN 0 WHEN 'hybrid' THEN 1 - b.a_share
                ELSE 1 END AS b_share,
           m.markup
    FROM analytics_daily g
    LEFT JOIN account_books b ON b.server = g.server AND b.login = g.login
    LEFT JOIN (
        SELECT r.server, (r.time AT TIME ZONE 'UTC')::date AS day, r.login, r.symbol,
               sum(r.markup) AS markup
        FROM deal_revenue r
        WHERE r.time >= (CAST(:first AS date)::timestamp AT TIME ZONE 'UTC')
          AND r.time < ((CAST(:last AS date) + 1)::timestamp AT TIME ZONE 'UTC')
          AND r.markup IS NOT NULL
        GROUP BY 1, 2, 3, 4
    ) m ON m.server = g.server AND m.day = g.day AND m.login = g.login AND m.symbol = g.symbol
    WHERE g.day >= :first AND g.day <= :last AND coalesce(b.book, 'B') <> 'coverage'
"""

_INCOME = """
    sum(-x.commission) AS commission_income,
    sum(-x.swap) AS swap_income,
    sum(-x.fee) AS fee_income,
    sum(-x.client_pnl * x.b_share) AS b_book_pnl,
    sum(x.markup) AS markup,
    sum(-x.commission - x.swap - x.fee - x.client_pnl * x.b_share) AS revenue
"""


async def _rows(session: AsyncSession, sql: str, params: dict[str, Any]) -> Sequence[RowMapping]:
    return (await session.execute(text(sql), params)).mappings().all()


def _range(first: date, last: date) -> dict[str, Any]:
    return {"first": first, "last": last}


async def revenue_by_symbol(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    return await _rows(
        session,
        f"""
        SELECT x.symbol, x.currency, sum(x.deals) AS deals, sum(x.volume_lots) AS volume_lots,
               {_INCOME}
        FROM ({_BOOKED}) x WHERE x.symbol <> ''
        GROUP BY x.symbol, x.currency ORDER BY revenue DESC, x.symbol, x.currency
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        _range(first, last),
    )


async def revenue_by_group(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    """Per symbol group: the symbol's `path` (`symbols`) without its last part
    (`Forex\\Majors\\EURUSD` -> `Forex\\Majors`); `(unknown)` for a symbol not listed."""
    return await _rows(
        session,
        f"""
        SELECT coalesce(nullif(regexp_replace(s.path, '\\\\[^\\\\]*$', ''), s.path), '(unknown)')
                   AS symbol_group,
               x.currency, sum(x.deals) AS deals, sum(x.volume_lots) AS volume_lots, {_INCOME}
        FROM ({_BOOKED}) x
        LEFT JOIN symbols s ON s.server = x.server AND s.symbol = x.symbol
        WHERE x.symbol <> ''
        GROUP BY 1, x.currency ORDER BY revenue DESC, 1, x.currency
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        _range(first, last),
    )


async def revenue_breakdown(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    """Per day and currency: commission, swap, fee and B-book P&L (the stacked bars)."""
    return await _rows(
        session,
        f"""
        SELECT x.day, x.currency, sum(x.volume_lots) AS volume_lots, {_INCOME}
        FROM ({_BOOKED}) x GROUP BY x.day, x.currency ORDER BY x.day, x.currency
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        _range(first, last),
    )


async def revenue_by_book(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    return await _rows(
        session,
        f"""
        SELECT x.book, x.currency, count(DISTINCT (x.server, x.login)) AS accounts,
               sum(x.volume_lots) AS volume_lots, {_INCOME}
        FROM ({_BOOKED}) x GROUP BY x.book, x.currency ORDER BY x.book, x.currency
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        _range(first, last),
    )


_NET_DEPOSITS = """
    SELECT p.client_id, p.currency,
           sum(CASE WHEN p.direction = 'deposit' THEN p.amount_minor ELSE -p.amount_minor END)
               AS net_minor
    FROM payments p WHERE p.status = 'completed' AND p.completed_at < :until
    GROUP BY p.client_id, p.currency
"""


async def client_values(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    """Per client and currency: sign-up, country, net deposits (completed payments, minor
    units, up to the end of `last`) and revenue generated in the range; a client with
    neither is left out."""
    return await _rows(
        session,
        f"""
        WITH revenue AS (
            SELECT a.client_id, x.currency, sum(x.volume_lots) AS volume_lots,
                   sum(-x.commission - x.swap - x.fee - x.client_pnl * x.b_share) AS revenue
            FROM ({_BOOKED}) x
            JOIN mt5_accounts a ON a.server = x.server AND a.login = x.login
            GROUP BY a.client_id, x.currency
        ), deposits AS ({_NET_DEPOSITS})
        SELECT c.id AS client_id, c.country, c.created_at AS signed_up,
               coalesce(r.currency, d.currency) AS currency,
               coalesce(d.net_minor, 0) AS net_deposits_minor,
               coalesce(r.revenue, 0) AS revenue, coalesce(r.volume_lots, 0) AS volume_lots
        FROM revenue r
        FULL JOIN deposits d ON d.client_id = r.client_id AND d.currency = r.currency
        JOIN clients c ON c.id = coalesce(r.client_id, d.client_id)
        ORDER BY c.created_at, c.id, 4
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        {**_range(first, last), "until": _utc_midnight(last + timedelta(days=1))},
    )


async def cohort_curve(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    """Per sign-up month, currency and month of trading: the revenue its clients generated
    (the cumulative line per client is made by the service) and the cohort's size."""
    return await _rows(
        session,
        f"""
        WITH cohort AS (
            SELECT date_trunc('month', c.created_at AT TIME ZONE 'UTC')::date AS cohort,
                   count(*) AS clients
            FROM clients c GROUP BY 1
        )
        SELECT date_trunc('month', c.created_at AT TIME ZONE 'UTC')::date AS cohort,
               date_trunc('month', x.day)::date AS month, x.currency,
               max(k.clients) AS clients,
               sum(-x.commission - x.swap - x.fee - x.client_pnl * x.b_share) AS revenue
        FROM ({_BOOKED}) x
        JOIN mt5_accounts a ON a.server = x.server AND a.login = x.login
        JOIN clients c ON c.id = a.client_id
        JOIN cohort k ON k.cohort = date_trunc('month', c.created_at AT TIME ZONE 'UTC')::date
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        _range(first, last),
    )


async def regional(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    """Per client country and currency (`??` for logins BrokerFlow did not open)."""
    return await _rows(
        session,
        f"""
        WITH revenue AS (
            SELECT coalesce(c.country, '??') AS country, x.currency,
                   count(DISTINCT (x.server, x.login)) AS accounts,
                   sum(x.volume_lots) AS volume_lots,
                   sum(-x.commission - x.swap - x.fee - x.client_pnl * x.b_share) AS revenue
            FROM ({_BOOKED}) x
            LEFT JOIN mt5_accounts a ON a.server = x.server AND a.login = x.login
            LEFT JOIN clients c ON c.id = a.client_id
            GROUP BY 1, 2
        ), deposits AS (
            SELECT c.country, d.currency, count(*) AS depositors, sum(d.net_minor) AS net_minor
            FROM ({_NET_DEPOSITS}) d JOIN clients c ON c.id = d.client_id GROUP BY 1, 2
        )
        SELECT coalesce(r.country, d.country) AS country, coalesce(r.currency, d.currency)
                   AS currency,
               coalesce(r.accounts, 0) AS accounts, coalesce(r.volume_lots, 0) AS volume_lots,
               coalesce(r.revenue, 0) AS revenue,
               coalesce(d.net_minor, 0) AS net_deposits_minor
        FROM revenue r FULL JOIN deposits d ON d.country = r.country AND d.currency = r.currency
        ORDER BY 1, 2
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        {**_range(first, last), "until": _utc_midnight(last + timedelta(days=1))},
    )


async def ib_contribution(session: AsyncSession, first: date, last: date) -> Sequence[RowMapping]:
    """Per IB and currency: the volume and revenue of the logins attributed (open
    attribution) to the IB or anyone under it, and the commissions accrued to the same IBs
    for deals in the range (their server-clock `deal_time` read as UTC)."""
    return await _rows(
        session,
        f"""
        WITH RECURSIVE tree(root, ib) AS (
            SELECT id, id FROM introducing_brokers
            UNION ALL
            SELECT t.root, i.id FROM tree t JOIN introducing_brokers i ON i.parent_id = t.ib
        ), revenue AS (
            SELECT t.root, x.currency, sum(x.volume_lots) AS volume_lots,
                   sum(-x.commission - x.swap - x.fee - x.client_pnl * x.b_share) AS revenue,
                   count(DISTINCT (x.server, x.login)) AS accounts
            FROM ({_BOOKED}) x
            JOIN ib_attributions at ON at.server = x.server AND at.login = x.login
                                    AND at.effective_to IS NULL
            JOIN tree t ON t.ib = at.ib_id
            GROUP BY t.root, x.currency
        ), paid AS (
            SELECT t.root, k.currency, sum(k.amount) AS commissions
            FROM ib_commissions k JOIN tree t ON t.ib = k.ib_id
            WHERE k.deal_time >= :since_s AND k.deal_time < :until_s
            GROUP BY t.root, k.currency
        )
        SELECT i.id AS ib_id, i.name, i.parent_id, coalesce(r.currency, p.currency) AS currency,
               coalesce(r.accounts, 0) AS accounts, coalesce(r.volume_lots, 0) AS volume_lots,
               coalesce(r.revenue, 0) AS revenue, coalesce(p.commissions, 0) AS commissions
        FROM revenue r FULL JOIN paid p ON p.root = r.root AND p.currency = r.currency
        JOIN introducing_brokers i ON i.id = coalesce(r.root, p.root)
        ORDER BY i.name, i.id, 4
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        {
            **_range(first, last),
            "since_s": int(_utc_midnight(first).timestamp()),
            "until_s": int(_utc_midnight(last + timedelta(days=1)).timestamp()),
        },
    )


async def client_money(session: AsyncSession, day: date) -> Sequence[RowMapping]:
    """Per currency at the end of the UTC `day`: the ledger's client-money accounts (credit
    balances of `wallet:`, `hold:` and the `mt5:` mirrors, minor units) and the MT5 balances
    of BrokerFlow's client accounts (the last `account_state_history` row read by then)."""
    return await _rows(
        session,
        """
        WITH ledger AS (
            SELECT a.currency,
                   -sum(p.amount_minor) FILTER (WHERE a.kind = 'wallet') AS wallets_minor,
                   -sum(p.amount_minor) FILTER (WHERE a.kind = 'hold') AS holds_minor,
                   -sum(p.amount_minor) FILTER (WHERE a.kind = 'mt5') AS mt5_ledger_minor
            FROM postings p
            JOIN ledger_accounts a ON a.id = p.account_id
            JOIN journal_entries e ON e.id = p.entry_id
            WHERE a.kind IN ('wallet', 'hold', 'mt5') AND e.booked_at < :until
            GROUP BY a.currency
        ), states AS (
            SELECT DISTINCT ON (h.server, h.login) h.server, h.login, h.balance
            FROM account_state_history h
            WHERE h.taken_at < :until
            ORDER BY h.server, h.login, h.taken_at DESC
        ), mt5 AS (
            SELECT a.currency, sum(s.balance) AS balance, count(*) AS accounts
            FROM states s JOIN mt5_accounts a ON a.server = s.server AND a.login = s.login
            LEFT JOIN account_books b ON b.server = s.server AND b.login = s.login
            WHERE coalesce(b.book, 'B') <> 'coverage'
            GROUP BY a.currency
        )
        SELECT coalesce(l.currency, m.currency) AS currency,
               coalesce(l.wallets_minor, 0) AS wallets_minor,
               coalesce(l.holds_minor, 0) AS holds_minor,
               coalesce(l.mt5_ledger_minor, 0) AS mt5_ledger_minor,
               coalesce(m.balance, 0) AS mt5_balance, coalesce(m.accounts, 0) AS mt5_accounts
        FROM ledger l FULL JOIN mt5 m ON m.currency = l.currency
        ORDER BY 1
        """,
        {"until": _utc_midnight(day + timedelta(days=1))},
    )


async def transactions(
    session: AsyncSession, since: datetime, until: datetime, *, limit: int | None = None
) -> Sequence[RowMapping]:
    """The trade deals (buy, sell) with `since <= time < until`, by time and ticket, with the
    account's client, currency and the symbol's currencies when known."""
    return await _rows(
        session,
        f"""
        SELECT d.deal, d.time, d.server, d.login, d.order_ticket, d.position_id, d.action,
               d.entry, d.reason, d.symbol, d.contract_size, d.price, d.volume, d.volume_ext,
               d.commission, d.storage, d.fee, d.profit, d.external_id, d.gateway,
               a.client_id, a.currency, c.country, c.full_name,
               s.currency_base, s.currency_profit
        FROM deals d
        LEFT JOIN mt5_accounts a ON a.server = d.server AND a.login = d.login
        LEFT JOIN clients c ON c.id = a.client_id
        LEFT JOIN symbols s ON s.server = d.server AND s.symbol = d.symbol
        WHERE d.time >= :since AND d.time < :until AND d.action IN (0, 1)
        ORDER BY d.time, d.server, d.deal
        {"LIMIT :limit" if limit is not None else ""}
        """,  # noqa: S608 (constant SQL pieces, values are bound)
        {"since": since, "until": until, **({"limit": limit} if limit is not None else {})},
    )
