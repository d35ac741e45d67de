"""Every workflow the worker serves (kept apart from `workflows/__init__`, which the workflow
modules themselves import)."""

from __future__ import annotations

from workflows.account_opening import AccountOpeningWorkflow
from workflows.deposit import DepositWorkflow
from workflows.transfer import TransferWorkflow
from workflows.withdrawal import WithdrawalWorkflow

WORKFLOWS = [AccountOpeningWorkflow, DepositWorkflow, WithdrawalWorkflow, TransferWorkflow]
