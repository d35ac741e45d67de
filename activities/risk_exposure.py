"""The live exposure's step: one MT5 server's ingested state into a point of the exposure series,
and the alert thresholds evaluated on it, in one transaction.

What it reads (docs/risk-exposure.md, "Live view, alerts, dashboard"):
* positions (`positions`, the last snapshot) and pending orders (`open_orders`);
* symbols (`symbols`, the last listing), made into `SymbolTerms` by the what-if document's own
  `SymbolRecord` (the same defaults as the command);
* BrokerFlow's accounts on the server (`mt5_accounts`: group, leverage, currency), the client's
  country, the last equity (`account_states`, 0 before one is read) and the book
  (`account_books`, B when none is set);
* from MT5 (`record_live_exposure_point`, on the server's queue; `ExposureMt5Reads`): the group
  and leverage of the logins BrokerFlow did not open (`user/get_batch`), each group's currency
  and MarginMode (`group/get`, once per group and run, with its MarginCall / MarginStopOut),
  the symbols' last ticks (`tick/last`) and the trade states of the logins with positions
  (`user/account/get_batch`: each account's margin-call / stop-out proximity, shown in the
  point's `margin_calls` and alerted per account and state). The database step
  `record_exposure_point` (runs started before) reads none of it: every account as hedging,
  other logins left out (`skipped_logins`), quotes from positions;
* quotes: a symbol's last tick when MT5 gives a usable one (bid > 0, ask >= bid), else the
  lowest and highest `PriceCurrent` of its open positions (MT5 values a buy at the bid, a sell
  at the ask; with positions on one side only both are that side's price); currency
  conversions the server's own forex symbols cannot give come from the newest `fx_rates` of
  each pair.

An MT5 read that fails (the server down, a timeout) is named in the result's `mt5_errors` and
the point is computed from what the ingestion stored, as the database step does: a dealing
desk needs the series most when something is wrong.

The alerts a point raises are mailed to the risk desk (`deliver_risk_alerts`) and, when the
worker is given a webhook, posted to it one raise at a time (`post_risk_alert_webhook`): JSON,
signed with HMAC-SHA256 over `<timestamp>.<body>` with the configured secret (header
`X-BrokerFlow-Signature: t=<unix seconds>,v1=<hex>`), the event id `risk-alert-<id>-<raise>`
in `X-BrokerFlow-Event-Id` and `Idempotency-Key`, the same on every attempt. The secret is
never logged and never part of an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.mail import message_id
from contracts.risk_exposure import (
    DeliverRiskAlerts,
    ExposurePointRecorded,
    RaisedAlert,
    RecordExposurePoint,
    RiskAlertsDelivered,
    RiskAlertWebhookInput,
    RiskAlertWebhookPosted,
    deliver_risk_alerts,
    post_risk_alert_webhook,
    record_exposure_point,
    record_live_exposure_point,
    risk_alert_event_id,
)
from contracts.steps import implements
from db.models import ExposurePointRow, RiskAlert, RiskThreshold
from db.models.trading import OpenOrderRow, SymbolRow
from db.queries import risk as queries
from db.queries.trading import open_orders_of, symbols_of
from domain.countries import is_iso_country, region_of
from domain.errors import InvalidInput
from domain.exposure.alerts import (
    TOTAL_KEY,
    Metric,
    Rule,
    Scope,
    Transition,
    account_utilisations,
    metric_value,
    summarise,
    transition,
)
from domain.exposure.compute import AccountTerms, Book, OrderRow, PositionRow, compute
from domain.exposure.document import SymbolRecord
from domain.exposure.margin_calls import (
    AT_RISK,
    DEFAULT_HEADROOM,
    MarginCheck,
    MarginLimits,
    MarginState,
    classify,
    percent,
)
from domain.exposure.market import FOREX_MODES, ONE, ZERO, Market, Quote, SymbolTerms
from domain.exposure.report import exact, money
from mailer.smtp import Mailer, MailRejected, OutgoingMail
from mt5_adapter.errors import Mt5Error, Mt5NotFound
from mt5_adapter.terms import GroupTerms, Tick, TradeState, TradeStates, TradingTerms, UserTerms

log = logging.getLogger("brokerflow.risk_exposure")

OPEN, ACKNOWLEDGED = "open", "acknowledged"
RESOLVED = queries.RESOLVED


def _utc_now() -> datetime:
    return datetime.now(UTC)


def symbol_terms(row: SymbolRow) -> SymbolTerms | None:
    """A stored symbol as the calculation reads it; None when its settings cannot be computed
    (e.g. a contract size of 0)."""
    record: dict[str, Any] = {
        "Symbol": row.symbol,
        "CalcMode": row.calc_mode,
        "CurrencyBase": row.currency_base,
        "CurrencyProfit": row.currency_profit,
        "CurrencyMargin": row.currency_margin or None,
        "ContractSize": row.contract_size,
        "Digits": row.digits,
        "MarginFlags": row.margin_flags or 0,
    }
    for name, value in (
        ("TickSize", row.tick_size),
        ("TickValue", row.tick_value),
        ("MarginInitial", row.margin_initial),
        ("MarginHedged", row.margin_hedged),
    ):
        if value is not None:
            record[name] = value
    rates = row.margin_rate_initial or []
    if len(rates) == 8:
        record["MarginRateInitial"] = tuple(rates)
    elif rates:
        record["MarginRateInitial"] = rates[0]
    try:
        return SymbolRecord.model_validate(record).terms()
    except ValidationError:
        return None


def quotes_of(positions: list[queries.OpenPosition]) -> dict[str, Quote]:
    """Each symbol's bid and ask: the lowest and highest current price of its open positions."""
    low: dict[str, Decimal] = {}
    high: dict[str, Decimal] = {}
    for p in positions:
        if p.price_current <= 0:
            continue
        low[p.symbol] = min(low.get(p.symbol, p.price_current), p.price_current)
        high[p.symbol] = max(high.get(p.symbol, p.price_current), p.price_current)
    return {s: Quote(low[s], high[s], (low[s] + high[s]) / 2) for s in low}


