"""The return codes this server answers with, and their texts as MT5 prints them."""

from __future__ import annotations

OK = 0
ERR_PARAMS = 3
ERR_PERMISSIONS = 8
ERR_FREQUENT = 12
ERR_NOTFOUND = 13
INCOMPLETE = 14  # a history answer cut at its size limit
AUTH_ACCOUNT_INVALID = 1001
AUTH_MANAGER_IPBLOCK = 1012
AUTH_SERVER_BUSY = 1018
CFG_NOT_EMPTY = 2003
USR_LOGIN_EXIST = 3004
USR_INVALID_PASSWORD = 3006
USR_HAS_TRADES = 3008
USR_DIFFERENT_CURRENCY = 3010
TRADE_MAX_MONEY = 4005
REQUEST_INVALID = 10013
REQUEST_INVALID_VOLUME = 10014
REQUEST_DONE = 10009
REQUEST_INVALID_PRICE = 10015
REQUEST_INVALID_STOPS = 10016
REQUEST_TRADE_DISABLED = 10017
REQUEST_MARKET_CLOSED = 10018
REQUEST_NO_MONEY = 10019
REQUEST_POSITION_CLOSED = 10036
REQUEST_INVALID_CLOSE_VOLUME = 10038
REQUEST_LIMIT_ORDERS = 10033
REQUEST_LIMIT_POSITIONS = 10040
REQUEST_LONG_ONLY = 10042
REQUEST_SHORT_ONLY = 10043
REQUEST_CLOSE_ONLY = 10044
REQUEST_PROHIBITED_BY_FIFO = 10045
REQUEST_HEDGE_PROHIBITED = 10046
API_NOTSUPPORTED = 12002

TEXTS = {
    0: "Done",
    1: "OK, no data",
    2: "Common error",
    3: "Invalid parameters",
    4: "Invalid data",
    7: "Network error",
    8: "Not enough permissions",
    9: "Operation timeout",
    10: "No connection",
    11: "Service is not available",
    12: "Too frequent requests",
    13: "Not found",
    14: "Operation has not been completed",
    15: "Server shutdown in progress",
    17: "Duplicate data",
    1001: "Invalid account",
    1012: "IP address not allowed for manager",
    1018: "Server is busy",
    2003: "Configuration in use",
    3004: "Account already exists",
    3006: "Invalid account password",
    3008: "Account has open trades",
    3010: "Moving account to a group with another currency",
    4005: "Money limit reached",
    10009: "Request executed",
    10013: "Invalid request",
    10014: "Invalid volume",
    10015: "Invalid price",
    10016: "Invalid stops",
    10017: "Trade disabled",
    10018: "Market closed",
    10019: "Not enough money",
    10033: "Orders limit reached",
    10036: "Position doesn't exist",
    10042: "Only long positions are allowed",
    10043: "Only short positions are allowed",
    10044: "Only position closing is allowed",
    10045: "Close prohibited by FIFO rule",
    10046: "Hedging prohibited",
    10038: "Close volume exceeds position volume",
    10040: "Positions limit reached",
    10024: "Too many trade requests",
    12002: "Command not supported",
}


def retcode_text(code: int) -> str:
    return f"{code} {TEXTS.get(code, 'Error')}"


class Refusal(Exception):
    """A command answered with a non-zero retcode; nothing was changed."""

    def __init__(self, code: int) -> None:
        super().__init__(retcode_text(code))
        self.code = code
