"""Server configuration as the Web API carries it: symbol and group records, the checks a server
makes before storing one, per-group symbol overrides, and the config file read at start.

A record's values may come as JSON strings or numbers; stored records are normalised (numbers
the engine reads as `int(...)` are ints, money and rates are decimal strings) and answered with
every value as a string. A bad record is `3 Invalid parameters` and changes nothing.

Symbol record shapes chosen here (the reference names the fields, not their JSON form):
`MarginRateInitial` and `MarginRateMaintenance` are lists of 8 decimal strings indexed by order
type (0 buy, 1 sell, 2 buy limit, 3 sell limit, 4 buy stop, 5 sell stop, 6 buy stop limit,
7 sell stop limit); `VolumeMin|Max|Step` are in 1/10000 lot and `...Ext` in 1/100000000 lot (a
record may give either; both must agree); `Bid` (simulator only) is the price a symbol starts at
before any quote.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from simulators.mt5 import retcodes as rc
from simulators.mt5.catalogue import (
    CATALOGUE,
    CFD,
    CFD_INDEX,
    CFD_LEVERAGE,
    EXCH_STOCKS,
    FOREX,
    FOREX_NO_LEVERAGE,
    FUTURES,
    Symbol,
)
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import GROUP_DEFAULTS

ORDER_TYPES = 8
EXT = 10_000  # ...Ext volume units per Volume unit
# Calculation modes the engine computes margin and profit for; a symbol with another is refused.
CALC_MODES = frozenset(
    {FOREX, FUTURES, CFD, CFD_INDEX, CFD_LEVERAGE, FOREX_NO_LEVERAGE, EXCH_STOCKS}
)
# Deposit, profit and margin currencies a record may name: ISO 4217 codes brokers list, metals
# and the crypto units MT5 servers commonly carry. A symbol's base may be any short code (a
# stock's ticker).
KNOWN_CURRENCIES = frozenset(
    "AED AUD BGN BRL CAD CHF CLP CNH CNY CZK DKK EUR GBP HKD HUF IDR ILS INR JPY KES KRW KWD MXN "
    "MYR NGN NOK NZD PHP PLN QAR RON RUB SAR SEK SGD THB TRY TWD USD ZAR "
    "XAU XAG XPT XPD BTC ETH USDT".split()
)
# Text limits (characters), from the sizes of MT5's configuration strings.
MAX_SYMBOL = 31
MAX_PATH = 127
MAX_GROUP = 63
MAX_COMPANY = 127
MAX_CURRENCY = 15
MAX_LEVERAGE = 10_000
MAX_VOLUME = 10**12  # 1/10000 lot: 100 million lots

# -- value checks: each reads one JSON value or refuses it with `3` ----------------------------


def _refuse() -> Refusal:
    return Refusal(rc.ERR_PARAMS)


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def read(value: Any) -> int:
        if isinstance(value, bool):
            raise _refuse()
        try:
            number = int(str(value).strip())
        except ValueError:
            raise _refuse() from None
        if number < low or (high is not None and number > high):
            raise _refuse()
        return number

    return read


def decimal(low: Decimal | None = None, *, positive: bool = False) -> Callable[[Any], Decimal]:
    def read(value: Any) -> Decimal:
        if isinstance(value, bool | list | dict):
            raise _refuse()
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise _refuse() from None
        if not number.is_finite() or (low is not None and number < low):
            raise _refuse()
        if positive and number <= 0:
            raise _refuse()
        return number

    return read


def text(longest: int, *, required: bool = True) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _refuse()
        string = str(value)
        if len(string) > longest or (required and not string.strip()):
            raise _refuse()
        return string

    return read


def currency(value: Any) -> str:
    if str(value) not in KNOWN_CURRENCIES:
        raise _refuse()
    return str(value)


def _rates(value: Any) -> tuple[Decimal, ...]:
    if not isinstance(value, list) or len(value) != ORDER_TYPES:
        raise _refuse()
    return tuple(decimal(Decimal(0))(v) for v in value)


ZERO = Decimal(0)
SYMBOL_FIELDS: dict[str, Callable[[Any], Any]] = {
    "Symbol": text(MAX_SYMBOL),
    "Path": text(MAX_PATH),
    "CurrencyBase": text(MAX_CURRENCY),
    "CurrencyProfit": currency,
    "CurrencyMargin": currency,
    "Digits": integer(0, 8),
    "Bid": decimal(ZERO),
    "Spread": integer(0, 100_000),
    "TickSize": decimal(ZERO),  # 0: one point
    "TickValue": decimal(ZERO),  # 0: tick size x contract size
    "ContractSize": decimal(positive=True),
    "CalcMode": integer(0),
    "TradeMode": integer(0, 4),
    "VolumeMin": integer(1, MAX_VOLUME),
    "VolumeMax": integer(1, MAX_VOLUME),
    "VolumeStep": integer(1, MAX_VOLUME),
    "VolumeMinExt": integer(1, MAX_VOLUME * EXT),
    "VolumeMaxExt": integer(1, MAX_VOLUME * EXT),
    "VolumeStepExt": integer(1, MAX_VOLUME * EXT),
    "MarginFlags": integer(0, 2**32 - 1),
    "MarginInitial": decimal(ZERO),
    "MarginMaintenance": decimal(ZERO),
    "MarginRateInitial": _rates,
    "MarginRateMaintenance": _rates,
    "MarginHedged": decimal(ZERO),
    "SwapMode": integer(0, 9),
    "SwapLong": decimal(),
    "SwapShort": decimal(),
    "Swap3Day": integer(0, 6),
}
# What a group's `Symbols[]` entry may change for the symbols its `Path` covers; `SpreadDiff`
# (points added to the symbol's spread) is the group form of `Spread`.
OVERRIDABLE = frozenset(
    {
        "TradeMode",
        "VolumeMin",
        "VolumeMax",
        "VolumeStep",
        "VolumeMinExt",
        "VolumeMaxExt",
        "VolumeStepExt",
        "MarginFlags",
        "MarginInitial",
        "MarginMaintenance",
        "MarginRateInitial",
        "MarginRateMaintenance",
        "MarginHedged",
        "SwapMode",
        "SwapLong",
        "SwapShort",
        "Swap3Day",
    }
)
SPREAD_DIFF = "SpreadDiff"
DEFAULT = "default"  # an override value that keeps the symbol's own setting


def _field(record: dict[str, Any], name: str, default: Any = None) -> Any:
    """The record's `name`, checked; `default` when absent (no default: a required field)."""
    value = record.get(name)
    if value is None:
        if default is None:
            raise _refuse()  # a required field
        return default
    return SYMBOL_FIELDS[name](value)


