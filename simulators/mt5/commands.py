"""The Web API commands: each reads its parameters, changes the books, returns the envelope."""

from __future__ import annotations

import fnmatch
import json
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from simulators.mt5 import retcodes as rc
from simulators.mt5.engine import AccountState, Engine
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import RIGHTS_MAX, RIGHTS_NEW_ACCOUNT, Books, Deal, User

MAX_BALANCE_OPERATION = Decimal(1_000_000_000)
CASH_ACTIONS = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20}
CREDIT = 3
MAX_COMMENT = 31
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


def user_record(user: User) -> dict[str, str]:
    balance, credit = user.money
    return {
        "Login": str(user.login),
        "Group": user.group,
        "CertSerialNumber": "0",
        "Rights": str(user.rights),
        "Registration": str(user.registration),
        "LastAccess": str(user.registration),
        "LastPassChange": str(user.registration),
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
        "Agent": "0",
        "Balance": f"{balance:.2f}",
        "Credit": f"{credit:.2f}",
        "InterestRate": "0.00",
        "CommissionDaily": f"{Decimal(user.commission_daily):.2f}",
        "CommissionMonthly": "0.00",
        "BalancePrevDay": f"{balance:.2f}",
        "BalancePrevMonth": f"{balance:.2f}",
        "EquityPrevDay": f"{balance + credit:.2f}",
        "EquityPrevMonth": f"{balance + credit:.2f}",
    }


