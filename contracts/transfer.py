"""A transfer between a client's own wallet and MT5 accounts, converted when the currencies
differ. Its steps are all shared with the other money processes (`contracts.funds`).
"""

from __future__ import annotations

import uuid

from contracts.funds import ClientId, MovementResult
from contracts.process import Process
from domain.frozen import Frozen as Contract
from domain.money import Money
from domain.money_flows import Pocket


# The id comes from the business key, so a second start of the same transfer is refused; it is
# how the API reaches a running transfer.
def transfer_workflow_id(transfer_id: uuid.UUID) -> str:
    return f"transfer-{transfer_id}"


class TransferInput(Contract):
    transfer_id: uuid.UUID
    client_id: ClientId
    reference: str
    amount: Money  # in the source's currency
    source: Pocket
    destination: Pocket


TRANSFER = Process("Transfer", TransferInput, MovementResult)
