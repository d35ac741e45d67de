"""The ledger's side of a day from its postings: what BrokerFlow's books say went onto MT5
accounts and through the processors (docs/ledger.md: accounts `mt5:<server>-<login>:<ccy>` and
`psp:<provider>:<ccy>`, entry keys `<reference>:<step>`, a reversal `<key>:reversal`; an IB
payout's `ib-payout:<payout id>`).

The sign of a mirror: the ledger **credits** an account's `mt5:` mirror when money goes onto the
MT5 account (`domain.funds.into_mt5`, an IB payout to MT5) and debits it when money comes off
(`domain.funds.out_of_mt5`), so the mirror's balance is minus what BrokerFlow put on the account.
A movement's `amount_minor` is money onto MT5: the posting's amount negated (`onto_mt5`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.reconciliation.records import Flow, LedgerMt5Movement, LedgerPspMovement

# The step of an entry on a processor's clearing account, and what it is at the processor.
PSP_STEPS: dict[str, Flow] = {
    "received": Flow.COLLECTION,
    "paid-out": Flow.PAYOUT,
    "returned": Flow.REFUND,
    "refund": Flow.REFUND,
    "chargeback": Flow.CHARGEBACK,
}

# The IB payouts' entry key prefix (activities.ib_management.mt5_payout_key).
IB_PAYOUT = "ib-payout"

# entry key, booked at, account code, signed minor units, currency
PostingRow = tuple[str, datetime, str, int, str]


def onto_mt5(mirror_posting_minor: int) -> int:
    """Money onto the MT5 account of a posting on its mirror (a credit of the mirror is money
    onto MT5); also a mirror's balance as what the ledger says is on the account."""
    return -mirror_posting_minor


def ledger_sides(
    postings: Iterable[PostingRow], server: str
) -> tuple[list[LedgerMt5Movement], list[LedgerPspMovement]]:
    """The postings on `server`'s MT5 mirrors and on every processor's clearing account as
    movements (a mirror's posting negated: money onto MT5); any other posting is not the
    ledger's side of a reconciliation, except a processor's fee booked in the same entry.

    A processor's fee the entry books as the broker's expense (`fees:<provider>:<ccy>`, e.g.
    `domain.wallets.capture_hold(..., fee=…)`: the clearing account pays amount + fee) is the
    fee the ledger expects (`fee_minor`), and the movement is the gross: the clearing posting
    plus the fee, as the processor's report states it (gross, fee, net = gross - fee).

    The scheduled run does this parsing in SQL (`db.queries.reconciliation._LEDGER`, a million
    postings); this function is its definition, and a test holds the two equal."""
    rows = list(postings)
    fees: dict[tuple[str, str, str], int] = {}  # (entry key, provider, currency) -> fee booked
    for key, _, code, amount, currency in rows:
        if code.startswith("fees:"):
            provider = code[5:].rpartition(":")[0]
            fees[(key, provider, currency)] = fees.get((key, provider, currency), 0) + amount
    mt5: list[LedgerMt5Movement] = []
    psp: list[LedgerPspMovement] = []
    mirror = f"mt5:{server}-"
    for key, at, code, amount, currency in rows:
        reference, _, step = key.partition(":")
        if reference == IB_PAYOUT:  # `ib-payout:<uuid>`; on MT5 `ibp <24 hex digits of it>`
            reference = step.replace("-", "")[:24]
        if code.startswith(mirror):
            login = code[len(mirror) :].partition(":")[0]
            if login.isdigit():
                mt5.append(
                    LedgerMt5Movement(key, reference, int(login), at, onto_mt5(amount), currency)
                )
        elif code.startswith("psp:"):
            provider = code[4:].partition(":")[0]
            if step.endswith(":reversal"):
                flow = Flow.REFUND
            else:
                flow = PSP_STEPS.get(step) or (Flow.COLLECTION if amount > 0 else Flow.PAYOUT)
            fee = fees.get((key, provider, currency))
            psp.append(
                LedgerPspMovement(
                    key,
                    reference,
                    provider,
                    flow,
                    at,
                    amount if fee is None else amount + fee,
                    currency,
                    fee,
                )
            )
    return mt5, psp