def fx_terms(quotes: list[queries.FxQuote]) -> tuple[list[SymbolTerms], dict[str, Quote]]:
    """Stored FX rates as forex symbols of their own (named `fx:BASE/QUOTE`), placed after the
    server's symbols so that a server's own quote of a pair wins."""
    terms: list[SymbolTerms] = []
    found: dict[str, Quote] = {}
    for q in quotes:
        if q.bid <= 0 or q.ask < q.bid:
            continue
        name = f"fx:{q.base}/{q.quote}"
        terms.append(SymbolTerms(name, 0, q.base, q.quote, q.base, ONE))
        found[name] = Quote(q.bid, q.ask)
    return terms, found


def account_terms(facts: queries.AccountFacts, *, hedging: bool = True) -> AccountTerms:
    """A BrokerFlow account; `hedging` from its group's MarginMode (unknown: hedging)."""
    book, share = _book(facts.book, facts.a_share)
    return AccountTerms(
        login=facts.login,
        group=facts.group,
        country=facts.country,
        region=region_of(facts.country).value,
        currency=facts.currency,
        leverage=max(facts.leverage, 1),
        equity=facts.equity if facts.equity is not None else ZERO,
        hedging=hedging,
        book=book,
        a_share=share,
    )


def _book(book: str | None, a_share: Decimal | None) -> tuple[Book, Decimal]:
    found = Book(book) if book else Book.B
    return found, {Book.A: ONE, Book.B: ZERO, Book.COVERAGE: ZERO}.get(found, a_share or ZERO)


# Where MT5's `Country` is not an ISO 3166-1 alpha-2 code (the manager typed a name), the
# account's country bucket is "" and its region this one.
UNKNOWN_REGION = "unknown"


def outside_account_terms(
    user: UserTerms, group: GroupTerms, facts: queries.OutsideFacts | None
) -> AccountTerms:
    """A login BrokerFlow did not open, counted with its MT5 group, leverage and country and
    its group's currency and MarginMode; equity and book as stored (none: 0 and B)."""
    code = user.country.strip().upper()
    known = is_iso_country(code)
    book, share = _book(facts.book if facts else None, facts.a_share if facts else None)
    equity = facts.equity if facts is not None and facts.equity is not None else ZERO
    return AccountTerms(
        login=user.login,
        group=user.group,
        country=code if known else "",
        region=region_of(code).value if known else UNKNOWN_REGION,
        currency=group.currency,
        leverage=max(user.leverage, 1),
        equity=equity,
        hedging=group.hedging,
        book=book,
        a_share=share,
    )


def tick_quotes(ticks: Iterable[Tick]) -> dict[str, Quote]:
    """The usable last ticks as quotes (bid > 0, ask >= bid; `Last` when printed)."""
    return {
        t.symbol: Quote(t.bid, t.ask, t.last if t.last > 0 else None)
        for t in ticks
        if t.bid > 0 and t.ask >= t.bid
    }


