"""The Web API commands: each reads its parameters, changes the books, returns the envelope."""

from __future__ import annotations

import fnmatch
import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from simulators.mt5 import retcodes as rc
from simulators.mt5.catalogue import Symbol
from simulators.mt5.clock import HOUR_MS, ServerClock
from simulators.mt5.config import (
    MAX_LEVERAGE,
    catalogue_of,
    group_from_record,
    read_config_file,
    symbol_for_group,
    symbol_from_record,
    symbol_record,
)
from simulators.mt5.engine import AccountState, Engine
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import RIGHTS_MAX, RIGHTS_NEW_ACCOUNT, Books, Deal, User

MAX_BALANCE_OPERATION = Decimal(1_000_000_000)
CASH_ACTIONS = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20}
# Scale limits (this server's choice; MT5 does not publish its own): a page (`total` of a
# get_page) holds at most MAX_PAGE records and a batch answer at most MAX_BATCH, the first ones
# by ticket. A client reads more by paging, or by narrowing the window of a batch.
MAX_PAGE = 1_000
MAX_BATCH = 100_000
# What `deal/update` corrects: the deal's money, prices and comment (record field: attribute).
DEAL_CORRECTIONS = {
    "Price": "price",
    "PricePosition": "price_position",
    "Profit": "profit",
    "ProfitRaw": "profit_raw",
    "Storage": "storage",
    "Commission": "commission",
    "Fee": "fee",
    "Comment": "comment",
}
MAX_DEAL_COMMENT = 31
# Longest text per user field, from the sizes of MT5's user record strings; longer is `3`.
USER_TEXT_LIMITS = {
    "Name": 128,
    "Email": 64,
    "Country": 32,
    "City": 32,
    "Address": 128,
    "Phone": 32,
    "Comment": 64,
}
# Fields of a user record a POST body may set, and the query parameter each corresponds to.
USER_FIELDS = {
    "Group": "group",
    "Name": "name",
    "Email": "email",
    "Country": "country",
    "City": "city",
    "Address": "address",
    "Phone": "phone",
    "Comment": "comment",
    "Leverage": "leverage",
    "Rights": "rights",
    "PassMain": "pass_main",
    "PassInvestor": "pass_investor",
    "Login": "login",
    "Agent": "agent",
}


class EncodedList(list[str]):
    """A JSON array whose items are already encoded; the server splices them in as they are."""


def encode_envelope(body: dict[str, Any]) -> bytes:
    parts = [
        f"{json.dumps(key)}:[{','.join(value)}]"
        if isinstance(value, EncodedList)
        else f"{json.dumps(key)}:{json.dumps(value)}"
        for key, value in body.items()
    ]
    return ("{" + ",".join(parts) + "}").encode()


@dataclass
class Call:
    params: dict[str, str]
    body: Any

    def field(self, record_name: str) -> str | None:
        """A value from the POST body's record (which wins) or from the query string."""
        if isinstance(self.body, dict) and record_name in self.body:
            return str(self.body[record_name])
        return self.params.get(USER_FIELDS.get(record_name, record_name.lower()))

    def required(self, name: str) -> str:
        value = self.field(name)
        if value is None or value == "":
            raise Refusal(rc.ERR_PARAMS)
        return value


def _int(value: str | None) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise Refusal(rc.ERR_PARAMS) from None


def _login(call: Call) -> int:
    login = _int(call.field("Login"))
    if login <= 0:
        raise Refusal(rc.ERR_PARAMS)
    return login


def _rights(value: str | None) -> int | None:
    """`Rights`: an unsigned 64-bit mask; anything else is `3 Invalid parameters`."""
    if value is None:
        return None
    rights = _int(value)
    if not 0 <= rights <= RIGHTS_MAX:
        raise Refusal(rc.ERR_PARAMS)
    return rights


def strong_enough(password: str) -> bool:
    return (
        8 <= len(password) <= 16
        and all(
            any(c in cls for c in password)
            for cls in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
        )
        and any(not c.isalnum() for c in password)
    )


