"""`Mt5Gateway` over the MT5 Web API (HTTPS/JSON) with httpx.

One manager session per gateway: the session is bound to one keep-alive TCP connection plus a
cookie, so the client holds a single connection and sends one request at a time. A lost session
(HTTP 401/403) is re-established and the request sent once more; it was not processed. A request
whose connection broke after it was sent is different: it may have been applied, so writes raise
`Mt5ConnectionError(ambiguous=True)` and the caller looks the effect up before writing again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import httpx
import orjson

from domain.mt5 import (
    BalanceOperation,
    Mt5AccountState,
    Mt5Deal,
    Mt5User,
    Mt5UserChanges,
    NewMt5User,
)
from mt5_adapter.errors import (
    Mt5AuthError,
    Mt5ConnectionError,
    Mt5Error,
    Mt5NotFound,
    error_for,
)
from mt5_adapter.handshake import answer_to, new_challenge, proves
from mt5_adapter.quotes import Quote
from mt5_adapter.server_time import ServerZone, zone_of
from mt5_adapter.terms import USER_PAGE, GroupTerms, Tick, TradeState, UserTerms

log = logging.getLogger(__name__)


class Secret(Protocol):
    def get_secret_value(self) -> str: ...


class Mt5Connection(Protocol):
    """What the gateway needs to know of one trade server (`settings.Mt5ServerSettings` is one,
    with the manager password opened): the adapter is given it and never reads settings."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def backup_addresses(self) -> Sequence[str]: ...
    @property
    def manager_login(self) -> int: ...
    @property
    def manager_password(self) -> Secret: ...
    @property
    def tls(self) -> bool: ...
    @property
    def tls_verify(self) -> bool | str: ...
    @property
    def timeout_seconds(self) -> float: ...
    @property
    def connections(self) -> int: ...
    @property
    def max_requests_per_second(self) -> float: ...


CLIENT_VERSION = "3211"
AGENT = "BrokerFlow"
# The server drops a session after 180 s of silence; ping well before that.
PING_AFTER_IDLE_SECONDS = 60.0
SESSION_KEEPALIVE_SECONDS = 150.0
BALANCE_ACTIONS_EXCLUDED = {0, 1}  # buy and sell: trades, not cash operations
MAX_COMMENT = 31


class SessionLost(Exception):
    """401/403: the server no longer knows our session; nothing was processed."""


