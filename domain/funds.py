"""How client money moves between processors, wallets and MT5 accounts, as journal entries.

Money in motion always passes through the client's hold account `hold:<client>:<ccy>`: a
withdrawal or transfer first takes the money out of its source (wallet or MT5 account) into the
hold, then out of the hold to its destination (a processor, a wallet, an MT5 account). So at any
moment the books say where every unit is, even half-way through a saga, and each compensation
is the opposite entry of the step it undoes.

Held money reaches a wallet with `domain.wallets.release_hold`.

A deposit a processor reports first lands in `suspense:incoming:<ccy>` (received, not yet
checked), and only reaches the client once the checks pass.
"""

from __future__ import annotations

from domain.ledger import AccountKind, JournalEntry, account_code
from domain.money import Money
from domain.wallets import entry, hold_account, negated, require_positive, wallet


def mt5_mirror(server: str, login: int, currency: str) -> str:
    """The ledger's image of what BrokerFlow put on (or took off) an MT5 account."""
    return account_code(AccountKind.MT5_MIRROR, f"{server}-{login}", currency)


def incoming_suspense(currency: str) -> str:
    return account_code(AccountKind.SUSPENSE, "incoming", currency)


def psp_clearing(provider: str, currency: str) -> str:
    return account_code(AccountKind.PSP_CLEARING, provider, currency)


def receive_payment(key: str, provider: str, amount: Money) -> JournalEntry:
    """A processor reports money collected: its clearing balance (asset) rises, and the money
    waits in suspense until the deposit's checks have passed."""
    require_positive(amount)
    return entry(
        key,
        f"payment received via {provider}",
        (psp_clearing(provider, amount.currency), amount),
        (incoming_suspense(amount.currency), negated(amount)),
    )


def return_payment(key: str, provider: str, amount: Money) -> JournalEntry:
    """A rejected deposit goes back to the payer through its processor."""
    require_positive(amount)
    return entry(
        key,
        f"payment returned via {provider}",
        (incoming_suspense(amount.currency), amount),
        (psp_clearing(provider, amount.currency), negated(amount)),
    )


def accept_into_wallet(key: str, client: str, amount: Money) -> JournalEntry:
    """A checked deposit becomes the client's money in the wallet."""
    require_positive(amount)
    return entry(
        key,
        "deposit credited to wallet",
        (incoming_suspense(amount.currency), amount),
        (wallet(client, amount.currency), negated(amount)),
    )


def accept_in_transit(key: str, client: str, amount: Money) -> JournalEntry:
    """A checked deposit bound for an MT5 account: the client's money, held until MT5 has it."""
    require_positive(amount)
    return entry(
        key,
        "deposit in transit to MT5",
        (incoming_suspense(amount.currency), amount),
        (hold_account(client, amount.currency), negated(amount)),
    )


def into_mt5(key: str, client: str, server: str, login: int, amount: Money) -> JournalEntry:
    """MT5 has credited the account: the held money now sits on the MT5 account."""
    require_positive(amount)
    return entry(
        key,
        f"credited to MT5 {server}/{login}",
        (hold_account(client, amount.currency), amount),
        (mt5_mirror(server, login, amount.currency), negated(amount)),
    )


def out_of_mt5(key: str, client: str, server: str, login: int, amount: Money) -> JournalEntry:
    """MT5 has debited the account: the money is held for its destination."""
    require_positive(amount)
    return entry(
        key,
        f"debited from MT5 {server}/{login}",
        (mt5_mirror(server, login, amount.currency), amount),
        (hold_account(client, amount.currency), negated(amount)),
    )