def _volume(record: dict[str, Any], name: str, default: int) -> int:
    """`name` in 1/10000 lot from the record's `name` or `name`Ext; both given must agree."""
    plain = record.get(name)
    ext = record.get(name + "Ext")
    if ext is not None:
        precise = _field(record, name + "Ext")
        if precise % EXT or (plain is not None and _field(record, name) * EXT != precise):
            raise _refuse()
        return int(precise // EXT)
    return int(_field(record, name, default))


def symbol_from_record(record: dict[str, Any]) -> Symbol:
    """The symbol a Web API record describes; `3` when a field is missing or out of range.

    Required: `Symbol`, `CurrencyBase`, `CurrencyProfit`. Defaults as a new symbol on an MT5
    server: `Path` = the name, `CurrencyMargin` = the base, 5 digits, contract 100000, Forex
    mode; the rest as `catalogue.Symbol` has them."""
    if not isinstance(record, dict):
        raise _refuse()
    name = _field(record, "Symbol")
    base = _field(record, "CurrencyBase")
    calc_mode = _field(record, "CalcMode", FOREX)
    if calc_mode not in CALC_MODES:
        raise _refuse()
    volume_min = _volume(record, "VolumeMin", Symbol.volume_min)
    volume_max = _volume(record, "VolumeMax", Symbol.volume_max)
    if volume_max < volume_min:
        raise _refuse()
    initial = _field(record, "MarginRateInitial", plain_rates(Decimal(1)))
    maintenance = _field(record, "MarginRateMaintenance", initial)
    # One rate for buys and sells and none for pending orders is the symbol's plain margin rate
    # (no per-type table): what the engine charges when the table is empty.
    uniform = initial == plain_rates(initial[0])
    tick_size = _field(record, "TickSize", ZERO)
    tick_value = _field(record, "TickValue", ZERO)
    hedged = record.get("MarginHedged")
    return Symbol(
        name=name,
        path=_field(record, "Path", name),
        calc_mode=calc_mode,
        base=base,
        profit=_field(record, "CurrencyProfit"),
        margin=_field(record, "CurrencyMargin", base if base in KNOWN_CURRENCIES else None),
        contract_size=_field(record, "ContractSize", Decimal(100_000)),
        digits=_field(record, "Digits", 5),
        bid=_field(record, "Bid", ZERO),
        spread_points=_field(record, "Spread", 0),
        tick_size=tick_size or None,
        tick_value=tick_value or None,
        margin_initial=_field(record, "MarginInitial", ZERO),
        margin_rate=initial[0],
        margin_hedged=None if hedged is None else _field(record, "MarginHedged"),
        swap_mode=_field(record, "SwapMode", Symbol.swap_mode),
        swap_long=_field(record, "SwapLong", ZERO),
        swap_short=_field(record, "SwapShort", ZERO),
        swap_3day=_field(record, "Swap3Day", Symbol.swap_3day),
        margin_maintenance=_field(record, "MarginMaintenance", ZERO),
        margin_rates_initial=() if uniform else initial,
        margin_rates_maintenance=() if maintenance == initial else maintenance,
        margin_flags=_field(record, "MarginFlags", 0),
        volume_min=volume_min,
        volume_max=volume_max,
        volume_step=_volume(record, "VolumeStep", Symbol.volume_step),
        trade_mode=_field(record, "TradeMode", Symbol.trade_mode),
    )


def plain_rates(rate: Decimal) -> tuple[Decimal, ...]:
    """The per-order-type rates of a symbol without a table: `rate` for buys and sells, pending
    orders charged nothing."""
    return (rate, rate) + (ZERO,) * (ORDER_TYPES - 2)


def symbol_record(symbol: Symbol) -> dict[str, Any]:
    """The Web API record of a symbol: every field it has, values as strings."""
    tick_size, tick_value = symbol.tick()
    initial = symbol.margin_rates_initial or plain_rates(symbol.margin_rate)
    maintenance = symbol.margin_rates_maintenance or initial
    return {
        "Symbol": symbol.name,
        "Path": symbol.path,
        "CurrencyBase": symbol.base,
        "CurrencyProfit": symbol.profit,
        "CurrencyMargin": symbol.margin,
        "Digits": str(symbol.digits),
        "Point": str(symbol.point),
        "Bid": str(symbol.bid),
        "TickSize": str(tick_size),
        "TickValue": str(tick_value),
        "ContractSize": str(symbol.contract_size),
        "CalcMode": str(symbol.calc_mode),
        "TradeMode": str(symbol.trade_mode),
        "ExecMode": "2",  # market execution: the only mode this server has
        "Spread": str(symbol.spread_points),
        "VolumeMin": str(symbol.volume_min),
        "VolumeMax": str(symbol.volume_max),
        "VolumeStep": str(symbol.volume_step),
        "VolumeMinExt": str(symbol.volume_min * EXT),
        "VolumeMaxExt": str(symbol.volume_max * EXT),
        "VolumeStepExt": str(symbol.volume_step * EXT),
        "MarginFlags": str(symbol.margin_flags),
        "MarginInitial": str(symbol.margin_initial),
        "MarginMaintenance": str(symbol.margin_maintenance),
        "MarginRateInitial": [str(r) for r in initial],
        "MarginRateMaintenance": [str(r) for r in maintenance],
        "MarginHedged": str(symbol.hedged_units),
        "SwapMode": str(symbol.swap_mode),
        "SwapLong": str(symbol.swap_long),
        "SwapShort": str(symbol.swap_short),
        "Swap3Day": str(symbol.swap_3day),
    }


def catalogue_of(records: dict[str, dict[str, Any]]) -> dict[str, Symbol]:
    """The symbols the books hold (`Books.symbols`, every symbol once any was configured), or a
    copy of the built-in catalogue when they hold none; a copy, so changes stay in one server."""
    if not records:
        return dict(CATALOGUE)
    return {name: symbol_from_record(record) for name, record in records.items()}


# -- per-group symbol overrides ------------------------------------------------------------


def _covers(entry: dict[str, Any], symbol: Symbol) -> bool:
    """A group's `Symbols[]` entry covers a symbol whose path (or name) its `Path` mask matches."""
    mask = str(entry.get("Path", "")).lower()
    return fnmatch.fnmatchcase(symbol.path.lower(), mask) or symbol.name.lower() == mask


def _apply(record: dict[str, Any], entry: dict[str, Any]) -> None:
    for key, value in entry.items():
        if value == DEFAULT:
            continue
        if key == SPREAD_DIFF:
            record["Spread"] = str(max(0, int(record["Spread"]) + integer(-100_000)(value)))
        elif key in OVERRIDABLE:
            # A volume given in one unit replaces the symbol's value in both.
            twin = key[:-3] if key.endswith("Ext") else key + "Ext"
            record.pop(twin, None)
            record[key] = value


def symbol_for_group(symbol: Symbol, group: dict[str, Any]) -> Symbol:
    """The symbol as accounts of `group` trade it: the group's `Symbols[]` entries covering it
    applied in list order (a later entry overrides an earlier one's fields)."""
    entries = [e for e in group.get("Symbols") or [] if _covers(e, symbol)]
    if not entries:
        return symbol
    return _overridden(symbol, json.dumps(entries, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _overridden(symbol: Symbol, entries: str) -> Symbol:
    """Cached: the engine asks for a symbol on every margin and profit figure."""
    record = symbol_record(symbol)
    for entry in json.loads(entries):
        _apply(record, entry)
    return symbol_from_record(record)


def _check_override(entry: Any, catalogue: dict[str, Symbol]) -> dict[str, Any]:
    """One `Symbols[]` entry: a `Path` mask and overridable values, each checked alone and then
    on every symbol the mask covers now. Other keys are kept and not acted on."""
    if not isinstance(entry, dict):
        raise _refuse()
    text(MAX_PATH)(entry.get("Path"))
    for key, value in entry.items():
        if value == DEFAULT:
            continue
        if key == SPREAD_DIFF:
            integer(-100_000)(value)
        elif key in OVERRIDABLE:
            SYMBOL_FIELDS[key](value)
    group = {"Symbols": [entry]}
    for symbol in catalogue.values():
        symbol_for_group(symbol, group)
    return dict(entry)


# -- groups --------------------------------------------------------------------------------

FLAGS = integer(0, 2**64 - 1)
GROUP_FIELDS: dict[str, Callable[[Any], Any]] = {
    "Group": text(MAX_GROUP),
    "Server": text(16, required=False),
    "Company": text(MAX_COMPANY, required=False),
    "Currency": currency,
    "CurrencyDigits": integer(0, 8),
    "MarginMode": integer(0, 2),
    "MarginSOMode": integer(0, 1),
    "MarginCall": lambda v: str(decimal(ZERO)(v)),
    "MarginStopOut": lambda v: str(decimal(ZERO)(v)),
    "MarginFreeMode": integer(0, 3),
    "MarginFreeProfitMode": integer(0, 1),
    "MarginFlags": FLAGS,
    "TradeFlags": FLAGS,
    "PermissionsFlags": FLAGS,
    "AuthMode": integer(0, 3),
    "AuthPasswordMin": integer(8, 16),
    "DemoLeverage": integer(0, MAX_LEVERAGE),
    "DemoDeposit": lambda v: str(decimal(ZERO)(v)),
    "LimitHistory": integer(0, 6),
    "LimitOrders": integer(0),
    "LimitSymbols": integer(0),
    "LimitPositions": integer(0),
}
COMMISSION_FIELDS: dict[str, Callable[[Any], Any]] = {
    "Name": text(MAX_COMPANY, required=False),
    "Path": text(MAX_PATH),
    "Mode": integer(0, 2),
    "RangeMode": integer(0, 4),
    "ChargeMode": integer(0, 2),
    "EntryMode": integer(0, 2),
    "ActionMode": integer(0, 2),
    "ProfitMode": integer(0, 2),
    "ReasonMode": FLAGS,
}
TIER_FIELDS: dict[str, Callable[[Any], Any]] = {
    "Mode": integer(0, 7),
    "Type": integer(0, 1),
    "Value": lambda v: str(decimal()(v)),
    "Minimal": lambda v: str(decimal()(v)),
    "Maximal": lambda v: str(decimal()(v)),
    "RangeFrom": lambda v: str(decimal(ZERO)(v)),
    "RangeTo": lambda v: str(decimal(ZERO)(v)),
    "Currency": text(MAX_CURRENCY, required=False),
}


def _checked(record: Any, fields: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """The record with its known fields checked and normalised; other keys kept as given."""
    if not isinstance(record, dict):
        raise _refuse()
    return {k: fields[k](v) if k in fields else v for k, v in record.items()}


def _commission(rule: Any) -> dict[str, Any]:
    checked = _checked(rule, COMMISSION_FIELDS)
    tiers = checked.get("Tiers")
    if "Path" not in checked or not isinstance(tiers, list) or not tiers:
        raise _refuse()
    checked["Tiers"] = [_checked(tier, TIER_FIELDS) for tier in tiers]
    return checked


def group_from_record(record: Any, catalogue: dict[str, Symbol]) -> dict[str, Any]:
    """A group config as the server stores it: `Group` and `Currency` required, the rest
    defaulted (GROUP_DEFAULTS), commissions and symbol overrides checked; `3` when invalid."""
    checked = _checked(record, GROUP_FIELDS)
    if "Group" not in checked or "Currency" not in checked:
        raise _refuse()
    for key in ("Commissions", "Symbols"):
        if not isinstance(checked.get(key, []), list):
            raise _refuse()
    checked["Commissions"] = [_commission(r) for r in checked.get("Commissions", [])]
    checked["Symbols"] = [_check_override(e, catalogue) for e in checked.get("Symbols", [])]
    return {**GROUP_DEFAULTS, **checked}


# -- the config file -----------------------------------------------------------------------


def read_config_file(path: Path) -> tuple[list[Any], list[Any]]:
    """`{"groups": [group records], "symbols": [symbol records]}`: (groups, symbols)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    if isinstance(raw, dict):
        groups, symbols = raw.get("groups", []), raw.get("symbols", [])
        if isinstance(groups, list) and isinstance(symbols, list):
            return groups, symbols
    raise ValueError(f'{path}: expected {{"groups": [...], "symbols": [...]}}')