def netting_conflicts(
    accounts: dict[int, AccountTerms], positions: Iterable[queries.OpenPosition]
) -> list[int]:
    """Netting accounts with a buy and a sell open in one symbol: what MT5 never holds for a
    netting account (a group changed while positions were open, a snapshot taken mid-change).
    They are read as hedging rather than refusing the whole point."""
    sides: dict[tuple[int, str], set[int]] = {}
    for p in positions:
        account = accounts.get(p.login)
        if account is not None and not account.hedging:
            sides.setdefault((p.login, p.symbol), set()).add(p.action)
    return sorted({login for (login, _), seen in sides.items() if len(seen) > 1})


@dataclass(frozen=True)
class Scene:
    """What the ingestion stored of one server, as the exposure reads it."""

    positions: list[queries.OpenPosition]
    orders: Sequence[OpenOrderRow]
    accounts: list[queries.AccountFacts]
    symbols: list[SymbolTerms]
    fx: list[queries.FxQuote]
    outside: dict[int, queries.OutsideFacts] = field(default_factory=dict)

    def outside_logins(self) -> list[int]:
        """Logins with positions or orders but no BrokerFlow account."""
        ours = {a.login for a in self.accounts}
        return sorted(
            {p.login for p in self.positions if p.login not in ours}
            | {o.login for o in self.orders if o.login not in ours}
        )

    def traded_symbols(self) -> list[str]:
        """The symbols with positions or orders, then the forex symbols (conversions)."""
        known = {t.name for t in self.symbols}
        traded = {p.symbol for p in self.positions} | {o.symbol for o in self.orders}
        forex = [t.name for t in self.symbols if t.calc_mode in FOREX_MODES]
        return sorted(traded & known) + [n for n in forex if n not in traded]


@dataclass
class Mt5Terms:
    """What MT5 said in one run (each group read once, however many accounts it holds)."""

    groups: dict[str, GroupTerms] = field(default_factory=dict)
    users: dict[int, UserTerms] = field(default_factory=dict)
    ticks: dict[str, Tick] = field(default_factory=dict)
    unread_groups: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    # The trade states of the logins with positions (`user/account/get_batch`); None when they
    # were not read (a gateway that cannot, or the reads stopped before them).
    trade_states: dict[int, TradeState] | None = None


def accounts_of(
    scene: Scene, mt5: Mt5Terms | None
) -> tuple[dict[int, AccountTerms], list[int], list[str]]:
    """The accounts the point counts, the logins among them BrokerFlow did not open, and notes.
    BrokerFlow's accounts netting or hedging as their group's MarginMode says (hedging when
    MT5 was not asked or did not answer for the group); a login BrokerFlow did not open is
    counted when MT5 gave its account and its group."""
    groups = mt5.groups if mt5 is not None else {}
    accounts = {
        a.login: account_terms(a, hedging=groups[a.group].hedging if a.group in groups else True)
        for a in scene.accounts
    }
    counted: list[int] = []
    if mt5 is not None:
        for login, user in sorted(mt5.users.items()):
            group = groups.get(user.group)
            if login not in accounts and group is not None:
                accounts[login] = outside_account_terms(user, group, scene.outside.get(login))
                counted.append(login)
    notes = list(mt5.errors) if mt5 is not None else []
    for login in netting_conflicts(accounts, scene.positions):
        accounts[login] = replace(accounts[login], hedging=True)
        notes.append(
            f"login {login}: a netting group, but a buy and a sell in one symbol; read as hedging"
        )
    return accounts, counted, notes


# Symbols per `tick/last` (the list travels in the URL).
TICK_PAGE = 100
# The MT5 reads of one run, all together: past it, the point is computed without the rest.
MT5_READS_WITHIN = 20.0


class NoTradingTerms:
    """Where a server's gateway reads no groups, accounts or ticks (a test's fake gateway)."""

    async def group_terms(self, group: str) -> GroupTerms:
        raise Mt5NotFound(13, "this MT5 gateway reads no groups", "group/get")

    async def user_terms(self, logins: Sequence[int]) -> list[UserTerms]:
        return []

    async def last_ticks(self, symbols: Sequence[str]) -> list[Tick]:
        return []


def trading_terms_of(gateway: object) -> TradingTerms:
    """`gateway` itself when it reads groups, accounts and ticks (`WebApiGateway` does), else
    `NoTradingTerms` (the ingested state alone)."""
    return gateway if isinstance(gateway, TradingTerms) else NoTradingTerms()


