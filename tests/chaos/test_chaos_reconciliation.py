"""The money chaos test's three-way reconciliation bites: each defect of issue 11, and each way
a movement may legitimately be out of line, written as the books, MT5 and the processor would
show it (no stack needed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.funds import mt5_mirror, psp_clearing
from domain.wallets import hold_account, wallet
from tests.chaos.money_driver import SERVER, Books, CaseRow, UnmatchedRow
from tests.chaos.test_money_under_chaos import Movement, movement_problems, processor_problems

LOGIN = 7_100_001
CLIENT = "00000000-0000-0000-0000-000000000001"
WALLET = wallet(CLIENT, "USD")
HOLD = hold_account(CLIENT, "USD")
MIRROR = mt5_mirror(SERVER, LOGIN, "USD")
BANK = psp_clearing("bankco", "USD")
D = Decimal


def movement(kind: str, status: str, **ledger: Decimal) -> Movement:
    accounts = {"wallet": WALLET, "hold": HOLD, "mirror": MIRROR, "bank": BANK}
    return Movement(
        kind,
        "BF00000000000000000001",
        status,
        D("100.00"),
        CLIENT,
        provider="bankco",
        transfer_reference="REF1",
        ledger={accounts[name]: value for name, value in ledger.items()},
    )


def books(unmatched: list[UnmatchedRow] | None = None, bank: Decimal = D(0)) -> Books:
    return Books(
        payments=[],
        mirrors={},
        wallets={},
        holds={},
        clearing={"cardco": D(0), "bankco": bank},
        suspense=D(0),
        unbalanced_entries=0,
        webhook_outcomes={},
        unmatched=unmatched or [],
    )


def state(transfers: list[str], payouts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "cardco": {"intents": []},
        "bankco": {
            "transfers": [{"reference": "REF1", "amount": a} for a in transfers],
            "payouts": payouts or [],
        },
    }


def test_a_deposit_credited_on_mt5_and_in_the_wallet_is_found() -> None:
    # defect 1: MT5 kept the credit, the deposit credited the wallet as well
    deposit = movement("deposit", "completed", wallet=D("-100.00"), bank=D("100.00"))
    deposit.on_mt5 = {LOGIN: D("100.00")}
    found = " ".join(movement_problems(deposit, None))
    assert "the ledger's mirror differs" in found and "credited 200.00" in found


def test_a_second_payment_acknowledged_and_never_booked_is_found() -> None:
    # defect 2: two transfers on one reference, one booked, the other nowhere
    deposit = movement("deposit", "completed", wallet=D("-100.00"), bank=D("100.00"))
    assert movement_problems(deposit, None) == []
    found = processor_problems([deposit], books(bank=D("100.00")), state(["100.00", "50.00"]))
    assert any("BankCo took" in p for p in found)
    queued = UnmatchedRow("bankco", "REF1", D("50.00"), "second_payment", "open", None)
    assert (
        processor_problems([deposit], books([queued], D("100.00")), state(["100.00", "50.00"]))
        == []
    )


def test_needs_attention_must_come_with_a_case_naming_what_mt5_kept() -> None:
    # defect 3: a transfer's credit MT5 would not take back; the rest was undone
    transfer = movement("transfer", "needs_attention")
    transfer.on_mt5 = {LOGIN: D("100.00")}
    assert movement_problems(transfer, None) == [
        f"{transfer}: needs_attention without a finance case"
    ]
    case = CaseRow(
        "transfer",
        transfer.reference,
        "open",
        D("100.00"),
        undone=[],
        not_undone=[{"what": "undo 'tri …' on MT5", "amount": {"amount": "100.00"}}],
    )
    assert movement_problems(transfer, case) == []
    short = CaseRow("transfer", transfer.reference, "open", None, [], [])
    assert movement_problems(transfer, short) != []


def test_a_lost_payout_verdict_is_visibly_waiting_with_the_money_in_the_hold() -> None:
    withdrawal = movement("withdrawal", "payout_sent", hold=D("-100.00"), mirror=D("100.00"))
    withdrawal.on_mt5 = {LOGIN: D("-100.00")}
    withdrawal.lost_webhook = True
    assert movement_problems(withdrawal, None) == []
    paid = [{"reference": withdrawal.reference, "amount": "100.00", "status": "settled"}]
    assert processor_problems([withdrawal], books(), state([], paid)) == []
    # paid out twice by the processor: found
    twice = processor_problems([withdrawal], books(), state([], paid * 2))
    assert any("paid out 2 times" in p for p in twice)
    # the same, its webhook not lost: a withdrawal still waiting is a problem
    withdrawal.lost_webhook = False
    assert movement_problems(withdrawal, None) != []