class Pacer:
    """Spaces requests at least 1/rate seconds apart, across all of a gateway's sessions."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0

    async def wait_turn(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval  # claimed before sleeping: concurrent callers queue up
        if slot > now:
            await asyncio.sleep(slot - now)


class ManagerSession:
    """One authenticated manager session: one keep-alive connection plus its cookie."""

    def __init__(
        self,
        settings: Mt5Connection,
        addresses: list[str],
        pacer: Pacer,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._addresses = addresses  # shared by the gateway's sessions: failover moves them all
        self._pacer = pacer
        self._scheme = "https" if settings.tls else "http"
        self._http: httpx.AsyncClient | None = None
        self._last_used = 0.0

    def _new_client(self, address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self._scheme}://{address}",
            verify=self._settings.tls_verify,
            timeout=self._settings.timeout_seconds,
            # The session lives as long as this one connection: keep it open between calls.
            limits=httpx.Limits(
                max_connections=1,
                max_keepalive_connections=1,
                keepalive_expiry=SESSION_KEEPALIVE_SECONDS,
            ),
            headers={"Connection": "keep-alive", "User-Agent": AGENT},
            transport=self._transport,
        )

    async def reset(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None

    async def _authenticate(self) -> httpx.AsyncClient:
        """Log in on the first access server that accepts a connection, the last good one first."""
        await self.reset()
        for _ in range(len(self._addresses)):
            address = self._addresses[0]
            try:
                return await self._authenticate_at(address)
            except Mt5ConnectionError as unreachable:
                if len(self._addresses) == 1:
                    raise
                log.warning("MT5 access server %s unreachable: %s", address, unreachable)
                if self._addresses[0] == address:
                    self._addresses.append(self._addresses.pop(0))
        raise Mt5ConnectionError("no access server is reachable", "auth", ambiguous=False)

    async def _authenticate_at(self, address: str) -> httpx.AsyncClient:
        http = self._new_client(address)
        password = self._settings.manager_password.get_secret_value()
        try:
            start = await self.envelope(
                http,
                "auth/start",
                {
                    "version": CLIENT_VERSION,
                    "agent": AGENT,
                    "login": str(self._settings.manager_login),
                    "type": "manager",
                },
                during_auth=True,
            )
            challenge = new_challenge()
            answer = await self.envelope(
                http,
                "auth/answer",
                {
                    "srv_rand_answer": answer_to(password, str(start["srv_rand"])),
                    "cli_rand": challenge,
                },
                during_auth=True,
            )
        except (httpx.HTTPError, SessionLost) as exc:
            await http.aclose()
            raise Mt5ConnectionError(
                f"authentication failed: {exc!r}", "auth", ambiguous=False
            ) from exc
        except Mt5Error:
            await http.aclose()
            raise
        if not proves(password, challenge, str(answer.get("cli_rand_answer", ""))):
            await http.aclose()
            raise Mt5AuthError(
                0, "server failed to prove it knows the manager password", "auth/answer"
            )
        self._http = http
        log.info("MT5 session opened", extra={"mt5_server": self._settings.name})
        return http

    async def connection(self) -> httpx.AsyncClient:
        if self._http is None:
            return await self._authenticate()
        if time.monotonic() - self._last_used > PING_AFTER_IDLE_SECONDS:
            try:
                await self.envelope(self._http, "test/access", {})
            except (httpx.HTTPError, SessionLost, Mt5Error):
                return await self._authenticate()
        return self._http

    async def envelope(
        self,
        http: httpx.AsyncClient,
        command: str,
        params: dict[str, str],
        body: dict[str, Any] | None = None,
        *,
        during_auth: bool = False,
    ) -> dict[str, Any]:
        await self._pacer.wait_turn()
        if body is None:
            response = await http.get(f"/api/{command}", params=params)
        else:
            response = await http.post(f"/api/{command}", params=params, json=body)
        self._last_used = time.monotonic()
        if response.status_code in (401, 403):
            raise SessionLost(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise Mt5ConnectionError(f"HTTP {response.status_code}", command, ambiguous=True)
        try:
            payload = orjson.loads(response.content)
            code_text = str(payload["retcode"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Mt5ConnectionError(
                "answer is not a Web API envelope", command, ambiguous=True
            ) from exc
        code, _, text = code_text.partition(" ")
        try:
            retcode = int(code)
        except ValueError as exc:
            raise Mt5ConnectionError(
                f"unreadable retcode {code_text!r}", command, ambiguous=True
            ) from exc
        if retcode != 0:
            raise error_for(retcode, text, command, during_auth=during_auth)
        return dict(payload)

    async def close(self) -> None:
        if self._http is not None:
            try:
                await self._http.get("/api/quit")
            except httpx.HTTPError:
                pass
        await self.reset()

    async def call(
        self, command: str, params: dict[str, str], body: dict[str, Any] | None, *, write: bool
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            http = await self.connection()
            try:
                return await self.envelope(http, command, params, body)
            except SessionLost:
                # Refused before processing: log in again and send it once more.
                await self.reset()
                if attempt == 2:
                    raise Mt5ConnectionError(
                        "session lost twice", command, ambiguous=False
                    ) from None
            except httpx.TransportError as exc:
                await self.reset()
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if write or attempt == 2:
                    raise Mt5ConnectionError(repr(exc), command, ambiguous=write and sent) from exc
        raise AssertionError("unreachable")


class WebApiGateway:
    """A small pool of manager sessions to one trade server (each serves one request at a time)."""

    def __init__(
        self, settings: Mt5Connection, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """`transport` replaces the network, for tests that play a server's answers."""
        self._settings = settings
        addresses = [settings.address, *settings.backup_addresses]
        pacer = Pacer(settings.max_requests_per_second)
        self._sessions = [
            ManagerSession(settings, addresses, pacer, transport)
            for _ in range(settings.connections)
        ]
        self._idle: asyncio.Queue[ManagerSession] = asyncio.Queue()
        for session in self._sessions:
            self._idle.put_nowait(session)
        self._zone: ServerZone | None = None
        self._zone_asked = asyncio.Lock()  # the first callers share one `time/get`

    async def _call(
        self,
        command: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        *,
        write: bool = False,
    ) -> dict[str, Any]:
        session = await self._idle.get()
        try:
            return await session.call(command, params or {}, body, write=write)
        finally:
            self._idle.put_nowait(session)

    async def _history_call(self, command: str, params: dict[str, str]) -> dict[str, Any]:
        """A history query; some builds answer 13 instead of an empty list when nothing matches."""
        try:
            return await self._call(command, params)
        except Mt5NotFound:
            return {"answer": []}

    async def server_zone(self) -> ServerZone:
        """The server's time zone (`time/get`), asked once: every `Time` it answers and every
        `from`/`to` it reads are on that clock, not UTC."""
        async with self._zone_asked:
            if self._zone is None:
                answer = await self._call("time/get")
                self._zone = zone_of(answer["answer"])
                self._check_configured_offset(self._zone)
            return self._zone

    def _check_configured_offset(self, zone: ServerZone) -> None:
        """Warn when the server's configured clock offset (`server_clock_offset`, what the
        broker-day periods of IB payouts are computed with) is not what `time/get` says today:
        the deals' UTC instants follow `time/get`, so one of the two is wrong."""
        configured = getattr(self._settings, "server_clock_offset", None)
        if configured is None:
            return
        told = zone.offset_at(datetime.now(UTC))
        if told != timedelta(seconds=int(configured)):
            log.warning(
                "MT5 server %s: configured clock offset %s s, time/get says %s s",
                self._settings.name,
                configured,
                int(told.total_seconds()),
                extra={"mt5_server": self._settings.name},
            )

    async def _window(self, since: datetime, until: datetime) -> dict[str, str]:
        zone = await self.server_zone()
        return {"from": str(zone.server_seconds(since)), "to": str(zone.server_seconds(until))}

    # -- Mt5Gateway ------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._call("test/access")

    async def add_user(self, user: NewMt5User) -> Mt5User:
        body = {
            "Login": str(user.login),
            "Group": user.group,
            "Name": user.name,
            "Email": user.email,
            "Country": user.country,
            "Leverage": str(user.leverage),
            "Comment": user.comment,
            "PassMain": user.password_main.get_secret_value(),
            "PassInvestor": user.password_investor.get_secret_value(),
        }
        if user.rights is not None:
            body["Rights"] = str(int(user.rights))
        answer = await self._call("user/add", {}, body, write=True)
        return parse_user(answer["answer"], await self.server_zone())

    async def get_user(self, login: int) -> Mt5User:
        answer = await self._call("user/get", {"login": str(login)})
        return parse_user(answer["answer"], await self.server_zone())

    async def update_user(self, login: int, changes: Mt5UserChanges) -> Mt5User:
        """`user/update`: `login` in the query (as the reference lists it) and in the POSTed record,
        with only the fields to change, numbers as strings like the server's own records. Answers
        the updated record. 3010 (group of another currency) raises `Mt5GroupCurrencyMismatch`,
        an unknown group `Mt5PermissionDenied` (8, as the reference gives it), a leverage MT5
        refuses `Mt5InvalidRequest`."""
        fields: dict[str, str | None] = {
            "Group": changes.group,
            "Name": changes.name,
            "Email": changes.email,
            "Leverage": None if changes.leverage is None else str(int(changes.leverage)),
            "Rights": None if changes.rights is None else str(int(changes.rights)),
            "Comment": changes.comment,
        }
        body = {key: value for key, value in fields.items() if value is not None}
        answer = await self._call(
            "user/update", {"login": str(login)}, {"Login": str(login), **body}, write=True
        )
        return parse_user(answer["answer"], await self.server_zone())

    async def delete_user(self, login: int) -> None:
        """`user/delete`; an account with open trades raises `Mt5HasOpenPositions` (3008)."""
        await self._call("user/delete", {"login": str(login)}, write=True)

    async def get_open_position_count(self, login: int) -> int:
        """`position/get_total`: how many positions `login` has open (13 for an unknown login
        raises `Mt5NotFound`; it is not read as zero)."""
        answer = await self._call("position/get_total", {"login": str(login)})
        return _int(answer["answer"]["total"])

    async def get_account_state(self, login: int) -> Mt5AccountState:
        try:
            answer = await self._call("user/account/get", {"login": str(login)})
        except Mt5NotFound:
            # No trade state until the account has traded since the server's restart (reference:
            # user/account/get_batch); then nothing is at risk and free margin is balance + credit.
            user = await self.get_user(login)
            funds = user.balance + user.credit
            return Mt5AccountState(
                login=login,
                balance=user.balance,
                credit=user.credit,
                equity=funds,
                margin=Decimal(0),
                margin_free=funds,
            )
        record = answer["answer"]
        return Mt5AccountState(
            login=_int(record.get("Login", login)),
            balance=_money(record.get("Balance", "0")),
            credit=_money(record.get("Credit", "0")),
            equity=_money(record.get("Equity", "0")),
            margin=_money(record.get("Margin", "0")),
            margin_free=_money(record.get("MarginFree", "0")),
        )

    async def apply_balance(self, operation: BalanceOperation) -> int:
        params = {
            "login": str(operation.login),
            "type": str(int(operation.type)),
            "balance": format(operation.amount, "f"),
            "comment": operation.comment,
            "check_margin": "1" if operation.check_margin else "0",
        }
        answer = await self._call("trade/balance", params, write=True)
        return int(answer["answer"]["Ticket"])

    async def find_deal_by_comment(
        self, login: int, comment: str, since: datetime, until: datetime
    ) -> Mt5Deal | None:
        answer = await self._history_call(
            "deal/get_batch",
            {"login": str(login), **await self._window(since, until)},
        )
        wanted = comment[:MAX_COMMENT]
        zone = await self.server_zone()
        for record in answer.get("answer") or []:
            deal = parse_deal(record, zone)
            if deal.action not in BALANCE_ACTIONS_EXCLUDED and deal.comment == wanted:
                return deal
        return None

    async def get_deals_page(
        self, login: int, since: datetime, until: datetime, offset: int, total: int
    ) -> list[Mt5Deal]:
        answer = await self._history_call(
            "deal/get_page",
            {
                "login": str(login),
                **await self._window(since, until),
                "offset": str(offset),
                "total": str(total),
            },
        )
        zone = await self.server_zone()
        return [parse_deal(record, zone) for record in answer.get("answer") or []]

    async def deal_records(
        self,
        group: str,
        since: datetime,
        until: datetime,
        *,
        logins: Sequence[int] | None = None,
    ) -> list[dict[str, str]]:
        """`deal/get_batch` of the accounts in `group` (a mask, `*` for all), or of `logins`
        when given, in [since, until], the records as the server wrote them: at most
        `MAX_DEAL_BATCH`, the lowest tickets."""
        selector = {"group": group} if logins is None else {"login": ",".join(map(str, logins))}
        answer = await self._history_call(
            "deal/get_batch", {**selector, **await self._window(since, until)}
        )
        return list(answer.get("answer") or [])

    async def logins(self, group: str) -> list[int]:
        """`user/logins`: the logins of the accounts in `group` (a mask), ascending."""
        answer = await self._history_call("user/logins", {"group": group})
        return sorted(int(login) for login in answer.get("answer") or [])

    async def last_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """`QuoteFeed` over `tick/last?symbol=A,B&trans_id=0`: every named symbol's last tick,
        its time as `DatetimeMsc` (server clock). An unknown symbol answers 13 for the call."""
        if not symbols:
            return []
        answer = await self._call("tick/last", {"symbol": ",".join(symbols), "trans_id": "0"})
        return [
            Quote(
                symbol=str(tick["Symbol"]),
                bid=_money(tick["Bid"]),
                ask=_money(tick["Ask"]),
                server_msc=_int(tick.get("DatetimeMsc") or _int(tick.get("Datetime", 0)) * 1000),
            )
            for tick in answer.get("answer") or []
        ]

    async def last_ticks(self, symbols: Sequence[str]) -> list[Tick]:
        """`TradingTerms` over `tick/last?symbol=A,B&trans_id=0`, with each tick's `Last` (0 when
        the symbol prints none). An unknown symbol answers 13 for the call."""
        if not symbols:
            return []
        answer = await self._call("tick/last", {"symbol": ",".join(symbols), "trans_id": "0"})
        return [
            Tick(
                symbol=str(tick["Symbol"]),
                bid=_money(tick["Bid"]),
                ask=_money(tick["Ask"]),
                last=_money(tick.get("Last") or "0"),
                server_msc=_int(tick.get("DatetimeMsc") or _int(tick.get("Datetime", 0)) * 1000),
            )
            for tick in answer.get("answer") or []
        ]

    async def group_terms(self, group: str) -> GroupTerms:
        """`group/get?group=`: the group's deposit `Currency` and `MarginMode` (0 retail
        netting, 1 exchange, 2 retail hedging). An unknown group raises `Mt5NotFound` (13)."""
        answer = await self._call("group/get", {"group": group})
        record = answer["answer"]
        return GroupTerms(
            group=str(record.get("Group", group)),
            currency=str(record.get("Currency", "")),
            margin_mode=_int(record.get("MarginMode", 0)),
            margin_call=_money(record.get("MarginCall") or "0"),
            margin_stop_out=_money(record.get("MarginStopOut") or "0"),
            margin_so_mode=_int(record.get("MarginSOMode") or 0),
        )

    async def trade_states(self, logins: Sequence[int]) -> list[TradeState]:
        """`TradeStates` over `user/account/get_batch?login=…` in pages of `USER_PAGE`. A page
        answered 13 (the reference: no trade state for an account without positions, orders or
        activity; whether one such login fails the whole batch is unverified) is halved until
        the logins MT5 has no state for are alone, and those are left out."""
        found: list[TradeState] = []
        wanted = sorted(set(logins))
        pages = [wanted[start : start + USER_PAGE] for start in range(0, len(wanted), USER_PAGE)]
        while pages:
            page = pages.pop()
            try:
                answer = await self._call(
                    "user/account/get_batch", {"login": ",".join(map(str, page))}
                )
            except Mt5NotFound:
                if len(page) > 1:
                    pages += [page[: len(page) // 2], page[len(page) // 2 :]]
                continue
            for record in answer.get("answer") or []:
                found.append(
                    TradeState(
                        login=_int(record["Login"]),
                        equity=_money(record.get("Equity") or "0"),
                        margin=_money(record.get("Margin") or "0"),
                        margin_level=_money(record.get("MarginLevel") or "0"),
                    )
                )
        return sorted(found, key=lambda s: s.login)

    async def user_terms(self, logins: Sequence[int]) -> list[UserTerms]:
        """`user/get_batch?login=…` in pages of `USER_PAGE`: each account's group, leverage and
        country; logins the server does not know are left out (a page of only unknown logins
        may answer 13: read as none)."""
        found: list[UserTerms] = []
        wanted = sorted(set(logins))
        for start in range(0, len(wanted), USER_PAGE):
            page = wanted[start : start + USER_PAGE]
            answer = await self._history_call("user/get_batch", {"login": ",".join(map(str, page))})
            for record in answer.get("answer") or []:
                found.append(
                    UserTerms(
                        login=_int(record["Login"]),
                        group=str(record.get("Group", "")),
                        leverage=_int(record.get("Leverage") or 0),
                        country=str(record.get("Country", "")),
                    )
                )
        return found

    async def records(self, command: str, params: dict[str, str]) -> list[dict[str, str]]:
        """A reading command's `answer` array as the server wrote it (every field a string);
        empty when the server answers 13 for nothing found."""
        answer = await self._history_call(command, params)
        return list(answer.get("answer") or [])

    async def tick_history(
        self, symbol: str, since: datetime, until: datetime
    ) -> list[tuple[int, Decimal, Decimal]]:
        """`tick/history?symbol=&from=&to=&data=dba`: the quotes `symbol` printed in
        [since, until], each (server milliseconds, bid, ask), oldest first. A window the server
        cuts at its size limit (14) is read again in halves."""
        zone = await self.server_zone()
        start, end = zone.server_seconds(since), zone.server_seconds(until)
        ticks: list[tuple[int, Decimal, Decimal]] = []
        step = end - start + 1
        while start <= end:
            stop = min(end, start + step - 1)
            params = {"symbol": symbol, "from": str(start), "to": str(stop), "data": "dba"}
            try:
                answer = await self._history_call("tick/history", params)
            except Mt5Error as error:
                if error.retcode != INCOMPLETE or step == 1:
                    raise
                step = max(1, step // 2)
                continue
            for stamp, bid, ask in answer.get("answer") or []:
                ticks.append((int(stamp), Decimal(str(bid)), Decimal(str(ask))))
            start = stop + 1
        return ticks

    async def window(self, since: datetime, until: datetime) -> dict[str, str]:
        """`from`/`to` of [since, until] on the server's clock."""
        return await self._window(since, until)

    async def symbol_records(self) -> tuple[list[dict[str, Any]], bool]:
        """Every symbol's configuration as the server wrote it, and whether the listing is
        complete. The reference has no batch read of symbols: `symbol/total`, then
        `symbol/next?index=` for each index (one request per symbol). A symbol added or
        deleted meanwhile shifts the indexes: the listing is complete only when the total is
        the same after the reads, every index answered and no name came twice."""
        total = await self._symbol_total()
        records: list[dict[str, Any]] = []
        for index in range(total):
            try:
                answer = await self._call("symbol/next", {"index": str(index)})
            except Mt5NotFound:  # deleted meanwhile: the list ended early
                break
            records.append(dict(answer["answer"]))
        names = {str(r.get("Symbol", "")) for r in records}
        complete = len(records) == total == await self._symbol_total() and len(names) == total
        return records, complete

    async def _symbol_total(self) -> int:
        answer = await self._call("symbol/total")
        return _int(answer["answer"]["total"])

    async def aclose(self) -> None:
        for session in self._sessions:
            await session.close()


# A history answer cut at the server's size limit (`chart/get`: 16 MB).
INCOMPLETE = 14
# A `deal/get_batch` answers at most this many deals (reference: 100,000; the rest is not said).
MAX_DEAL_BATCH = 100_000


def _int(value: Any) -> int:
    return int(str(value))


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def parse_user(record: dict[str, Any], zone: ServerZone) -> Mt5User:
    return Mt5User(
        login=_int(record["Login"]),
        group=str(record.get("Group", "")),
        name=str(record.get("Name", "")),
        email=str(record.get("Email", "")),
        country=str(record.get("Country", "")),
        leverage=_int(record.get("Leverage", 0)),
        rights=_int(record.get("Rights", 0)),
        comment=str(record.get("Comment", "")),
        balance=_money(record.get("Balance", "0")),
        credit=_money(record.get("Credit", "0")),
        registration=zone.moment(_int(record.get("Registration") or 0)),
    )


def parse_deal(record: dict[str, Any], zone: ServerZone) -> Mt5Deal:
    # model_construct: every field is converted explicitly here, and history pages are large.
    return Mt5Deal.model_construct(
        ticket=int(record["Deal"]),
        login=int(record["Login"]),
        action=int(record.get("Action", 0)),
        entry=int(record.get("Entry", 0)),
        profit=_money(record.get("Profit", "0")),
        comment=str(record.get("Comment", "")),
        time=zone.moment(int(record.get("Time", 0))),
    )


def gateway_for(settings: Mt5Connection) -> WebApiGateway:
    return WebApiGateway(settings)
