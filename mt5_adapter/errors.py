"""MT5 return codes as typed errors, each saying whether a retry can help.

`retryable`: the same request may succeed later (throttling, network, server busy).
`ambiguous`: the request may already have been applied (its answer was lost), so a write must be
looked up before it is sent again.
"""

from __future__ import annotations


class Mt5Error(Exception):
    """Any answer other than success. Unknown codes are not retried: guessing costs money."""

    retryable = False

    def __init__(self, retcode: int, message: str, command: str = "", *, ambiguous: bool = False):
        super().__init__(f"{command or 'MT5'}: {retcode} {message}".strip())
        self.retcode = retcode
        self.message = message
        self.command = command
        self.ambiguous = ambiguous


class Mt5TransientError(Mt5Error):
    """Throttled, busy, timed out or disconnected on the server side: back off and try again."""

    retryable = True


class Mt5ConnectionError(Mt5TransientError):
    """The HTTP exchange itself failed. `ambiguous` when the request had been sent."""

    def __init__(self, message: str, command: str = "", *, ambiguous: bool) -> None:
        super().__init__(0, message, command, ambiguous=ambiguous)


class Mt5AuthError(Mt5Error):
    """The manager cannot log in (password, IP, rights, API disabled): an operator must act."""


class Mt5InvalidRequest(Mt5Error):
    """The request itself is wrong; sending it again gives the same answer."""


class Mt5NotFound(Mt5Error):
    """No such login, ticket, group or symbol."""


class Mt5PermissionDenied(Mt5Error):
    """The manager lacks a right or access to the group: configuration, not chance."""


class Mt5LoginExists(Mt5Error):
    """`user/add` with a login MT5 already has (ours from an earlier attempt, or somebody's)."""


class Mt5InvalidPassword(Mt5Error):
    """A password MT5 refuses (complexity) or that does not match."""


class Mt5NotEnoughMoney(Mt5Error):
    """A withdrawal beyond balance, credit or free margin: a business outcome."""


class Mt5LimitExceeded(Mt5Error):
    """Over a server limit (money per operation, users, orders): not a matter of waiting."""


class Mt5GroupCurrencyMismatch(Mt5InvalidRequest):
    """`user/update` into a group whose deposit currency is not the account's (3010)."""


class Mt5HasOpenPositions(Mt5Error):
    """`user/delete` of an account with open trades (3008): close them first, then delete."""


class Mt5TradeDisabled(Mt5Error):
    """A trade request of an account whose trading is off or that may not connect (10017)."""


_TRANSIENT = {7, 9, 10, 11, 12, 15, 1018, 10004, 10012, 10020, 10021, 10024, 10031, 12003, 12004}
_AUTH = {3006} | set(range(1000, 1035))
_INVALID = {3, 4, 17, 3009, 3012, 10013, 10014, 10015, 10016, 10022, 10030, 10035, 12002}
_LIMITS = {3002, 3007, 3019, 4001, 4003, 4004, 4005, 10033, 10034, 10040}
_BY_CODE: dict[int, type[Mt5Error]] = {
    13: Mt5NotFound,
    8: Mt5PermissionDenied,
    3004: Mt5LoginExists,
    3013: Mt5LoginExists,
    3008: Mt5HasOpenPositions,
    3010: Mt5GroupCurrencyMismatch,
    10017: Mt5TradeDisabled,
    10019: Mt5NotEnoughMoney,
}


def error_for(retcode: int, text: str, command: str, *, during_auth: bool = False) -> Mt5Error:
    """The typed error for a non-zero retcode. 3006 is a bad manager password only during auth."""
    cls: type[Mt5Error]
    if retcode in _BY_CODE:
        cls = _BY_CODE[retcode]
    elif retcode == 3006:
        cls = Mt5AuthError if during_auth else Mt5InvalidPassword
    elif retcode in _TRANSIENT:
        cls = Mt5TransientError
    elif retcode in _AUTH:
        cls = Mt5AuthError
    elif retcode in _INVALID:
        cls = Mt5InvalidRequest
    elif retcode in _LIMITS:
        cls = Mt5LimitExceeded
    else:
        cls = Mt5Error
    return cls(retcode, text, command)