async def read_mt5_terms(
    source: TradingTerms, scene: Scene, *, within: float = MT5_READS_WITHIN
) -> Mt5Terms:
    """The accounts BrokerFlow did not open, the groups of every account and the traded and
    forex symbols' last ticks. The first read that fails (other than an unknown group or
    symbol) ends the reads: what was read is used, the rest comes from the ingested state."""
    terms = Mt5Terms()
    try:
        async with asyncio.timeout(within):
            outside = scene.outside_logins()
            if outside:
                terms.users = {u.login: u for u in await source.user_terms(outside)}
            groups = {a.group for a in scene.accounts} | {u.group for u in terms.users.values()}
            for group in sorted(groups):
                try:
                    terms.groups[group] = await source.group_terms(group)
                except Mt5NotFound:
                    terms.unread_groups.add(group)
            symbols = scene.traded_symbols()
            for start in range(0, len(symbols), TICK_PAGE):
                page = symbols[start : start + TICK_PAGE]
                try:
                    ticks = await source.last_ticks(page)
                except Mt5NotFound:  # a symbol deleted since the listing: ask one by one
                    ticks = []
                    for name in page:
                        try:
                            ticks += await source.last_ticks([name])
                        except Mt5NotFound:
                            continue
                terms.ticks.update((t.symbol, t) for t in ticks)
            if isinstance(source, TradeStates):
                # Last: the point needs the groups and ticks more than the margin calls.
                with_positions = sorted({p.login for p in scene.positions})
                states = await source.trade_states(with_positions) if with_positions else []
                terms.trade_states = {t.login: t for t in states}
    except (Mt5Error, TimeoutError) as e:
        what = "timed out" if isinstance(e, TimeoutError) else f"{type(e).__name__}: {e}"
        terms.errors.append(f"MT5 reads stopped ({what})")
    return terms


# Margin-call alerts have no threshold row: their `threshold_id` is derived from the login and
# the state, so the unique index on unresolved alerts keeps one per (server, login, state).
MARGIN_ALERTS = uuid.UUID("6f1d8a52-3c1e-4d0b-9a57-0c4f3e2b7d11")
MARGIN_METRICS = frozenset(state.value for state in AT_RISK)
CENT = Decimal("0.01")  # a margin alert's value: the level in % (or equity) to 2 decimals


def margin_alert_id(login: int, state: MarginState) -> uuid.UUID:
    return uuid.uuid5(MARGIN_ALERTS, f"{login}:{state.value}")


@dataclass(frozen=True)
class MarginVerdict:
    """One account's margin-call check in a run: the check, its group's lines, and the row the
    point shows when the account is at risk."""

    login: int
    check: MarginCheck
    limits: MarginLimits
    row: dict[str, Any]


def margin_verdicts(
    accounts: dict[int, AccountTerms],
    groups: dict[str, GroupTerms],
    states: dict[int, TradeState],
    logins: Iterable[int],
    headroom: Decimal,
) -> dict[int, MarginVerdict]:
    """The margin-call state of each of `logins` (those with positions) whose group MT5 gave;
    a login MT5 has no trade state for has nothing at risk (Margin 0)."""
    found: dict[int, MarginVerdict] = {}
    for login in sorted(set(logins)):
        account = accounts.get(login)
        group = None if account is None else groups.get(account.group)
        if account is None or group is None:
            continue  # unknown account or group: nothing to compare with
        limits = MarginLimits(group.margin_call, group.margin_stop_out, group.margin_so_mode)
        state = states.get(login)
        equity = ZERO if state is None else state.equity
        margin = ZERO if state is None else state.margin
        check = classify(equity, margin, limits, headroom)
        found[login] = MarginVerdict(
            login,
            check,
            limits,
            {
                "login": login,
                "group": account.group,
                "currency": account.currency,
                "equity": money(equity, account.currency),
                "margin": money(margin, account.currency),
                "level": None if check.level is None else percent(check.level),
                "margin_call": exact(limits.margin_call),
                "stop_out": exact(limits.stop_out),
                "near_limit": exact(check.near_limit),
                "so_mode": "money" if limits.by_money else "percent",
                "state": check.state.value,
            },
        )
    return found


def at_risk_rows(verdicts: dict[int, MarginVerdict]) -> list[dict[str, Any]]:
    """The accounts not fine, the most severe first, then the lowest level."""
    risky = [v for v in verdicts.values() if v.check.state is not MarginState.FINE]
    risky.sort(key=lambda v: (-v.check.state.severity, v.check.measure or ZERO, v.login))
    return [v.row for v in risky]


def alert_line(alert: RiskAlert) -> str:
    """One alert in the risk desk's mail."""
    where = "at or below" if alert.metric in MARGIN_METRICS else "above"
    return (
        f"{alert.server}  {alert.scope} {alert.key}  {alert.metric} {format(alert.last_value, 'f')}"
        f" {where} {format(alert.raise_above, 'f')}  (raised {alert.raised_at:%Y-%m-%d %H:%M:%S}"
        f" UTC, {alert.raised_count}x)"
    )