def _seconds(clock: ServerClock, utc_seconds: int) -> str:
    return str(clock.to_server(utc_seconds * 1000) // 1000)


def _money(value: str) -> str:
    return f"{Decimal(value):.2f}"


def user_record(user: User, clock: ServerClock) -> dict[str, str]:
    """The user's record; times in the server's zone."""
    balance, credit = user.money
    registered = _seconds(clock, user.registration)
    return {
        "Login": str(user.login),
        "Group": user.group,
        "CertSerialNumber": "0",
        "Rights": str(user.rights),
        "Registration": registered,
        "LastAccess": registered,
        "LastPassChange": registered,
        "LastIP": "",
        "Name": user.name,
        "Company": "",
        "Account": "",
        "Country": user.country,
        "Language": "0",
        "ClientID": "0",
        "City": user.city,
        "State": "",
        "ZIPCode": "",
        "Address": user.address,
        "Phone": user.phone,
        "Email": user.email,
        "ID": "",
        "Status": "",
        "Comment": user.comment,
        "Color": "4278190080",
        "PhonePassword": "",
        "Leverage": str(user.leverage),
        "Agent": str(user.agent),
        "Balance": f"{balance:.2f}",
        "Credit": f"{credit:.2f}",
        "InterestRate": "0.00",
        "CommissionDaily": _money(user.commission_daily),
        "CommissionMonthly": _money(user.commission_monthly),
        "CommissionAgentDaily": _money(user.commission_agent_daily),
        "CommissionAgentMonthly": _money(user.commission_agent_monthly),
        "BalancePrevDay": f"{balance:.2f}",
        "BalancePrevMonth": f"{balance:.2f}",
        "EquityPrevDay": f"{balance + credit:.2f}",
        "EquityPrevMonth": f"{balance + credit:.2f}",
    }


def deal_record(deal: Deal, clock: ServerClock) -> dict[str, str]:
    """The deal's record; `Time`/`TimeMsc` in the server's zone."""
    stamp = clock.to_server(deal.time_msc)
    return {
        "Deal": str(deal.deal),
        "ExternalID": "",
        "Login": str(deal.login),
        "Dealer": "0",
        "Order": str(deal.order),
        "Action": str(deal.action),
        "Entry": str(deal.entry),
        "Reason": str(deal.reason),
        "Digits": str(deal.digits),
        "DigitsCurrency": "2",
        "ContractSize": deal.contract_size,
        "Time": str(stamp // 1000),
        "TimeMsc": str(stamp),
        "Symbol": deal.symbol,
        "Price": deal.price,
        "Volume": str(deal.volume),
        "VolumeExt": str(deal.volume * 10_000),
        "VolumeClosed": str(deal.volume_closed),
        "VolumeClosedExt": str(deal.volume_closed * 10_000),
        "Profit": deal.profit,
        "ProfitRaw": deal.profit_raw,
        "Storage": deal.storage,
        "Commission": deal.commission,
        "Fee": deal.fee,
        "RateProfit": deal.rate_profit,
        "RateMargin": deal.rate_margin,
        "ExpertID": "0",
        "PositionID": str(deal.position_id),
        "PositionByID": str(deal.position_by_id),
        "Comment": deal.comment,
        "PricePosition": deal.price_position,
        "TickValue": "0",
        "TickSize": "0",
        "Flags": "0",
        "Gateway": deal.gateway,
        "PriceGateway": deal.price_gateway,
        "ModifyFlags": "0",
        "PriceSL": "0",
        "PriceTP": "0",
        "MarketBid": deal.market_bid,
        "MarketAsk": deal.market_ask,
    }


def account_record(login: int, state: AccountState) -> dict[str, str]:
    def money(value: Decimal) -> str:
        return f"{value:.{state.digits}f}"

    return {
        "Login": str(login),
        "CurrencyDigits": str(state.digits),
        "Balance": money(state.balance),
        "Credit": money(state.credit),
        "Margin": money(state.margin),
        "MarginFree": money(state.margin_free),
        "MarginLevel": f"{state.margin_level:.2f}",
        "MarginLeverage": str(state.leverage),
        "Profit": money(state.profit),
        "Storage": money(state.storage),
        "Commission": money(Decimal(0)),
        "Floating": money(state.profit + state.storage),
        "Equity": money(state.equity),
        "SOActivation": str(state.activation),
        "SOTime": "0",
        "SOLevel": "0.00",
        "SOEquity": "0.00",
        "SOMargin": "0.00",
        "BlockedCommission": "0.00",
        "BlockedProfit": "0.00",
        "MarginInitial": money(state.margin),
        "MarginMaintenance": money(state.margin),
        "Assets": "0.00",
        "Liabilities": "0.00",
    }


def _stringify(value: Any) -> Any:
    """A config as the Web API answers it: every number a string, at every depth."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return str(value)


def page(call: Call) -> slice:
    """`offset` and `total` of a get_page; `total` beyond MAX_PAGE answers MAX_PAGE records."""
    offset, total = _int(call.params.get("offset", "0")), _int(call.params.get("total", "0"))
    if offset < 0 or total < 0:
        raise Refusal(rc.ERR_PARAMS)
    return slice(offset, offset + min(total, MAX_PAGE))


def group_matches(group: str, masks: str) -> bool:
    """MT5 group masks: comma list, `*` wildcard, `!` excludes (exclusions win)."""
    included = False
    for mask in (m.strip() for m in masks.split(",") if m.strip()):
        if mask.startswith("!"):
            if fnmatch.fnmatchcase(group.lower(), mask[1:].lower()):
                return False
        elif fnmatch.fnmatchcase(group.lower(), mask.lower()):
            included = True
    return included


class Commands:
    def __init__(self, books: Books, save: Callable[[Books], None]) -> None:
        self.books = books
        self.engine = Engine(books, catalogue_of(books.symbols))
        self._save = save
        # Deals never change once booked: encode each record once (history pages are large).
        self._encoded: dict[int, str] = {}

    @property
    def clock(self) -> ServerClock:
        """The trade server's clock (the engine's): UTC inside, the broker's zone on the wire."""
        return self.engine.clock

    def configure(
        self, *, time_zone_minutes: int = 0, daylight: bool = False, config: Path | None = None
    ) -> None:
        """Start-up settings: the server's time zone (standard offset in minutes, EU daylight
        saving on or off) and a config file `{"groups": [...], "symbols": [...]}` of Web API
        records, applied over the books as `group/add` and `symbol/add` would (same name:
        replaced; new name: added). ValueError names what in the file is invalid."""
        if not -12 * 60 <= time_zone_minutes <= 14 * 60:
            raise ValueError(f"time zone {time_zone_minutes} minutes: not within UTC-12..UTC+14")
        self.engine.clock = ServerClock(time_zone_minutes, daylight)
        if config is None:
            return
        groups, symbols = read_config_file(config)
        entry: Any = None
        try:
            for entry in symbols:
                self.add_symbol(entry)
            for entry in groups:
                self.store_group(group_from_record(entry, self.engine.catalogue))
        except Refusal as refusal:
            raise ValueError(f"{config}: {refusal}: {json.dumps(entry)[:200]}") from None
        self.save()

    def save(self) -> None:
        self._save(self.books)

    def encoded(self, deal: Deal) -> str:
        """The deal's record as JSON, encoded once."""
        text = self._encoded.get(deal.deal)
        if text is None:
            text = self._encoded[deal.deal] = json.dumps(deal_record(deal, self.clock))
        return text

    def window(self, call: Call) -> tuple[int, int]:
        """`from`/`to` (server-time seconds, inclusive) as UTC milliseconds, inclusive. In the
        hour autumn repeats, `from` is its first pass and `to` its second, so a window over the
        repeated hour holds the deals of both."""
        since, until = _int(call.required("from")), _int(call.required("to"))
        after = (until + 1) * 1000
        latest = self.clock.to_utc(after)
        if self.clock.to_server(latest + HOUR_MS) == after:
            latest += HOUR_MS
        return self.clock.to_utc(since * 1000), latest - 1

    def table(self) -> dict[str, Callable[[Call], dict[str, Any]]]:
        return {
            "test/access": lambda call: {},
            "time/server": self.time_server,
            "time/get": self.time_get,
            "common/get": self.common_get,
            "user/add": self.user_add,
            "user/update": self.user_update,
            "user/delete": self.user_delete,
            "user/get": self.user_get,
            "user/get_batch": self.user_get_batch,
            "user/logins": self.user_logins,
            "user/total": lambda call: {"answer": {"total": str(len(self.books.users))}},
            "user/check_password": self.user_check_password,
            "user/change_password": self.user_change_password,
            "user/account/get": self.user_account_get,
            "user/account/get_batch": self.user_account_get_batch,
            "trade/balance": self.trade_balance,
            "deal/get": self.deal_get,
            "deal/get_total": self.deal_get_total,
            "deal/get_page": self.deal_get_page,
            "deal/get_batch": self.deal_get_batch,
            "deal/update": self.deal_update,
            "group/add": self.group_add,
            "group/update": self.group_update,
            "group/delete": self.group_delete,
            "group/get": self.group_get,
            "group/total": lambda call: {"answer": {"total": str(len(self.books.groups))}},
            "group/next": self.group_next,
            "symbol/add": self.symbol_add,
            "symbol/delete": self.symbol_delete,
            "symbol/get": self.symbol_get,
            "symbol/get_group": self.symbol_get_group,
            "symbol/total": lambda call: {"answer": {"total": str(len(self.engine.catalogue))}},
            "symbol/next": self.symbol_next,
        }

    # -- service ---------------------------------------------------------------------------

    def _server_now(self) -> tuple[int, str]:
        """Server-time seconds now, and the same as the server prints it."""
        seconds = self.clock.to_server(self.clock.now_msc()) // 1000
        return seconds, datetime.fromtimestamp(seconds, UTC).strftime("%Y.%m.%d %H:%M:%S")

    def time_server(self, call: Call) -> dict[str, Any]:
        seconds, text = self._server_now()
        return {"answer": {"Time": f"{seconds} {text}"}}

    def time_get(self, call: Call) -> dict[str, Any]:
        """The time configuration: `TimeZone` the standard offset in minutes, `Daylight` whether
        daylight saving is on, `DaylightState` whether it is in force now, `TimeServer` the
        server-time seconds now."""
        clock = self.clock
        seconds, _ = self._server_now()
        return {
            "answer": {
                "TimeZone": str(clock.zone_minutes),
                "Daylight": "1" if clock.daylight else "0",
                "DaylightState": "1" if clock.in_daylight(clock.now_msc()) else "0",
                "TimeServer": str(seconds),
            }
        }

    def common_get(self, call: Call) -> dict[str, Any]:
        return {
            "answer": {
                "Name": "BrokerFlow MT5 Simulator",
                "Owner": "BrokerFlow",
                "OwnerID": "simulator",
                "TotalUsers": str(len(self.books.users)),
            }
        }

    # -- users -----------------------------------------------------------------------------

    def _user(self, login: int) -> User:
        user = self.books.users.get(login)
        if user is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return user

    def _user_record(self, user: User) -> dict[str, str]:
        return user_record(user, self.clock)

    @staticmethod
    def _leverage(value: str) -> int:
        leverage = _int(value)
        if not 1 <= leverage <= MAX_LEVERAGE:
            raise Refusal(rc.ERR_PARAMS)
        return leverage

    def _agent(self, value: str | None) -> int | None:
        """`Agent`: 0 (none) or the login of an existing account, else `3`."""
        if value is None:
            return None
        agent = _int(value)
        if agent < 0 or (agent and agent not in self.books.users):
            raise Refusal(rc.ERR_PARAMS)
        return agent

    @staticmethod
    def _texts(call: Call) -> dict[str, str | None]:
        """The user's text fields the call gives, each within its MT5 length (else `3`)."""
        texts = {name: call.field(name) for name in USER_TEXT_LIMITS}
        for name, value in texts.items():
            if value is not None and len(value) > USER_TEXT_LIMITS[name]:
                raise Refusal(rc.ERR_PARAMS)
        if texts["Name"] is not None and not texts["Name"].strip():
            raise Refusal(rc.ERR_PARAMS)  # a record without a name is invalid
        return texts

    def user_add(self, call: Call) -> dict[str, Any]:
        group = call.required("Group")
        name = call.required("Name")
        leverage = self._leverage(call.required("Leverage"))
        main, investor = call.required("PassMain"), call.required("PassInvestor")
        texts = self._texts(call)
        if group not in self.books.groups:
            raise Refusal(rc.ERR_PERMISSIONS)
        if not (strong_enough(main) and strong_enough(investor)):
            raise Refusal(rc.USR_INVALID_PASSWORD)
        requested = _int(call.field("Login") or "0")
        if requested < 0:
            raise Refusal(rc.ERR_PARAMS)
        rights = _rights(call.field("Rights"))
        agent = self._agent(call.field("Agent"))
        if requested and requested in self.books.users:
            raise Refusal(rc.USR_LOGIN_EXIST)
        login = requested or self.books.allocate_login()
        user = User(
            login=login,
            group=group,
            name=name,
            password_main=main,
            password_investor=investor,
            leverage=leverage,
            email=texts["Email"] or "",
            country=texts["Country"] or "",
            city=texts["City"] or "",
            address=texts["Address"] or "",
            phone=texts["Phone"] or "",
            comment=texts["Comment"] or "",
            rights=RIGHTS_NEW_ACCOUNT if rights is None else rights,
            registration=self.clock.now_msc() // 1000,
            agent=agent or 0,
        )
        self.books.users[login] = user
        self.save()
        return {"login": str(login), "answer": self._user_record(user)}

    def user_update(self, call: Call) -> dict[str, Any]:
        """Change the fields given (POST record or query); every one is checked before any is
        written, so a refused update changes nothing. Answers the updated record."""
        user = self._user(_login(call))
        group = call.field("Group")
        if group is not None:
            if group not in self.books.groups:
                raise Refusal(rc.ERR_PERMISSIONS)  # as user/add: a group we cannot reach
            old = self.books.groups[user.group]["Currency"]
            if self.books.groups[group]["Currency"] != old:
                raise Refusal(rc.USR_DIFFERENT_CURRENCY)
        leverage = call.field("Leverage")
        checked_leverage = None if leverage is None else self._leverage(leverage)
        rights = _rights(call.field("Rights"))
        agent = self._agent(call.field("Agent"))
        texts = self._texts(call)
        if group is not None:
            user.group = group
        if checked_leverage is not None:
            user.leverage = checked_leverage
        if rights is not None:
            user.rights = rights
        if agent is not None:
            user.agent = agent
        for name, value in texts.items():
            if value is not None:
                setattr(user, name.lower(), value)
        self.save()
        return {"answer": self._user_record(user)}

    def user_delete(self, call: Call) -> dict[str, Any]:
        """Refused with `3008` while the account has open positions or pending orders (the
        reference's "account has open trades"; unverified for REST)."""
        login = _login(call)
        self._user(login)
        if any(p.login == login for p in self.books.positions.values()) or any(
            o.login == login for o in self.books.orders.values()
        ):
            raise Refusal(rc.USR_HAS_TRADES)
        del self.books.users[login]
        self.save()
        return {}

    def user_get(self, call: Call) -> dict[str, Any]:
        return {"answer": self._user_record(self._user(_login(call)))}

    def _select_users(self, call: Call) -> list[User]:
        logins, groups = call.params.get("login"), call.params.get("group")
        if isinstance(call.body, dict):
            logins = ",".join(map(str, call.body.get("login", []))) or logins
            groups = ",".join(map(str, call.body.get("group", []))) or groups
        if bool(logins) == bool(groups):
            raise Refusal(rc.ERR_PARAMS)
        if logins:
            wanted = {_int(x) for x in logins.split(",") if x.strip()}
            return [u for login, u in sorted(self.books.users.items()) if login in wanted]
        assert groups is not None
        return [u for _, u in sorted(self.books.users.items()) if group_matches(u.group, groups)]

    def user_get_batch(self, call: Call) -> dict[str, Any]:
        return {"answer": [self._user_record(u) for u in self._select_users(call)]}

    def user_logins(self, call: Call) -> dict[str, Any]:
        groups = call.params.get("group")
        if not groups:
            raise Refusal(rc.ERR_PARAMS)
        return {
            "answer": [
                str(login)
                for login, u in sorted(self.books.users.items())
                if group_matches(u.group, groups)
            ]
        }

    def _password_of(self, user: User, kind: str) -> str:
        if kind not in ("main", "investor"):
            raise Refusal(rc.ERR_PARAMS)
        return user.password_main if kind == "main" else user.password_investor

    def user_check_password(self, call: Call) -> dict[str, Any]:
        user = self._user(_login(call))
        if self._password_of(user, (call.field("Type") or "main").lower()) != call.required(
            "Password"
        ):
            raise Refusal(rc.USR_INVALID_PASSWORD)
        return {}

    def user_change_password(self, call: Call) -> dict[str, Any]:
        user = self._user(_login(call))
        kind = (call.field("Type") or "main").lower()
        self._password_of(user, kind)
        password = call.required("Password")
        if not strong_enough(password):
            raise Refusal(rc.USR_INVALID_PASSWORD)
        if kind == "main":
            user.password_main = password
        else:
            user.password_investor = password
        self.save()
        return {}

    def user_account_get(self, call: Call) -> dict[str, Any]:
        login = _login(call)
        state = self.engine.account(login)
        return {"answer": account_record(login, state)}

    def user_account_get_batch(self, call: Call) -> dict[str, Any]:
        users = self._select_users(call)
        return {"answer": [account_record(u.login, self.engine.account(u.login)) for u in users]}

    # -- money -----------------------------------------------------------------------------

    def trade_balance(self, call: Call) -> dict[str, Any]:
        login = _login(call)
        action = _int(call.required("type"))
        try:
            amount = Decimal(call.required("balance"))
        except InvalidOperation:
            raise Refusal(rc.ERR_PARAMS) from None
        if action not in CASH_ACTIONS or not amount.is_finite() or amount == 0:
            raise Refusal(rc.ERR_PARAMS)
        if abs(amount) > MAX_BALANCE_OPERATION:
            raise Refusal(rc.TRADE_MAX_MONEY)
        self._user(login)
        check_margin = call.params.get("check_margin", "1") != "0"
        # The stop-out deals the money taken causes are booked too; the answer names the deal.
        deal, _ = self.engine.balance_operation(
            login, action, amount, call.params.get("comment") or "", check_margin=check_margin
        )
        self.save()
        return {"answer": {"Ticket": str(deal.deal)}}

    def deal_get(self, call: Call) -> dict[str, Any]:
        deal = self.books.deal(_int(call.required("ticket")))
        if deal is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": deal_record(deal, self.clock)}

    def _deals_of(self, call: Call, logins: set[int]) -> list[Deal]:
        """The deals of `logins` in the call's window, by ticket."""
        since, until = self.window(call)
        found = [
            d
            for login in logins
            for d in self.books.deals_of(login)
            if since <= d.time_msc <= until
        ]
        return sorted(found, key=lambda d: d.deal) if len(logins) > 1 else found

    def deal_get_total(self, call: Call) -> dict[str, Any]:
        return {"answer": {"total": str(len(self._deals_of(call, {_login(call)})))}}

    def deal_get_page(self, call: Call) -> dict[str, Any]:
        deals = self._deals_of(call, {_login(call)})
        return {"answer": EncodedList(self.encoded(d) for d in deals[page(call)])}

    def deal_get_batch(self, call: Call) -> dict[str, Any]:
        chosen = [k for k in ("login", "group", "ticket") if call.params.get(k)]
        if len(chosen) != 1:
            raise Refusal(rc.ERR_PARAMS)
        if chosen == ["ticket"]:
            tickets = {_int(x) for x in call.params["ticket"].split(",") if x.strip()}
            found = [d for d in map(self.books.deal, sorted(tickets)) if d is not None]
        else:
            if chosen == ["login"]:
                logins = {_int(x) for x in call.params["login"].split(",") if x.strip()}
            else:
                logins = {
                    u.login
                    for u in self.books.users.values()
                    if group_matches(u.group, call.params["group"])
                }
            found = self._deals_of(call, logins)
        return {"answer": EncodedList(self.encoded(d) for d in found[:MAX_BATCH])}

    def deal_update(self, call: Call) -> dict[str, Any]:
        """A dealer's correction (reference 3.4: POST the deal record, `Deal` naming it): the
        fields in `DEAL_CORRECTIONS` the record holds replace the deal's; the answer is the
        deal as stored. Like MT5's, it edits the record only (no balance is recomputed)."""
        record = self._record(call)
        deal = self.books.deal(_int(str(record.get("Deal", "0"))))
        if deal is None:
            raise Refusal(rc.ERR_NOTFOUND)
        changes: dict[str, str] = {}
        for field, attribute in DEAL_CORRECTIONS.items():
            if field not in record:
                continue
            value = str(record[field])
            if field != "Comment":
                try:
                    if not Decimal(value).is_finite():
                        raise Refusal(rc.ERR_PARAMS)
                except InvalidOperation:
                    raise Refusal(rc.ERR_PARAMS) from None
            elif len(value) > MAX_DEAL_COMMENT:
                raise Refusal(rc.ERR_PARAMS)
            changes[attribute] = value
        for attribute, value in changes.items():
            setattr(deal, attribute, value)
        self._encoded.pop(deal.deal, None)
        # A deal changed in place is no journal change set: the next commit snapshots.
        self.books.replaced = True
        self.save()
        return {"answer": deal_record(deal, self.clock)}

    # -- configuration: groups -------------------------------------------------------------

    def _record(self, call: Call) -> dict[str, Any]:
        """The POSTed config record."""
        if not isinstance(call.body, dict):
            raise Refusal(rc.ERR_PARAMS)
        return call.body

    def _group(self, call: Call) -> dict[str, Any]:
        group = self.books.groups.get(call.required("Group"))
        if group is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return group

    def _in_use(self, group: str) -> bool:
        return any(u.group == group for u in self.books.users.values())

    def store_group(self, group: dict[str, Any]) -> None:
        """Keep a checked group config (new, or replacing the one of its name). A group with
        accounts keeps its currency (`2003`): their balances are in it."""
        name = group["Group"]
        old = self.books.groups.get(name)
        if old is not None and old["Currency"] != group["Currency"] and self._in_use(name):
            raise Refusal(rc.CFG_NOT_EMPTY)
        self.books.groups[name] = group

    def group_add(self, call: Call) -> dict[str, Any]:
        """Create or replace a group from the POSTed config (fields not given: defaults)."""
        group = group_from_record(self._record(call), self.engine.catalogue)
        self.store_group(group)
        self.save()
        return {"answer": _stringify(group)}

    def group_update(self, call: Call) -> dict[str, Any]:
        """Change an existing group (`13` if none): the POSTed fields over its config."""
        record = self._record(call)
        existing = self.books.groups.get(str(record.get("Group", "")))
        if existing is None:
            raise Refusal(rc.ERR_NOTFOUND)
        group = group_from_record({**existing, **record}, self.engine.catalogue)
        self.store_group(group)
        self.save()
        return {"answer": _stringify(group)}

    def group_delete(self, call: Call) -> dict[str, Any]:
        """Refused with `2003` (MT_RET_CFG_NOT_EMPTY) while accounts are in the group."""
        name = self._group(call)["Group"]
        if self._in_use(name):
            raise Refusal(rc.CFG_NOT_EMPTY)
        del self.books.groups[name]
        self.save()
        return {}

    def group_get(self, call: Call) -> dict[str, Any]:
        return {"answer": _stringify(self._group(call))}

    def group_next(self, call: Call) -> dict[str, Any]:
        index = _int(call.required("index"))
        groups = list(self.books.groups.values())
        if not 0 <= index < len(groups):
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": _stringify(groups[index])}

    # -- configuration: symbols ------------------------------------------------------------

    def _keep_symbols(self) -> None:
        """The books hold every symbol's record once any was configured, so a restart (or a
        deletion of a built-in one) keeps exactly this catalogue."""
        self.books.symbols = {n: symbol_record(s) for n, s in self.engine.catalogue.items()}

    def add_symbol(self, record: Any) -> Symbol:
        """Add a symbol or replace the one of its name; `3` if the record is invalid or a
        group's overrides would make it so. The engine trades it at once."""
        symbol = symbol_from_record(record)
        for group in self.books.groups.values():
            symbol_for_group(symbol, group)
        self.engine.catalogue[symbol.name] = symbol
        self._keep_symbols()
        return symbol

    def symbol_add(self, call: Call) -> dict[str, Any]:
        symbol = self.add_symbol(self._record(call))
        self.save()
        return {"answer": symbol_record(symbol)}

    def symbol_delete(self, call: Call) -> dict[str, Any]:
        """Refused with `2003` while positions or pending orders are on the symbol."""
        name = self.engine.symbol(call.required("Symbol")).name
        if any(p.symbol == name for p in self.books.positions.values()) or any(
            o.symbol == name for o in self.books.orders.values()
        ):
            raise Refusal(rc.CFG_NOT_EMPTY)
        del self.engine.catalogue[name]
        self.books.quotes.pop(name, None)
        self._keep_symbols()
        self.save()
        return {}

    def symbol_get(self, call: Call) -> dict[str, Any]:
        return {"answer": symbol_record(self.engine.symbol(call.required("Symbol")))}

    def symbol_get_group(self, call: Call) -> dict[str, Any]:
        """The symbol as the group's accounts trade it: its `Symbols[]` overrides applied."""
        symbol = self.engine.symbol(call.required("Symbol"))
        return {"answer": symbol_record(symbol_for_group(symbol, self._group(call)))}

    def symbol_next(self, call: Call) -> dict[str, Any]:
        index = _int(call.required("index"))
        symbols = list(self.engine.catalogue.values())
        if not 0 <= index < len(symbols):
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": symbol_record(symbols[index])}
