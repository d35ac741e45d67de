"""A transfer's newest compensation, an MT5 write, refused by MT5 for good (issue 11, defect 3),
end to end: the real transfer workflow and the real steps on a real Temporal server, the real
database, the real MT5 adapter and the MT5 simulator with its faults.

The scenario: 108.01 USD from the wallet to the client's EUR account on MT5. The steps are the
hold (`<ref>:hold`), the conversion into 99.50 EUR (`<ref>:fx`) and the MT5 credit (`tri <ref>`).
The credit lands on MT5 but its answer is lost, and the look-up its retries make first keeps
failing, so the credit step is still running when staff cancel the transfer; the cancellation
takes effect once the credit step has found its deal. The compensations then run newest first:
the MT5 reversal (`rev <ref>`, a negative `trade/balance`) is answered `10017 Trade disabled`,
final for the adapter (`Mt5TradeDisabled`, not retried); the conversion and the hold are
reversed in the books all the same.

Now: the movement ends `needs_attention` with one open `compensation_incomplete` case saying
the hold and the conversion were undone and the MT5 credit (99.50 EUR) was not; the wallet has
its 1000.00 USD back, MT5 keeps the credit (one deal, no reversal) which the ledger's mirror of
the account does not hold, and the workflow completes.

Before (`git show 5cd2b54:workflows/funds.py`): `Saga.compensate` awaited the compensations one
after the other with nothing around them, so the refused MT5 reversal raised its `ActivityError`
out of `compensate`, out of `_undone` and out of `Saga.run` (its cancellation branch returns
`_undone`'s result, so nothing caught it): the workflow failed at the first refused
compensation. The older ones never ran: the `fx` and `hold` entries stayed unreversed (99.50 EUR
left in the client's hold, the wallet at 891.99 USD), the transfer stayed `funds_reserved`, no
case was opened and the client was told nothing, while MT5 also kept the 99.50 EUR credit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from contracts import funds
from db.ledger import balance
from db.models import AuditEntry, FinanceCase, JournalEntryRow, Notification, Transfer
from domain.funds import mt5_mirror
from domain.money import Money
from domain.money_flows import mt5_comment
from domain.payments import FinanceCaseKind, FinanceCaseStatus, PaymentStatus
from domain.wallets import hold_account
from tests.activities.test_transfer_saga import Books, books, on_mt5, usd_wallet  # noqa: F401
from tests.e2e.helpers import simulator_deals
from tests.support.processes import Simulator
from tests.support.waiting import eventually

BALANCE = "/api/trade/balance"
LOOKUP = "/api/deal/get_batch"
# The credit is applied and its answer lost; every look-up its retries make answers "2 Common
# error" (an outcome unknown: retried, never final), so the step keeps running.
CREDIT_IN_LIMBO = (
    {"path": BALANCE, "mode": "drop_after_commit", "times": 1},
    {"path": LOOKUP, "mode": "retcode", "retcode": 2},
)
# The next balance write, the reversal, is refused: 10017 is final for the adapter.
REVERSAL_REFUSED = {"path": BALANCE, "mode": "retcode", "retcode": 10017, "times": 1}

SENT = Money.of("108.01", "USD")
CREDITED = Money.of("99.50", "EUR")  # 108.01 USD at mid 1.0801 less the 0.5 % spread
DEADLINE = 120.0


def fault_hits(simulator: Simulator, path: str) -> int:
    rules = httpx.get(f"{simulator.base_url}/_sim/faults", verify=False, timeout=10).json()
    return sum(int(rule["hits"]) for rule in rules["rules"] if rule["path"] == path)


def deals(simulator: Simulator, login: int) -> list[tuple[str, Decimal]]:
    """(comment, amount) of every deal MT5 holds for `login`: the simulator's ground truth."""
    return [
        (deal["Comment"], Decimal(str(deal["Profit"])))
        for deal in simulator_deals(simulator.base_url, login)
    ]


async def cancel_seen(handle: WorkflowHandle[Any, Any]) -> bool:
    """The cancellation is in the history and a workflow task has handled it since."""
    seen = False
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            seen = True
        elif seen and event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return True
    return False