def raise_alert(
    session: AsyncSession,
    alert: RiskAlert | None,
    new: RiskAlert,
    worst: Callable[[Decimal, Decimal], Decimal],
) -> RiskAlert:
    """De-duplication: the key's newest alert, unresolved, is raised again with `new`'s value
    (its peak the `worst` of the two); otherwise `new` is added."""
    if alert is None or alert.status == RESOLVED:
        session.add(new)
        return new
    alert.cleared_at = None
    alert.status = OPEN
    alert.raised_count += 1
    alert.last_value = new.value
    alert.peak_value = worst(alert.peak_value, new.value)
    alert.raise_above = new.raise_above
    return alert


def alert_key(threshold: RiskThreshold) -> str:
    return f"{threshold.scope}:{threshold.key}:{threshold.metric}"


@dataclass(frozen=True)
class RiskWebhook:
    """Where raised alerts are posted, and the secret they are signed with (the worker's
    `risk.webhook_url` and `risk.webhook_secret`)."""

    url: str
    secret: SecretStr
    timeout_seconds: float = 10.0


class RiskWebhookRefused(Exception):
    """The receiver refused the alert (a 3xx or a 4xx other than 408 and 429): not retried."""


class RiskWebhookFailed(Exception):
    """No answer, or one to try again later (408, 429, 5xx): retried by Temporal."""


SIGNATURE_HEADER = "X-BrokerFlow-Signature"
EVENT_TYPE = "risk.alert.raised"


def signature(secret: SecretStr, timestamp: int, body: bytes) -> str:
    """`t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>." + body>`."""
    mac = hmac.new(
        secret.get_secret_value().encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    )
    return f"t={timestamp},v1={mac.hexdigest()}"


def alert_event(event_id: str, alert: RiskAlert, raised_count: int) -> dict[str, Any]:
    """The webhook's body: the alert as it is when posted, for the raise the event names."""

    def text(value: Decimal) -> str:
        return format(value, "f")

    def moment(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": event_id,
        "type": EVENT_TYPE,
        "alert": {
            "id": str(alert.id),
            "threshold_id": str(alert.threshold_id),
            "server": alert.server,
            "scope": alert.scope,
            "key": alert.key,
            "metric": alert.metric,
            "status": alert.status,
            "raise": raised_count,
            "value": text(alert.value),
            "last_value": text(alert.last_value),
            "peak_value": text(alert.peak_value),
            "raise_above": text(alert.raise_above),
            "raised_at": moment(alert.raised_at),
            "cleared_at": moment(alert.cleared_at),
        },
    }


