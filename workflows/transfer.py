"""A transfer between a client's own wallet and MT5 accounts, converted when the currencies
differ. Each step's compensation is registered where the step is taken.

1. take the money into the hold from the source (wallet, or MT5 debit after the free-margin
   check);
2. convert the held money at the newest stored rate less the spread, if the currencies differ;
3. give it to the destination (wallet, or MT5 credit with the reference in the comment).
A refusal anywhere (insufficient funds, MT5 refusing the credit) undoes the steps before it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.funds import MovementRef, MovementResult
    from contracts.transfer import TRANSFER, TransferInput
    from domain.money_flows import MovementKind
    from domain.payments import PaymentStatus

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.funds import Saga, notify, show_movement


@workflow.defn(name=TRANSFER.name)
class TransferWorkflow:
    @workflow.run
    async def run(self, request: TransferInput) -> MovementResult:
        show_movement(request.client_id, request.reference, PaymentStatus.INITIATED)
        movement = MovementRef(kind=MovementKind.TRANSFER, id=request.transfer_id)
        saga = Saga("transfer", request.client_id, request.reference, movement)

        async def transfer() -> MovementResult:
            await saga.take_from(
                request.source, request.amount, then=PaymentStatus.FUNDS_RESERVED, purpose="tro"
            )
            amount = request.amount
            if request.destination.currency != amount.currency:
                amount = await saga.convert(amount, request.destination.currency)
            credited = await saga.give_to(request.destination, amount, "tri")
            await notify(
                request.client_id,
                saga.key("notice"),
                "transfer_completed",
                f"{credited.amount} {credited.currency} arrived ({request.reference})",
            )
            return MovementResult(status=PaymentStatus.COMPLETED, credited=credited)

        return await saga.run(transfer)