async def test_mt5_refusing_the_reversal_for_good_leaves_a_case_and_the_rest_undone(
    books: Books,  # noqa: F811
    mt5_sim: Simulator,
) -> None:
    login = books.eur_login
    mt5_sim.inject_faults(*CREDIT_IN_LIMBO)
    running = asyncio.ensure_future(books.transfer(SENT, usd_wallet(), on_mt5(login, "EUR")))
    try:

        async def stored_transfer() -> Transfer | None:
            async with books.sessions() as session:
                row: Transfer | None = await session.scalar(
                    select(Transfer).where(Transfer.client_id == books.client_id)
                )
                return row

        transfer: Transfer = await eventually(stored_transfer, "the transfer row", DEADLINE)
        ref = transfer.reference
        credit, reversal = mt5_comment("tri", ref), mt5_comment("rev", ref)
        await eventually(
            lambda: (
                deals(mt5_sim, login) == [(credit, CREDITED.amount)]
                and fault_hits(mt5_sim, LOOKUP) >= 1
            ),
            "the credit on MT5 and its step retrying its look-up",
            DEADLINE,
        )
        handle = books.client.get_workflow_handle(transfer.workflow_id)
        await handle.cancel()
        await eventually(
            lambda: cancel_seen(handle), "the workflow handling the cancellation", DEADLINE
        )
        # Only now: the credit's next attempt finds its deal, and the reversal is refused.
        mt5_sim.inject_faults(REVERSAL_REFUSED)
        result = await asyncio.wait_for(running, DEADLINE)
        assert fault_hits(mt5_sim, BALANCE) == 1, "the reversal was not refused: proved nothing"
    finally:
        mt5_sim.clear_faults()
        running.cancel()  # a no-op once it has finished; else no waiter left behind

    # The workflow completed (not failed) with the movement needing attention.
    assert result.status is PaymentStatus.NEEDS_ATTENTION
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    what_mt5 = f"undo {credit!r} on MT5 demo {login} with {reversal!r}"
    assert result.reason is not None
    assert result.reason.startswith(f"cancelled: cancelled by staff; not undone: {what_mt5} (")

    async with books.sessions() as session:
        [case] = (
            await session.scalars(select(FinanceCase).where(FinanceCase.movement_id == transfer.id))
        ).all()
        stored = await session.get(Transfer, transfer.id)
        entries = set(
            (
                await session.scalars(
                    select(JournalEntryRow.idempotency_key).where(
                        JournalEntryRow.idempotency_key.startswith(f"{ref}:")
                    )
                )
            ).all()
        )
        client = str(books.client_id)
        held = {
            currency: (await balance(session, hold_account(client, currency), currency)).amount
            for currency in ("USD", "EUR")
        }
        mirror = await balance(session, mt5_mirror("demo", login, "EUR"), "EUR")
        audited = {
            action: await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == action, AuditEntry.entity_id == str(entity))
            )
            for action, entity in (
                ("finance_case.opened", case.id),
                ("transfer.needs_attention", transfer.id),
            )
        }
        notices = (
            await session.scalars(
                select(Notification.kind).where(Notification.client_id == books.client_id)
            )
        ).all()

    # The case: what the movement moved, why it was undone, what was and was not undone.
    assert (case.movement_kind, case.reference, case.client_id) == (
        "transfer",
        ref,
        books.client_id,
    )
    assert (case.kind, case.status) == (
        FinanceCaseKind.COMPENSATION_INCOMPLETE.value,
        FinanceCaseStatus.OPEN.value,
    )
    assert (case.currency, case.amount_minor) == ("USD", 10801)
    assert case.reason == "cancelled: cancelled by staff"
    assert case.undone == [
        {
            "step": funds.reverse_entry_if_booked.name,
            "what": f"reverse the entry {ref}:{step}",
            "amount": "108.01",
            "currency": "USD",
        }
        for step in ("fx", "hold")  # newest first, after the refused one
    ]
    [kept] = case.not_undone
    assert {k: v for k, v in kept.items() if k != "error"} == {
        "step": funds.mt5_reverse_if_applied.name,
        "what": what_mt5,
        "amount": "99.50",
        "currency": "EUR",
    }
    assert str(kept["error"]).startswith("Mt5TradeDisabled: "), kept["error"]
    assert stored is not None
    assert stored.status == PaymentStatus.NEEDS_ATTENTION.value
    assert stored.failure_reason == result.reason
    assert audited == {"finance_case.opened": 1, "transfer.needs_attention": 1}
    assert "transfer_needs_attention" in notices
    assert "transfer_cancelled" not in notices

    # MT5's ground truth: the credit is there, no reversal; the balance is the credit.
    assert deals(mt5_sim, login) == [(credit, CREDITED.amount)]
    assert (await books.mt5.get_user(login)).balance == CREDITED.amount
    # The books: the older compensations ran (hold and conversion reversed, wallet whole, the
    # hold empty in both currencies); the credit was never booked, so the ledger's mirror of the
    # MT5 account is short by exactly what the case says was not undone.
    assert entries == {f"{ref}:hold", f"{ref}:hold:reversal", f"{ref}:fx", f"{ref}:fx:reversal"}
    assert await books.wallet_balance("USD") == Decimal("1000.00")
    assert held == {"USD": Decimal(0), "EUR": Decimal(0)}
    assert mirror.amount == Decimal(0)
    assert (await books.mt5.get_user(login)).balance + mirror.amount == Decimal(str(kept["amount"]))