class RiskExposureSteps:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mailer: Mailer | None = None,
        *,
        sender: str = "BrokerFlow <no-reply@brokerflow.local>",
        now: Callable[[], datetime] = _utc_now,
        webhook: RiskWebhook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        margin_call_headroom: Decimal = DEFAULT_HEADROOM,
    ) -> None:
        self._sessions = sessions
        self._headroom = margin_call_headroom
        self.sessions = sessions
        self._mailer = mailer
        self._sender = sender
        self._now = now
        self._webhook = webhook
        self._transport = transport  # tests: an in-process receiver

    @implements(record_exposure_point)
    async def record_exposure_point(self, request: RecordExposurePoint) -> ExposurePointRecorded:
        async with self._sessions.begin() as session:
            return await self.record(session, request)

    async def record(
        self, session: AsyncSession, request: RecordExposurePoint
    ) -> ExposurePointRecorded:
        """The database step's point: the ingested state alone (every account as hedging,
        logins BrokerFlow did not open left out, quotes from positions)."""
        return await self.store(session, request, await self.scene(session, request.server))

    async def scene(self, session: AsyncSession, server: str, *, outside: bool = False) -> Scene:
        """What the ingestion stored of `server`; with `outside`, also the equity and book of
        the logins BrokerFlow did not open."""
        scene = Scene(
            positions=await queries.open_positions_of(session, server),
            orders=await open_orders_of(session, server),
            accounts=await queries.exposure_accounts_of(session, server),
            symbols=[t for t in map(symbol_terms, await symbols_of(session, server)) if t],
            fx=await queries.newest_fx_quotes(session),
        )
        if outside:
            scene.outside.update(
                await queries.outside_facts_of(session, server, scene.outside_logins())
            )
        return scene

    async def store(
        self,
        session: AsyncSession,
        request: RecordExposurePoint,
        scene: Scene,
        mt5: Mt5Terms | None = None,
    ) -> ExposurePointRecorded:
        """The point of `scene` (and of what MT5 said, when it was asked), stored, and the
        thresholds evaluated on it."""
        at = self._now()
        server = request.server
        positions, orders = scene.positions, scene.orders
        groups = mt5.groups if mt5 is not None else {}
        accounts, counted, notes = accounts_of(scene, mt5)
        known = {t.name for t in scene.symbols}
        extra_terms, extra_quotes = fx_terms(scene.fx)
        from_positions = quotes_of(positions)
        from_ticks = tick_quotes(mt5.ticks.values()) if mt5 is not None else {}
        quotes = {**extra_quotes, **from_positions, **from_ticks}
        market = Market(request.currency, scene.symbols + extra_terms, quotes)
        skipped = sorted(
            {p.login for p in positions if p.login not in accounts}
            | {o.login for o in orders if o.login not in accounts}
        )
        mt5_facts: dict[str, Any] = {}
        if mt5 is not None:
            used_groups = {a.group for a in accounts.values()} | {
                u.group for u in mt5.users.values()
            }
            mt5_facts = {
                "mt5_logins": counted,
                "groups_unread": sorted(used_groups - set(groups)),
                "tick_quotes": len(from_ticks),
                "position_quotes": len(set(from_positions) - set(from_ticks)),
                "mt5_errors": notes,
            }
        position_rows = [
            PositionRow(p.login, p.symbol, p.action, p.volume, p.price_open)
            for p in positions
            if p.login in accounts and p.symbol in known
        ]
        order_rows = [
            OrderRow(o.login, o.symbol, o.type, o.volume_current, o.price_order)
            for o in orders
            if o.login in accounts and o.symbol in known
        ]
        try:
            exposure = compute(market, accounts, position_rows, order_rows)
        except InvalidInput as e:
            log.warning("exposure of %s not computed: %s", server, e.detail)
            return ExposurePointRecorded(
                positions=len(positions),
                orders=len(orders),
                skipped_logins=skipped,
                error=e.detail,
                **mt5_facts,
            )
        figures = summarise(exposure)
        thresholds = await queries.thresholds_for(session, server)
        watched = {t.key for t in thresholds if t.scope == Scope.ACCOUNT.value}
        if watched:
            # Only the accounts a threshold watches: a point does not store every account.
            figures["accounts"] = account_utilisations(exposure, watched)
        verdicts: dict[int, MarginVerdict] | None = None
        if mt5 is not None and mt5.trade_states is not None:
            verdicts = margin_verdicts(
                accounts, groups, mt5.trade_states, (p.login for p in positions), self._headroom
            )
            figures["margin_calls"] = at_risk_rows(verdicts)
        total = figures["total"]
        utilisation = figures["utilisation"]
        row = ExposurePointRow(
            server=server,
            at=at,
            currency=request.currency,
            net_notional=Decimal(total["net_notional"]),
            gross_notional=Decimal(total["gross_notional"]),
            pending_notional=Decimal(total["pending_notional"]),
            house_net_notional=Decimal(figures["house_net_notional"]),
            margin_utilisation=None if utilisation is None else Decimal(utilisation),
            positions=len(position_rows),
            orders=len(order_rows),
            figures=figures,
        )
        session.add(row)
        await session.flush()
        await queries.drop_points_before(session, server, at - request.retention)
        # Each rule's newest alert, read once for both evaluations (their alerts' ids differ).
        latest = (
            await queries.latest_alerts_of(session, server)
            if thresholds or verdicts is not None
            else {}
        )
        raised, cleared, alerts = await self._evaluate(
            session, server, at, figures, thresholds, latest
        )
        if verdicts is not None:
            more = await self._evaluate_margin_calls(
                session, server, at, verdicts, {p.login for p in positions}, latest
            )
            raised, cleared, alerts = raised + more[0], cleared + more[1], alerts + more[2]
        return ExposurePointRecorded(
            point_id=row.id,
            net_notional=total["net_notional"],
            positions=len(position_rows),
            orders=len(order_rows),
            skipped_logins=skipped,
            raised=raised,
            cleared=cleared,
            raised_alert_ids=[a.alert_id for a in alerts],
            webhook_alerts=alerts if self._webhook is not None else [],
            **mt5_facts,
        )

    async def _evaluate(
        self,
        session: AsyncSession,
        server: str,
        at: datetime,
        point: dict[str, Any],
        thresholds: Sequence[RiskThreshold],
        latest: dict[uuid.UUID, RiskAlert],
    ) -> tuple[list[str], list[str], list[RaisedAlert]]:
        """(keys raised, keys cleared, the raises of the alerts raised); `latest`: each rule's
        newest alert on the server (`queries.latest_alerts_of`)."""
        if not thresholds:
            return [], [], []
        earlier: dict[int, dict[str, Any] | None] = {}
        raised: list[str] = []
        cleared: list[str] = []
        raised_alerts: list[RiskAlert] = []
        for threshold in thresholds:
            metric, scope = Metric(threshold.metric), Scope(threshold.scope)
            before = None
            if metric is Metric.CHANGE:
                window = threshold.window_seconds or 0
                if window not in earlier:
                    found = await queries.point_at_or_before(
                        session, server, at - timedelta(seconds=window)
                    )
                    earlier[window] = None if found is None else found.figures
                before = earlier[window]
            key = TOTAL_KEY if scope is Scope.TOTAL else threshold.key
            value = metric_value(point, scope, key, metric, before)
            alert = latest.get(threshold.id)
            is_raised = alert is not None and alert.cleared_at is None
            rule = Rule(threshold.raise_above, threshold.clear_below)
            step = transition(rule, value, is_raised)
            if step is Transition.RAISE and value is not None:
                new = RiskAlert(
                    threshold_id=threshold.id,
                    server=server,
                    scope=threshold.scope,
                    key=key,
                    metric=threshold.metric,
                    status=OPEN,
                    value=value,
                    last_value=value,
                    peak_value=value,
                    raise_above=threshold.raise_above,
                    raised_at=at,
                    raised_count=1,
                )
                raised_alerts.append(raise_alert(session, alert, new, max))
                raised.append(alert_key(threshold))
            elif step is Transition.CLEAR and alert is not None:
                alert.cleared_at = at
                if value is not None:
                    alert.last_value = value
                cleared.append(alert_key(threshold))
            elif step is Transition.HOLD and alert is not None and value is not None:
                if alert.status != RESOLVED:
                    alert.last_value = value
                    alert.peak_value = max(alert.peak_value, value)
        await session.flush()
        return (
            raised,
            cleared,
            [RaisedAlert(alert_id=str(a.id), raised_count=a.raised_count) for a in raised_alerts],
        )

    async def _evaluate_margin_calls(
        self,
        session: AsyncSession,
        server: str,
        at: datetime,
        verdicts: dict[int, MarginVerdict],
        with_positions: set[int],
        latest: dict[uuid.UUID, RiskAlert],
    ) -> tuple[list[str], list[str], list[RaisedAlert]]:
        """Per account, the alert of its present state (near margin call, margin call, stop
        out) raised, and its alerts of the other states cleared. An account with a raised
        alert and no position left has nothing at risk (cleared); one with positions that was
        not checked (its group unread) keeps its alerts as they are."""
        flagged = {
            int(a.key)
            for a in latest.values()
            if a.metric in MARGIN_METRICS and a.cleared_at is None and a.key.isdigit()
        }
        raised: list[str] = []
        cleared: list[str] = []
        raised_alerts: list[RiskAlert] = []
        for login in sorted(set(verdicts) | flagged):
            verdict = verdicts.get(login)
            if verdict is None and login in with_positions:
                continue  # not checked this run: nothing changes
            state = MarginState.FINE if verdict is None else verdict.check.state
            measure = None if verdict is None else verdict.check.measure
            value = None if measure is None else measure.quantize(CENT, ROUND_HALF_UP)
            for level in AT_RISK:
                alert = latest.get(margin_alert_id(login, level))
                is_raised = alert is not None and alert.cleared_at is None
                key = f"{Scope.ACCOUNT.value}:{login}:{level.value}"
                if state is level and value is not None and verdict is not None:
                    if is_raised and alert is not None:
                        if alert.status != RESOLVED:
                            alert.last_value = value
                            alert.peak_value = min(alert.peak_value, value)  # the worst
                        continue
                    new = RiskAlert(
                        threshold_id=margin_alert_id(login, level),
                        server=server,
                        scope=Scope.ACCOUNT.value,
                        key=str(login),
                        metric=level.value,
                        status=OPEN,
                        value=value,
                        last_value=value,
                        peak_value=value,
                        raise_above=verdict.check.limit_of(level, verdict.limits),
                        raised_at=at,
                        raised_count=1,
                    )
                    # The worst of a margin level is its lowest.
                    raised_alerts.append(raise_alert(session, alert, new, min))
                    raised.append(key)
                elif is_raised and alert is not None:
                    alert.cleared_at = at
                    if value is not None:
                        alert.last_value = value
                    cleared.append(key)
        await session.flush()
        return (
            raised,
            cleared,
            [RaisedAlert(alert_id=str(a.id), raised_count=a.raised_count) for a in raised_alerts],
        )

    @implements(deliver_risk_alerts)
    async def deliver_risk_alerts(self, request: DeliverRiskAlerts) -> RiskAlertsDelivered:
        """One mail per risk-desk member listing the alerts; a recipient the mail server
        refuses is logged and skipped (the alerts are in the console all the same)."""
        if self._mailer is None:
            log.warning("risk alerts on %s not mailed: no mailer", request.server)
            return RiskAlertsDelivered()
        async with self._sessions() as session:
            recipients = await queries.risk_desk_emails(session)
            alerts = [
                a
                for a in [
                    await queries.alert_by_id(session, uuid.UUID(i)) for i in request.alert_ids
                ]
                if a is not None
            ]
        if not alerts or not recipients:
            return RiskAlertsDelivered()
        lines = [alert_line(a) for a in alerts]
        text = (
            f"{len(alerts)} risk alert(s) raised on {request.server}:\n\n"
            + "\n".join(lines)
            + "\n\nAcknowledge and resolve them on the console's risk page (/console/risk).\n"
        )
        key = ",".join(sorted(f"{a.id}:{a.raised_count}" for a in alerts))
        sent = 0
        for to in recipients:
            mail = OutgoingMail(
                to=to,
                subject=f"BrokerFlow risk alert: {len(alerts)} raised on {request.server}",
                text=text,
                message_id=message_id(f"risk-alert:{to}:{key}", self._sender),
            )
            try:
                await self._mailer.send(mail)
            except MailRejected as e:
                log.warning("risk alert mail to %s refused: %s", to, e)
                continue
            sent += 1
        return RiskAlertsDelivered(recipients=sent)

    @implements(post_risk_alert_webhook)
    async def post_risk_alert_webhook(
        self, request: RiskAlertWebhookInput
    ) -> RiskAlertWebhookPosted:
        """One attempt to post one raise of one alert. Raises `RiskWebhookFailed` (retried) when
        the receiver cannot be reached or asks to try later, `RiskWebhookRefused` (not retried)
        when it refuses; the receiver de-duplicates by the event id."""
        webhook = self._webhook
        if webhook is None:
            log.warning("risk alert %s not posted: no webhook", request.alert.alert_id)
            return RiskAlertWebhookPosted(outcome="not_configured")
        async with self._sessions() as session:
            alert = await queries.alert_by_id(session, uuid.UUID(request.alert.alert_id))
        if alert is None:
            return RiskAlertWebhookPosted(outcome="gone")
        event_id = risk_alert_event_id(request.alert)
        body = json.dumps(
            alert_event(event_id, alert, request.alert.raised_count), separators=(",", ":")
        ).encode()
        timestamp = int(self._now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "BrokerFlow-risk-webhook/1",
            "X-BrokerFlow-Event": EVENT_TYPE,
            "X-BrokerFlow-Event-Id": event_id,
            "Idempotency-Key": event_id,
            SIGNATURE_HEADER: signature(webhook.secret, timestamp, body),
        }
        # The host only in messages: a URL may carry a token in its path or query.
        host = urlsplit(webhook.url).netloc.rpartition("@")[2]
        try:
            async with httpx.AsyncClient(
                timeout=webhook.timeout_seconds, transport=self._transport, follow_redirects=False
            ) as http:
                answer = await http.post(webhook.url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise RiskWebhookFailed(f"{type(e).__name__} posting to {host}") from None
        status = answer.status_code
        if 200 <= status < 300:
            log.info("risk alert %s posted to %s (%d)", event_id, host, status)
            return RiskAlertWebhookPosted(outcome="delivered", http_status=status)
        if status in (408, 429) or status >= 500:
            raise RiskWebhookFailed(f"{host} answered {status}")
        raise RiskWebhookRefused(f"{host} answered {status}")


class ExposureMt5Reads:
    """The live exposure of one MT5 server, registered on that server's task queue: the
    ingested state read in one short transaction, MT5 asked for what it alone knows (no
    transaction open meanwhile), then the point stored and the thresholds evaluated in a
    second transaction by `steps` (the database step's own code)."""

    def __init__(
        self,
        server: str,
        steps: RiskExposureSteps,
        source: TradingTerms,
        *,
        within: float = MT5_READS_WITHIN,
    ) -> None:
        self._server = server
        self._steps = steps
        self._source = source
        self._within = within

    @implements(record_live_exposure_point)
    async def record_live_exposure_point(
        self, request: RecordExposurePoint
    ) -> ExposurePointRecorded:
        if request.server != self._server:
            raise ValueError(f"exposure of {request.server} asked on {self._server}'s queue")
        sessions = self._steps.sessions
        async with sessions() as session:
            scene = await self._steps.scene(session, request.server, outside=True)
        mt5 = await read_mt5_terms(self._source, scene, within=self._within)
        if mt5.errors:
            log.warning("exposure of %s: %s", request.server, "; ".join(mt5.errors))
        async with sessions.begin() as session:
            return await self._steps.store(session, request, scene, mt5)