def deal_record(deal: Deal) -> dict[str, str]:
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
        "Time": str(deal.time_msc // 1000),
        "TimeMsc": str(deal.time_msc),
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
        "Fee": "0.00",
        "RateProfit": deal.rate_profit,
        "RateMargin": deal.rate_margin,
        "ExpertID": "0",
        "PositionID": str(deal.position_id),
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


def _stringify(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, list) else str(v) for k, v in config.items()}


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
        self.engine = Engine(books)
        self._save = save
        # Deals never change once booked: encode each record once (history pages are large).
        self._encoded: dict[int, str] = {}

    def save(self) -> None:
        self._save(self.books)

    def encoded(self, deal: Deal) -> str:
        """The deal's record as JSON, encoded once."""
        text = self._encoded.get(deal.deal)
        if text is None:
            text = self._encoded[deal.deal] = json.dumps(deal_record(deal))
        return text

    def table(self) -> dict[str, Callable[[Call], dict[str, Any]]]:
        return {
            "test/access": lambda call: {},
            "time/server": self.time_server,
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
            "group/get": self.group_get,
            "group/total": lambda call: {"answer": {"total": str(len(self.books.groups))}},
            "group/next": self.group_next,
        }

    # -- service ---------------------------------------------------------------------------

    def time_server(self, call: Call) -> dict[str, Any]:
        now = int(time.time())
        text = datetime.fromtimestamp(now, UTC).strftime("%Y.%m.%d %H:%M:%S")
        return {"answer": {"Time": f"{now} {text}"}}

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

    def user_add(self, call: Call) -> dict[str, Any]:
        group = call.required("Group")
        name = call.required("Name")
        leverage = _int(call.required("Leverage"))
        main, investor = call.required("PassMain"), call.required("PassInvestor")
        if leverage <= 0:
            raise Refusal(rc.ERR_PARAMS)
        if group not in self.books.groups:
            raise Refusal(rc.ERR_PERMISSIONS)
        if not (strong_enough(main) and strong_enough(investor)):
            raise Refusal(rc.USR_INVALID_PASSWORD)
        requested = _int(call.field("Login") or "0")
        if requested < 0:
            raise Refusal(rc.ERR_PARAMS)
        rights = _rights(call.field("Rights"))
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
            email=call.field("Email") or "",
            country=call.field("Country") or "",
            city=call.field("City") or "",
            address=call.field("Address") or "",
            phone=call.field("Phone") or "",
            comment=call.field("Comment") or "",
            rights=RIGHTS_NEW_ACCOUNT if rights is None else rights,
        )
        self.books.users[login] = user
        self.save()
        return {"login": str(login), "answer": user_record(user)}

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
        if leverage is not None and _int(leverage) <= 0:
            raise Refusal(rc.ERR_PARAMS)
        rights = _rights(call.field("Rights"))
        texts = {
            attribute: call.field(name)
            for attribute, name in (
                ("name", "Name"),
                ("email", "Email"),
                ("country", "Country"),
                ("city", "City"),
                ("address", "Address"),
                ("phone", "Phone"),
                ("comment", "Comment"),
            )
        }
        if texts["name"] == "":
            raise Refusal(rc.ERR_PARAMS)  # a record without a name is invalid, as in user/add
        if group is not None:
            user.group = group
        if leverage is not None:
            user.leverage = _int(leverage)
        if rights is not None:
            user.rights = rights
        for attribute, value in texts.items():
            if value is not None:
                setattr(user, attribute, value)
        self.save()
        return {"answer": user_record(user)}

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
        return {"answer": user_record(self._user(_login(call)))}

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
        return {"answer": [user_record(u) for u in self._select_users(call)]}

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
        user = self._user(login)
        amount = self.books.round_money(login, amount)
        balance, credit = user.money
        check_margin = call.params.get("check_margin", "1") != "0"
        if action == CREDIT:
            if credit + amount < 0:
                raise Refusal(rc.REQUEST_NO_MONEY)
            user.credit = str(credit + amount)
        else:
            free_margin = self.engine.account(login).margin_free
            if amount < 0 and (balance + amount < 0 or (check_margin and free_margin + amount < 0)):
                raise Refusal(rc.REQUEST_NO_MONEY)
            user.balance = str(balance + amount)
        deal = Deal(
            deal=self.books.new_ticket(),
            login=login,
            action=action,
            profit=f"{amount:.2f}",
            comment=(call.params.get("comment") or "")[:MAX_COMMENT],
            time_msc=int(time.time() * 1000),
        )
        self.books.add_deal(deal)
        self.save()
        return {"answer": {"Ticket": str(deal.deal)}}

    def deal_get(self, call: Call) -> dict[str, Any]:
        deal = self.books.deal(_int(call.required("ticket")))
        if deal is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": deal_record(deal)}

    def _deals_of(self, call: Call, logins: set[int]) -> list[Deal]:
        since, until = _int(call.required("from")), _int(call.required("to"))
        found = [
            d
            for login in logins
            for d in self.books.deals_of(login)
            if since <= d.time_msc // 1000 <= until
        ]
        return sorted(found, key=lambda d: d.deal) if len(logins) > 1 else found

    def deal_get_total(self, call: Call) -> dict[str, Any]:
        return {"answer": {"total": str(len(self._deals_of(call, {_login(call)})))}}

    def deal_get_page(self, call: Call) -> dict[str, Any]:
        deals = self._deals_of(call, {_login(call)})
        offset, total = _int(call.params.get("offset", "0")), _int(call.params.get("total", "0"))
        if offset < 0 or total < 0:
            raise Refusal(rc.ERR_PARAMS)
        return {"answer": EncodedList(self.encoded(d) for d in deals[offset : offset + total])}

    def deal_get_batch(self, call: Call) -> dict[str, Any]:
        chosen = [k for k in ("login", "group", "ticket") if call.params.get(k)]
        if len(chosen) != 1:
            raise Refusal(rc.ERR_PARAMS)
        if chosen == ["ticket"]:
            tickets = {_int(x) for x in call.params["ticket"].split(",") if x.strip()}
            found = [self.books.deal(t) for t in sorted(tickets)]
            return {"answer": [deal_record(d) for d in found if d is not None]}
        if chosen == ["login"]:
            logins = {_int(x) for x in call.params["login"].split(",") if x.strip()}
        else:
            logins = {
                u.login
                for u in self.books.users.values()
                if group_matches(u.group, call.params["group"])
            }
        return {"answer": [deal_record(d) for d in self._deals_of(call, logins)]}

    # -- configuration ---------------------------------------------------------------------

    def group_get(self, call: Call) -> dict[str, Any]:
        group = self.books.groups.get(call.required("group"))
        if group is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": _stringify(group)}

    def group_next(self, call: Call) -> dict[str, Any]:
        index = _int(call.required("index"))
        groups = list(self.books.groups.values())
        if not 0 <= index < len(groups):
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": _stringify(groups[index])}
